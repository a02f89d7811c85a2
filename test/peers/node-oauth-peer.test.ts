// Proves the @node-oauth/oauth2-server peer is a real authorization server:
// every grant works with a good request, and every check it claims to make
// (refresh rotation, JWT and SAML assertion verification, revocation,
// expiry) provably refuses a bad one. Assertions are built with real
// libraries: jose SignJWT, and xml-crypto SignedXml with an openssl certificate.
import { createPublicKey, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import type { CryptoKey as JoseCryptoKey, JWTPayload } from 'jose';
import * as oauth from 'oauth4webapi';
import {
  JWT_BEARER_GRANT,
  SAML2_BEARER_GRANT,
  startNodeOauthPeer,
  startNodeOauthPeerProcess,
} from './node-oauth-peer.js';
import type { JwtAssertionAlg, NodeOauthPeer, NodeOauthPeerProcess } from './node-oauth-peer.js';
import {
  RSA_SHA1,
  SHA1,
  buildSamlAssertionXml,
  buildSignedSamlAssertion,
  encodeSamlAssertion,
  makeSelfSignedCert,
} from './saml-fixtures.js';
import type { SamlAssertionOptions, SelfSignedCert } from './saml-fixtures.js';
import { createCorpNetwork, fetchInNamespace, netnsSupport } from '../support/netns.js';
import type { CorpNetwork } from '../support/netns.js';
import { dumpOnFailure } from '../support/processes.js';

interface TokenBody {
  access_token?: string;
  token_type?: string;
  expires_in?: number;
  refresh_token?: string;
  scope?: string;
  error?: string;
  error_description?: string;
}

interface TokenReply {
  status: number;
  body: TokenBody;
  headers: Headers;
}

type Auth = 'basic' | 'post' | 'public' | 'none' | { basic: [string, string] } | { post: [string, string] };

function basicHeader(id: string, secret: string): string {
  // RFC 6749 §2.3.1: form-urlencode each part, then base64
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

type PeerLike = Pick<NodeOauthPeer, 'tokenUrl' | 'clients'>;

async function post(url: string, params: Record<string, string>, peer: PeerLike, auth: Auth): Promise<TokenReply> {
  const form = new URLSearchParams(params);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (auth === 'basic') headers.authorization = basicHeader(peer.clients.basic.client_id, peer.clients.basic.client_secret);
  else if (auth === 'post') {
    form.set('client_id', peer.clients.post.client_id);
    form.set('client_secret', peer.clients.post.client_secret);
  } else if (auth === 'public') form.set('client_id', peer.clients.public.client_id);
  else if (auth !== 'none' && 'basic' in auth) headers.authorization = basicHeader(auth.basic[0], auth.basic[1]);
  else if (auth !== 'none') {
    form.set('client_id', auth.post[0]);
    form.set('client_secret', auth.post[1]);
  }
  const res = await fetch(url, { method: 'POST', headers, body: form.toString(), signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as TokenBody, headers: res.headers };
}

const token = (peer: PeerLike, params: Record<string, string>, auth: Auth = 'basic') => post(peer.tokenUrl, params, peer, auth);

function expectInvalidGrant(r: TokenReply, description: RegExp): void {
  expect(r.status, JSON.stringify(r.body)).toBe(400);
  expect(r.body.error).toBe('invalid_grant');
  expect(r.body.error_description).toMatch(description);
  expect(r.body.access_token).toBeUndefined();
}

// ---------------------------------------------------------------------------

let peer: NodeOauthPeer;
const jwtKeys = {} as Record<JwtAssertionAlg, { publicKey: JoseCryptoKey; privateKey: JoseCryptoKey }>;
let otherRsKey: { publicKey: JoseCryptoKey; privateKey: JoseCryptoKey };
let cert: SelfSignedCert;
let otherCert: SelfSignedCert;

beforeAll(async () => {
  peer = await startNodeOauthPeer({ accessTokenTtlS: 600 });
  for (const alg of ['RS256', 'ES256', 'PS256'] as const) {
    jwtKeys[alg] = await generateKeyPair(alg);
    // tr-basic: public JWKs
    await peer.registerAssertionKey(peer.clients.basic.client_id, await exportJWK(jwtKeys[alg].publicKey), alg);
    // tr-post: SPKI PEM
    await peer.registerAssertionKey(peer.clients.post.client_id, await exportSPKI(jwtKeys[alg].publicKey), alg);
  }
  otherRsKey = await generateKeyPair('RS256');
  [cert, otherCert] = await Promise.all([makeSelfSignedCert(), makeSelfSignedCert({ cn: 'attacker' })]);
  peer.registerSamlCertificate(peer.clients.basic.client_id, cert.certPem);
  peer.registerSamlCertificate(peer.clients.public.client_id, cert.certPem);
});

afterAll(async () => {
  await peer?.close();
});

describe('node-oauth peer: basics', () => {
  it('serves RFC 8414 metadata', async () => {
    const res = await fetch(peer.discoveryUrl);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      issuer: peer.issuer,
      token_endpoint: peer.tokenUrl,
      revocation_endpoint: peer.revocationUrl,
      grant_types_supported: expect.arrayContaining(['password', 'refresh_token', 'client_credentials', JWT_BEARER_GRANT, SAML2_BEARER_GRANT]),
    });
    expect(peer.tokenUrl).toBe(`${peer.issuer}/token`);
    expect(peer.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('password grant: client_secret_basic, client_secret_post and a public client all get access + refresh tokens', async () => {
    for (const auth of ['basic', 'post', 'public'] as const) {
      const r = await token(peer, { grant_type: 'password', username: 'alice', password: peer.users.alice.password, scope: 'api:read' }, auth);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'api:read' });
      expect(r.body.access_token).toMatch(/^[0-9a-f]{64}$/);
      expect(r.body.refresh_token).toMatch(/^[0-9a-f]{64}$/);
      expect(r.headers.get('cache-control')).toBe('no-store');
      const clientId = peer.clients[auth].client_id;
      expect(peer.introspect(r.body.access_token!)).toMatchObject({
        active: true,
        token_type_hint: 'access_token',
        grant_type: 'password',
        client_id: clientId,
        sub: 'alice',
        username: 'alice',
        scope: 'api:read',
      });
      expect(peer.introspect(r.body.refresh_token!)).toMatchObject({ active: true, token_type_hint: 'refresh_token', client_id: clientId });
    }
  });

  it('password grant refuses a wrong password, a wrong client secret, and a confidential client without its secret', async () => {
    expectInvalidGrant(await token(peer, { grant_type: 'password', username: 'alice', password: 'nope' }), /user credentials are invalid/);
    expectInvalidGrant(await token(peer, { grant_type: 'password', username: 'mallory', password: peer.users.alice.password }), /user credentials/);

    const wrongSecret = await token(peer, { grant_type: 'password', username: 'alice', password: peer.users.alice.password }, { basic: ['tr-basic', 'wrong'] });
    expect(wrongSecret.status).toBe(401);
    expect(wrongSecret.body.error).toBe('invalid_client');
    expect(wrongSecret.headers.get('www-authenticate')).toMatch(/^Basic/);

    const noSecret = await token(peer, { grant_type: 'password', username: 'alice', password: peer.users.alice.password, client_id: 'tr-basic' }, 'none');
    expect(noSecret.status).toBe(400);
    expect(noSecret.body.error).toBe('invalid_client');
  });

  it('client_credentials: scoped token for confidential clients; bad scope and public client refused (invalid_client: no secret)', async () => {
    const r = await token(peer, { grant_type: 'client_credentials', scope: 'api:write' }, 'post');
    expect(r.status).toBe(200);
    expect(r.body.refresh_token).toBeUndefined();
    expect(r.body.scope).toBe('api:write');
    expect(peer.introspect(r.body.access_token!)).toMatchObject({ active: true, grant_type: 'client_credentials', client_id: 'tr-post', sub: 'tr-post' });

    const all = await token(peer, { grant_type: 'client_credentials' }, 'basic');
    expect(all.body.scope).toBe('api:read api:write');

    const bad = await token(peer, { grant_type: 'client_credentials', scope: 'admin' }, 'basic');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('invalid_scope');

    const pub = await token(peer, { grant_type: 'client_credentials' }, 'public');
    expect(pub.status).toBe(400);
    expect(pub.body.error).toBe('invalid_client');
  });

  it('rejects an unknown grant type, repeated parameters and two client auth methods at once', async () => {
    const unk = await token(peer, { grant_type: 'urn:example:nope' });
    expect(unk.body.error).toBe('unsupported_grant_type');
    const dup = await fetch(peer.tokenUrl, {
      method: 'POST',
      headers: { authorization: basicHeader(peer.clients.basic.client_id, peer.clients.basic.client_secret), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&scope=api%3Aread&scope=api%3Awrite',
    });
    expect(dup.status).toBe(400);
    expect(((await dup.json()) as TokenBody).error).toBe('invalid_request');
    const both = await token(peer, { grant_type: 'client_credentials', client_secret: peer.clients.basic.client_secret }, 'basic');
    expect(both.status).toBe(400);
    expect(both.body.error).toBe('invalid_request');
  });

  it('the protected resource accepts issued tokens and refuses others (RFC 6750)', async () => {
    const r = await token(peer, { grant_type: 'password', username: 'alice', password: peer.users.alice.password });
    const ok = await fetch(peer.resourceUrl, { headers: { authorization: `Bearer ${r.body.access_token}` } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ ok: true, sub: 'alice', client_id: 'tr-basic', grant_type: 'password' });
    const bad = await fetch(peer.resourceUrl, { headers: { authorization: 'Bearer 0000' } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toMatch(/invalid_token/);
    const none = await fetch(peer.resourceUrl);
    expect(none.status).toBe(401);
  });
});

describe('node-oauth peer: refresh_token', () => {
  const passwordGrant = (auth: Auth = 'basic', p: PeerLike & { users: NodeOauthPeer['users'] } = peer) =>
    token(p, { grant_type: 'password', username: 'alice', password: p.users.alice.password, scope: 'api:read api:write' }, auth);

  it('rotates: each refresh issues a new refresh token and the old one is then invalid_grant', async () => {
    const first = await passwordGrant();
    const rt1 = first.body.refresh_token!;
    const r2 = await token(peer, { grant_type: 'refresh_token', refresh_token: rt1 });
    expect(r2.status, JSON.stringify(r2.body)).toBe(200);
    const rt2 = r2.body.refresh_token!;
    expect(rt2).toMatch(/^[0-9a-f]{64}$/);
    expect(rt2).not.toBe(rt1);
    expect(r2.body.access_token).not.toBe(first.body.access_token);
    expect(r2.body.scope).toBe('api:read api:write');

    // the old refresh token is gone
    expect(peer.introspect(rt1)).toEqual({ active: false });
    expectInvalidGrant(await token(peer, { grant_type: 'refresh_token', refresh_token: rt1 }), /refresh token is invalid/);

    // the new one works, once
    const r3 = await token(peer, { grant_type: 'refresh_token', refresh_token: rt2 });
    expect(r3.status).toBe(200);
    expectInvalidGrant(await token(peer, { grant_type: 'refresh_token', refresh_token: rt2 }), /refresh token is invalid/);

    const i = peer.introspect(r3.body.access_token!);
    const i0 = peer.introspect(first.body.access_token!);
    expect(i).toMatchObject({ active: true, grant_type: 'refresh_token', origin_grant_type: 'password', sub: 'alice', client_id: 'tr-basic' });
    expect(i.grant_id).toBe(i0.grant_id);
  });

  it('narrows scope on refresh but cannot widen it', async () => {
    const first = await token(peer, { grant_type: 'password', username: 'alice', password: peer.users.alice.password, scope: 'api:read' });
    const wider = await token(peer, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token!, scope: 'api:read api:write' });
    expect(wider.status).toBe(400);
    expect(wider.body.error).toBe('invalid_scope');
  });

  it('of two concurrent refreshes with the same token, exactly one wins', async () => {
    const first = await passwordGrant();
    peer.setTokenDelay(50);
    try {
      const results = await Promise.all([1, 2, 3].map(() => token(peer, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token! })));
      expect(results.filter((r) => r.status === 200)).toHaveLength(1);
      for (const r of results.filter((x) => x.status !== 200)) expectInvalidGrant(r, /refresh token/);
    } finally {
      peer.setTokenDelay(0);
    }
  });

  it('refuses a refresh token issued to another client', async () => {
    const first = await passwordGrant('post');
    expectInvalidGrant(await token(peer, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token! }, 'basic'), /another client/);
  });

  it('a public client refreshes with client_id only', async () => {
    const first = await passwordGrant('public');
    const r = await token(peer, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token! }, 'public');
    expect(r.status).toBe(200);
    expect(r.body.refresh_token).toBeDefined();
  });

  it('omitRefreshTokenOnRefresh: no refresh_token in the reply, the old one stays valid', async () => {
    const p = await startNodeOauthPeer({ omitRefreshTokenOnRefresh: true });
    try {
      const first = await passwordGrant('basic', p);
      const rt = first.body.refresh_token!;
      for (let i = 0; i < 3; i++) {
        const r = await token(p, { grant_type: 'refresh_token', refresh_token: rt });
        expect(r.status).toBe(200);
        expect(r.body.access_token).toBeDefined();
        expect('refresh_token' in r.body).toBe(false);
      }
      expect(p.introspect(rt)).toMatchObject({ active: true });
    } finally {
      await p.close();
    }
  });

  it('rotateRefreshTokens false: the reply repeats the presented refresh token, which stays valid', async () => {
    const p = await startNodeOauthPeer({ rotateRefreshTokens: false });
    try {
      const first = await passwordGrant('basic', p);
      const rt = first.body.refresh_token!;
      const r1 = await token(p, { grant_type: 'refresh_token', refresh_token: rt });
      const r2 = await token(p, { grant_type: 'refresh_token', refresh_token: rt });
      expect(r1.body.refresh_token).toBe(rt);
      expect(r2.body.refresh_token).toBe(rt);
      expect(r2.body.access_token).not.toBe(r1.body.access_token);
    } finally {
      await p.close();
    }
  });

  it('omitExpiresIn: no expires_in, but the token still expires server-side', async () => {
    const p = await startNodeOauthPeer({ omitExpiresIn: true, accessTokenTtlS: 1 });
    try {
      const r = await passwordGrant('basic', p);
      expect(r.status).toBe(200);
      expect('expires_in' in r.body).toBe(false);
      const refreshed = await token(p, { grant_type: 'refresh_token', refresh_token: r.body.refresh_token! });
      expect('expires_in' in refreshed.body).toBe(false);
      const cc = await token(p, { grant_type: 'client_credentials' });
      expect('expires_in' in cc.body).toBe(false);

      const i = p.introspect(r.body.access_token!);
      expect(i.active).toBe(true);
      expect(i.exp! - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(1);
      const okRes = await fetch(p.resourceUrl, { headers: { authorization: `Bearer ${r.body.access_token}` } });
      expect(okRes.status).toBe(200);
      await new Promise((res) => setTimeout(res, 1_200));
      expect(p.introspect(r.body.access_token!)).toEqual({ active: false });
      const expired = await fetch(p.resourceUrl, { headers: { authorization: `Bearer ${r.body.access_token}` } });
      expect(expired.status).toBe(401);
    } finally {
      await p.close();
    }
  });

  it('an expired refresh token is refused', async () => {
    const first = await passwordGrant();
    expect(peer.expireToken(first.body.refresh_token!)).toBe(true);
    expectInvalidGrant(await token(peer, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token! }), /refresh token is invalid/);
  });
});

// ---------------------------------------------------------------------------

describe('node-oauth peer: JWT bearer (RFC 7523)', () => {
  const claims = (over: JWTPayload = {}): JWTPayload => {
    const now = Math.floor(Date.now() / 1000);
    return { iss: 'tokenrelay-test', sub: 'svc-user@example.com', aud: peer.tokenUrl, iat: now, exp: now + 300, jti: randomUUID(), ...over };
  };
  const sign = (alg: JwtAssertionAlg, payload: JWTPayload, key: JoseCryptoKey = jwtKeys[alg].privateKey) =>
    new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT' }).sign(key);
  const grant = (assertion: string, auth: Auth = 'basic', extra: Record<string, string> = {}) =>
    token(peer, { grant_type: JWT_BEARER_GRANT, assertion, ...extra }, auth);

  for (const alg of ['RS256', 'ES256', 'PS256'] as const) {
    it(`accepts a good ${alg} assertion; the token's subject is the assertion's sub`, async () => {
      const r = await grant(await sign(alg, claims({ sub: `user-${alg}` })), 'basic', { scope: 'api:read' });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'api:read' });
      expect(r.body.refresh_token).toBeUndefined();
      expect(peer.introspect(r.body.access_token!)).toMatchObject({
        active: true,
        grant_type: JWT_BEARER_GRANT,
        client_id: 'tr-basic',
        sub: `user-${alg}`,
        assertion_issuer: 'tokenrelay-test',
      });
    });
  }

  it('accepts a key registered as SPKI PEM (client_secret_post), and aud = issuer URL', async () => {
    const r = await grant(await sign('ES256', claims({ aud: peer.issuer })), 'post');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(peer.introspect(r.body.access_token!)).toMatchObject({ client_id: 'tr-post', sub: 'svc-user@example.com' });
  });

  it('refuses a tampered assertion (payload changed after signing)', async () => {
    const jwt = await sign('RS256', claims({ sub: 'bob' }));
    const [h, p, s] = jwt.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as JWTPayload;
    payload.sub = 'admin';
    const tampered = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    expectInvalidGrant(await grant(tampered), /signature verification failed/);
    // and a flipped signature byte
    const sig = Buffer.from(s, 'base64url');
    sig[10] = sig[10]! ^ 0xff;
    expectInvalidGrant(await grant(`${h}.${p}.${sig.toString('base64url')}`), /signature verification failed/);
  });

  it('refuses an assertion signed with a key not registered for the client', async () => {
    expectInvalidGrant(await grant(await sign('RS256', claims(), otherRsKey.privateKey)), /signature verification failed/);
    // registered for tr-basic, not for the public client
    expectInvalidGrant(await grant(await sign('RS256', claims()), 'public'), /no JWT assertion verification key is registered for client tr-public/);
  });

  it('refuses an expired assertion', async () => {
    const now = Math.floor(Date.now() / 1000);
    expectInvalidGrant(await grant(await sign('RS256', claims({ iat: now - 600, exp: now - 60 }))), /"exp" claim timestamp check failed/);
  });

  it('refuses a wrong audience', async () => {
    expectInvalidGrant(await grant(await sign('ES256', claims({ aud: 'https://elsewhere.example/token' }))), /unexpected "aud" claim value \(accepted: /);
    expectInvalidGrant(await grant(await sign('ES256', claims({ aud: `${peer.tokenUrl}/` }))), /"aud"/);
  });

  it('refuses a replayed jti', async () => {
    const jwt = await sign('PS256', claims());
    expect((await grant(jwt)).status).toBe(200);
    expectInvalidGrant(await grant(jwt), /"jti" .* already used \(replay\)/);
  });

  it('refuses missing claims, exp too far ahead, iat in the future, and an alg without a registered key', async () => {
    const now = Math.floor(Date.now() / 1000);
    for (const missing of ['iss', 'sub', 'aud', 'exp', 'iat', 'jti'] as const) {
      const c = claims();
      delete c[missing];
      expectInvalidGrant(await grant(await sign('RS256', c)), new RegExp(`"${missing}"`));
    }
    expectInvalidGrant(await grant(await sign('RS256', claims({ exp: now + 7200 }))), /too far in the future/);
    expectInvalidGrant(await grant(await sign('RS256', claims({ iat: now + 600 }))), /"iat"/);
    const hs = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256' }).sign(new Uint8Array(32));
    expectInvalidGrant(await grant(hs), /alg HS256 does not match a key registered/);
    expectInvalidGrant(await grant('not-a-jwt'), /not a JWT/);
    const missingAssertion = await token(peer, { grant_type: JWT_BEARER_GRANT });
    expect(missingAssertion.status).toBe(400);
    expect(missingAssertion.body.error).toBe('invalid_request');
  });

  it('checks iss when the key is registered with an issuer', async () => {
    const p = await startNodeOauthPeer();
    try {
      await p.registerAssertionKey(p.clients.basic.client_id, createPublicKey(await exportSPKI(jwtKeys.RS256.publicKey)), 'RS256', { issuer: 'the-idp' });
      const now = Math.floor(Date.now() / 1000);
      const c = (iss: string): JWTPayload => ({ iss, sub: 's', aud: p.tokenUrl, iat: now, exp: now + 60, jti: randomUUID() });
      expect((await token(p, { grant_type: JWT_BEARER_GRANT, assertion: await sign('RS256', c('the-idp')) })).status).toBe(200);
      expectInvalidGrant(await token(p, { grant_type: JWT_BEARER_GRANT, assertion: await sign('RS256', c('someone-else')) }), /"iss"/);
      const extractable = await generateKeyPair('RS256', { extractable: true });
      await expect(p.registerAssertionKey('tr-basic', await exportJWK(extractable.privateKey), 'RS256')).rejects.toThrow(/public JWK/);
      await expect(p.registerAssertionKey('nobody', await exportJWK(jwtKeys.RS256.publicKey), 'RS256')).rejects.toThrow(/unknown client/);
    } finally {
      await p.close();
    }
  });
});

