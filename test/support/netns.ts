// Real Linux network namespaces for tests: a "corp" network that can reach the
// host but cannot be reached from it, like a MID server behind an
// outbound-only corporate firewall.
//
//   host (root ns)                         corp ns (trc-<pid36>-<n>)
//   vh<pid36>x<n>  hostIp/30  <== veth ==>  vc<pid36>x<n>  corpIp/30, lo up, no default route
//                                          nftables input: established/related + lo accepted,
//                                          anything new from the veth rejected (TCP RST)
//
// Needs root, iproute2 and nftables. Nothing is faked: without nft,
// netnsSupport() says so and tests must skip.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { delimiter, join } from 'node:path';

export type NetnsSupport = { ok: true } | { ok: false; reason: string };

export interface CorpNetwork {
  /** namespace name, e.g. trc-1ab2-0 */
  ns: string;
  /** address of the host end of the veth (reachable from inside the namespace) */
  hostIp: string;
  /** address of the namespace end (NOT reachable from the host for new connections) */
  corpIp: string;
  /** e.g. 10.123.45.8/30 */
  subnet: string;
  /** veth interface names: host side (root ns) and corp side (inside ns) */
  hostIf: string;
  corpIf: string;
  /** argv prefix that runs a command inside the namespace: ['/usr/sbin/ip','netns','exec',ns] */
  execPrefix(): string[];
  /**
   * Spawn `cmd args` inside the namespace via `ip netns exec` (which execs, so
   * the child's pid is the real process's pid and signals reach it).
   */
  spawn(cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** Run a command inside the namespace to completion. */
  exec(cmd: string, args: string[], input?: string): Promise<RunResult>;
  /** Kill whatever still runs inside, delete the namespace and the veth. Idempotent. */
  destroy(): Promise<void>;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const NS_PREFIX = 'trc-';
const PROBE_PREFIX = 'trcp-';
const NS_RE = /^trcp?-([0-9a-z]+)-\d+$/;
const VETH_RE = /^v[hc]([0-9a-z]+)x\d+$/;

const pid36 = process.pid.toString(36);
let counter = 0;
const usedSlots = new Set<number>();
const live = new Map<string, { hostIf: string }>();

// ---------------------------------------------------------------------------
// small process helpers

function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

let ipPath: string | undefined;
function ipBin(): string {
  ipPath ??= findExecutable('ip') ?? 'ip';
  return ipPath;
}

export function run(cmd: string, args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (err) {
      resolve({ code: null, stdout: '', stderr: String(err) });
      return;
    }
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => resolve({ code: null, stdout, stderr: stderr + String(err) }));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin?.on('error', () => {});
    child.stdin?.end(input ?? '');
  });
}

async function must(cmd: string, args: string[], input?: string): Promise<string> {
  const r = await run(cmd, args, input);
  if (r.code !== 0) {
    throw new Error(`\`${cmd} ${args.join(' ')}\` failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ---------------------------------------------------------------------------
// support probe

let supportCache: Promise<NetnsSupport> | undefined;

/** Can this process create isolated corp networks? Cached; cleans up its probe. */
export function netnsSupport(): Promise<NetnsSupport> {
  supportCache ??= probe();
  return supportCache;
}

async function probe(): Promise<NetnsSupport> {
  if (process.platform !== 'linux') return { ok: false, reason: `network namespaces need Linux (this is ${process.platform})` };
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return { ok: false, reason: 'network namespaces need root (uid 0)' };
  }
  if (!findExecutable('ip')) return { ok: false, reason: 'ip (Debian package iproute2) is not installed' };
  if (!findExecutable('nft')) return { ok: false, reason: 'nft (Debian package nftables) is not installed' };

  const ns = `${PROBE_PREFIX}${pid36}-${counter++}`;
  const vh = `vh${pid36}x${counter}`;
  const vc = `vc${pid36}x${counter++}`;
  try {
    const add = await run(ipBin(), ['netns', 'add', ns]);
    if (add.code !== 0) return { ok: false, reason: `\`ip netns add\` failed: ${add.stderr.trim()}` };
    const veth = await run(ipBin(), ['link', 'add', vh, 'type', 'veth', 'peer', 'name', vc, 'netns', ns]);
    if (veth.code !== 0) return { ok: false, reason: `creating a veth pair failed: ${veth.stderr.trim()}` };
    const nft = await run(
      ipBin(),
      ['netns', 'exec', ns, 'nft', '-f', '-'],
      'table inet trc_probe {\n chain input {\n  type filter hook input priority filter; policy accept;\n  ct state established,related accept\n }\n}\n',
    );
    if (nft.code !== 0) return { ok: false, reason: `nftables inside a namespace failed: ${nft.stderr.trim()}` };
    return { ok: true };
  } finally {
    await run(ipBin(), ['netns', 'del', ns]);
    await run(ipBin(), ['link', 'del', vh]);
  }
}

