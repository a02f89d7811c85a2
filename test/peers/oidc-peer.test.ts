// The oidc peer's user-facing grants, driven the way the product drives them:
// oauth4webapi (or plain fetch) as the client, completeLogin() as the
// headless browser. Everything on the other side is real oidc-provider.
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeLogin, CookieJar, LoginError, parseForms } from './oidc-login.js';
import { introspect, startOidcPeer } from './oidc-peer.js';
import type { OidcPeer, OidcPeerOptions, PublicJwk } from './oidc-peer.js';

const insecure = { [oauth.allowInsecureRequests]: true } as const;

interface Flow {
  as: oauth.AuthorizationServer;
  client: oauth.Client;
  auth: oauth.ClientAuth;
  redirectUri: string;
}

async function discover(peer: OidcPeer): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(peer.issuer);
  return oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oidc' }));
}

/** An authorization request with PKCE (S256); returns the URL and what the client keeps. */
async function authorizeUrl(
  f: Flow,
  scope = 'api:read',
  extra: Record<string, string> = {},
): Promise<{ url: string; verifier: string; state: string }> {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(f.as.authorization_endpoint!);
  url.searchParams.set('client_id', f.client.client_id);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('redirect_uri', f.redirectUri);
  url.searchParams.set('scope', scope);
  url.searchParams.set('state', state);
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
  url.searchParams.set('code_challenge_method', 'S256');
  for (const [k, v] of Object.entries(extra)) url.searchParams.set(k, v);
  return { url: url.href, verifier, state };
}

/** Authorize + login + consent + code exchange; returns the token response. */
async function codeFlow(peer: OidcPeer, f: Flow, scope = 'api:read'): Promise<oauth.TokenEndpointResponse> {
  const { url, verifier, state } = await authorizeUrl(f, scope);
  const location = await completeLogin(url, peer.user);
  const params = oauth.validateAuthResponse(f.as, f.client, new URL(location), state);
  const res = await oauth.authorizationCodeGrantRequest(f.as, f.client, f.auth, params, f.redirectUri, verifier, insecure);
  return oauth.processAuthorizationCodeResponse(f.as, f.client, res);
}