// ---------------------------------------------------------------------------

describe('node-oauth peer: SAML 2.0 bearer (RFC 7522)', () => {
  const opts = (over: Partial<SamlAssertionOptions> = {}): SamlAssertionOptions => ({
    issuer: 'https://idp.example/saml',
    nameId: 'carol@example.com',
    recipient: peer.tokenUrl,
    audience: peer.tokenUrl,
    notOnOrAfter: new Date(Date.now() + 5 * 60_000),
    keyPem: cert.keyPem,
    certPem: cert.certPem,
    ...over,
  });
  const grant = (assertion: string, auth: Auth = 'basic') => token(peer, { grant_type: SAML2_BEARER_GRANT, assertion }, auth);

  it('accepts a good signed assertion; the token subject is the NameID', async () => {
    const a = buildSignedSamlAssertion(opts());
    expect(a.xml).toContain('<ds:Signature');
    expect(a.assertion).toMatch(/^[A-Za-z0-9_-]+$/);
    const r = await grant(a.assertion);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(peer.introspect(r.body.access_token!)).toMatchObject({
      active: true,
      grant_type: SAML2_BEARER_GRANT,
      client_id: 'tr-basic',
      sub: 'carol@example.com',
      assertion_issuer: 'https://idp.example/saml',
    });
    // a public client with a registered certificate too
    const pub = await grant(buildSignedSamlAssertion(opts({ nameId: 'dave' })).assertion, 'public');
    expect(pub.status, JSON.stringify(pub.body)).toBe(200);
    expect(peer.introspect(pub.body.access_token!)).toMatchObject({ client_id: 'tr-public', sub: 'dave' });
  });

  it('refuses an assertion whose NameID was changed after signing', async () => {
    const a = buildSignedSamlAssertion(opts({ nameId: 'carol@example.com' }));
    const tampered = a.xml.replace('>carol@example.com</saml:NameID>', '>admin@example.com</saml:NameID>');
    expect(tampered).not.toBe(a.xml);
    expectInvalidGrant(await grant(encodeSamlAssertion(tampered)), /reference digest does not match/);
  });

  it('refuses an expired assertion (Conditions and SubjectConfirmationData)', async () => {
    const past = new Date(Date.now() - 60_000);
    expectInvalidGrant(await grant(buildSignedSamlAssertion(opts({ notOnOrAfter: past })).assertion), /expired/);
    expectInvalidGrant(
      await grant(buildSignedSamlAssertion(opts({ conditionsNotOnOrAfter: past })).assertion),
      /Conditions NotOnOrAfter .* has passed/,
    );
    expectInvalidGrant(
      await grant(buildSignedSamlAssertion(opts({ subjectConfirmationNotOnOrAfter: past })).assertion),
      /SubjectConfirmationData NotOnOrAfter .* has passed/,
    );
    expectInvalidGrant(
      await grant(buildSignedSamlAssertion(opts({ notBefore: new Date(Date.now() + 10 * 60_000) })).assertion),
      /NotBefore .* is in the future/,
    );
  });

  it('refuses a wrong Recipient and a wrong Audience', async () => {
    expectInvalidGrant(
      await grant(buildSignedSamlAssertion(opts({ recipient: 'https://elsewhere.example/token' })).assertion),
      /Recipient "https:\/\/elsewhere\.example\/token" is not the token endpoint/,
    );
    expectInvalidGrant(await grant(buildSignedSamlAssertion(opts({ audience: 'urn:other-sp' })).assertion), /AudienceRestriction/);
  });

  it('refuses a signature by a key other than the registered certificate, even with its cert in KeyInfo', async () => {
    const a = buildSignedSamlAssertion(opts({ keyPem: otherCert.keyPem, certPem: otherCert.certPem, includeKeyInfo: true }));
    expect(a.xml).toContain('<ds:X509Certificate>');
    expectInvalidGrant(await grant(a.assertion), /invalid signature: the signature value .* is incorrect/);
  });

  it('refuses signature wrapping: claims come only from the signed reference', async () => {
    // Move the valid signature of carol's assertion onto an attacker-built
    // assertion for mallory that carries the original (signed) one inside it.
    const good = buildSignedSamlAssertion(opts({ nameId: 'carol@example.com' }));
    const sigMatch = /<ds:Signature[\s\S]*<\/ds:Signature>/.exec(good.xml);
    expect(sigMatch).not.toBeNull();
    const signature = sigMatch![0];
    const original = good.xml.replace(signature, '');
    const evil = buildSamlAssertionXml({ ...opts({ nameId: 'mallory@example.com' }), id: '_evil' })
      .replace('</saml:Issuer>', `</saml:Issuer>${signature}`)
      .replace('</saml:Assertion>', `<saml:Advice>${original}</saml:Advice></saml:Assertion>`);
    expectInvalidGrant(await grant(encodeSamlAssertion(evil)), /signature does not cover the Assertion element itself/);

    // same ID on both: xml-crypto refuses duplicate IDs
    const evil2 = buildSamlAssertionXml({ ...opts({ nameId: 'mallory@example.com' }), id: good.id })
      .replace('</saml:Issuer>', `</saml:Issuer>${signature}`)
      .replace('</saml:Assertion>', `<saml:Advice>${original}</saml:Advice></saml:Assertion>`);
    expectInvalidGrant(await grant(encodeSamlAssertion(evil2)), /multiple elements with the same value for the ID/);
  });

  it('refuses unsigned, SHA-1-signed, replayed, non-base64url, no-AuthnStatement and non-bearer assertions', async () => {
    const unsigned = buildSamlAssertionXml({ ...opts(), id: '_unsigned' });
    expectInvalidGrant(await grant(encodeSamlAssertion(unsigned)), /not signed/);

    const sha1 = buildSignedSamlAssertion(opts({ signatureAlgorithm: RSA_SHA1, digestAlgorithm: SHA1 }));
    expectInvalidGrant(await grant(sha1.assertion), /algorithm 'http:\/\/www\.w3\.org\/2000\/09\/xmldsig#sha1' is not supported/);

    const once = buildSignedSamlAssertion(opts());
    expect((await grant(once.assertion)).status).toBe(200);
    expectInvalidGrant(await grant(once.assertion), /already used \(replay\)/);

    const std = Buffer.from(buildSignedSamlAssertion(opts()).xml).toString('base64');
    expectInvalidGrant(await grant(std.endsWith('=') ? std : `${std}==`), /base64url/);

    expectInvalidGrant(await grant(buildSignedSamlAssertion(opts({ includeAuthnStatement: false })).assertion), /AuthnStatement is missing/);
    expectInvalidGrant(
      await grant(buildSignedSamlAssertion(opts({ subjectConfirmationMethod: 'urn:oasis:names:tc:SAML:2.0:cm:holder-of-key' })).assertion),
      /no SubjectConfirmation with Method/,
    );
    expectInvalidGrant(await grant(encodeSamlAssertion('<not-xml')), /SAML assertion/);
    // no certificate registered for tr-post
    expectInvalidGrant(await grant(buildSignedSamlAssertion(opts()).assertion, 'post'), /no SAML verification certificate is registered for client tr-post/);
  });
});

