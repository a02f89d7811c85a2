import fs from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startTokenEndpoint, type TokenEndpoint } from '../../bench/token-endpoint.js';
import { formatOutputs, type Managed } from '../support/processes.js';
import { apiClient, eventually, startInstanceProcess, startMidProcess, tempDir } from '../support/cli.js';

/**
 * The instance restarts (an upgrade, a crash) while a MID server is connected: the MID server
 * keeps trying with backoff, reconnects by itself, and work flows again; nothing stored is lost.
 */
describe('instance restart under a connected MID server', () => {
  const data = tempDir('restart');
  const midData = tempDir('restart-mid');
  let endpoint: TokenEndpoint;
  let instance: { proc: Managed; url: string } | undefined;
  let mid: Managed | undefined;
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') console.error(formatOutputs(...([instance?.proc, mid].filter(Boolean) as Managed[])));
  });
  afterAll(async () => {
    await mid?.stop();
    await instance?.proc.stop();
    await endpoint?.close();
    fs.rmSync(data, { recursive: true, force: true });
    fs.rmSync(midData, { recursive: true, force: true });
  });

  it('the MID server reconnects on its own and the credential keeps working', async () => {
    endpoint = await startTokenEndpoint();
    instance = await startInstanceProcess({ host: '127.0.0.1', dataDir: data, adminToken: 'restart-admin' });
    const port = Number(new URL(instance.url).port);
    const api = apiClient(instance.url, 'restart-admin');
    mid = startMidProcess({ instanceUrl: instance.url, name: 'dc1', dataDir: midData, enroll: (await api('POST', '/api/v1/mid_enrollment_keys', {})).json.key });
    await eventually(async () => (await api('GET', '/api/v1/mid_servers/dc1')).json.status === 'up', 30_000, 'dc1 up');
    await api('POST', '/api/v1/mid_servers/dc1/validate', {});
    const p = await api('POST', '/api/v1/oauth_providers', { name: 'ep', client_id: 'c', client_secret: 's', token_url: endpoint.url });
    const c = await api('POST', '/api/v1/credentials', { name: 'cred', profile_id: p.json.default_profile_id, use_mid_server: true, applies_to: 'specific', mid_servers: ['dc1'] });
    expect((await api('POST', `/api/v1/credentials/${c.json.id}/get_token`, {})).status).toBe(200);
    const before = (await api('GET', `/api/v1/credentials/${c.json.id}/access_token`)).json.access_token;

    expect(await instance.proc.stop('SIGTERM')).toBe(0);
    await new Promise((r) => setTimeout(r, 1_500));
    instance = await startInstanceProcess({ host: '127.0.0.1', dataDir: data, adminToken: 'restart-admin', port });
    // The stored token survived the restart (sealed under the same master key in the data dir).
    expect((await api('GET', `/api/v1/credentials/${c.json.id}/access_token`)).json.access_token).toBe(before);
    const restartedAt = Date.now();
    // A heartbeat that reached the new process (the last one before the restart is still in the store).
    await eventually(async () => Date.parse((await api('GET', '/api/v1/mid_servers/dc1')).json.last_heartbeat_at) > restartedAt, 30_000, 'a heartbeat after the restart');
    const r = await api('POST', `/api/v1/credentials/${c.json.id}/get_token`, {});
    console.log(`instance-restart: dc1 heartbeating and relaying again ${Date.now() - restartedAt} ms after the instance answered again`);
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(mid.exitInfo()).toBeNull();
  });
});
