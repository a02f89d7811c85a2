// Real child processes for tests: spawn with captured output, wait for a line,
// stop with a signal (SIGKILL after a timeout), and never leak a child.
//
// Every child is tracked and SIGKILLed when the test process exits. Where
// util-linux `setpriv` is available, children are also started with
// PR_SET_PDEATHSIG=SIGKILL, so they die even if the test worker is SIGKILLed.
// `setpriv` and `ip netns exec` both exec(), so `proc.pid` is the pid of the
// real program and signals sent by stop() reach it directly.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { onTestFailed } from 'vitest';
import type { CorpNetwork } from './netns.js';

export interface SpawnLoggedOptions {
  /** Label used in errors and dumps. */
  name: string;
  /** Merged over process.env. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Run inside this corp network namespace (via `ip netns exec`). */
  netns?: CorpNetwork;
  /** Kill the child if this process dies (setpriv --pdeathsig KILL). Default true. */
  pdeathsig?: boolean;
  /** Keep at most this many characters of output (oldest dropped). Default 4 MiB. */
  maxOutputChars?: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Managed {
  name: string;
  proc: ChildProcess;
  pid: number;
  /** Combined stdout+stderr so far, in arrival order. */
  output(): string;
  /** stdout only. */
  stdout(): string;
  /** Resolves with the first match of `re` against output() (do not use the g flag). Rejects on timeout or exit. */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the first stdout line that parses as JSON and satisfies `test`. */
  waitForJsonLine<T = Record<string, unknown>>(test?: (obj: T) => boolean, timeoutMs?: number): Promise<T>;
  /** Resolves once the process has exited. */
  exited: Promise<ExitInfo>;
  /** null while running */
  exitInfo(): ExitInfo | null;
  /** Send `signal`, SIGKILL after timeoutMs; resolves with the exit code (null if ended by a signal). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  /** SIGKILL now. */
  kill(): void;
}

const tracked = new Set<Managed>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const m of tracked) {
      if (m.exitInfo() === null) {
        try {
          m.proc.kill('SIGKILL');
        } catch {
          // gone
        }
      }
    }
  });
}

let setprivSupportsPdeathsig: boolean | undefined;
function setprivPath(): string | undefined {
  for (const p of ['/usr/bin/setpriv', '/bin/setpriv']) {
    try {
      accessSync(p, fsConstants.X_OK);
      if (setprivSupportsPdeathsig === undefined) {
        const help = spawnSync(p, ['--help'], { encoding: 'utf8' });
        setprivSupportsPdeathsig = `${help.stdout}${help.stderr}`.includes('--pdeathsig');
      }
      return setprivSupportsPdeathsig ? p : undefined;
    } catch {
      // next
    }
  }
  return undefined;
}

function tail(s: string, n = 4000): string {
  return s.length > n ? `...${s.slice(-n)}` : s;
}