// ---------------------------------------------------------------------------

describe('node-oauth peer: revocation (RFC 7009)', () => {
  const revoke = (tok: string, auth: Auth = 'basic', hint?: string) =>
    post(peer.revocationUrl, { token: tok, ...(hint ? { token_type_hint: hint } : {}) }, peer, auth);

  it('revokes an access token', async () => {
    const r = await token(peer, { grant_type: 'password', username: 'alice', password: peer.users.alice.password });
    expect(peer.introspect(r.body.access_token!).active).toBe(true);
    const rev = await revoke(r.body.access_token!);
    expect(rev.status).toBe(200);
    expect(peer.introspect(r.body.access_token!)).toEqual({ active: false });
    expect((await fetch(peer.resourceUrl, { headers: { authorization: `Bearer ${r.body.access_token}` } })).status).toBe(401);
    // the refresh token still works
    expect((await token(peer, { grant_type: 'refresh_token', refresh_token: r.body.refresh_token! })).status).toBe(200);
  });

  it('revokes a refresh token and the access tokens of its grant', async () => {
    const r = await token(peer, { grant_type: 'password', username: 'alice', password: peer.users.alice.password }, 'post');
    const rev = await revoke(r.body.refresh_token!, 'post', 'refresh_token');
    expect(rev.status).toBe(200);
    expect(peer.introspect(r.body.refresh_token!)).toEqual({ active: false });
    expect(peer.introspect(r.body.access_token!)).toEqual({ active: false });
    expectInvalidGrant(await token(peer, { grant_type: 'refresh_token', refresh_token: r.body.refresh_token! }, 'post'), /refresh token is invalid/);
  });

  it('answers 200 for an unknown token, 401 without client auth, 400 for another client’s token', async () => {
    expect((await revoke('unknown-token')).status).toBe(200);
    const r = await token(peer, { grant_type: 'client_credentials' }, 'basic');
    const noAuth = await revoke(r.body.access_token!, 'none');
    expect(noAuth.status).toBe(401);
    expect(noAuth.body.error).toBe('invalid_client');
    const wrong = await revoke(r.body.access_token!, { basic: ['tr-basic', 'wrong'] });
    expect(wrong.status).toBe(401);
    const other = await revoke(r.body.access_token!, 'post');
    expect(other.status).toBe(400);
    expect(peer.introspect(r.body.access_token!).active).toBe(true);
    // a public client revokes its own token with client_id only
    const pub = await token(peer, { grant_type: 'password', username: 'alice', password: peer.users.alice.password }, 'public');
    expect((await revoke(pub.body.refresh_token!, 'public')).status).toBe(200);
    expect(peer.introspect(pub.body.refresh_token!).active).toBe(false);
  });
});

