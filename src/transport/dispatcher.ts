import dns from 'node:dns';
import net from 'node:net';
import tls from 'node:tls';
import { Agent, EnvHttpProxyAgent, type Dispatcher } from 'undici';

/**
 * How a process reaches the network: through HTTPS_PROXY/HTTP_PROXY (with credentials in the
 * proxy URL, sent as Proxy-Authorization) unless NO_PROXY says otherwise, trusting an extra CA
 * bundle for private PKI, and — for the MID server's targets — only hosts the allowlist permits.
 */
export interface DispatcherOptions {
  /** Extra trusted CA certificates (PEM), on top of the system's. */
  ca?: string | null;
  /** Target allowlist; null = allow everything. */
  allow?: Allowlist | null;
  env?: NodeJS.ProcessEnv;
}

export const proxyConfigured = (env: NodeJS.ProcessEnv = process.env): boolean =>
  !!(env.HTTPS_PROXY || env.https_proxy || env.HTTP_PROXY || env.http_proxy);

export function createDispatcher(opts: DispatcherOptions = {}): Dispatcher {
  const env = opts.env ?? process.env;
  const connect: Record<string, unknown> = {};
  if (opts.ca) connect.ca = [...tls.rootCertificates, opts.ca];
  if (opts.allow) connect.lookup = opts.allow.lookup;
  const proxied = env.HTTPS_PROXY || env.https_proxy || env.HTTP_PROXY || env.http_proxy;
  if (proxied) {
    return new EnvHttpProxyAgent({
      ...(opts.ca ? { requestTls: { ca: connect.ca as string[] }, proxyTls: { ca: connect.ca as string[] } } : {}),
      connect,
    } as ConstructorParameters<typeof EnvHttpProxyAgent>[0]);
  }
  return new Agent({ keepAliveTimeout: 10_000, connections: 64, connect });
}

/**
 * The MID server's allowlist (`--allow-hosts`): comma-separated patterns —
 *   `host.example`, `*.corp.internal` (any subdomain), optionally with `:port`;
 *   `10.0.0.0/8`, `192.168.1.7`, `fd00::/8` (addresses, also checked after DNS resolution,
 *   at connect time, so a name that resolves into a forbidden range is refused too).
 * A refused target never gets a connection: the MID server itself says no, so a compromised
 * instance cannot use it to scan the private network.
 */
export class AllowlistError extends Error {
  readonly code = 'refused_by_allowlist';
}

export interface Allowlist {
  patterns: string[];
  /** Pre-flight: may this URL be requested? (Names in allowed ranges are settled at connect time.) */
  allowsUrl(url: URL, opts?: { proxied?: boolean }): boolean;
  /** dns.lookup replacement: resolves, then refuses addresses outside the allowed ranges unless the name itself is allowed. */
  lookup: net.LookupFunction;
}

export function parseAllowlist(spec: string | null | undefined): Allowlist | null {
  if (!spec || !spec.trim()) return null;
  const patterns = spec.split(',').map((p) => p.trim()).filter(Boolean);
  const ranges = new net.BlockList();
  const names: Array<{ re: RegExp; port: string | null }> = [];
  for (const p of patterns) {
    const [addr, bits] = p.split('/');
    if (bits !== undefined && net.isIP(addr!)) {
      const prefix = Number(bits);
      if (!Number.isInteger(prefix)) throw new Error(`--allow-hosts: "${p}" is not a valid CIDR range.`);
      ranges.addSubnet(addr!, prefix, net.isIPv6(addr!) ? 'ipv6' : 'ipv4');
      continue;
    }
    if (net.isIP(p)) {
      ranges.addAddress(p, net.isIPv6(p) ? 'ipv6' : 'ipv4');
      continue;
    }
    const m = p.match(/^(\*\.)?([A-Za-z0-9.-]+)(?::(\d+))?$/);
    if (!m) throw new Error(`--allow-hosts: "${p}" is not a host name, *.domain, address or CIDR range.`);
    const host = m[2]!.toLowerCase().replace(/\./g, '\\.');
    names.push({ re: new RegExp(m[1] ? `^(?:[a-z0-9-]+\\.)+${host}$` : `^${host}$`), port: m[3] ?? null });
  }
  const inRanges = (ip: string) => ranges.check(ip, net.isIPv6(ip) ? 'ipv6' : 'ipv4');
  const hasRanges = patterns.some((p) => net.isIP(p.split('/')[0]!) !== 0);
  const nameAllowed = (host: string, port: string | null) =>
    names.some((n) => n.re.test(host.toLowerCase()) && (n.port === null || n.port === port));

  return {
    patterns,
    allowsUrl(url, opts = {}) {
      const host = url.hostname.replace(/^\[|\]$/g, '');
      const port = url.port || (url.protocol === 'https:' ? '443' : '80');
      if (net.isIP(host)) return inRanges(host);
      if (nameAllowed(host, port)) return true;
      // A name not listed may still resolve into an allowed range: the connect-time lookup
      // decides. Through a proxy this process does not resolve names, so only names count.
      return hasRanges && !opts.proxied;
    },
    lookup(hostname, options, callback) {
      dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
        if (err) return (callback as (e: Error | null) => void)(err);
        const list = addresses as dns.LookupAddress[];
        // Port-less name patterns were settled by allowsUrl; a name with a port pattern is judged by address here.
        const allowed = names.some((n) => n.port === null && n.re.test(hostname.toLowerCase())) || list.every((a) => inRanges(a.address));
        if (!allowed) {
          const e = new AllowlistError(`${hostname} (${list.map((a) => a.address).join(', ')}) is not in this MID server's --allow-hosts list.`);
          (e as unknown as { code: string }).code = 'refused_by_allowlist';
          return (callback as (e: Error | null) => void)(e);
        }
        if ((options as dns.LookupOptions).all) return (callback as (e: null, a: dns.LookupAddress[]) => void)(null, list);
        const first = list[0]!;
        (callback as (e: null, a: string, f: number) => void)(null, first.address, first.family);
      });
    },
  };
}