export function spawnLogged(cmd: string, args: string[], opts: SpawnLoggedOptions): Managed {
  installExitHook();
  const maxChars = opts.maxOutputChars ?? 4 * 1024 * 1024;

  let argv: string[] = [...(opts.netns ? opts.netns.execPrefix() : []), cmd, ...args];
  const setpriv = opts.pdeathsig === false ? undefined : setprivPath();
  if (setpriv) argv = [setpriv, '--pdeathsig', 'KILL', '--', ...argv];
  const [bin, ...rest] = argv;

  const proc = spawn(bin!, rest, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });

  let out = '';
  let stdoutBuf = '';
  let exit: ExitInfo | null = null;
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const l of [...listeners]) l();
  };
  const append = (chunk: string, isStdout: boolean) => {
    out += chunk;
    if (out.length > maxChars) out = out.slice(-maxChars);
    if (isStdout) {
      stdoutBuf += chunk;
      if (stdoutBuf.length > maxChars) stdoutBuf = stdoutBuf.slice(-maxChars);
    }
    notify();
  };
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => append(d, true));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => append(d, false));
  proc.stdin!.on('error', () => {});

  const exited = new Promise<ExitInfo>((resolve) => {
    proc.on('error', (err) => {
      append(`\n[spawn error: ${String(err)}]\n`, false);
      if (!exit) {
        exit = { code: null, signal: null };
        notify();
        resolve(exit);
      }
    });
    proc.on('exit', (code, signal) => {
      if (!exit) {
        exit = { code, signal };
        // let the last output chunks arrive before waiters give up
        setImmediate(() => {
          notify();
          resolve(exit!);
        });
      }
    });
  });

  const describe = () => `${opts.name} (pid ${proc.pid ?? '?'}, ${[cmd, ...args].join(' ')})`;

  const waitFor = <T>(check: () => T | undefined, what: string, timeoutMs: number): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        listeners.delete(onChange);
        if (timer) clearTimeout(timer);
      };
      const onChange = () => {
        const v = check();
        if (v !== undefined) {
          done();
          resolve(v);
        } else if (exit) {
          done();
          reject(new Error(`${describe()} exited (code ${exit.code}, signal ${exit.signal}) before ${what}. Output:\n${tail(out)}`));
        }
      };
      timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} from ${describe()}. Output:\n${tail(out)}`));
      }, timeoutMs);
      listeners.add(onChange);
      onChange();
    });

  const m: Managed = {
    name: opts.name,
    proc,
    pid: proc.pid ?? -1,
    output: () => out,
    stdout: () => stdoutBuf,
    waitForOutput(re, timeoutMs = 30_000) {
      return waitFor(() => out.match(re) ?? undefined, `output matching ${re}`, timeoutMs);
    },
    waitForJsonLine<T = Record<string, unknown>>(test: (obj: T) => boolean = () => true, timeoutMs = 30_000) {
      return waitFor<T>(
        () => {
          for (const line of stdoutBuf.split('\n')) {
            const t = line.trim();
            if (!t.startsWith('{')) continue;
            try {
              const obj = JSON.parse(t) as T;
              if (test(obj)) return obj;
            } catch {
              // partial line or not JSON
            }
          }
          return undefined;
        },
        'a matching JSON line on stdout',
        timeoutMs,
      );
    },
    exited,
    exitInfo: () => exit,
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5_000) {
      if (!exit) {
        try {
          proc.kill(signal);
        } catch {
          // already gone
        }
        const timer = setTimeout(() => {
          if (!exit) {
            append(`\n[${opts.name}: no exit ${timeoutMs} ms after ${signal}; sending SIGKILL]\n`, false);
            try {
              proc.kill('SIGKILL');
            } catch {
              // gone
            }
          }
        }, timeoutMs);
        await exited;
        clearTimeout(timer);
      }
      const info = await exited;
      tracked.delete(m);
      return info.code;
    },
    kill() {
      if (!exit) {
        try {
          proc.kill('SIGKILL');
        } catch {
          // gone
        }
      }
    },
  };
  tracked.add(m);
  void exited.then(() => tracked.delete(m));
  return m;
}

/** Every managed process still running (spawned by this test process). */
export function runningProcesses(): Managed[] {
  return [...tracked].filter((m) => m.exitInfo() === null);
}

/** SIGTERM (then SIGKILL) every tracked process; for afterAll/afterEach. */
export async function stopAll(timeoutMs = 5_000): Promise<void> {
  await Promise.all([...tracked].map((m) => m.stop('SIGTERM', timeoutMs)));
}

/** Formatted outputs, for printing when something went wrong. */
export function formatOutputs(...ms: Managed[]): string {
  return ms
    .map((m) => `----- ${m.name} (pid ${m.pid}, exit ${JSON.stringify(m.exitInfo())}) -----\n${tail(m.output(), 20_000)}`)
    .join('\n');
}

/** Call inside a test: if that test fails, print the outputs of these processes. */
export function dumpOnFailure(...ms: Managed[]): void {
  onTestFailed(() => {
    console.error(formatOutputs(...ms));
  });
}

/** Poll `url` until it answers 2xx. Returns the final Response (body unread). */
export async function waitForHttp(url: string, timeoutMs = 30_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(Math.min(5_000, Math.max(500, deadline - Date.now()))) });
      if (res.ok) return res;
      last = `HTTP ${res.status}`;
      await res.body?.cancel();
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      last = cause?.code ?? String(err);
    }
    if (Date.now() >= deadline) throw new Error(`waitForHttp ${url}: no 2xx within ${timeoutMs} ms (last: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A TCP port that was free on `host` a moment ago. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
