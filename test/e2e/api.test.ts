import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestInstance } from '../support/instance.js';
import { startOidcPeer, introspect, type OidcPeer } from '../peers/oidc-peer.js';

/**
 * The REST API in one process: a real instance (Fastify, SQLite file), a real MID server
 * talking to it over loopback HTTP, and a real oidc-provider. (The cross-process, network-
 * isolated proof is get-token-via-mid.test.ts.)
 */
describe('REST API, token broker and MID path (in-process)', () => {
  let t: Awaited<ReturnType<typeof startTestInstance>>;
  let peer: OidcPeer;

  beforeAll(async () => {
    peer = await startOidcPeer({ accessTokenTtlS: 600 });
    t = await startTestInstance();
    await t.addMid('dc1');
  });
  afterAll(async () => {
    await t?.stop();
    await peer?.close();
  });

  const provider = async (name: string, over: Record<string, unknown> = {}) => {
    const r = await t.api('POST', '/api/v1/oauth_providers', {
      name,
      client_id: peer.clients.basic.client_id,
      client_secret: peer.clients.basic.client_secret,
      token_url: peer.tokenUrl,
      scopes: ['api:read'],
      ...over,
    });
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    return r.json;
  };
  const credential = async (name: string, profileId: string, over: Record<string, unknown> = {}) => {
    const r = await t.api('POST', '/api/v1/credentials', { name, profile_id: profileId, ...over });
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    return r.json;
  };

  it('refuses calls without the admin token', async () => {
    const res = await t.instance.app.inject({ method: 'GET', url: '/api/v1/credentials' });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('unauthorized');
    const wrong = await t.instance.app.inject({ method: 'GET', url: '/api/v1/credentials', headers: { authorization: 'Bearer nope' } });
    expect(wrong.statusCode).toBe(401);
  });

  it('healthz needs no token; metrics are Prometheus text', async () => {
    expect((await t.instance.app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const m = await t.instance.app.inject({ method: 'GET', url: '/metrics' });
    expect(m.headers['content-type']).toMatch(/text\/plain/);
    expect(m.body).toMatch(/tokenrelay_mid_server_up\{name="dc1"\} 1/);
  });

  it('creates a provider with its default profile; secrets are write-only and sealed at rest', async () => {
    const p = await provider('write-only');
    expect(p).toMatchObject({ name: 'write-only', client_secret_set: true, default_grant_type: 'client_credentials', client_auth_method: 'client_secret_basic' });
    expect(JSON.stringify(p)).not.toContain(peer.clients.basic.client_secret);
    expect(typeof p.id).toBe('string');
    const prof = await t.api('GET', `/api/v1/oauth_profiles/${p.default_profile_id}`);
    expect(prof.json).toMatchObject({ provider_id: p.id, grant_type: 'client_credentials', is_default: true, scopes: ['api:read'] });
    const got = await t.api('GET', `/api/v1/oauth_providers/${p.id}`);
    expect(JSON.stringify(got.json)).not.toContain(peer.clients.basic.client_secret);
    const list = await t.api('GET', '/api/v1/oauth_providers');
    expect(list.json.items.some((x: { id: string }) => x.id === p.id)).toBe(true);
  });

  it('bad input is a 400 naming the field; duplicates are 409; nothing stored changes', async () => {
    const unknown = await t.api('POST', '/api/v1/oauth_providers', { name: 'x', client_id: 'a', client_secret: 'b', token_url: 'http://h/t', colour: 'red' });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error).toMatchObject({ code: 'invalid_request', message: expect.stringContaining('"colour"') });
    const wrongType = await t.api('POST', '/api/v1/oauth_providers', { name: 'x', client_id: 'a', client_secret: 'b', token_url: 42 });
    expect(wrongType.status).toBe(400);
    expect(wrongType.json.error.message).toContain('token_url');
    const missing = await t.api('POST', '/api/v1/oauth_providers', { name: 'x', client_id: 'a', token_url: 'http://h/t' });
    expect(missing.status).toBe(400);
    expect(missing.json.error.message).toContain('client_secret');
    await provider('dupe');
    const dup = await t.api('POST', '/api/v1/oauth_providers', { name: 'dupe', client_id: 'a', client_secret: 'b', token_url: 'http://h/t' });
    expect(dup.status).toBe(409);
    const badPatch = await t.api('PATCH', `/api/v1/oauth_providers/dupe`, { token_url: 'not a url' });
    expect(badPatch.status).toBe(400);
    expect((await t.api('GET', '/api/v1/oauth_providers/dupe')).json.token_url).toBe(peer.tokenUrl);
  });

  it('a credential reads the seed\'s first message; get_token via the MID server stores the token', async () => {
    const p = await provider('cc-basic');
    const c = await credential('cc-basic-cred', p.default_profile_id, { use_mid_server: true, applies_to: 'specific', mid_servers: ['dc1'] });
    expect(c.status).toEqual({
      tokens_available: false,
      message: "OAuth Access or Refresh tokens are not available. Verify the OAuth configuration and click the 'Get OAuth Token' link below to request a new token.",
      access_token_expires_at: null,
      refresh_token_expires_at: null,
      last_error: null,
      needs_reauth: false,
      next_refresh_attempt_at: null,
    });
    const r = await t.api('POST', `/api/v1/credentials/${c.id}/get_token`, {});
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.status.message).toMatch(/^OAuth Access token is available but will expire soon at \d{4}-\d\d-\d\dT/);
    expect(r.json.status.tokens_available).toBe(true);

    const out = await t.api('GET', '/api/v1/ecc_queue?queue=output&topic=RESTProbe&agent=mid.server.dc1');
    const output = out.json.items.find((x: { source: string }) => x.source === peer.tokenUrl);
    expect(output).toMatchObject({ queue: 'output', topic: 'RESTProbe', source: peer.tokenUrl, agent: 'mid.server.dc1', state: 'processed' });
    expect(output.payload).toBeUndefined();
    const input = await t.api('GET', `/api/v1/ecc_queue?queue=input&response_to=${output.id}`);
    expect(input.json.items).toHaveLength(1);
    expect(input.json.items[0]).toMatchObject({ queue: 'input', response_to: output.id, state: 'processed' });

    const at = await t.api('GET', `/api/v1/credentials/${c.id}/access_token`);
    expect(at.json).toMatchObject({ token_type: 'Bearer', expires_at: r.json.status.access_token_expires_at });
    expect(await introspect(peer, at.json.access_token)).toMatchObject({ active: true, client_id: peer.clients.basic.client_id });
    // served from the store while valid: no second token request
    const before = peer.tokenRequests();
    const again = await t.api('GET', `/api/v1/credentials/${c.id}/access_token`);
    expect(again.json.access_token).toBe(at.json.access_token);
    expect(peer.tokenRequests()).toBe(before);

    const rows = await t.api('GET', `/api/v1/oauth_tokens?credential_id=${c.id}`);
    expect(rows.json.items).toEqual([expect.objectContaining({ credential_id: c.id, token_type: 'access', scope: 'api:read' })]);
    expect(JSON.stringify(rows.json)).not.toContain(at.json.access_token);

    // Neither the token nor the client secret is in the database file in plain text.
    const files = fs.readdirSync(t.dataDir).filter((f) => f.startsWith('tokenrelay.sqlite'));
    const raw = Buffer.concat(files.map((f) => fs.readFileSync(`${t.dataDir}/${f}`))).toString('latin1');
    expect(raw).not.toContain(at.json.access_token);
    expect(raw).not.toContain(peer.clients.basic.client_secret);
  });

  it('client_secret_post works too, and use_mid_server false goes direct with no ECC record', async () => {
    const p = await provider('cc-post', { client_id: peer.clients.post.client_id, client_secret: peer.clients.post.client_secret, client_auth_method: 'client_secret_post' });
    const c = await credential('cc-post-direct', p.default_profile_id, { use_mid_server: false });
    const before = (await t.api('GET', '/api/v1/ecc_queue?limit=1000')).json.items.length;
    const r = await t.api('POST', `/api/v1/credentials/${c.id}/get_token`, {});
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.status.tokens_available).toBe(true);
    expect((await t.api('GET', '/api/v1/ecc_queue?limit=1000')).json.items.length).toBe(before);
    expect(peer.stats().byAuthMethod.client_secret_post).toBeGreaterThan(0);
  });

  it('the provider\'s own error reaches the caller, with the ECC record ids, and the banner says it', async () => {
    const p = await provider('wrong-secret', { client_secret: 'not-the-secret' });
    const c = await credential('wrong-secret-cred', p.default_profile_id, { use_mid_server: true, applies_to: 'all' });
    const r = await t.api('POST', `/api/v1/credentials/${c.id}/get_token`, {});
    expect(r.status).toBe(502);
    expect(r.json.error.code).toBe('token_endpoint_error');
    expect(r.json.error.message).toMatch(/"invalid_client"/);
    expect(r.json.error.message).toMatch(/via MID server dc1, ECC output [0-9a-f-]{36}, input [0-9a-f-]{36}/);
    expect(r.json.error.message).not.toContain('not-the-secret');
    const after = await t.api('GET', `/api/v1/credentials/${c.id}`);
    expect(after.json.status.message).toMatch(/^The last token request failed: .*invalid_client/);
  });

  it('an unreachable token endpoint is reported by the MID server', async () => {
    const p = await provider('unreachable', { token_url: 'http://127.0.0.1:9/token' });
    const c = await credential('unreachable-cred', p.default_profile_id, { use_mid_server: true });
    const r = await t.api('POST', `/api/v1/credentials/${c.id}/get_token`, {});
    expect(r.status).toBe(502);
    expect(r.json.error).toMatchObject({ code: 'token_endpoint_unreachable', message: expect.stringMatching(/MID server dc1 could not complete the request: Could not connect to http:\/\/127\.0\.0\.1:9/) });
  });

  it('refuses a "specific" credential without an eligible MID server, and says why', async () => {
    const p = await provider('no-mid');
    const r = await t.api('POST', '/api/v1/credentials', { name: 'no-mid-cred', profile_id: p.default_profile_id, use_mid_server: true, applies_to: 'specific', mid_servers: ['nowhere'] });
    expect(r.status).toBe(400);
    expect(r.json.error.message).toMatch(/No valid MID server with REST capability.*nowhere is not enrolled/);
    expect((await t.api('GET', '/api/v1/credentials/no-mid-cred')).status).toBe(404);
  });

  it('an unvalidated MID server gets no work; after validation it does', async () => {
    await t.addMid('fresh', { validate: false });
    const mids = (await t.api('GET', '/api/v1/mid_servers')).json.items;
    expect(mids.find((m: { name: string }) => m.name === 'fresh')).toMatchObject({ status: 'up', validated: false, capabilities: ['REST'] });
    const p = await provider('for-fresh');
    const refused = await t.api('POST', '/api/v1/credentials', { name: 'fresh-cred', profile_id: p.default_profile_id, use_mid_server: true, applies_to: 'specific', mid_servers: ['fresh'] });
    expect(refused.status).toBe(400);
    expect(refused.json.error.message).toMatch(/fresh is not validated/);
    await t.api('POST', '/api/v1/mid_servers/fresh/validate', {});
    const c = await credential('fresh-cred', p.default_profile_id, { use_mid_server: true, applies_to: 'specific', mid_servers: ['fresh'] });
    const r = await t.api('POST', `/api/v1/credentials/${c.id}/get_token`, {});
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    const out = (await t.api('GET', '/api/v1/ecc_queue?queue=output&agent=mid.server.fresh')).json.items;
    expect(out[0]).toMatchObject({ state: 'processed', agent: 'mid.server.fresh' });
    // invalidated: no new work, and the credential says no MID server qualifies
    await t.api('POST', '/api/v1/mid_servers/fresh/invalidate', {});
    const after = await t.api('POST', `/api/v1/credentials/${c.id}/get_token`, {});
    expect(after.status).toBe(503);
    expect(after.json.error).toMatchObject({ code: 'mid_server_unavailable', message: expect.stringMatching(/fresh is not validated/) });
  });

  it('an enrollment key works once', async () => {
    const key = (await t.api('POST', '/api/v1/mid_enrollment_keys', {})).json;
    expect(key).toMatchObject({ key: expect.any(String), expires_at: expect.any(String) });
    const enroll = (name: string) =>
      fetch(`${t.url}/agent/v1/enroll`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ enrollment_key: key.key, name, sign_jwk: { kty: 'EC' }, enc_jwk: { kty: 'EC' } }),
      });
    expect((await enroll('once')).status).toBe(201);
    const second = await enroll('twice');
    expect(second.status).toBe(401);
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe('enrollment_key_invalid');
  });

  it('a MID call without a valid signature is refused', async () => {
    const r = await fetch(`${t.url}/agent/v1/poll`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer e30.e30.x' }, body: '{"max":1,"wait_ms":0}' });
    expect(r.status).toBe(401);
  });

  it('50 concurrent reads of a credential without a token make exactly one token request', async () => {
    const p = await provider('race');
    const c = await credential('race-cred', p.default_profile_id, { use_mid_server: true });
    peer.setTokenDelay(200);
    const before = peer.tokenRequests();
    try {
      const results = await Promise.all(Array.from({ length: 50 }, () => t.api('GET', `/api/v1/credentials/${c.id}/access_token`)));
      expect(results.every((r) => r.status === 200)).toBe(true);
      expect(new Set(results.map((r) => r.json.access_token)).size).toBe(1);
      expect(peer.tokenRequests() - before).toBe(1);
    } finally {
      peer.setTokenDelay(0);
    }
  });
});
