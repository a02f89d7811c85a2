// Proves the test harness itself is real: the oidc-provider peer issues
// verifiable tokens over HTTP, its CLI form works as a process, and the corp
// network namespace really is outbound-only.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { introspect, startOidcPeer } from '../peers/oidc-peer.js';
import type { OidcPeer } from '../peers/oidc-peer.js';
import { OIDC_PEER_MAIN, REPO_ROOT, startOidcPeerProcess } from '../peers/oidc-peer-process.js';
import type { OidcPeerProcess } from '../peers/oidc-peer-process.js';
import { createCorpNetwork, fetchInNamespace, netnsSupport, run } from './netns.js';
import type { CorpNetwork } from './netns.js';
import { dumpOnFailure, freePort, spawnLogged, waitForHttp } from './processes.js';

interface TokenResponse {
  access_token?: string;
  token_type?: string;
  expires_in?: number;
  scope?: string;
  error?: string;
  error_description?: string;
}

function basicAuth(id: string, secret: string): string {
  // RFC 6749 §2.3.1: form-urlencode each part, then base64
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

async function tokenWithBasic(peer: OidcPeer, scope?: string): Promise<{ status: number; body: TokenResponse }> {
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (scope) form.set('scope', scope);
  const res = await fetch(peer.tokenUrl, {
    method: 'POST',
    headers: { authorization: basicAuth(peer.clients.basic.client_id, peer.clients.basic.client_secret) },
    body: form,
  });
  return { status: res.status, body: (await res.json()) as TokenResponse };
}

async function tokenWithPost(
  peer: OidcPeer,
  creds: { client_id: string; client_secret: string },
  scope?: string,
): Promise<{ status: number; body: TokenResponse }> {
  const form = new URLSearchParams({ grant_type: 'client_credentials', ...creds });
  if (scope) form.set('scope', scope);
  const res = await fetch(peer.tokenUrl, { method: 'POST', body: form });
  return { status: res.status, body: (await res.json()) as TokenResponse };
}

/** An authorization request with PKCE S256 for a code client. */
function pkceAuthorize(
  authorizationUrl: string,
  clientId: string,
  redirectUri: string,
  scope = 'api:read',
): { url: string; verifier: string; state: string } {
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(8).toString('hex');
  const url = new URL(authorizationUrl);
  url.search = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    redirect_uri: redirectUri,
    scope,
    state,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString();
  return { url: url.href, verifier, state };
}

interface CodeTokenResponse extends TokenResponse {
  refresh_token?: string;
}

describe('oidc peer (in-process, real oidc-provider over http)', () => {
  let peer: OidcPeer;
  beforeAll(async () => {
    peer = await startOidcPeer();
  });
  afterAll(async () => {
    await peer?.close();
  });

  it('serves discovery advertising client_credentials and both auth methods', async () => {
    const res = await waitForHttp(peer.discoveryUrl, 10_000);
    const meta = (await res.json()) as Record<string, unknown>;
    expect(meta.issuer).toBe(peer.issuer);
    expect(meta.token_endpoint).toBe(peer.tokenUrl);
    expect(meta.grant_types_supported).toContain('client_credentials');
    expect(meta.token_endpoint_auth_methods_supported).toEqual(
      expect.arrayContaining(['client_secret_basic', 'client_secret_post']),
    );
    expect(meta.scopes_supported).toEqual(expect.arrayContaining(['api:read', 'api:write']));
  });

  it('issues a verifiable token to the client_secret_basic client', async () => {
    const before = peer.tokenRequests();
    const { status, body } = await tokenWithBasic(peer, 'api:read');
    expect(status).toBe(200);
    expect(body.token_type).toBe('Bearer');
    expect(body.expires_in).toBe(600);
    expect(body.scope).toBe('api:read');
    expect(typeof body.access_token).toBe('string');
    expect(peer.tokenRequests()).toBe(before + 1);

    const info = await introspect(peer, body.access_token!);
    expect(info).toMatchObject({ active: true, kind: 'ClientCredentials', client_id: 'tr-basic', scope: 'api:read' });
  });

  it('issues a verifiable token to the client_secret_post client', async () => {
    const before = peer.tokenRequests();
    const { status, body } = await tokenWithPost(peer, peer.clients.post, 'api:read api:write');
    expect(status).toBe(200);
    expect(body.scope).toBe('api:read api:write');
    expect(peer.tokenRequests()).toBe(before + 1);
    expect(await introspect(peer, body.access_token!)).toMatchObject({ active: true, client_id: 'tr-post' });
  });

  it('rejects bad secrets and the wrong auth method, and counts those requests too', async () => {
    const before = peer.tokenRequests();
    const issuedBefore = peer.tokensIssued();
    const bad = await tokenWithPost(peer, { client_id: peer.clients.post.client_id, client_secret: 'wrong' });
    expect(bad.status).toBe(401);
    expect(bad.body.error).toBe('invalid_client');
    // the basic client is registered for client_secret_basic only
    const wrongMethod = await tokenWithPost(peer, peer.clients.basic);
    expect(wrongMethod.status).toBe(401);
    expect(wrongMethod.body.error).toBe('invalid_client');
    expect(wrongMethod.body.error_description).toMatch(/registered for client_secret_basic/);
    // and the post client may not use a Basic header
    const res = await fetch(peer.tokenUrl, {
      method: 'POST',
      headers: { authorization: basicAuth(peer.clients.post.client_id, peer.clients.post.client_secret) },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    });
    expect(res.status).toBe(401);
    expect(peer.tokenRequests()).toBe(before + 3);
    expect(peer.tokensIssued()).toBe(issuedBefore);
  });

  it('breaks token requests down by client and auth method', async () => {
    peer.resetStats();
    await tokenWithBasic(peer);
    await tokenWithPost(peer, peer.clients.post);
    await tokenWithPost(peer, peer.clients.post);
    expect(peer.stats()).toEqual({
      tokenRequests: 3,
      tokensIssued: 3,
      byClient: { 'tr-basic': 1, 'tr-post': 2 },
      byAuthMethod: { client_secret_basic: 1, client_secret_post: 2 },
      byGrantType: { client_credentials: 3 },
      issuedByGrantType: { client_credentials: 3 },
      revocationRequests: 0,
      logins: 0,
      loginFailures: 0,
      consents: 0,
      denials: 0,
    });
  });

  it('can be lenient like stock oidc-provider (strictClientAuth: false)', async () => {
    const lenient = await startOidcPeer({ strictClientAuth: false });
    try {
      const r = await tokenWithPost(lenient, lenient.clients.basic);
      expect(r.status).toBe(200);
    } finally {
      await lenient.close();
    }
  });

  it('says a made-up token is not active', async () => {
    expect(await introspect(peer, 'not-a-token-this-peer-issued')).toEqual({ active: false });
  });

  it('counts concurrent token requests exactly', async () => {
    peer.resetStats();
    const results = await Promise.all(Array.from({ length: 8 }, () => tokenWithBasic(peer)));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(new Set(results.map((r) => r.body.access_token)).size).toBe(8);
    expect(peer.tokenRequests()).toBe(8);
    expect(peer.tokensIssued()).toBe(8);
  });

  it('honours accessTokenTtlS: expires_in and real expiry', async () => {
    // 2 s, not 1: exp has whole-second granularity, so a 1 s token can already be
    // expired when the introspection right after the request crosses a second boundary
    const short = await startOidcPeer({ accessTokenTtlS: 2 });
    try {
      const { status, body } = await tokenWithBasic(short);
      expect(status).toBe(200);
      expect(body.expires_in).toBe(2);
      expect((await introspect(short, body.access_token!)).active).toBe(true);
      await new Promise((r) => setTimeout(r, 3_200));
      expect((await introspect(short, body.access_token!)).active).toBe(false);
    } finally {
      await short.close();
    }
  });

  it('setTokenDelay slows the token endpoint (for race tests)', async () => {
    peer.setTokenDelay(300);
    try {
      const t0 = Date.now();
      const { status } = await tokenWithBasic(peer);
      expect(status).toBe(200);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
    } finally {
      peer.setTokenDelay(0);
    }
  });

  it('tokens from one peer are unknown to another peer', async () => {
    const other = await startOidcPeer();
    try {
      const { body } = await tokenWithBasic(peer);
      expect((await introspect(other, body.access_token!)).active).toBe(false);
    } finally {
      await other.close();
    }
  });
});

describe('oidc-peer-main as a separate process', () => {
  let p: OidcPeerProcess | undefined;
  afterAll(async () => {
    await p?.stop();
  });

  it('prints one ready JSON line, serves tokens, reports stats, exits 0 on SIGTERM', async () => {
    const port = await freePort();
    p = await startOidcPeerProcess({ port, ttlS: 120 });
    dumpOnFailure(p.managed);
    expect(p.info.issuer).toBe(`http://127.0.0.1:${port}`);
    expect(p.info.token_url).toBe(`http://127.0.0.1:${port}/token`);
    expect(Object.keys(p.info.clients).sort()).toEqual(['basic', 'code', 'code_post', 'pkjwt', 'post']);
    expect(p.info.pkjwt).toEqual({ client_id: 'tr-pkjwt', registered: false, alg: null });
    expect(p.info.user.username).toBe('alice');

    const res = await fetch(p.tokenUrl, {
      method: 'POST',
      headers: { authorization: basicAuth(p.clients.basic.client_id, p.clients.basic.client_secret) },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'api:read' }),
    });
    const body = (await res.json()) as TokenResponse;
    expect(res.status).toBe(200);
    expect(body.expires_in).toBe(120);
    expect(await p.stats()).toMatchObject({ token_requests: 1, tokens_issued: 1 });
    expect(await p.introspect(body.access_token!)).toMatchObject({ active: true, client_id: 'tr-basic' });
    expect(await p.introspect('bogus')).toEqual({ active: false });

    const code = await p.stop();
    expect(code).toBe(0);
    // stdout carried exactly the one ready line
    const lines = p.managed.stdout().split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ ready: true });
    p = undefined;
  });

  it('code flow + PKCE, refresh rotation, private_key_jwt from --pkjwt-jwks, revocation, per-grant_type stats', async () => {
    const callback = 'http://127.0.0.1:9/oauth/callback';
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const jwk = { ...(await exportJWK(rsa.publicKey)), kid: 'k1' };
    p = await startOidcPeerProcess({
      ttlS: 90,
      redirectUris: [callback],
      privateKeyJwtJwks: { keys: [jwk] },
      password: 'pw-from-the-cli',
    });
    dumpOnFailure(p.managed);
    expect(p.info.redirect_uris).toEqual([callback]);
    expect(p.info.pkjwt).toEqual({ client_id: 'tr-pkjwt', registered: true, alg: 'RS256' });
    expect(p.user).toEqual({ username: 'alice', password: 'pw-from-the-cli' });
    expect(p.revocationUrl).toBe(`${p.issuer}/token/revocation`);

    // authorization code: the peer process performs the browser part itself
    const { url, verifier, state } = pkceAuthorize(p.authorizationUrl, p.clients.code.client_id, callback);
    const location = new URL(await p.login(url));
    expect(`${location.origin}${location.pathname}`).toBe(callback);
    expect(location.searchParams.get('state')).toBe(state);
    const codeAuth = basicAuth(p.clients.code.client_id, p.clients.code.client_secret);
    const exchange = async (v: string) =>
      fetch(p!.tokenUrl, {
        method: 'POST',
        headers: { authorization: codeAuth },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: location.searchParams.get('code')!, redirect_uri: callback, code_verifier: v }),
      });
    const bad = await exchange(randomBytes(32).toString('base64url'));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as TokenResponse).error).toBe('invalid_grant');
    const good = await exchange(verifier);
    const tokens = (await good.json()) as CodeTokenResponse;
    expect(good.status).toBe(200);
    expect(tokens.expires_in).toBe(90);
    expect(await p.introspect(tokens.access_token!)).toMatchObject({ active: true, kind: 'AccessToken', sub: 'alice' });

    // refresh rotates; the old refresh token is then refused
    const refresh = (rt: string) =>
      fetch(p!.tokenUrl, {
        method: 'POST',
        headers: { authorization: codeAuth },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt }),
      });
    const r1 = await refresh(tokens.refresh_token!);
    const rotated = (await r1.json()) as CodeTokenResponse;
    expect(r1.status).toBe(200);
    expect(rotated.refresh_token).not.toBe(tokens.refresh_token);
    const r2 = await refresh(tokens.refresh_token!);
    expect(r2.status).toBe(400);
    expect(((await r2.json()) as TokenResponse).error).toBe('invalid_grant');

    // denied consent
    const denied = new URL(await p.login(pkceAuthorize(p.authorizationUrl, 'tr-code-post', callback).url, { deny: true }));
    expect(denied.searchParams.get('error')).toBe('access_denied');
    await expect(p.login(url, { password: 'wrong' })).rejects.toThrow(/login_failed/);

    // private_key_jwt client credentials, key from the --pkjwt-jwks file
    const assertion = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer('tr-pkjwt')
      .setSubject('tr-pkjwt')
      .setAudience(p.tokenUrl)
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(rsa.privateKey);
    const cc = await fetch(p.tokenUrl, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      }),
    });
    const ccBody = (await cc.json()) as TokenResponse;
    expect(cc.status).toBe(200);
    expect(await p.introspect(ccBody.access_token!)).toMatchObject({ active: true, client_id: 'tr-pkjwt' });

    // revocation makes the token inactive
    const rev = await fetch(p.revocationUrl, {
      method: 'POST',
      headers: { authorization: codeAuth },
      body: new URLSearchParams({ token: rotated.access_token!, token_type_hint: 'access_token' }),
    });
    expect(rev.status).toBe(200);
    expect(await p.introspect(rotated.access_token!)).toEqual({ active: false });

    expect(await p.stats()).toMatchObject({
      token_requests: 5,
      tokens_issued: 3,
      by_grant_type: { authorization_code: 2, refresh_token: 2, client_credentials: 1 },
      issued_by_grant_type: { authorization_code: 1, refresh_token: 1, client_credentials: 1 },
      by_auth_method: { client_secret_basic: 4, jwt: 1 },
      revocation_requests: 1,
      logins: 2,
      login_failures: 1,
      consents: 1,
      denials: 1,
    });
    await p.resetStats();
    expect(await p.stats()).toMatchObject({ token_requests: 0, by_grant_type: {}, logins: 0 });

    // keys and redirect URIs can be replaced at runtime over the control endpoints
    const ec = await generateKeyPair('ES256');
    await p.setPrivateKeyJwtJwks({ keys: [{ ...(await exportJWK(ec.publicKey)) }] });
    await p.setRedirectUris([callback, `${p.issuer}/__callback`]);
    await expect(p.setRedirectUris(['nope'])).rejects.toThrow(/HTTP 400/);
    const viaCallback = pkceAuthorize(p.authorizationUrl, 'tr-code', `${p.issuer}/__callback`);
    expect(new URL(await p.login(viaCallback.url)).searchParams.get('state')).toBe(viaCallback.state);

    expect(await p.stop()).toBe(0);
    p = undefined;
  });

  it('rejects bad CLI options with exit code 2 and a usage line', async () => {
    const m = spawnLogged(process.execPath, ['--import', 'tsx', OIDC_PEER_MAIN, '--refresh-tokens', 'sometimes'], {
      name: 'oidc-peer-bad-args',
      cwd: REPO_ROOT,
    });
    dumpOnFailure(m);
    expect((await m.exited).code).toBe(2);
    expect(m.output()).toMatch(/--refresh-tokens must be one of always\|offline_access\|never/);
    expect(m.stdout()).toBe('');
  });
});

