import fs from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { netnsSupport, createCorpNetwork, type CorpNetwork } from '../support/netns.js';
import { startOidcPeerProcess, type OidcPeerProcess } from '../peers/oidc-peer-process.js';
import { formatOutputs, type Managed } from '../support/processes.js';
import { apiClient, eventually, startInstanceProcess, startMidProcess, tempDir } from '../support/cli.js';

/**
 * Story 2–5 with real processes: `tokenrelay instance` on the host, and `tokenrelay mid` plus
 * the oidc-provider peer inside a network namespace that the instance cannot open connections
 * into (an outbound-only corporate network). A token therefore can only arrive through the MID
 * server's outbound long-poll.
 */
const support = await netnsSupport();
if (!support.ok) console.warn(`get-token-via-mid: skipped: ${support.reason}`);

describe.skipIf(!support.ok)('get a token through a MID server in a network the instance cannot reach', () => {
  let net: CorpNetwork;
  let peer: OidcPeerProcess;
  let instance: { proc: Managed; url: string };
  let mid: Managed;
  let api: ReturnType<typeof apiClient>;
  const midData = tempDir('mid');
  const instData = tempDir('inst');
  let providerId = '';
  let profileId = '';

  beforeAll(async () => {
    net = await createCorpNetwork();
    peer = await startOidcPeerProcess({ netns: net, ttlS: 600 });
    instance = await startInstanceProcess({ host: net.hostIp, dataDir: instData, adminToken: 'e2e-admin' });
    api = apiClient(instance.url, 'e2e-admin');
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') console.error(formatOutputs(...([instance?.proc, mid, peer?.managed].filter(Boolean) as Managed[])));
  });
  afterAll(async () => {
    await mid?.stop();
    await instance?.proc.stop();
    await peer?.stop();
    await net?.destroy();
    fs.rmSync(midData, { recursive: true, force: true });
    fs.rmSync(instData, { recursive: true, force: true });
  });

  it('the instance itself cannot reach the token endpoint (direct fetch fails)', async () => {
    const p = await api('POST', '/api/v1/oauth_providers', {
      name: 'corp-as',
      client_id: peer.clients.basic.client_id,
      client_secret: peer.clients.basic.client_secret,
      token_url: peer.tokenUrl,
      scopes: ['api:read'],
    });
    expect(p.status, JSON.stringify(p.json)).toBe(201);
    providerId = p.json.id;
    profileId = p.json.default_profile_id;
    const direct = await api('POST', '/api/v1/credentials', { name: 'direct', profile_id: profileId, use_mid_server: false });
    const r = await api('POST', `/api/v1/credentials/${direct.json.id}/get_token`, {});
    expect(r.status).toBe(502);
    expect(r.json.error.code).toBe('token_endpoint_unreachable');
    expect(r.json.error.message).toMatch(/could not complete the request directly/);
  });

  it('a MID server enrolls from inside the network and waits, unvalidated, without work', async () => {
    const key = await api('POST', '/api/v1/mid_enrollment_keys', {});
    expect(key.status).toBe(201);
    mid = startMidProcess({ instanceUrl: instance.url, name: 'dc1', dataDir: midData, enroll: key.json.key, netns: net });
    const row = await eventually(async () => {
      const m = (await api('GET', '/api/v1/mid_servers')).json.items.find((x: { name: string }) => x.name === 'dc1');
      return m?.status === 'up' && m;
    }, 60_000, 'dc1 up');
    expect(row).toMatchObject({ name: 'dc1', status: 'up', validated: false, capabilities: ['REST'], version: expect.any(String), last_heartbeat_at: expect.any(String) });
    // The instance lists it as soon as it enrolled; the MID server writes its identity just after.
    await eventually(async () => fs.existsSync(`${midData}/mid-identity.json`), 10_000, 'the identity file');
    expect((fs.statSync(`${midData}/mid-identity.json`).mode & 0o777).toString(8)).toBe('600');
    // a credential for an unvalidated MID server is refused
    const refused = await api('POST', '/api/v1/credentials', { name: 'via-dc1', profile_id: profileId, use_mid_server: true, applies_to: 'specific', mid_servers: ['dc1'] });
    expect(refused.status).toBe(400);
    expect(refused.json.error.message).toMatch(/dc1 is not validated/);
  });

  let credId = '';
  it('once validated, "Get OAuth Token" travels through dc1: ECC output → MID → input → token stored', async () => {
    expect((await api('POST', '/api/v1/mid_servers/dc1/validate', {})).json.validated).toBe(true);
    const c = await api('POST', '/api/v1/credentials', { name: 'via-dc1', profile_id: profileId, use_mid_server: true, applies_to: 'specific', mid_servers: ['dc1'] });
    expect(c.status, JSON.stringify(c.json)).toBe(201);
    credId = c.json.id;
    expect(c.json.status.message).toBe(
      "OAuth Access or Refresh tokens are not available. Verify the OAuth configuration and click the 'Get OAuth Token' link below to request a new token.",
    );
    const before = (await peer.stats()).token_requests;
    const r = await api('POST', `/api/v1/credentials/${credId}/get_token`, {});
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.status.message).toMatch(/^OAuth Access token is available but will expire soon at /);
    expect((await peer.stats()).token_requests).toBe(before + 1);

    const outs = (await api('GET', '/api/v1/ecc_queue?queue=output&topic=RESTProbe&agent=mid.server.dc1')).json.items;
    expect(outs[0]).toMatchObject({ topic: 'RESTProbe', source: peer.tokenUrl, agent: 'mid.server.dc1', state: 'processed', name: 'post' });
    const ins = (await api('GET', `/api/v1/ecc_queue?queue=input&response_to=${outs[0].id}`)).json.items;
    expect(ins).toHaveLength(1);

    const at = await api('GET', `/api/v1/credentials/${credId}/access_token`);
    expect(at.status).toBe(200);
    expect(await peer.introspect(at.json.access_token)).toMatchObject({ active: true, client_id: peer.clients.basic.client_id });
    const again = await api('GET', `/api/v1/credentials/${credId}/access_token`);
    expect(again.json.access_token).toBe(at.json.access_token);
    // no secret or token in the instance's log
    expect(instance.proc.output()).not.toContain(at.json.access_token);
    expect(instance.proc.output()).not.toContain(peer.clients.basic.client_secret);
    expect(mid.output()).not.toContain(at.json.access_token);
  });

  it('restarts from its data dir without enrolling again', async () => {
    expect(await mid.stop('SIGTERM')).toBe(0);
    mid = startMidProcess({ instanceUrl: instance.url, name: 'dc1', dataDir: midData, netns: net });
    await eventually(async () => (await api('GET', '/api/v1/mid_servers')).json.items.find((x: { name: string; status: string }) => x.name === 'dc1' && x.status === 'up'), 60_000, 'dc1 back up');
    const r = await api('POST', `/api/v1/credentials/${credId}/get_token`, {});
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect((await api('GET', '/api/v1/mid_servers')).json.items.filter((x: { name: string }) => x.name === 'dc1')).toHaveLength(1);
  });

  it('killed, it shows down within 30 s, and a token request says no MID server qualifies', async () => {
    mid.kill();
    await mid.exited;
    const started = Date.now();
    await eventually(async () => (await api('GET', '/api/v1/mid_servers')).json.items.find((x: { name: string; status: string }) => x.name === 'dc1' && x.status === 'down'), 30_000, 'dc1 down');
    expect(Date.now() - started).toBeLessThan(30_000);
    const r = await api('POST', `/api/v1/credentials/${credId}/get_token`, {});
    expect(r.status).toBe(503);
    expect(r.json.error).toMatchObject({ code: 'mid_server_unavailable', message: expect.stringMatching(/dc1 is down/) });
    void providerId;
  });
});