// ---------------------------------------------------------------------------

describe('node-oauth peer: counters, delay and control endpoints', () => {
  it('counts by grant type, delays token requests, and answers /__stats, /__introspect, /__reset, /__assertion-key', async () => {
    const p = await startNodeOauthPeer();
    try {
      await token(p, { grant_type: 'client_credentials' });
      await token(p, { grant_type: 'password', username: 'alice', password: 'wrong' });
      const ok = await token(p, { grant_type: 'password', username: 'alice', password: p.users.alice.password }, 'post');
      expect(p.tokenRequests()).toBe(3);
      expect(p.tokenRequests('password')).toBe(2);
      expect(p.tokenRequests('client_credentials')).toBe(1);
      expect(p.tokensIssued()).toBe(2);
      expect(p.tokensIssued('password')).toBe(1);
      expect(p.stats()).toMatchObject({ errors: { invalid_grant: 1 }, byAuthMethod: { client_secret_basic: 2, client_secret_post: 1 }, byClient: { 'tr-basic': 2, 'tr-post': 1 } });

      const stats = (await (await fetch(`${p.issuer}/__stats`)).json()) as Record<string, unknown>;
      expect(stats).toMatchObject({ token_requests: 3, tokens_issued: 2, by_grant_type: { password: 2, client_credentials: 1 } });

      const intro = await fetch(`${p.issuer}/__introspect`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: ok.body.access_token }),
      });
      expect(await intro.json()).toMatchObject({ active: true, sub: 'alice', client_id: 'tr-post', grant_type: 'password' });

      p.setTokenDelay(300);
      const t0 = Date.now();
      await token(p, { grant_type: 'client_credentials' });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
      await fetch(`${p.issuer}/__token-delay?ms=0`, { method: 'POST' });
      expect(((await (await fetch(`${p.issuer}/__stats`)).json()) as { token_delay_ms: number }).token_delay_ms).toBe(0);

      // runtime registration of a JWT key and a SAML cert over HTTP
      const keyRes = await fetch(`${p.issuer}/__assertion-key`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_id: 'tr-post', type: 'jwt', alg: 'ES256', key: await exportJWK(jwtKeys.ES256.publicKey) }),
      });
      expect(keyRes.status).toBe(200);
      const certRes = await fetch(`${p.issuer}/__assertion-key`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_id: 'tr-post', type: 'saml', cert: cert.certPem }),
      });
      expect(await certRes.json()).toMatchObject({ ok: true, jwt_keys: { 'tr-post': 1 }, saml_certs: { 'tr-post': 1 } });
      const now = Math.floor(Date.now() / 1000);
      const jwt = await new SignJWT({ iss: 'x', sub: 'y', aud: p.tokenUrl, iat: now, exp: now + 60, jti: randomUUID() })
        .setProtectedHeader({ alg: 'ES256' })
        .sign(jwtKeys.ES256.privateKey);
      expect((await token(p, { grant_type: JWT_BEARER_GRANT, assertion: jwt }, 'post')).status).toBe(200);
      const saml = buildSignedSamlAssertion({
        issuer: 'idp',
        nameId: 'erin',
        recipient: p.tokenUrl,
        audience: p.tokenUrl,
        notOnOrAfter: new Date(Date.now() + 60_000),
        ...cert,
      });
      expect((await token(p, { grant_type: SAML2_BEARER_GRANT, assertion: saml.assertion }, 'post')).status).toBe(200);
      const bad = await fetch(`${p.issuer}/__assertion-key`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_id: 'tr-post', type: 'saml', cert: 'garbage' }),
      });
      expect(bad.status).toBe(400);

      const reset = await fetch(`${p.issuer}/__reset`, { method: 'POST' });
      expect(await reset.json()).toMatchObject({ token_requests: 0, tokens_issued: 0 });
      expect(p.tokenRequests()).toBe(0);
      expect(p.introspect(ok.body.access_token!).active).toBe(true);
      await fetch(`${p.issuer}/__reset?tokens=1`, { method: 'POST' });
      expect(p.introspect(ok.body.access_token!).active).toBe(false);
    } finally {
      await p.close();
    }
  });

  it('strictClientAuth refuses the other secret method', async () => {
    const p = await startNodeOauthPeer({ strictClientAuth: true });
    try {
      const r = await token(p, { grant_type: 'client_credentials' }, { post: [p.clients.basic.client_id, p.clients.basic.client_secret] });
      expect(r.status).toBe(401);
      expect(r.body.error).toBe('invalid_client');
      expect((await token(p, { grant_type: 'client_credentials' }, 'basic')).status).toBe(200);
    } finally {
      await p.close();
    }
  });
});