const support = await netnsSupport();
if (!support.ok) {
  console.warn(`[harness] corp network namespace tests SKIPPED: ${support.reason}`);
}

describe.skipIf(!support.ok)(
  `corp network namespace (outbound-only)${support.ok ? '' : ` — skipped: ${support.reason}`}`,
  () => {
    let net: CorpNetwork;
    let peer: OidcPeerProcess | undefined;
    let hostServer: Server | undefined;

    beforeAll(async () => {
      net = await createCorpNetwork();
    });
    afterAll(async () => {
      await peer?.stop();
      await new Promise<void>((r) => {
        if (!hostServer) return r();
        hostServer.close(() => r());
        hostServer.closeAllConnections();
      });
      await net?.destroy();
    });

    it('has the promised shape', async () => {
      expect(net.ns.length).toBeLessThanOrEqual(15);
      expect(net.hostIf.length).toBeLessThanOrEqual(15);
      expect(net.corpIf.length).toBeLessThanOrEqual(15);
      expect(net.hostIp).toMatch(/^10\.\d+\.\d+\.\d+$/);
      expect((await run('ip', ['netns', 'list'])).stdout).toContain(net.ns);
      const routes = await net.exec('ip', ['-4', 'route', 'show']);
      expect(routes.code).toBe(0);
      expect(routes.stdout).not.toMatch(/^default/m);
      const lo = await net.exec('ip', ['-o', 'link', 'show', 'lo']);
      expect(lo.stdout).toMatch(/state UNKNOWN|LOWER_UP/);
    });

    it('ip netns exec execs: the spawned pid is the real process, in the namespace, and gets our signals', async () => {
      const m = spawnLogged(process.execPath, ['-e', 'console.log("pid=" + process.pid); setInterval(() => {}, 1000)'], {
        name: 'pid-probe',
        netns: net,
      });
      dumpOnFailure(m);
      const match = await m.waitForOutput(/pid=(\d+)/, 30_000);
      expect(Number(match[1])).toBe(m.pid);
      const ident = await run('ip', ['netns', 'identify', String(m.pid)]);
      expect(ident.stdout.trim()).toBe(net.ns);
      expect(await m.stop('SIGTERM', 10_000)).toBeNull();
      expect(m.exitInfo()).toEqual({ code: null, signal: 'SIGTERM' });
    });

    it('runs oidc-peer-main on corpIp: unreachable from the host, reachable inside the namespace', async () => {
      peer = await startOidcPeerProcess({ netns: net, name: 'oidc-peer-in-corp' });
      dumpOnFailure(peer.managed);
      expect(peer.info.host).toBe(net.corpIp);
      const discovery = `${peer.issuer}/.well-known/openid-configuration`;

      // host -> corp: refused by the namespace's firewall (TCP RST), promptly
      const err = await fetch(discovery, { signal: AbortSignal.timeout(10_000) }).then(
        () => undefined,
        (e: unknown) => e as Error & { cause?: { code?: string } },
      );
      expect(err, 'host must not be able to connect into the corp namespace').toBeDefined();
      expect(err?.cause?.code).toBe('ECONNREFUSED');

      // inside corp: the peer answers
      const inside = await fetchInNamespace(net, discovery);
      expect(inside.status).toBe(200);
      expect((JSON.parse(inside.body) as { issuer: string }).issuer).toBe(peer.issuer);

      // and issues a token that it then verifies
      const tok = await fetchInNamespace(net, peer.tokenUrl, {
        method: 'POST',
        headers: {
          authorization: basicAuth(peer.clients.basic.client_id, peer.clients.basic.client_secret),
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'grant_type=client_credentials&scope=api%3Aread',
      });
      expect(tok.status).toBe(200);
      const body = JSON.parse(tok.body) as TokenResponse;
      expect(await peer.introspect(body.access_token!)).toMatchObject({ active: true, client_id: 'tr-basic' });
      expect(await peer.stats()).toMatchObject({ token_requests: 1, tokens_issued: 1 });
    });

    it('code flow inside the namespace: the peer logs in against itself, the code is exchanged and revoked from inside', async () => {
      expect(peer, 'started by the previous test').toBeDefined();
      const p = peer!;
      const callback = p.callbackUrl; // the default redirect_uri: the peer's own /__callback
      expect(p.info.redirect_uris).toEqual([callback]);
      const { url, verifier, state } = pkceAuthorize(p.authorizationUrl, p.clients.codePost.client_id, callback);
      // the host cannot do the browser part (no route into corp), the peer can
      await expect(fetch(url, { signal: AbortSignal.timeout(10_000) })).rejects.toThrow();
      const location = new URL(await p.login(url));
      expect(location.searchParams.get('state')).toBe(state);

      const form = (o: Record<string, string>) => new URLSearchParams(o).toString();
      const tok = await fetchInNamespace(net, p.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form({
          grant_type: 'authorization_code',
          code: location.searchParams.get('code')!,
          redirect_uri: callback,
          code_verifier: verifier,
          client_id: p.clients.codePost.client_id,
          client_secret: p.clients.codePost.client_secret,
        }),
      });
      expect(tok.status).toBe(200);
      const tokens = JSON.parse(tok.body) as CodeTokenResponse;
      expect(await p.introspect(tokens.access_token!)).toMatchObject({ active: true, client_id: 'tr-code-post', sub: 'alice' });

      const rev = await fetchInNamespace(net, p.revocationUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form({ token: tokens.refresh_token!, client_id: p.clients.codePost.client_id, client_secret: p.clients.codePost.client_secret }),
      });
      expect(rev.status).toBe(200);
      expect(await p.introspect(tokens.refresh_token!)).toEqual({ active: false });
      expect(await p.introspect(tokens.access_token!)).toEqual({ active: false });
      expect(await p.stats()).toMatchObject({
        by_grant_type: { client_credentials: 1, authorization_code: 1 },
        revocation_requests: 1,
        logins: 1,
        consents: 1,
      });
    });

    it('a process inside the namespace can reach a server on hostIp, but not the host loopback', async () => {
      hostServer = createServer((req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`hello ${req.socket.remoteAddress}`);
      });
      await new Promise<void>((r) => hostServer!.listen(0, net.hostIp, () => r()));
      const { port } = hostServer.address() as AddressInfo;

      const res = await fetchInNamespace(net, `http://${net.hostIp}:${port}/`);
      expect(res.status).toBe(200);
      expect(res.body).toBe(`hello ${net.corpIp}`);

      // 127.0.0.1 inside the namespace is the namespace's own loopback
      const loopback = createServer((_req, r) => r.end('host loopback'));
      await new Promise<void>((r) => loopback.listen(0, '127.0.0.1', () => r()));
      try {
        const lport = (loopback.address() as AddressInfo).port;
        await expect(fetchInNamespace(net, `http://127.0.0.1:${lport}/`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
      } finally {
        await new Promise<void>((r) => loopback.close(() => r()));
      }
    });

    it('a second network gets its own subnet; destroy() kills its processes, removes it, and is idempotent', async () => {
      const net2 = await createCorpNetwork();
      let destroyed = false;
      try {
        expect(net2.ns).not.toBe(net.ns);
        expect(net2.subnet).not.toBe(net.subnet);
        expect(net2.hostIf).not.toBe(net.hostIf);
        const sleeper = spawnLogged(process.execPath, ['-e', 'console.log("up"); setInterval(() => {}, 1000)'], {
          name: 'sleeper',
          netns: net2,
        });
        await sleeper.waitForOutput(/up/, 30_000);
        await net2.destroy();
        destroyed = true;
        expect((await sleeper.exited).signal).toBe('SIGKILL');
        expect((await run('ip', ['netns', 'list'])).stdout).not.toContain(net2.ns);
        expect((await run('ip', ['link', 'show', net2.hostIf])).code).not.toBe(0);
        await net2.destroy(); // idempotent
      } finally {
        if (!destroyed) await net2.destroy();
      }
      // the first network is untouched
      expect((await run('ip', ['netns', 'list'])).stdout).toContain(net.ns);
    });
  },
);