// ---------------------------------------------------------------------------
// stale cleanup (namespaces left by a test process that was SIGKILLed)

async function reapStale(): Promise<void> {
  const list = await run(ipBin(), ['netns', 'list']);
  for (const line of list.stdout.split('\n')) {
    const name = line.trim().split(/\s+/)[0];
    if (!name) continue;
    const m = NS_RE.exec(name);
    if (!m?.[1]) continue;
    const owner = parseInt(m[1], 36);
    // same pid as ours but not ours: left by an earlier process that had this pid
    if (owner === process.pid ? live.has(name) : pidAlive(owner)) continue;
    await killNamespacePids(name);
    await run(ipBin(), ['netns', 'del', name]);
  }
  const links = await run(ipBin(), ['-o', 'link', 'show']);
  for (const line of links.stdout.split('\n')) {
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1];
    if (!name) continue;
    const m = VETH_RE.exec(name);
    if (!m?.[1]) continue;
    const owner = parseInt(m[1], 36);
    const ours = [...live.values()].some((l) => l.hostIf === name);
    if (owner === process.pid ? ours : pidAlive(owner)) continue;
    await run(ipBin(), ['link', 'del', name]);
  }
}

async function namespacePids(ns: string): Promise<number[]> {
  const r = await run(ipBin(), ['netns', 'pids', ns]);
  if (r.code !== 0) return [];
  return r.stdout
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0 && n !== process.pid);
}

async function killNamespacePids(ns: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const pids = await namespacePids(ns);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---------------------------------------------------------------------------
// exit hook: synchronous best-effort teardown of this process's namespaces

let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [ns, { hostIf }] of live) {
      const pids = spawnSync(ipBin(), ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
      for (const p of pids.split(/\s+/).filter(Boolean).map(Number)) {
        try {
          if (p !== process.pid) process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }
      spawnSync(ipBin(), ['netns', 'del', ns]);
      spawnSync(ipBin(), ['link', 'del', hostIf]);
    }
    live.clear();
  });
}

// ---------------------------------------------------------------------------
// addressing: a /30 in 10.100.0.0 - 10.227.255.255, derived from pid + slot so
// parallel test files (different pids) and several networks per file never collide.

function subnetFor(slot: number): { hostIp: string; corpIp: string; subnet: string } {
  const idx = (process.pid % 131072) * 16 + slot; // 21 bits
  const o2 = 100 + ((idx >> 14) & 127);
  const o3 = (idx >> 6) & 255;
  const o4 = (idx & 63) * 4;
  return {
    hostIp: `10.${o2}.${o3}.${o4 + 1}`,
    corpIp: `10.${o2}.${o3}.${o4 + 2}`,
    subnet: `10.${o2}.${o3}.${o4}/30`,
  };
}

async function addressInUse(ips: string[]): Promise<boolean> {
  const addrs = await run(ipBin(), ['-4', '-o', 'addr', 'show']);
  return ips.some((ip) => new RegExp(`inet ${ip.replace(/\./g, '\\.')}/`).test(addrs.stdout));
}

function firewallRules(corpIf: string): string {
  return `table inet trc_corp {
  chain input {
    type filter hook input priority filter; policy accept;
    ct state established,related accept
    iifname "lo" accept
    iifname "${corpIf}" meta l4proto tcp reject with tcp reset
    iifname "${corpIf}" reject with icmpx type admin-prohibited
  }
}
`;
}