// ---------------------------------------------------------------------------

describe('node-oauth peer with oauth4webapi (what the product uses)', () => {
  it('discovery, password, refresh, jwt-bearer, saml2-bearer, client_credentials and revocation', async () => {
    const insecure = { [oauth.allowInsecureRequests]: true };
    const issuer = new URL(peer.issuer);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));
    expect(as.token_endpoint).toBe(peer.tokenUrl);

    const basicClient: oauth.Client = { client_id: peer.clients.basic.client_id };
    const basicAuth = oauth.ClientSecretBasic(peer.clients.basic.client_secret);
    const pw = await oauth.processGenericTokenEndpointResponse(
      as,
      basicClient,
      await oauth.genericTokenEndpointRequest(as, basicClient, basicAuth, 'password', { username: 'alice', password: peer.users.alice.password }, insecure),
    );
    expect(pw.token_type).toBe('bearer');
    expect(pw.refresh_token).toBeDefined();

    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      basicClient,
      await oauth.refreshTokenGrantRequest(as, basicClient, basicAuth, pw.refresh_token!, insecure),
    );
    expect(refreshed.refresh_token).not.toBe(pw.refresh_token);
    await expect(
      oauth.processRefreshTokenResponse(as, basicClient, await oauth.refreshTokenGrantRequest(as, basicClient, basicAuth, pw.refresh_token!, insecure)),
    ).rejects.toMatchObject({ error: 'invalid_grant' });

    const postClient: oauth.Client = { client_id: peer.clients.post.client_id };
    const now = Math.floor(Date.now() / 1000);
    const jwt = await new SignJWT({ iss: 'tr', sub: 'frank', aud: peer.tokenUrl, iat: now, exp: now + 120, jti: randomUUID() })
      .setProtectedHeader({ alg: 'PS256' })
      .sign(jwtKeys.PS256.privateKey);
    const jb = await oauth.processGenericTokenEndpointResponse(
      as,
      postClient,
      await oauth.genericTokenEndpointRequest(as, postClient, oauth.ClientSecretPost(peer.clients.post.client_secret), JWT_BEARER_GRANT, { assertion: jwt }, insecure),
    );
    expect(peer.introspect(jb.access_token)).toMatchObject({ sub: 'frank', client_id: 'tr-post' });

    const pubClient: oauth.Client = { client_id: peer.clients.public.client_id, token_endpoint_auth_method: 'none' };
    const saml = buildSignedSamlAssertion({
      issuer: 'idp',
      nameId: 'grace',
      recipient: peer.tokenUrl,
      audience: peer.tokenUrl,
      notOnOrAfter: new Date(Date.now() + 60_000),
      ...cert,
    });
    const sb = await oauth.processGenericTokenEndpointResponse(
      as,
      pubClient,
      await oauth.genericTokenEndpointRequest(as, pubClient, oauth.None(), SAML2_BEARER_GRANT, { assertion: saml.assertion }, insecure),
    );
    expect(peer.introspect(sb.access_token)).toMatchObject({ sub: 'grace', client_id: 'tr-public' });

    const cc = await oauth.processClientCredentialsResponse(
      as,
      basicClient,
      await oauth.clientCredentialsGrantRequest(as, basicClient, basicAuth, { scope: 'api:read' }, insecure),
    );
    expect(cc.scope).toBe('api:read');

    await oauth.processRevocationResponse(await oauth.revocationRequest(as, basicClient, basicAuth, cc.access_token, insecure));
    expect(peer.introspect(cc.access_token).active).toBe(false);
  });
});

