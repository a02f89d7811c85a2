import fs from 'node:fs';
import { exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestInstance } from '../support/instance.js';
import { startNodeOauthPeer, type NodeOauthPeer } from '../peers/node-oauth-peer.js';
import { makeSelfSignedCert } from '../peers/saml-fixtures.js';
import { eventually } from '../support/cli.js';

/**
 * Every grant the @node-oauth/oauth2-server peer verifies — password, JWT bearer (RS256, ES256,
 * PS256), SAML2 bearer, refresh with rotation, revocation — through a MID server and directly,
 * with client_secret_basic and client_secret_post. The peer checks assertions with jose and
 * xml-crypto, so a token here means the assertion really was valid.
 */
type Ctx = Awaited<ReturnType<typeof startTestInstance>>;

describe.each([
  { via: 'a MID server', mid: true },
  { via: 'the instance directly', mid: false },
])('grants through $via', ({ mid }) => {
  let t: Ctx;
  let peer: NodeOauthPeer;
  let n = 0;

  beforeAll(async () => {
    peer = await startNodeOauthPeer();
    t = await startTestInstance();
    if (mid) await t.addMid('dc1');
  });
  afterAll(async () => {
    await t?.stop();
    await peer?.close();
  });

  const credFor = async (provider: Record<string, unknown>) => {
    n++;
    const p = await t.api('POST', '/api/v1/oauth_providers', { name: `p${n}`, token_url: peer.tokenUrl, revocation_url: peer.revocationUrl, ...provider });
    expect(p.status, JSON.stringify(p.json)).toBe(201);
    const c = await t.api('POST', '/api/v1/credentials', { name: `c${n}`, profile_id: p.json.default_profile_id, use_mid_server: mid });
    expect(c.status, JSON.stringify(c.json)).toBe(201);
    return c.json.id as string;
  };
  const secretOf = async (credId: string, type: 'access' | 'refresh') => {
    const { db, vault } = t.instance.services;
    const row = await db.selectFrom('oauth_tokens').selectAll().where('credential_id', '=', credId).where('token_type', '=', type).executeTakeFirst();
    return row ? vault.open(row.value_sealed, `oauth_tokens:value:${credId}:${type}`) : null;
  };
  const expireStoredAccess = async (credId: string) => {
    await t.instance.services.db.updateTable('oauth_tokens').set({ expires_at: Date.now() - 1000 }).where('credential_id', '=', credId).where('token_type', '=', 'access').execute();
    t.instance.services.broker.forget(credId); // the row changed behind the broker's back
  };
  const eccCount = async () => (await t.api('GET', '/api/v1/ecc_queue?queue=output&limit=1000')).json.items.length;

  for (const method of ['client_secret_basic', 'client_secret_post'] as const) {
    it(`password (${method}): the password is used once and never stored`, async () => {
      const client = method === 'client_secret_basic' ? peer.clients.basic : peer.clients.post;
      const credId = await credFor({ client_id: client.client_id, client_secret: client.client_secret, client_auth_method: method, default_grant_type: 'password' });
      const before = await eccCount();
      const r = await t.api('POST', `/api/v1/credentials/${credId}/get_token`, { username: 'alice', password: peer.users.alice.password });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      expect(r.json.status.tokens_available).toBe(true);
      expect(r.json.status.message).toMatch(/^OAuth Refresh token is available/);
      expect(await eccCount()).toBe(mid ? before + 1 : before);
      const at = (await t.api('GET', `/api/v1/credentials/${credId}/access_token`)).json.access_token;
      expect(peer.introspect(at)).toMatchObject({ active: true, username: 'alice', client_id: client.client_id });
      const files = fs.readdirSync(t.dataDir).filter((f) => f.startsWith('tokenrelay.sqlite'));
      const raw = Buffer.concat(files.map((f) => fs.readFileSync(`${t.dataDir}/${f}`))).toString('latin1');
      expect(raw).not.toContain(peer.users.alice.password);
      const bad = await t.api('POST', `/api/v1/credentials/${credId}/get_token`, { username: 'alice', password: 'wrong' });
      expect(bad.status).toBe(502);
      expect(bad.json.error).toMatchObject({ code: 'token_endpoint_error', message: expect.stringContaining('"invalid_grant"') });
    });
  }

  it('password for a public client (client authentication "none")', async () => {
    const credId = await credFor({ client_id: peer.clients.public.client_id, client_auth_method: 'none', default_grant_type: 'password' });
    const r = await t.api('POST', `/api/v1/credentials/${credId}/get_token`, { username: 'alice', password: peer.users.alice.password });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(peer.introspect((await secretOf(credId, 'access'))!)).toMatchObject({ active: true, client_id: peer.clients.public.client_id });
  });

  it('password through the login screen: form, a wrong password shows the error, the right one stores the token, the ticket works once', async () => {
    const credId = await credFor({ client_id: peer.clients.basic.client_id, client_secret: peer.clients.basic.client_secret, default_grant_type: 'password' });
    const r = await t.api('POST', `/api/v1/credentials/${credId}/get_token`, {});
    expect(r.json.login_url).toMatch(/\/oauth\/login\/[\w-]+$/);
    const path = new URL(r.json.login_url).pathname;
    const form = await t.instance.app.inject({ method: 'GET', url: path });
    expect(form.statusCode).toBe(200);
    expect(form.body).toMatch(/<label for="username">Username<\/label>/);
    const post = (p: string, password: string) =>
      t.instance.app.inject({ method: 'POST', url: p, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ username: 'alice', password }).toString() });
    const wrong = await post(path, 'nope');
    expect(wrong.statusCode).toBe(400);
    expect(wrong.body).toMatch(/invalid_grant/);
    const next = wrong.body.match(/action="(\/oauth\/login\/[\w-]+)"/)?.[1];
    expect(next).toBeDefined();
    const ok = await post(next!, peer.users.alice.password);
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.body).toMatch(/OAuth Refresh token is available/);
    expect((await post(next!, peer.users.alice.password)).statusCode).toBe(400);
    expect((await t.api('GET', `/api/v1/credentials/${credId}`)).json.status.tokens_available).toBe(true);
  });

  for (const alg of ['RS256', 'ES256', 'PS256'] as const) {
    it(`JWT bearer signed ${alg}`, async () => {
      const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
      await peer.registerAssertionKey(peer.clients.basic.client_id, await exportSPKI(publicKey), alg);
      const credId = await credFor({
        client_id: peer.clients.basic.client_id,
        client_secret: peer.clients.basic.client_secret,
        default_grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
        assertion: { subject: `svc-${alg}`, signing_alg: alg, private_key_pem: await exportPKCS8(privateKey), lifetime_s: 120 },
      });
      const r = await t.api('POST', `/api/v1/credentials/${credId}/get_token`, {});
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      const at = (await t.api('GET', `/api/v1/credentials/${credId}/access_token`)).json.access_token;
      expect(peer.introspect(at)).toMatchObject({ active: true, sub: `svc-${alg}`, grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer' });
      // An expired access token is replaced by a new assertion, no person needed.
      await expireStoredAccess(credId);
      const again = (await t.api('GET', `/api/v1/credentials/${credId}/access_token`)).json.access_token;
      expect(again).not.toBe(at);
    });
  }

  it('JWT bearer signed with a key the provider does not know is refused with its reason', async () => {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    const credId = await credFor({
      client_id: peer.clients.post.client_id,
      client_secret: peer.clients.post.client_secret,
      client_auth_method: 'client_secret_post',
      default_grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      assertion: { subject: 'svc', private_key_pem: await exportPKCS8(privateKey) },
    });
    const r = await t.api('POST', `/api/v1/credentials/${credId}/get_token`, {});
    expect(r.status).toBe(502);
    expect(r.json.error.message).toMatch(/"invalid_grant"/);
  });

  it('SAML2 bearer signed with xml-crypto, verified by the peer', async () => {
    const { keyPem, certPem } = await makeSelfSignedCert();
    peer.registerSamlCertificate(peer.clients.basic.client_id, certPem);
    const credId = await credFor({
      client_id: peer.clients.basic.client_id,
      client_secret: peer.clients.basic.client_secret,
      default_grant_type: 'urn:ietf:params:oauth:grant-type:saml2-bearer',
      assertion: { subject: 'alice@corp.example', issuer: 'tokenrelay', private_key_pem: keyPem, certificate_pem: certPem },
    });
    const r = await t.api('POST', `/api/v1/credentials/${credId}/get_token`, {});
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    const at = (await t.api('GET', `/api/v1/credentials/${credId}/access_token`)).json.access_token;
    expect(peer.introspect(at)).toMatchObject({ active: true, sub: 'alice@corp.example', grant_type: 'urn:ietf:params:oauth:grant-type:saml2-bearer' });
    // A second request makes a fresh assertion (the peer refuses a replayed assertion ID).
    expect((await t.api('POST', `/api/v1/credentials/${credId}/get_token`, {})).status).toBe(200);
  });

  it('refresh with rotation: the rotated refresh token is stored with the new access token; the old one is dead', async () => {
    const credId = await credFor({ client_id: peer.clients.basic.client_id, client_secret: peer.clients.basic.client_secret, default_grant_type: 'password' });
    await t.api('POST', `/api/v1/credentials/${credId}/get_token`, { username: 'alice', password: peer.users.alice.password });
    const oldRefresh = await secretOf(credId, 'refresh');
    const oldAccess = await secretOf(credId, 'access');
    await expireStoredAccess(credId);
    const before = peer.tokenRequests('refresh_token');
    const r = await t.api('GET', `/api/v1/credentials/${credId}/access_token`);
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.access_token).not.toBe(oldAccess);
    expect(peer.tokenRequests('refresh_token') - before).toBe(1);
    const newRefresh = await secretOf(credId, 'refresh');
    expect(newRefresh).not.toBe(oldRefresh);
    expect(peer.introspect(oldRefresh!).active).toBe(false);
    expect(peer.introspect(newRefresh!).active).toBe(true);
  });

  it('50 concurrent reads of an expired token make exactly one refresh request, and all get the same new token', async () => {
    const credId = await credFor({ client_id: peer.clients.basic.client_id, client_secret: peer.clients.basic.client_secret, default_grant_type: 'password' });
    await t.api('POST', `/api/v1/credentials/${credId}/get_token`, { username: 'alice', password: peer.users.alice.password });
    await expireStoredAccess(credId);
    peer.setTokenDelay(150);
    const before = peer.tokenRequests('refresh_token');
    try {
      const reads = await Promise.all(Array.from({ length: 50 }, () => t.api('GET', `/api/v1/credentials/${credId}/access_token`)));
      expect(reads.map((r) => r.status)).toEqual(Array(50).fill(200));
      expect(new Set(reads.map((r) => r.json.access_token)).size).toBe(1);
      expect(peer.tokenRequests('refresh_token') - before).toBe(1);
      expect(peer.introspect(reads[0]!.json.access_token).active).toBe(true);
    } finally {
      peer.setTokenDelay(0);
    }
  });

  it('a refused refresh token (invalid_grant) makes the credential ask for "Get OAuth Token" again', async () => {
    const credId = await credFor({ client_id: peer.clients.basic.client_id, client_secret: peer.clients.basic.client_secret, default_grant_type: 'password' });
    await t.api('POST', `/api/v1/credentials/${credId}/get_token`, { username: 'alice', password: peer.users.alice.password });
    peer.revoke((await secretOf(credId, 'refresh'))!);
    await expireStoredAccess(credId);
    const r = await t.api('GET', `/api/v1/credentials/${credId}/access_token`);
    expect(r.status).toBe(502);
    expect(r.json.error.message).toMatch(/"invalid_grant"/);
    const s = (await t.api('GET', `/api/v1/credentials/${credId}`)).json.status;
    expect(s.needs_reauth).toBe(true);
    expect(s.message).toMatch(/no longer accepts the refresh token.*click the 'Get OAuth Token' link/i);
    expect(await secretOf(credId, 'refresh')).toBeNull();
  });

  it('revoke: RFC 7009 at the provider for both tokens, then deleted here', async () => {
    const credId = await credFor({ client_id: peer.clients.basic.client_id, client_secret: peer.clients.basic.client_secret, default_grant_type: 'password' });
    await t.api('POST', `/api/v1/credentials/${credId}/get_token`, { username: 'alice', password: peer.users.alice.password });
    const access = (await secretOf(credId, 'access'))!;
    const refresh = (await secretOf(credId, 'refresh'))!;
    const r = await t.api('POST', `/api/v1/credentials/${credId}/revoke`, {});
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.revoked_at_provider).toBe(true);
    expect(r.json.status.message).toMatch(/^OAuth Access or Refresh tokens are not available/);
    expect(peer.introspect(access).active).toBe(false);
    expect(peer.introspect(refresh).active).toBe(false);
    expect((await t.api('GET', `/api/v1/oauth_tokens?credential_id=${credId}`)).json.items).toEqual([]);
  });
});

