import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnLogged, freePort, waitForHttp, type Managed } from './processes.js';
import type { CorpNetwork } from './netns.js';
import { REPO_ROOT } from '../peers/oidc-peer-process.js';

/** The built CLI, as a user runs it after `npm ci`. */
export const BIN = path.join(REPO_ROOT, 'bin', 'tokenrelay.js');

export const tempDir = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), `tokenrelay-${prefix}-`));

export async function startInstanceProcess(opts: { host: string; dataDir: string; adminToken: string; env?: Record<string, string>; port?: number }): Promise<{ proc: Managed; url: string }> {
  const port = opts.port ?? (await freePort(opts.host));
  const url = `http://${opts.host}:${port}`;
  const proc = spawnLogged(process.execPath, [BIN, 'instance', '--host', opts.host, '--port', String(port), '--data', opts.dataDir], {
    name: 'instance',
    env: { TOKENRELAY_ADMIN_TOKEN: opts.adminToken, TOKENRELAY_LOG_LEVEL: 'info', TOKENRELAY_PUBLIC_URL: url, ...opts.env },
  });
  await waitForHttp(`${url}/healthz`, 60_000);
  return { proc, url };
}

export function startMidProcess(opts: {
  instanceUrl: string;
  name: string;
  dataDir: string;
  enroll?: string;
  netns?: CorpNetwork;
  args?: string[];
  env?: Record<string, string | undefined>;
}): Managed {
  const args = [BIN, 'mid', '--instance', opts.instanceUrl, '--name', opts.name, '--data', opts.dataDir, ...(opts.args ?? [])];
  if (opts.enroll) args.push('--enroll', opts.enroll);
  return spawnLogged(process.execPath, args, { name: `mid-${opts.name}`, ...(opts.netns ? { netns: opts.netns } : {}), ...(opts.env ? { env: opts.env } : {}) });
}

/** A small JSON client for the instance's REST API. */
export function apiClient(base: string, token: string) {
  return async (method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> => {
    const res = await fetch(`${base}${p}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : null };
  };
}

/** Polls `check` until it returns a value, or fails with the last value seen. */
export async function eventually<T>(check: () => Promise<T | undefined | null | false>, timeoutMs: number, what: string): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    last = await check().catch((e: Error) => e.message);
    if (last) return last as T;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