async function expectOAuthError(p: Promise<unknown>, error: string): Promise<oauth.ResponseBodyError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected an OAuth error ${error}`).toBeInstanceOf(oauth.ResponseBodyError);
  expect((err as oauth.ResponseBodyError).error).toBe(error);
  return err as oauth.ResponseBodyError;
}

function basicAuth(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

describe('oidc peer: authorization code + PKCE, refresh, revocation (oauth4webapi client)', () => {
  let peer: OidcPeer;
  let as: oauth.AuthorizationServer;
  let basic: Flow;
  let post: Flow;
  const productCallback = 'http://127.0.0.1:9/oauth/callback';

  beforeAll(async () => {
    peer = await startOidcPeer({ redirectUris: [productCallback] });
    as = await discover(peer);
    basic = {
      as,
      client: { client_id: peer.clients.code.client_id },
      auth: oauth.ClientSecretBasic(peer.clients.code.client_secret),
      redirectUri: productCallback,
    };
    post = {
      as,
      client: { client_id: peer.clients.codePost.client_id },
      auth: oauth.ClientSecretPost(peer.clients.codePost.client_secret),
      redirectUri: productCallback,
    };
  });
  afterAll(async () => {
    await peer?.close();
  });

  it('advertises the code flow, PKCE S256, refresh, private_key_jwt and revocation', () => {
    expect(as.authorization_endpoint).toBe(peer.authorizationUrl);
    expect(as.revocation_endpoint).toBe(peer.revocationUrl);
    expect(as.code_challenge_methods_supported).toEqual(['S256']);
    expect(as.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token', 'client_credentials']));
    expect(as.token_endpoint_auth_methods_supported).toEqual(
      expect.arrayContaining(['client_secret_basic', 'client_secret_post', 'private_key_jwt']),
    );
    expect(as.authorization_response_iss_parameter_supported).toBe(true);
    expect(peer.user.username).toBe('alice');
    expect(peer.user.password.length).toBeGreaterThanOrEqual(20);
    expect(peer.redirectUris).toEqual([productCallback]);
  });

  it('code flow end to end: real login and consent pages, code + state back, token exchange with code_verifier', async () => {
    peer.resetStats();
    const { url, verifier, state } = await authorizeUrl(basic);
    const location = await completeLogin(url, peer.user);
    const loc = new URL(location);
    expect(`${loc.origin}${loc.pathname}`).toBe(productCallback);
    expect(loc.searchParams.get('state')).toBe(state);
    expect(loc.searchParams.get('iss')).toBe(peer.issuer);
    expect(loc.searchParams.get('code')).toMatch(/^[\w-]{20,}$/);
    expect(peer.stats()).toMatchObject({ logins: 1, consents: 1, tokenRequests: 0 });

    const params = oauth.validateAuthResponse(as, basic.client, loc, state);
    const res = await oauth.authorizationCodeGrantRequest(as, basic.client, basic.auth, params, productCallback, verifier, insecure);
    const tokens = await oauth.processAuthorizationCodeResponse(as, basic.client, res);
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.expires_in).toBe(600);
    expect(tokens.scope).toBe('api:read');
    expect(typeof tokens.refresh_token).toBe('string');
    expect(await introspect(peer, tokens.access_token)).toMatchObject({
      active: true,
      kind: 'AccessToken',
      client_id: 'tr-code',
      sub: 'alice',
      scope: 'api:read',
    });
    expect(await introspect(peer, tokens.refresh_token!)).toMatchObject({ active: true, kind: 'RefreshToken', sub: 'alice' });

    // the same code cannot be redeemed twice
    const again = await oauth.authorizationCodeGrantRequest(as, basic.client, basic.auth, params, productCallback, verifier, insecure);
    await expectOAuthError(oauth.processAuthorizationCodeResponse(as, basic.client, again), 'invalid_grant');

    expect(peer.stats()).toMatchObject({
      byGrantType: { authorization_code: 2 },
      issuedByGrantType: { authorization_code: 1 },
      byAuthMethod: { client_secret_basic: 2 },
    });
  });

  it('the login page is real HTML with a form; the browser-facing flow needs the cookies', async () => {
    const { url } = await authorizeUrl(basic);
    const first = await fetch(url, { redirect: 'manual' });
    expect(first.status).toBe(303);
    const interactionUrl = new URL(first.headers.get('location')!, url).href;
    expect(new URL(interactionUrl).pathname).toMatch(/^\/interaction\/[\w-]+$/);
    // without the interaction cookie the provider does not know the browser
    const cookieless = await fetch(interactionUrl);
    expect(cookieless.status).toBe(400);
    const jar = new CookieJar();
    jar.store(url, first.headers);
    const page = await fetch(interactionUrl, { headers: { cookie: jar.header(interactionUrl) } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const forms = parseForms(await page.text(), interactionUrl);
    const login = forms.find((f) => f.id === 'login-form')!;
    expect(login).toBeDefined();
    expect(login.method).toBe('POST');
    expect(login.action).toBe(`${interactionUrl}/login`);
    expect(login.passwordFields).toEqual(['password']);
    expect(login.textFields).toEqual(['username']);
  });

  it('client_secret_post code client, openid scope: id_token for alice', async () => {
    const tokens = await codeFlow(peer, post, 'openid api:read api:write');
    expect(tokens.scope).toBe('openid api:read api:write');
    const claims = oauth.getValidatedIdTokenClaims(tokens);
    expect(claims).toMatchObject({ sub: 'alice', aud: 'tr-code-post', iss: peer.issuer });
    expect((await introspect(peer, tokens.access_token)).client_id).toBe('tr-code-post');
  });

  it('a code client must use its registered auth method at the token endpoint', async () => {
    const { url, verifier, state } = await authorizeUrl(basic);
    const params = oauth.validateAuthResponse(as, basic.client, new URL(await completeLogin(url, peer.user)), state);
    const wrong = oauth.ClientSecretPost(peer.clients.code.client_secret);
    const res = await oauth.authorizationCodeGrantRequest(as, basic.client, wrong, params, productCallback, verifier, insecure);
    await expectOAuthError(oauth.processAuthorizationCodeResponse(as, basic.client, res), 'invalid_client');
  });

  it('a wrong code_verifier is refused (invalid_grant)', async () => {
    const { url, state } = await authorizeUrl(basic);
    const params = oauth.validateAuthResponse(as, basic.client, new URL(await completeLogin(url, peer.user)), state);
    const res = await oauth.authorizationCodeGrantRequest(
      as,
      basic.client,
      basic.auth,
      params,
      productCallback,
      oauth.generateRandomCodeVerifier(),
      insecure,
    );
    const err = await expectOAuthError(oauth.processAuthorizationCodeResponse(as, basic.client, res), 'invalid_grant');
    expect(err.status).toBe(400);
  });

  it('a code exchange without code_verifier is refused too', async () => {
    const { url, state } = await authorizeUrl(basic);
    const params = oauth.validateAuthResponse(as, basic.client, new URL(await completeLogin(url, peer.user)), state);
    const res = await fetch(peer.tokenUrl, {
      method: 'POST',
      headers: { authorization: basicAuth(peer.clients.code.client_id, peer.clients.code.client_secret) },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: params.get('code')!, redirect_uri: productCallback }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_grant');
  });

  it('PKCE is required: an authorization request without code_challenge is sent back with invalid_request', async () => {
    const url = new URL(peer.authorizationUrl);
    for (const [k, v] of Object.entries({
      client_id: 'tr-code',
      response_type: 'code',
      redirect_uri: productCallback,
      scope: 'api:read',
      state: 'no-pkce',
    })) {
      url.searchParams.set(k, v);
    }
    const loc = new URL(await completeLogin(url.href, peer.user));
    expect(`${loc.origin}${loc.pathname}`).toBe(productCallback);
    expect(loc.searchParams.get('error')).toBe('invalid_request');
    expect(loc.searchParams.get('error_description')).toMatch(/PKCE/);
    expect(loc.searchParams.get('state')).toBe('no-pkce');
  });

  it('refresh: the refresh token is rotated, the old one is then refused (and reuse revokes the grant)', async () => {
    peer.resetStats();
    const first = await codeFlow(peer, basic);
    const rt1 = first.refresh_token!;
    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      basic.client,
      await oauth.refreshTokenGrantRequest(as, basic.client, basic.auth, rt1, insecure),
    );
    const rt2 = refreshed.refresh_token!;
    expect(typeof rt2).toBe('string');
    expect(rt2).not.toBe(rt1);
    expect(refreshed.access_token).not.toBe(first.access_token);
    expect(refreshed.scope).toBe('api:read');
    expect(await introspect(peer, rt1)).toEqual({ active: false });
    expect(await introspect(peer, rt2)).toMatchObject({ active: true, kind: 'RefreshToken' });
    expect(await introspect(peer, refreshed.access_token)).toMatchObject({ active: true, sub: 'alice' });

    // the old refresh token is refused...
    await expectOAuthError(
      oauth.processRefreshTokenResponse(as, basic.client, await oauth.refreshTokenGrantRequest(as, basic.client, basic.auth, rt1, insecure)),
      'invalid_grant',
    );
    // ...and oidc-provider treats that reuse as theft: the whole grant is revoked
    expect(await introspect(peer, rt2)).toEqual({ active: false });
    expect(await introspect(peer, refreshed.access_token)).toEqual({ active: false });
    await expectOAuthError(
      oauth.processRefreshTokenResponse(as, basic.client, await oauth.refreshTokenGrantRequest(as, basic.client, basic.auth, rt2, insecure)),
      'invalid_grant',
    );
    expect(peer.stats()).toMatchObject({
      byGrantType: { authorization_code: 1, refresh_token: 3 },
      issuedByGrantType: { authorization_code: 1, refresh_token: 1 },
    });
  });

  it('a refresh token chain keeps working while each new token is used', async () => {
    let rt = (await codeFlow(peer, post)).refresh_token!;
    const seen = new Set([rt]);
    for (let i = 0; i < 3; i += 1) {
      const r = await oauth.processRefreshTokenResponse(
        as,
        post.client,
        await oauth.refreshTokenGrantRequest(as, post.client, post.auth, rt, insecure),
      );
      rt = r.refresh_token!;
      expect(seen.has(rt)).toBe(false);
      seen.add(rt);
    }
  });

  it('consent denied: the redirect carries error=access_denied and the state', async () => {
    peer.resetStats();
    const { url, state } = await authorizeUrl(basic);
    const location = await completeLogin(url, peer.user, { deny: true });
    const loc = new URL(location);
    expect(`${loc.origin}${loc.pathname}`).toBe(productCallback);
    expect(loc.searchParams.get('error')).toBe('access_denied');
    expect(loc.searchParams.get('state')).toBe(state);
    expect(loc.searchParams.has('code')).toBe(false);
    expect(() => oauth.validateAuthResponse(as, basic.client, loc, state)).toThrow(oauth.AuthorizationResponseError);
    expect(peer.stats()).toMatchObject({ logins: 1, consents: 0, denials: 1 });
  });

  it('a wrong password is refused on the login page (LoginError, nothing redirected)', async () => {
    peer.resetStats();
    const { url } = await authorizeUrl(basic);
    const err = await completeLogin(url, { username: 'alice', password: 'not-the-password' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoginError);
    expect((err as LoginError).status).toBe(401);
    expect((err as Error).message).toMatch(/Invalid username or password/);
    const err2 = await completeLogin(url, { username: 'mallory', password: peer.user.password }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(LoginError);
    expect(peer.stats()).toMatchObject({ logins: 0, loginFailures: 2 });
  });

  it('an unregistered redirect_uri gets an error page, not a redirect', async () => {
    const f = { ...basic, redirectUri: 'http://127.0.0.1:9/somewhere-else' };
    const { url } = await authorizeUrl(f);
    const err = await completeLogin(url, peer.user).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoginError);
    expect((err as LoginError).status).toBe(400);
    expect((err as Error).message).toMatch(/redirect_uri/);
  });

  it('setRedirectUris: the new callback works, the old one no longer does', async () => {
    const other = 'http://127.0.0.1:9/other/oauth/callback';
    await peer.setRedirectUris([productCallback, other]);
    try {
      const tokens = await codeFlow(peer, { ...basic, redirectUri: other });
      expect(tokens.access_token).toBeTruthy();
      await peer.setRedirectUris([other]);
      const { url } = await authorizeUrl(basic);
      await expect(completeLogin(url, peer.user)).rejects.toMatchObject({ status: 400 });
      await expect(peer.setRedirectUris(['not a url'])).rejects.toThrow(/redirect_uris/);
      expect(peer.redirectUris).toEqual([other]);
    } finally {
      await peer.setRedirectUris([productCallback]);
    }
  });

  it('revocation (RFC 7009): a revoked access token is inactive; oidc-provider drops its grant\'s refresh token too', async () => {
    peer.resetStats();
    const tokens = await codeFlow(peer, basic);
    const other = await codeFlow(peer, basic);
    const res = await oauth.revocationRequest(as, basic.client, basic.auth, tokens.access_token, insecure);
    expect(res.status).toBe(200);
    await oauth.processRevocationResponse(res);
    expect(await introspect(peer, tokens.access_token)).toEqual({ active: false });
    // RFC 7009 §2.1 "MAY": oidc-provider 9 revokes every token of the grant
    expect(await introspect(peer, tokens.refresh_token!)).toEqual({ active: false });
    await expectOAuthError(
      oauth.processRefreshTokenResponse(as, basic.client, await oauth.refreshTokenGrantRequest(as, basic.client, basic.auth, tokens.refresh_token!, insecure)),
      'invalid_grant',
    );
    // another grant (another login) is untouched
    expect((await introspect(peer, other.access_token)).active).toBe(true);
    expect((await introspect(peer, other.refresh_token!)).active).toBe(true);
    expect(peer.stats().revocationRequests).toBe(1);
  });

  it('revoking a refresh token revokes the grant: its access token goes inactive too, refresh is refused', async () => {
    const tokens = await codeFlow(peer, post);
    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, post.client, post.auth, tokens.refresh_token!, { ...insecure, additionalParameters: { token_type_hint: 'refresh_token' } }),
    );
    expect(await introspect(peer, tokens.refresh_token!)).toEqual({ active: false });
    expect(await introspect(peer, tokens.access_token)).toEqual({ active: false });
    await expectOAuthError(
      oauth.processRefreshTokenResponse(as, post.client, await oauth.refreshTokenGrantRequest(as, post.client, post.auth, tokens.refresh_token!, insecure)),
      'invalid_grant',
    );
  });

  it('revocation of client_credentials tokens; a client cannot revoke another client\'s token', async () => {
    const cc = await fetch(peer.tokenUrl, {
      method: 'POST',
      headers: { authorization: basicAuth(peer.clients.basic.client_id, peer.clients.basic.client_secret) },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'api:read' }),
    });
    const { access_token } = (await cc.json()) as { access_token: string };
    // tr-code tries to revoke tr-basic's token: 200 (RFC 7009) but nothing happens
    const foreign = await oauth.revocationRequest(as, basic.client, basic.auth, access_token, insecure);
    expect(foreign.status).toBe(200);
    expect((await introspect(peer, access_token)).active).toBe(true);
    // unauthenticated revocation is refused
    const anon = await fetch(peer.revocationUrl, { method: 'POST', body: new URLSearchParams({ token: access_token }) });
    expect(anon.status).toBe(400);
    expect((await introspect(peer, access_token)).active).toBe(true);
    // the owner can
    const own = await fetch(peer.revocationUrl, {
      method: 'POST',
      headers: { authorization: basicAuth(peer.clients.basic.client_id, peer.clients.basic.client_secret) },
      body: new URLSearchParams({ token: access_token }),
    });
    expect(own.status).toBe(200);
    expect(await introspect(peer, access_token)).toEqual({ active: false });
  });

  it('/__stats exposes the per-grant_type counters; /__login and /__callback work over HTTP', async () => {
    const resetRes = await fetch(`${peer.issuer}/__reset`, { method: 'POST' });
    expect(resetRes.status).toBe(200);
    const f = { ...basic, redirectUri: peer.callbackUrl };
    await peer.setRedirectUris([productCallback, peer.callbackUrl]);
    try {
      const { url, verifier, state } = await authorizeUrl(f);
      const login = await fetch(`${peer.issuer}/__login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ authorize_url: url, username: peer.user.username, password: peer.user.password }),
      });
      expect(login.status).toBe(200);
      const { location } = (await login.json()) as { location: string };
      expect(location.startsWith(`${peer.callbackUrl}?`)).toBe(true);
      const echoed = (await (await fetch(location)).json()) as { query: Record<string, string> };
      expect(echoed.query.state).toBe(state);
      const params = oauth.validateAuthResponse(as, f.client, new URL(location), state);
      await oauth.processAuthorizationCodeResponse(
        as,
        f.client,
        await oauth.authorizationCodeGrantRequest(as, f.client, f.auth, params, f.redirectUri, verifier, insecure),
      );
      const badLogin = await fetch(`${peer.issuer}/__login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ authorize_url: (await authorizeUrl(f)).url, password: 'wrong' }),
      });
      expect(badLogin.status).toBe(400);
      expect(((await badLogin.json()) as { error: string }).error).toBe('login_failed');
      const stats = (await (await fetch(`${peer.issuer}/__stats`)).json()) as Record<string, unknown>;
      expect(stats).toMatchObject({
        token_requests: 1,
        tokens_issued: 1,
        by_grant_type: { authorization_code: 1 },
        issued_by_grant_type: { authorization_code: 1 },
        logins: 1,
        login_failures: 1,
        consents: 1,
      });
    } finally {
      await peer.setRedirectUris([productCallback]);
    }
  });
});

describe('oidc peer: refresh token options', () => {
  async function withPeer(o: OidcPeerOptions, fn: (peer: OidcPeer, f: Flow) => Promise<void>) {
    const peer = await startOidcPeer(o);
    try {
      const as = await discover(peer);
      await fn(peer, {
        as,
        client: { client_id: peer.clients.code.client_id },
        auth: oauth.ClientSecretBasic(peer.clients.code.client_secret),
        redirectUri: peer.callbackUrl,
      });
    } finally {
      await peer.close();
    }
  }

  it('rotateRefreshToken: false keeps the same refresh token usable', async () => {
    await withPeer({ rotateRefreshToken: false, accessTokenTtlS: 30 }, async (peer, f) => {
      const tokens = await codeFlow(peer, f);
      expect(tokens.expires_in).toBe(30);
      for (let i = 0; i < 2; i += 1) {
        const r = await oauth.processRefreshTokenResponse(
          f.as,
          f.client,
          await oauth.refreshTokenGrantRequest(f.as, f.client, f.auth, tokens.refresh_token!, insecure),
        );
        expect(r.refresh_token ?? tokens.refresh_token).toBe(tokens.refresh_token);
        expect(r.expires_in).toBe(30);
      }
    });
  });

  it("issueRefreshToken 'offline_access': only with offline_access and prompt=consent; 'never': none", async () => {
    await withPeer({ issueRefreshToken: 'offline_access' }, async (peer, f) => {
      expect((await codeFlow(peer, f, 'api:read')).refresh_token).toBeUndefined();
      const { url, verifier, state } = await authorizeUrl(f, 'api:read offline_access', { prompt: 'consent' });
      const params = oauth.validateAuthResponse(f.as, f.client, new URL(await completeLogin(url, peer.user)), state);
      const t = await oauth.processAuthorizationCodeResponse(
        f.as,
        f.client,
        await oauth.authorizationCodeGrantRequest(f.as, f.client, f.auth, params, f.redirectUri, verifier, insecure),
      );
      expect(typeof t.refresh_token).toBe('string');
      expect(t.scope).toBe('api:read offline_access');
    });
    await withPeer({ issueRefreshToken: 'never' }, async (peer, f) => {
      expect((await codeFlow(peer, f, 'api:read offline_access')).refresh_token).toBeUndefined();
    });
  });

  it('refreshTokenTtlS: an expired refresh token is refused', async () => {
    await withPeer({ refreshTokenTtlS: 1 }, async (peer, f) => {
      const tokens = await codeFlow(peer, f);
      await new Promise((r) => setTimeout(r, 2_200));
      await expectOAuthError(
        oauth.processRefreshTokenResponse(f.as, f.client, await oauth.refreshTokenGrantRequest(f.as, f.client, f.auth, tokens.refresh_token!, insecure)),
        'invalid_grant',
      );
    });
  });
});

describe('oidc peer: private_key_jwt (tr-pkjwt)', () => {
  let peer: OidcPeer;
  let as: oauth.AuthorizationServer;
  let rsa: CryptoKeyPair;
  let rsaJwk: PublicJwk;

  beforeAll(async () => {
    rsa = await generateKeyPair('RS256', { extractable: true });
    rsaJwk = { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', use: 'sig' } as PublicJwk;
    peer = await startOidcPeer({ privateKeyJwtJwks: { keys: [rsaJwk] } });
    as = await discover(peer);
  });
  afterAll(async () => {
    await peer?.close();
  });

  async function assertion(key: CryptoKey, alg: string, claims: Record<string, unknown> = {}, kid?: string): Promise<string> {
    return new SignJWT({ jti: randomUUID(), ...claims })
      .setProtectedHeader({ alg, ...(kid ? { kid } : {}) })
      .setIssuer(peer.clients.pkjwt.client_id)
      .setSubject(peer.clients.pkjwt.client_id)
      .setAudience(peer.tokenUrl)
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(key);
  }

  async function ccWithAssertion(jwt: string, scope = 'api:read') {
    const res = await fetch(peer.tokenUrl, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        scope,
        client_id: peer.clients.pkjwt.client_id,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: jwt,
      }),
    });
    return { status: res.status, body: (await res.json()) as { access_token?: string; error?: string; error_description?: string } };
  }

  it('client_credentials with an RS256 client assertion signed by jose (aud = token endpoint)', async () => {
    expect(peer.privateKeyJwtAlg).toBe('RS256');
    peer.resetStats();
    const { status, body } = await ccWithAssertion(await assertion(rsa.privateKey, 'RS256', {}, 'rsa-1'));
    expect(status).toBe(200);
    expect(await introspect(peer, body.access_token!)).toMatchObject({ active: true, kind: 'ClientCredentials', client_id: 'tr-pkjwt', scope: 'api:read' });
    expect(peer.stats()).toMatchObject({
      byAuthMethod: { jwt: 1 },
      byClient: { 'tr-pkjwt': 1 },
      byGrantType: { client_credentials: 1 },
      issuedByGrantType: { client_credentials: 1 },
    });
  });

  it('refuses a replayed assertion, a foreign key, a wrong audience, a wrong alg', async () => {
    const jwt = await assertion(rsa.privateKey, 'RS256');
    expect((await ccWithAssertion(jwt)).status).toBe(200);
    const replay = await ccWithAssertion(jwt);
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('invalid_client');

    const stranger = await generateKeyPair('RS256');
    expect((await ccWithAssertion(await assertion(stranger.privateKey, 'RS256'))).body.error).toBe('invalid_client');

    const wrongAud = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer('tr-pkjwt')
      .setSubject('tr-pkjwt')
      .setAudience('https://elsewhere.example/token')
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(rsa.privateKey);
    expect((await ccWithAssertion(wrongAud)).body.error).toBe('invalid_client');

    // the client is registered for RS256 only
    const hs = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('tr-pkjwt')
      .setSubject('tr-pkjwt')
      .setAudience(peer.tokenUrl)
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(new TextEncoder().encode('x'.repeat(32)));
    const wrongAlg = await ccWithAssertion(hs);
    expect(wrongAlg.body.error).toBe('invalid_client');
  });

  it('oauth4webapi PrivateKeyJwt (aud = issuer) works for client_credentials', async () => {
    const client = { client_id: peer.clients.pkjwt.client_id };
    const auth = oauth.PrivateKeyJwt({ key: rsa.privateKey, kid: 'rsa-1' });
    const t = await oauth.processClientCredentialsResponse(
      as,
      client,
      await oauth.clientCredentialsGrantRequest(as, client, auth, { scope: 'api:write' }, insecure),
    );
    expect(await introspect(peer, t.access_token)).toMatchObject({ active: true, client_id: 'tr-pkjwt', scope: 'api:write' });
  });

  it('authorization code + PKCE with private_key_jwt at the token endpoint, then revocation', async () => {
    const f: Flow = {
      as,
      client: { client_id: peer.clients.pkjwt.client_id },
      auth: oauth.PrivateKeyJwt({ key: rsa.privateKey, kid: 'rsa-1' }),
      redirectUri: peer.callbackUrl,
    };
    const tokens = await codeFlow(peer, f);
    expect(await introspect(peer, tokens.access_token)).toMatchObject({ active: true, client_id: 'tr-pkjwt', sub: 'alice' });
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, f.client, f.auth, tokens.access_token, insecure));
    expect(await introspect(peer, tokens.access_token)).toEqual({ active: false });
  });

  it('keys registered at runtime (ES256) replace the old ones', async () => {
    const ec = await generateKeyPair('ES256', { extractable: true });
    const ecJwk = { ...(await exportJWK(ec.publicKey)), kid: 'ec-1' } as PublicJwk;
    await peer.setPrivateKeyJwtJwks({ keys: [ecJwk] });
    try {
      expect(peer.privateKeyJwtAlg).toBe('ES256');
      expect((await ccWithAssertion(await assertion(ec.privateKey, 'ES256'))).status).toBe(200);
      expect((await ccWithAssertion(await assertion(rsa.privateKey, 'RS256'))).body.error).toBe('invalid_client');
      await expect(peer.setPrivateKeyJwtJwks({ keys: [{ ...(await exportJWK(ec.privateKey)) } as PublicJwk] })).rejects.toThrow(/public keys only/);
    } finally {
      await peer.setPrivateKeyJwtJwks({ keys: [rsaJwk] });
    }
    expect((await ccWithAssertion(await assertion(rsa.privateKey, 'RS256'))).status).toBe(200);
  });

  it('without a JWKS the client is unknown until one is registered over the control endpoint', async () => {
    const bare = await startOidcPeer();
    try {
      expect(bare.privateKeyJwtAlg).toBeUndefined();
      const ec = await generateKeyPair('ES256');
      const sign = () =>
        new SignJWT({ jti: randomUUID() })
          .setProtectedHeader({ alg: 'ES256' })
          .setIssuer('tr-pkjwt')
          .setSubject('tr-pkjwt')
          .setAudience(bare.issuer)
          .setIssuedAt()
          .setExpirationTime('60s')
          .sign(ec.privateKey);
      const cc = async () =>
        fetch(bare.tokenUrl, {
          method: 'POST',
          body: new URLSearchParams({
            grant_type: 'client_credentials',
            client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
            client_assertion: await sign(),
          }),
        });
      expect((await cc()).status).toBe(401);
      const reg = await fetch(`${bare.issuer}/__pkjwt-jwks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ keys: [await exportJWK(ec.publicKey)] }),
      });
      expect(reg.status).toBe(200);
      expect(await reg.json()).toEqual({ client_id: 'tr-pkjwt', alg: 'ES256' });
      const ok = await cc();
      expect(ok.status).toBe(200);
      expect(bare.stats().byClient).toEqual({ 'tr-pkjwt': 2 });
    } finally {
      await bare.close();
    }
  });
});