describe('replies without refresh_token or expires_in', () => {
  let t: Ctx;
  let keep: NodeOauthPeer;
  let noExpiry: NodeOauthPeer;
  beforeAll(async () => {
    keep = await startNodeOauthPeer({ omitRefreshTokenOnRefresh: true });
    noExpiry = await startNodeOauthPeer({ omitExpiresIn: true, accessTokenTtlS: 3 });
    t = await startTestInstance({ defaultTokenTtlS: 2, schedulerIntervalMs: 100, tokenMinRemainingMs: 200 });
    await t.addMid('dc1');
  });
  afterAll(async () => {
    await t?.stop();
    await keep?.close();
    await noExpiry?.close();
  });
  const cred = async (name: string, peer: NodeOauthPeer) => {
    const p = await t.api('POST', '/api/v1/oauth_providers', { name, client_id: peer.clients.basic.client_id, client_secret: peer.clients.basic.client_secret, token_url: peer.tokenUrl, default_grant_type: 'password' });
    const c = await t.api('POST', '/api/v1/credentials', { name, profile_id: p.json.default_profile_id, use_mid_server: true });
    expect((await t.api('POST', `/api/v1/credentials/${c.json.id}/get_token`, { username: 'alice', password: peer.users.alice.password })).status).toBe(200);
    return c.json.id as string;
  };

  it('a refresh reply without refresh_token keeps the stored one', async () => {
    const credId = await cred('keep', keep);
    const { db, vault } = t.instance.services;
    const refreshOf = async () => {
      const row = await db.selectFrom('oauth_tokens').selectAll().where('credential_id', '=', credId).where('token_type', '=', 'refresh').executeTakeFirstOrThrow();
      return vault.open(row.value_sealed, `oauth_tokens:value:${credId}:refresh`);
    };
    const before = await refreshOf();
    await db.updateTable('oauth_tokens').set({ expires_at: Date.now() - 1 }).where('credential_id', '=', credId).where('token_type', '=', 'access').execute();
    t.instance.services.broker.forget(credId); // the row changed behind the broker's back
    expect((await t.api('GET', `/api/v1/credentials/${credId}/access_token`)).status).toBe(200);
    expect(keep.tokenRequests('refresh_token')).toBeGreaterThanOrEqual(1);
    expect(await refreshOf()).toBe(before);
    expect(keep.introspect(before).active).toBe(true);
  });

  it('a reply without expires_in gets the default lifetime and is still refreshed ahead of time', async () => {
    const credId = await cred('no-expiry', noExpiry);
    const row = (await t.api('GET', `/api/v1/oauth_tokens?credential_id=${credId}`)).json.items.find((x: { token_type: string }) => x.token_type === 'access');
    const life = Date.parse(row.expires_at) - Date.parse(row.created_at);
    expect(life).toBe(2_000);
    await eventually(async () => noExpiry.tokenRequests('refresh_token') >= 1, 10_000, 'a scheduled refresh');
  });
});