// ---------------------------------------------------------------------------

describe('node-oauth-peer-main as a separate process', () => {
  let p: NodeOauthPeerProcess | undefined;
  afterAll(async () => {
    await p?.stop();
  });

  it('prints one ready line, takes --assertion-keys and runtime keys, serves every grant, exits 0 on SIGTERM', async () => {
    p = await startNodeOauthPeerProcess({
      ttlS: 120,
      omitExpiresIn: true,
      assertionKeys: {
        'tr-basic': { jwt: { alg: 'RS256', key: await exportJWK(jwtKeys.RS256.publicKey) }, saml: cert.certPem },
      },
    });
    dumpOnFailure(p.managed);
    expect(p.info).toMatchObject({
      ready: true,
      issuer: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      token_url: `${p.issuer}/token`,
      revocation_url: `${p.issuer}/revoke`,
      clients: { basic: { client_id: 'tr-basic' }, post: { client_id: 'tr-post' }, public: { client_id: 'tr-public' } },
      users: { alice: { username: 'alice' } },
      omit_expires_in: true,
      rotate_refresh_tokens: true,
      access_token_ttl_s: 120,
    });
    const peerLike = { tokenUrl: p.tokenUrl, clients: p.clients };

    const pw = await token(peerLike, { grant_type: 'password', username: 'alice', password: p.users.alice.password });
    expect(pw.status).toBe(200);
    expect('expires_in' in pw.body).toBe(false);
    const rt = await token(peerLike, { grant_type: 'refresh_token', refresh_token: pw.body.refresh_token! });
    expect(rt.status).toBe(200);
    expectInvalidGrant(await token(peerLike, { grant_type: 'refresh_token', refresh_token: pw.body.refresh_token! }), /refresh token is invalid/);

    const now = Math.floor(Date.now() / 1000);
    const c = (): JWTPayload => ({ iss: 'tr', sub: 'heidi', aud: p!.tokenUrl, iat: now, exp: now + 120, jti: randomUUID() });
    const jb = await token(peerLike, { grant_type: JWT_BEARER_GRANT, assertion: await new SignJWT(c()).setProtectedHeader({ alg: 'RS256' }).sign(jwtKeys.RS256.privateKey) });
    expect(jb.status, JSON.stringify(jb.body)).toBe(200);
    expect(await p.introspect(jb.body.access_token!)).toMatchObject({ active: true, sub: 'heidi', grant_type: JWT_BEARER_GRANT });

    const samlOpts = { issuer: 'idp', nameId: 'ivan', recipient: p.tokenUrl, audience: p.tokenUrl, notOnOrAfter: new Date(Date.now() + 60_000), ...cert };
    const sb = await token(peerLike, { grant_type: SAML2_BEARER_GRANT, assertion: buildSignedSamlAssertion(samlOpts).assertion });
    expect(sb.status, JSON.stringify(sb.body)).toBe(200);
    expect(await p.introspect(sb.body.access_token!)).toMatchObject({ active: true, sub: 'ivan' });

    // runtime registration (ES256 for tr-post, SAML cert for tr-public)
    await expect(p.registerAssertionKey('tr-post', 'not a key', 'ES256')).rejects.toThrow(/HTTP 400/);
    await p.registerAssertionKey('tr-post', await exportJWK(jwtKeys.ES256.publicKey), 'ES256');
    await p.registerSamlCertificate('tr-public', cert.certPem);
    const es = await new SignJWT(c()).setProtectedHeader({ alg: 'ES256' }).sign(jwtKeys.ES256.privateKey);
    expect((await token(peerLike, { grant_type: JWT_BEARER_GRANT, assertion: es }, 'post')).status).toBe(200);
    expect((await token(peerLike, { grant_type: SAML2_BEARER_GRANT, assertion: buildSignedSamlAssertion({ ...samlOpts, nameId: 'judy' }).assertion }, 'public')).status).toBe(200);

    expect(await p.stats()).toMatchObject({
      token_requests: 7,
      tokens_issued: 6,
      by_grant_type: { password: 1, refresh_token: 2, [JWT_BEARER_GRANT]: 2, [SAML2_BEARER_GRANT]: 2 },
      errors: { invalid_grant: 1 },
    });
    await p.setTokenDelay(0);
    await p.reset();
    expect(await p.stats()).toMatchObject({ token_requests: 0 });
    expect(await p.expireToken(sb.body.access_token!)).toBe(true);
    expect(await p.introspect(sb.body.access_token!)).toEqual({ active: false });

    const code = await p.stop();
    expect(code).toBe(0);
    const lines = p.managed.stdout().split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ ready: true });
    p = undefined;
  });
});

