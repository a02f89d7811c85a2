import { exportJWK, exportPKCS8, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestInstance } from '../support/instance.js';
import { startOidcPeer, introspect, type OidcPeer } from '../peers/oidc-peer.js';

/**
 * Against a real oidc-provider: the authorization-code grant with PKCE through the provider's
 * own login and consent pages (driven headless), the callback, refresh with rotation,
 * private_key_jwt client authentication and revocation — through a MID server and directly.
 */
describe.each([
  { via: 'a MID server', mid: true },
  { via: 'the instance directly', mid: false },
])('oidc-provider through $via', ({ mid }) => {
  let t: Awaited<ReturnType<typeof startTestInstance>>;
  let peer: OidcPeer;
  let n = 0;

  beforeAll(async () => {
    peer = await startOidcPeer();
    t = await startTestInstance();
    await peer.setRedirectUris([`${t.url}/oauth/callback`]);
    if (mid) await t.addMid('dc1');
  });
  afterAll(async () => {
    await t?.stop();
    await peer?.close();
  });

  const codeCredential = async (client: { client_id: string; client_secret: string }, method: string) => {
    n++;
    const p = await t.api('POST', '/api/v1/oauth_providers', {
      name: `code${n}`, client_id: client.client_id, client_secret: client.client_secret, client_auth_method: method,
      authorization_url: peer.authorizationUrl, token_url: peer.tokenUrl, revocation_url: peer.revocationUrl,
      default_grant_type: 'authorization_code', scopes: ['api:read'], pkce: true,
    });
    expect(p.status, JSON.stringify(p.json)).toBe(201);
    const c = await t.api('POST', '/api/v1/credentials', { name: `code-cred${n}`, profile_id: p.json.default_profile_id, use_mid_server: mid });
    return c.json.id as string;
  };
  const callback = (location: string) => {
    const u = new URL(location);
    expect(`${u.origin}${u.pathname}`).toBe(`${t.url}/oauth/callback`);
    return t.instance.app.inject({ method: 'GET', url: `${u.pathname}${u.search}` });
  };

  for (const [label, method] of [['client_secret_basic', 'client_secret_basic'], ['client_secret_post', 'client_secret_post']] as const) {
    it(`authorization code + PKCE (${label}): login at the provider, callback, tokens stored; the callback works once`, async () => {
      const client = method === 'client_secret_basic' ? peer.clients.code : peer.clients.codePost;
      const credId = await codeCredential(client, method);
      const r = await t.api('POST', `/api/v1/credentials/${credId}/get_token`, {});
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      const authorize = new URL(r.json.authorize_url);
      expect(authorize.origin + authorize.pathname).toBe(peer.authorizationUrl);
      expect(Object.fromEntries(authorize.searchParams)).toMatchObject({
        response_type: 'code', client_id: client.client_id, redirect_uri: `${t.url}/oauth/callback`, code_challenge_method: 'S256', scope: 'api:read',
      });
      expect(authorize.searchParams.get('state')!.length).toBeGreaterThan(30);
      expect(authorize.searchParams.get('code_challenge')!.length).toBe(43);
      expect(r.json.redirect_uri).toBe(`${t.url}/oauth/callback`);

      const location = await peer.login(r.json.authorize_url);
      const page = await callback(location);
      expect(page.statusCode, page.body).toBe(200);
      expect(page.body).toMatch(/Token stored for/);
      expect(page.body).toMatch(/OAuth Refresh token is available/);
      const status = (await t.api('GET', `/api/v1/credentials/${credId}`)).json.status;
      expect(status.tokens_available).toBe(true);
      const at = (await t.api('GET', `/api/v1/credentials/${credId}/access_token`)).json.access_token;
      expect(await introspect(peer, at)).toMatchObject({ active: true, client_id: client.client_id, sub: peer.user.username });
      if (mid) {
        const outs = (await t.api('GET', '/api/v1/ecc_queue?queue=output&agent=mid.server.dc1&limit=1000')).json.items;
        expect(outs.some((o: { source: string; state: string }) => o.source === peer.tokenUrl && o.state === 'processed')).toBe(true);
      }
      const replay = await callback(location);
      expect(replay.statusCode).toBe(400);
      expect(replay.body).toMatch(/unknown, expired or already used/);
    });
  }

  it('the user refuses consent: a clear page, not a 500, and the credential says so', async () => {
    const credId = await codeCredential(peer.clients.code, 'client_secret_basic');
    const r = await t.api('POST', `/api/v1/credentials/${credId}/get_token`, {});
    const location = await peer.login(r.json.authorize_url, { deny: true });
    expect(new URL(location).searchParams.get('error')).toBe('access_denied');
    const page = await callback(location);
    expect(page.statusCode).toBe(400);
    expect(page.body).toMatch(/did not authorize: &quot;access_denied&quot;/);
    const status = (await t.api('GET', `/api/v1/credentials/${credId}`)).json.status;
    expect(status.last_error.message).toMatch(/access_denied/);
    expect(status.tokens_available).toBe(false);
  });

  it('a forged state is refused', async () => {
    const page = await t.instance.app.inject({ method: 'GET', url: '/oauth/callback?code=abc&state=forged' });
    expect(page.statusCode).toBe(400);
    expect(page.body).toMatch(/does not match a pending request/);
  });

  it('refresh with rotation at oidc-provider: the old refresh token is dead, the new one stored with the access token', async () => {
    const credId = await codeCredential(peer.clients.code, 'client_secret_basic');
    const r = await t.api('POST', `/api/v1/credentials/${credId}/get_token`, {});
    await callback(await peer.login(r.json.authorize_url));
    const { db, vault } = t.instance.services;
    const secret = async (type: 'access' | 'refresh') => {
      const row = await db.selectFrom('oauth_tokens').selectAll().where('credential_id', '=', credId).where('token_type', '=', type).executeTakeFirstOrThrow();
      return vault.open(row.value_sealed, `oauth_tokens:value:${credId}:${type}`);
    };
    const oldRefresh = await secret('refresh');
    await db.updateTable('oauth_tokens').set({ expires_at: Date.now() - 1 }).where('credential_id', '=', credId).where('token_type', '=', 'access').execute();
    t.instance.services.broker.forget(credId); // the row changed behind the broker's back
    const at = await t.api('GET', `/api/v1/credentials/${credId}/access_token`);
    expect(at.status, JSON.stringify(at.json)).toBe(200);
    const newRefresh = await secret('refresh');
    expect(newRefresh).not.toBe(oldRefresh);
    expect((await introspect(peer, oldRefresh)).active).toBe(false);
    expect((await introspect(peer, at.json.access_token)).active).toBe(true);
  });

  it('private_key_jwt client authentication (client credentials)', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    await peer.setPrivateKeyJwtJwks({ keys: [{ ...(await exportJWK(publicKey)), alg: 'RS256', use: 'sig', kid: 'k1' }] }, 'RS256');
    const p = await t.api('POST', '/api/v1/oauth_providers', {
      name: `pkjwt${mid}`, client_id: peer.clients.pkjwt.client_id, client_auth_method: 'private_key_jwt', token_url: peer.tokenUrl,
      assertion: { private_key_pem: await exportPKCS8(privateKey), signing_alg: 'RS256', key_id: 'k1' },
    });
    expect(p.status, JSON.stringify(p.json)).toBe(201);
    const c = await t.api('POST', '/api/v1/credentials', { name: `pkjwt-cred${mid}`, profile_id: p.json.default_profile_id, use_mid_server: mid });
    const r = await t.api('POST', `/api/v1/credentials/${c.json.id}/get_token`, {});
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    const at = (await t.api('GET', `/api/v1/credentials/${c.json.id}/access_token`)).json.access_token;
    expect(await introspect(peer, at)).toMatchObject({ active: true, client_id: peer.clients.pkjwt.client_id });
  });

  it('revoke at oidc-provider: both tokens inactive, nothing stored', async () => {
    const credId = await codeCredential(peer.clients.code, 'client_secret_basic');
    const r = await t.api('POST', `/api/v1/credentials/${credId}/get_token`, {});
    await callback(await peer.login(r.json.authorize_url));
    const at = (await t.api('GET', `/api/v1/credentials/${credId}/access_token`)).json.access_token;
    const rv = await t.api('POST', `/api/v1/credentials/${credId}/revoke`, {});
    expect(rv.json).toMatchObject({ revoked_at_provider: true, status: { tokens_available: false } });
    expect((await introspect(peer, at)).active).toBe(false);
    expect(peer.stats().revocationRequests).toBeGreaterThanOrEqual(1);
  });
});
