// Start test/peers/oidc-peer-main.ts as its own process (optionally inside a
// corp network namespace) and talk to its control endpoints.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetchInNamespace } from '../support/netns.js';
import type { CorpNetwork } from '../support/netns.js';
import { spawnLogged } from '../support/processes.js';
import type { Managed } from '../support/processes.js';
import type { IntrospectionResult, OidcClientCreds } from './oidc-peer.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const OIDC_PEER_MAIN = resolve(REPO_ROOT, 'test', 'peers', 'oidc-peer-main.ts');

export interface OidcPeerReady {
  ready: true;
  issuer: string;
  token_url: string;
  discovery_url: string;
  host: string;
  port: number;
  clients: { basic: OidcClientCreds; post: OidcClientCreds };
  scopes: string[];
}

export interface OidcPeerStats {
  token_requests: number;
  tokens_issued: number;
  token_delay_ms: number;
}

export interface OidcPeerProcess {
  managed: Managed;
  info: OidcPeerReady;
  issuer: string;
  tokenUrl: string;
  clients: OidcPeerReady['clients'];
  /** GET /__stats (from inside the namespace when the peer runs in one). */
  stats(): Promise<OidcPeerStats>;
  /** POST /__introspect. */
  introspect(token: string): Promise<IntrospectionResult>;
  /** SIGTERM; resolves with the exit code (0 on a clean close). */
  stop(): Promise<number | null>;
}

export async function startOidcPeerProcess(
  opts: { host?: string; port?: number; ttlS?: number; tokenDelayMs?: number; netns?: CorpNetwork; name?: string; readyTimeoutMs?: number } = {},
): Promise<OidcPeerProcess> {
  const host = opts.host ?? opts.netns?.corpIp ?? '127.0.0.1';
  const args = ['--import', 'tsx', OIDC_PEER_MAIN, '--host', host, '--port', String(opts.port ?? 0)];
  if (opts.ttlS !== undefined) args.push('--ttl', String(opts.ttlS));
  if (opts.tokenDelayMs !== undefined) args.push('--token-delay-ms', String(opts.tokenDelayMs));
  const managed = spawnLogged(process.execPath, args, {
    name: opts.name ?? 'oidc-peer',
    cwd: REPO_ROOT,
    ...(opts.netns ? { netns: opts.netns } : {}),
  });
  let info: OidcPeerReady;
  try {
    info = await managed.waitForJsonLine<OidcPeerReady>((o) => o.ready === true, opts.readyTimeoutMs ?? 60_000);
  } catch (err) {
    managed.kill();
    throw err;
  }

  const call = async (path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) => {
    const url = `${info.issuer}${path}`;
    if (opts.netns) {
      const r = await fetchInNamespace(opts.netns, url, init);
      if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status} ${r.body}`);
      return JSON.parse(r.body) as unknown;
    }
    const r = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
    if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status} ${await r.text()}`);
    return (await r.json()) as unknown;
  };

  return {
    managed,
    info,
    issuer: info.issuer,
    tokenUrl: info.token_url,
    clients: info.clients,
    stats: async () => (await call('/__stats')) as OidcPeerStats,
    introspect: async (token) =>
      (await call('/__introspect', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token }),
      })) as IntrospectionResult,
    stop: () => managed.stop('SIGTERM', 10_000),
  };
}