const support = await netnsSupport();
if (!support.ok) console.warn(`[node-oauth-peer] network namespace test SKIPPED: ${support.reason}`);

describe.skipIf(!support.ok)('node-oauth-peer-main inside a corp network namespace', () => {
  let net: CorpNetwork | undefined;
  let p: NodeOauthPeerProcess | undefined;
  afterAll(async () => {
    await p?.stop();
    await net?.destroy();
  });

  it('listens on corpIp, serves tokens there, and is controllable from inside', async () => {
    net = await createCorpNetwork();
    p = await startNodeOauthPeerProcess({ netns: net, name: 'node-oauth-peer-in-corp' });
    dumpOnFailure(p.managed);
    expect(p.info.host).toBe(net.corpIp);
    const r = await fetchInNamespace(net, p.tokenUrl, {
      method: 'POST',
      headers: { authorization: basicHeader(p.clients.basic.client_id, p.clients.basic.client_secret), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', username: 'alice', password: p.users.alice.password }).toString(),
    });
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body) as TokenBody;
    expect(await p.introspect(body.access_token!)).toMatchObject({ active: true, sub: 'alice' });
    await p.registerAssertionKey('tr-basic', await exportJWK(jwtKeys.RS256.publicKey), 'RS256');
    expect(await p.stats()).toMatchObject({ token_requests: 1, tokens_issued: 1 });
    expect(await p.stop()).toBe(0);
    p = undefined;
  });
});
