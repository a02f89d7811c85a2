import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadInstanceConfig } from '../../src/config/load.js';
import type { instanceDefaults } from '../../src/config/defaults.js';
import { createInstance, type Instance } from '../../src/instance.js';
import { silentLog } from '../../src/core/log.js';
import { createMidServer, type MidServer } from '../../src/mid/mid-server.js';
import { freePort } from './processes.js';

/** An instance in this process on an ephemeral loopback port, with its own data dir. */
export async function startTestInstance(overrides: Partial<typeof instanceDefaults> = {}): Promise<{
  instance: Instance;
  url: string;
  token: string;
  dataDir: string;
  api(method: string, url: string, body?: unknown): Promise<{ status: number; json: any }>;
  addMid(name: string, opts?: { validate?: boolean; capabilities?: string[] }): Promise<MidServer>;
  stop(): Promise<void>;
}> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenrelay-inst-'));
  // A known port up front, so TOKENRELAY_PUBLIC_URL (redirect URIs) is right from the start.
  const port = await freePort();
  const config = loadInstanceConfig(
    { port, host: '127.0.0.1', data: dataDir },
    { TOKENRELAY_ADMIN_TOKEN: 'test-admin-token', TOKENRELAY_PUBLIC_URL: `http://127.0.0.1:${port}` },
    overrides,
  );
  const instance = await createInstance(config, { log: silentLog() });
  await instance.start();
  const addr = instance.app.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const mids: MidServer[] = [];
  const api = async (method: string, u: string, body?: unknown) => {
    const res = await instance.app.inject({
      method: method as 'GET',
      url: u,
      headers: { authorization: 'Bearer test-admin-token', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
    });
    return { status: res.statusCode, json: res.body ? JSON.parse(res.body) : null };
  };
  return {
    instance,
    url,
    token: 'test-admin-token',
    dataDir,
    api,
    async addMid(name, opts = {}) {
      const key = (await api('POST', '/api/v1/mid_enrollment_keys', {})).json.key as string;
      const mid = createMidServer({
        instanceUrl: url,
        name,
        enrollKey: key,
        dataDir: path.join(dataDir, `mid-${name}`),
        heartbeatMs: 200,
        ...(opts.capabilities ? { capabilities: opts.capabilities } : {}),
        log: silentLog(),
      });
      await mid.start();
      mids.push(mid);
      if (opts.validate !== false) await api('POST', `/api/v1/mid_servers/${name}/validate`, {});
      return mid;
    },
    async stop() {
      await Promise.all(mids.map((m) => m.stop()));
      await instance.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
