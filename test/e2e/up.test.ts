import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { formatOutputs, freePort, spawnLogged, waitForHttp, type Managed } from '../support/processes.js';
import { BIN, apiClient, eventually, tempDir } from '../support/cli.js';

/** Story 1: `npm start` (= `tokenrelay up`) on a fresh data dir, then again on the same one. */
describe('tokenrelay up', () => {
  const data = tempDir('up');
  let proc: Managed | undefined;
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail' && proc) console.error(formatOutputs(proc));
  });
  afterAll(async () => {
    await proc?.stop();
    fs.rmSync(data, { recursive: true, force: true });
  });

  const start = async (port: number) => {
    proc = spawnLogged(process.execPath, [BIN, 'up', '--port', String(port), '--data', data], {
      name: 'up',
      env: { TOKENRELAY_ADMIN_TOKEN: undefined, TOKENRELAY_MASTER_KEY: undefined },
    });
    await proc.waitForOutput(/MID server: +"local"/, 60_000);
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 30_000);
    return proc;
  };

  let firstMidId = '';
  it('starts an instance with a MID server "local" enrolled, validated and up; prints URL and admin token once', async () => {
    const port = await freePort();
    const p = await start(port);
    const out = p.output();
    expect(out).toContain(`http://localhost:${port}/`);
    const token = out.match(/Admin token: +(tra_\S+)/)?.[1];
    expect(token).toBeDefined();
    expect(fs.readFileSync(path.join(data, 'admin-token'), 'utf8').trim()).toBe(token);
    expect(fs.statSync(path.join(data, 'admin-token')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(data, 'master.key')).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(path.join(data, 'tokenrelay.sqlite'))).toBe(true);
    const api = apiClient(`http://127.0.0.1:${port}`, token!);
    const local = await eventually(async () => (await api('GET', '/api/v1/mid_servers')).json.items.find((m: { name: string; status: string }) => m.name === 'local' && m.status === 'up'), 20_000, 'local up');
    expect(local).toMatchObject({ name: 'local', status: 'up', validated: true, capabilities: ['REST'] });
    firstMidId = local.id;
    expect(await p.stop('SIGTERM')).toBe(0);
  });

  it('restarts on the same data dir: same token (not printed again), same MID server, no re-enrollment', async () => {
    const port = await freePort();
    const p = await start(port);
    expect(p.output()).not.toMatch(/Admin token: +tra_/);
    expect(p.output()).toContain(`in ${path.join(data, 'admin-token')}`);
    const token = fs.readFileSync(path.join(data, 'admin-token'), 'utf8').trim();
    const api = apiClient(`http://127.0.0.1:${port}`, token);
    const mids = await eventually(async () => {
      const items = (await api('GET', '/api/v1/mid_servers')).json.items;
      return items.every((m: { status: string }) => m.status === 'up') && items;
    }, 20_000, 'local up');
    expect(mids).toHaveLength(1);
    expect(mids[0]).toMatchObject({ id: firstMidId, name: 'local', validated: true });
    expect(await p.stop('SIGTERM')).toBe(0);
  });
});
