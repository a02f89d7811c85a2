import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestInstance } from '../support/instance.js';
import { startOidcPeer, introspect, type OidcPeer } from '../peers/oidc-peer.js';
import { startResourceServer, type ResourceServer } from '../peers/resource-server.js';

/**
 * The REST step against a protected API whose tokens are checked with the real authorization
 * server (introspection of oidc-provider's own token store), through a MID server and directly.
 */
describe('REST step', () => {
  let t: Awaited<ReturnType<typeof startTestInstance>>;
  let peer: OidcPeer;
  let rs: ResourceServer;
  let credId = '';

  beforeAll(async () => {
    peer = await startOidcPeer();
    rs = await startResourceServer({ verify: async (token) => (await introspect(peer, token)).active });
    t = await startTestInstance();
    await t.addMid('dc1');
    const p = await t.api('POST', '/api/v1/oauth_providers', {
      name: 'as', client_id: peer.clients.basic.client_id, client_secret: peer.clients.basic.client_secret, token_url: peer.tokenUrl, scopes: ['api:read'],
    });
    credId = (await t.api('POST', '/api/v1/credentials', { name: 'api-cred', profile_id: p.json.default_profile_id, use_mid_server: true })).json.id;
    for (const c of [
      { name: 'api_via_mid', base_url: `${rs.url}/api`, credential_id: credId, use_mid_server: true, mid_servers: ['dc1'] },
      { name: 'api_direct', base_url: `${rs.url}/api`, credential_id: credId, use_mid_server: false },
      { name: 'api_retry', base_url: `${rs.url}/api`, credential_id: credId, use_mid_server: true, retry_policy: { strategy: 'fixed', count: 3, interval_ms: 10 } },
    ]) {
      const r = await t.api('POST', '/api/v1/connections', c);
      expect(r.status, JSON.stringify(r.json)).toBe(201);
    }
  });
  afterAll(async () => {
    await t?.stop();
    await rs?.close();
    await peer?.close();
  });

  const step = (body: Record<string, unknown>) => t.api('POST', '/api/v1/rest_step', body);

  it('through a MID server: bearer attached, status, headers and JSON body back, with the MID server and ECC id', async () => {
    const r = await step({ connection: 'api_via_mid', method: 'GET', path: '/items', query: { page: '2' } });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json).toMatchObject({ status: 200, body: { items: [1, 2, 3], query: { page: '2' }, method: 'GET' }, body_encoding: 'json', mid_server: 'dc1' });
    expect(r.json.headers['content-type']).toBe('application/json');
    const ecc = (await t.api('GET', `/api/v1/ecc_queue/${r.json.ecc_output_id}`)).json;
    expect(ecc).toMatchObject({ topic: 'RESTProbe', name: 'get', source: `${rs.url}/api/items?page=2`, agent: 'mid.server.dc1', state: 'processed' });
    const ex = (await t.api('GET', '/api/v1/rest_executions?connection=api_via_mid')).json.items[0];
    expect(ex).toMatchObject({ method: 'GET', status: 200, mid_server: 'dc1', ecc_output_ids: [r.json.ecc_output_id], error: null });
  });

  it('directly: no MID server, no ECC record', async () => {
    const r = await step({ connection: 'api_direct', path: 'items' });
    expect(r.json).toMatchObject({ status: 200, mid_server: null, ecc_output_id: null });
  });

  it('binary bodies survive the round trip both ways', async () => {
    const data = randomBytes(200_000);
    for (const connection of ['api_via_mid', 'api_direct']) {
      const r = await step({ connection, method: 'POST', path: '/echo', headers: { 'content-type': 'application/octet-stream' }, body_base64: data.toString('base64') });
      expect(r.json.status).toBe(200);
      expect(r.json.body_encoding).toBe('base64');
      expect(Buffer.from(r.json.body, 'base64').equals(data)).toBe(true);
    }
  });

  it('a 401 refreshes the token once and retries once', async () => {
    const current = (await t.api('GET', `/api/v1/credentials/${credId}/access_token`)).json.access_token;
    rs.rejectToken(current);
    const before = peer.tokenRequests();
    const r = await step({ connection: 'api_via_mid', path: '/items' });
    expect(r.json).toMatchObject({ status: 200, attempts: 2 });
    expect(peer.tokenRequests() - before).toBe(1);
    const now = (await t.api('GET', `/api/v1/credentials/${credId}/access_token`)).json.access_token;
    expect(now).not.toBe(current);
  });

  it('a 401 that persists: one refresh, one retry, then the 401 is the answer', async () => {
    const before = peer.tokenRequests();
    const r = await step({ connection: 'api_via_mid', path: '/always-401' });
    expect(r.json).toMatchObject({ status: 401, attempts: 2 });
    expect(peer.tokenRequests() - before).toBe(1);
  });

  it('a response over the 5 MB cap is an error, not a truncated body', async () => {
    for (const connection of ['api_via_mid', 'api_direct']) {
      const r = await step({ connection, path: '/big', query: { bytes: String(6 * 1024 * 1024) } });
      expect(r.status).toBe(502);
      expect(r.json.error).toMatchObject({ code: 'response_too_large', message: expect.stringMatching(/larger than connection "api_(via_mid|direct)" allows \(5242880 bytes\)/) });
    }
    const ok = await step({ connection: 'api_via_mid', path: '/big', query: { bytes: String(4 * 1024 * 1024) } });
    expect(ok.json.status).toBe(200);
    expect(Buffer.from(ok.json.body, 'base64').length).toBe(4 * 1024 * 1024);
  });

  it('the retry policy retries idempotent calls on 503, not POSTs unless opted in', async () => {
    const r = await step({ connection: 'api_retry', path: '/flaky', query: { fail: '2', key: 'a' } });
    expect(r.json).toMatchObject({ status: 200, attempts: 3, body: { ok: true, attempt: 3 } });
    const post = await step({ connection: 'api_retry', method: 'POST', path: '/flaky', query: { fail: '2', key: 'b' }, body: { x: 1 } });
    expect(post.json).toMatchObject({ status: 503, attempts: 1 });
    const none = await step({ connection: 'api_via_mid', path: '/flaky', query: { fail: '1', key: 'c' } });
    expect(none.json).toMatchObject({ status: 503, attempts: 1 });
  });

  it('bad input says what is wrong', async () => {
    expect((await step({ connection: 'nope' })).json.error.message).toMatch(/no connection named "nope"/);
    expect((await step({ connection: 'api_direct', path: 'http://evil/' })).json.error.message).toMatch(/relative to the connection's base_url/);
    expect((await step({ connection: 'api_direct', headers: { Authorization: 'x' } })).status).toBe(400);
    expect((await t.api('POST', '/api/v1/connections', { name: 'api_direct', base_url: rs.url })).status).toBe(409);
    expect((await t.api('POST', '/api/v1/connections', { name: 'big', base_url: rs.url, max_response_bytes: 20 * 1024 * 1024 })).status).toBe(400);
  });
});