/** Create an isolated corp network. Call netnsSupport() first and skip if it is not ok. */
export async function createCorpNetwork(): Promise<CorpNetwork> {
  const support = await netnsSupport();
  if (!support.ok) throw new Error(`network namespaces unavailable: ${support.reason}`);
  installExitHook();
  await reapStale();

  let slot = -1;
  for (let s = 0; s < 16; s++) {
    if (!usedSlots.has(s)) {
      slot = s;
      break;
    }
  }
  if (slot < 0) throw new Error('too many corp networks alive in this process (max 16)');
  usedSlots.add(slot);
  const addr = subnetFor(slot);
  if (await addressInUse([addr.hostIp, addr.corpIp])) {
    usedSlots.delete(slot);
    throw new Error(`address ${addr.subnet} is already in use on this host; leftover from another run?`);
  }

  const n = counter++;
  const ns = `${NS_PREFIX}${pid36}-${n}`;
  const hostIf = `vh${pid36}x${n}`;
  const corpIf = `vc${pid36}x${n}`;
  const ip = ipBin();
  live.set(ns, { hostIf });

  let destroyed: Promise<void> | undefined;
  const destroy = (): Promise<void> => {
    destroyed ??= (async () => {
      await killNamespacePids(ns);
      await run(ip, ['netns', 'del', ns]);
      // deleting the namespace destroys the veth pair; this is for the odd case it did not
      await run(ip, ['link', 'del', hostIf]);
      live.delete(ns);
      usedSlots.delete(slot);
    })();
    return destroyed;
  };

  try {
    await must(ip, ['netns', 'add', ns]);
    await must(ip, ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', corpIf, 'netns', ns]);
    await must(ip, ['addr', 'add', `${addr.hostIp}/30`, 'dev', hostIf]);
    await must(ip, ['link', 'set', hostIf, 'up']);
    await must(ip, ['-n', ns, 'addr', 'add', `${addr.corpIp}/30`, 'dev', corpIf]);
    await must(ip, ['-n', ns, 'link', 'set', corpIf, 'up']);
    await must(ip, ['-n', ns, 'link', 'set', 'lo', 'up']);
    await must(ip, ['netns', 'exec', ns, 'nft', '-f', '-'], firewallRules(corpIf));
  } catch (err) {
    await destroy();
    throw err;
  }

  const execPrefix = () => [ip, 'netns', 'exec', ns];
  return {
    ns,
    hostIp: addr.hostIp,
    corpIp: addr.corpIp,
    subnet: addr.subnet,
    hostIf,
    corpIf,
    execPrefix,
    spawn(cmd, args, opts = {}) {
      const [bin, ...pre] = execPrefix();
      return spawn(bin!, [...pre, cmd, ...args], opts);
    },
    exec(cmd, args, input) {
      const [bin, ...pre] = execPrefix();
      return run(bin!, [...pre, cmd, ...args], input);
    },
    destroy,
  };
}

// ---------------------------------------------------------------------------

export interface NsFetchResult {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Do one HTTP request from inside the namespace (a short-lived `node -e`
 * process running global fetch there). Rejects if the request fails (e.g.
 * ECONNREFUSED), with the error code in the message.
 */
export async function fetchInNamespace(
  net: CorpNetwork,
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<NsFetchResult> {
  const script = `
const init = JSON.parse(process.argv[1]);
fetch(init.url, { method: init.method, headers: init.headers, body: init.body, signal: AbortSignal.timeout(init.timeoutMs) })
  .then(async (r) => {
    process.stdout.write(JSON.stringify({ ok: true, status: r.status, headers: Object.fromEntries(r.headers), body: await r.text() }));
  })
  .catch((e) => {
    process.stdout.write(JSON.stringify({ ok: false, error: String(e), code: e && e.cause && e.cause.code }));
  });
`;
  const r = await net.exec(process.execPath, [
    '-e',
    script,
    JSON.stringify({ url, method: init.method ?? 'GET', headers: init.headers ?? {}, body: init.body, timeoutMs: init.timeoutMs ?? 10_000 }),
  ]);
  let parsed: { ok: boolean; status?: number; headers?: Record<string, string>; body?: string; error?: string; code?: string };
  try {
    parsed = JSON.parse(r.stdout) as typeof parsed;
  } catch {
    throw new Error(`fetchInNamespace ${url} in ${net.ns}: exit ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  }
  if (!parsed.ok) {
    const err = new Error(`fetchInNamespace ${url} in ${net.ns} failed: ${parsed.code ?? ''} ${parsed.error ?? ''}`.trim());
    (err as NodeJS.ErrnoException).code = parsed.code;
    throw err;
  }
  return { status: parsed.status ?? 0, headers: parsed.headers ?? {}, body: parsed.body ?? '' };
}
