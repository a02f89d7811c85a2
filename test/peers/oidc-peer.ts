// A real OAuth 2.0 / OIDC authorization server for tests: oidc-provider@9 over
// plain http.
//
// - client_credentials for two confidential clients (tr-basic, tr-post);
// - authorization code + PKCE (S256, required) with refresh tokens (issued and
//   rotated) for tr-code (client_secret_basic) and tr-code-post
//   (client_secret_post), with real login/consent pages served by this peer for
//   one user (`alice`, password generated at start);
// - private_key_jwt client authentication for tr-pkjwt (client_credentials and
//   authorization_code), its public JWKS given at start or registered later;
// - RFC 7009 revocation at /token/revocation.
//
// No mocks: tokens are issued by oidc-provider itself and kept in a per-peer
// in-memory store, so `introspect()` can prove a token really came from here.
import { createServer, IncomingMessage } from 'node:http';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPair, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { Adapter, AdapterPayload, ClientMetadata, KoaContextLike, Provider as ProviderClass } from 'oidc-provider';
import { completeLogin } from './oidc-login.js';
import type { LoginCredentials } from './oidc-login.js';

export interface OidcClientCreds {
  client_id: string;
  client_secret: string;
}

export interface IntrospectionResult {
  active: boolean;
  /** 'ClientCredentials' | 'AccessToken' | 'RefreshToken' when active */
  kind?: string;
  client_id?: string;
  scope?: string;
  exp?: number;
  iat?: number;
  /** the user (accountId) for AccessToken / RefreshToken */
  sub?: string;
}

export interface OidcPeerClients {
  /** client_credentials, token_endpoint_auth_method: client_secret_basic */
  basic: OidcClientCreds;
  /** client_credentials, token_endpoint_auth_method: client_secret_post */
  post: OidcClientCreds;
  /** authorization_code (+PKCE) and refresh_token, client_secret_basic */
  code: OidcClientCreds;
  /** authorization_code (+PKCE) and refresh_token, client_secret_post */
  codePost: OidcClientCreds;
  /**
   * private_key_jwt; client_credentials, authorization_code (+PKCE), refresh_token.
   * Unknown to the provider (invalid_client) until a JWKS is registered.
   */
  pkjwt: { client_id: string };
}

/** A public JWK as JSON (the private parts are refused). */
export type PublicJwk = Record<string, unknown> & { kty?: string };

export interface LoginOptions {
  /** Default: the peer's user. */
  username?: string;
  /** Default: the peer's user's password. */
  password?: string;
  /** Deny consent: the redirect then carries error=access_denied. */
  deny?: boolean;
}

export interface OidcPeer {
  /** e.g. http://127.0.0.1:41234 (no trailing slash) */
  issuer: string;
  /** `${issuer}/token` */
  tokenUrl: string;
  /** `${issuer}/auth` */
  authorizationUrl: string;
  /** `${issuer}/token/revocation` (RFC 7009; needs client authentication) */
  revocationUrl: string;
  /** `${issuer}/jwks` (the provider's signing keys) */
  jwksUrl: string;
  /** `${issuer}/.well-known/openid-configuration` */
  discoveryUrl: string;
  /** `${issuer}/__callback`: a redirect target served by the peer (echoes the query as JSON). */
  callbackUrl: string;
  host: string;
  port: number;
  clients: OidcPeerClients;
  /** The one end user. */
  user: LoginCredentials;
  /** Current redirect_uris of the code clients (tr-code, tr-code-post, tr-pkjwt). */
  readonly redirectUris: string[];
  /** Current signing alg of tr-pkjwt (undefined until a JWKS is registered). */
  readonly privateKeyJwtAlg: string | undefined;
  /** Scopes the clients may ask for (plus openid and offline_access for the code clients). */
  scopes: string[];
  /** Every POST to the token endpoint so far, successful or not. */
  tokenRequests(): number;
  /** Successful token responses so far (oidc-provider 'grant.success'). */
  tokensIssued(): number;
  /** Counters, including per client_id, per client auth method and per grant_type. */
  stats(): OidcPeerStats;
  /** Zero all counters. */
  resetStats(): void;
  /** Delay every token endpoint request by `ms` before it is handled (0 = off). Widens race windows. */
  setTokenDelay(ms: number): void;
  /** Replace the redirect_uris of the code clients. */
  setRedirectUris(uris: string[]): Promise<void>;
  /** Register (or replace) tr-pkjwt's public JWKS; alg defaults from the first key (RSA: RS256, EC P-256: ES256). */
  setPrivateKeyJwtJwks(jwks: { keys: PublicJwk[] }, alg?: string): Promise<void>;
  /**
   * Log the user in and consent (or deny) starting at `authorizeUrl`, headlessly
   * (see oidc-login.ts). Resolves with the redirect to the client's redirect_uri.
   */
  login(authorizeUrl: string, opts?: LoginOptions): Promise<string>;
  /** The underlying oidc-provider instance (Koa app). */
  provider: ProviderClass;
  close(): Promise<void>;
}

export type RefreshTokenPolicy = 'always' | 'offline_access' | 'never';

export interface OidcPeerOptions {
  host?: string;
  port?: number;
  /** TTL of access tokens (client_credentials and user access tokens), seconds. Default 600. */
  accessTokenTtlS?: number;
  /** Initial artificial delay for token endpoint requests, ms. Default 0. */
  tokenDelayMs?: number;
  /**
   * Reject (401 invalid_client) a client that authenticates with the other
   * secret method than the one it is registered for. oidc-provider 9 alone
   * accepts either. Default true.
   */
  strictClientAuth?: boolean;
  /** redirect_uris of the code clients. Default [`${issuer}/__callback`]. */
  redirectUris?: string[];
  /** The user's name. Default 'alice'. */
  username?: string;
  /** The user's password. Default: random, generated at start. */
  password?: string;
  /**
   * When the code clients get a refresh token: 'always' (every authorization_code
   * grant, no offline_access or prompt=consent needed; default), 'offline_access'
   * (oidc-provider's default: only when offline_access was granted, which it only
   * keeps with prompt=consent) or 'never'.
   */
  issueRefreshToken?: RefreshTokenPolicy;
  /** Rotate refresh tokens on every use (the old one is then refused). Default true. */
  rotateRefreshToken?: boolean;
  /** TTL of refresh tokens, seconds. Default 14 days. */
  refreshTokenTtlS?: number;
  /** TTL of authorization codes, seconds. Default 60. */
  authorizationCodeTtlS?: number;
  /** Require PKCE (S256 is the only method oidc-provider 9 accepts). Default true. */
  requirePkce?: boolean;
  /** Public JWKS of tr-pkjwt. Without it tr-pkjwt is unknown until setPrivateKeyJwtJwks(). */
  privateKeyJwtJwks?: { keys: PublicJwk[] };
  /** token_endpoint_auth_signing_alg of tr-pkjwt. Default from the first key. */
  privateKeyJwtAlg?: string;
}

export type TokenAuthMethod = 'client_secret_basic' | 'client_secret_post';

export interface OidcPeerStats {
  /** every POST to the token endpoint */
  tokenRequests: number;
  /** successful token responses */
  tokensIssued: number;
  /** token requests per client_id named in the request (Basic header, form, or client_assertion iss) */
  byClient: Record<string, number>;
  /** token requests per auth method seen: client_secret_basic | client_secret_post | jwt | none */
  byAuthMethod: Record<string, number>;
  /** token requests per grant_type (authorization_code, refresh_token, client_credentials, ...) */
  byGrantType: Record<string, number>;
  /** successful token responses per grant_type */
  issuedByGrantType: Record<string, number>;
  /** POSTs to the revocation endpoint */
  revocationRequests: number;
  /** successful logins on the peer's login page */
  logins: number;
  /** refused logins (wrong user or password) */
  loginFailures: number;
  /** consents given */
  consents: number;
  /** consents denied (and logins cancelled) */
  denials: number;
}

export const PEER_SCOPES = ['api:read', 'api:write'];

const TOKEN_PATH = '/token';
const REVOCATION_PATH = '/token/revocation';
const AUTH_PATH = '/auth';
const JWKS_PATH = '/jwks';
const CALLBACK_PATH = '/__callback';

export const CODE_CLIENT_ID = 'tr-code';
export const CODE_POST_CLIENT_ID = 'tr-code-post';
export const PKJWT_CLIENT_ID = 'tr-pkjwt';

// oidc-provider@9 prints "Unsupported runtime. Use Node.js v22.x LTS" on import
// under Node 20. It works on 20 (see shared/reference/ecosystem.md); drop just that line.
let providerModule: Promise<typeof import('oidc-provider')> | undefined;
function loadOidcProvider(): Promise<typeof import('oidc-provider')> {
  providerModule ??= (async () => {
    const origWarn = console.warn;
    console.warn = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('Unsupported runtime')) return;
      origWarn(...args);
    };
    try {
      return await import('oidc-provider');
    } finally {
      console.warn = origWarn;
    }
  })();
  return providerModule;
}

/**
 * Per-peer in-memory adapter. oidc-provider's own MemoryAdapter is a
 * process-global LRU capped at 1000 entries, shared by every Provider in the
 * process (and it warns loudly); this one belongs to one peer, evicts only
 * expired entries, and honours expiresIn.
 */
function createAdapterFactory(): (name: string) => Adapter {
  const stores = new Map<string, Map<string, { payload: AdapterPayload; expiresAt: number }>>();
  return (name: string) => {
    let store = stores.get(name);
    if (!store) {
      store = new Map();
      stores.set(name, store);
    }
    const s = store;
    const live = (id: string) => {
      const e = s.get(id);
      if (!e) return undefined;
      if (e.expiresAt <= Date.now()) {
        s.delete(id);
        return undefined;
      }
      return e.payload;
    };
    const findBy = (key: 'uid' | 'userCode', value: string) => {
      for (const [id, e] of s) {
        if (e.payload[key] === value) return live(id);
      }
      return undefined;
    };
    return {
      async upsert(id, payload, expiresIn) {
        const now = Date.now();
        const expiresAt = typeof expiresIn === 'number' ? now + expiresIn * 1000 : Number.POSITIVE_INFINITY;
        s.set(id, { payload: { ...payload }, expiresAt });
        if (s.size % 1000 === 0) {
          // keep long load tests from growing the store without bound
          for (const [key, e] of s) if (e.expiresAt <= now) s.delete(key);
        }
      },
      async find(id) {
        const p = live(id);
        return p ? { ...p } : undefined;
      },
      async findByUid(uid) {
        return findBy('uid', uid);
      },
      async findByUserCode(userCode) {
        return findBy('userCode', userCode);
      },
      async consume(id) {
        const e = s.get(id);
        if (e) e.payload.consumed = Math.floor(Date.now() / 1000);
      },
      async destroy(id) {
        s.delete(id);
      },
      async revokeByGrantId(grantId) {
        for (const [id, e] of s) {
          if (e.payload.grantId === grantId) s.delete(id);
        }
      },
    };
  };
}

const generateKeyPairAsync = promisify(generateKeyPair);

async function signingJwks(): Promise<{ keys: unknown[] }> {
  // Own signing key so oidc-provider does not use (and warn about) its dev keys.
  const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { keys: [{ ...jwk, kid: `peer-${randomBytes(4).toString('hex')}`, use: 'sig', alg: 'RS256' }] };
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * A fresh, readable IncomingMessage carrying an already-consumed request's
 * body, so oidc-provider parses it as usual (it only falls back to a
 * pre-parsed req.body with a console warning).
 */
function replayRequest(req: IncomingMessage, body: Buffer): IncomingMessage {
  const replay = new IncomingMessage(req.socket);
  replay.method = req.method;
  replay.url = req.url;
  replay.headers = { ...req.headers, 'content-length': String(body.length) };
  delete replay.headers['transfer-encoding'];
  replay.rawHeaders = req.rawHeaders;
  replay.httpVersion = req.httpVersion;
  replay.httpVersionMajor = req.httpVersionMajor;
  replay.httpVersionMinor = req.httpVersionMinor;
  // without this, auto-destroy at end counts as an aborted request and destroys the socket
  replay.complete = true;
  if (body.length > 0) replay.push(body);
  replay.push(null);
  return replay;
}

function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

function secret(): string {
  return randomBytes(24).toString('base64url');
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function htmlPage(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body><h1>${esc(title)}</h1>
${body}
</body></html>
`;
}

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** Validate a public JWKS and pick the client assertion alg from its first key. */
function checkPublicJwks(jwks: unknown, alg?: string): { keys: PublicJwk[]; alg: string } {
  const keys = (jwks as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw new Error('jwks must be {"keys":[...]} with at least one key');
  for (const k of keys) {
    if (!k || typeof k !== 'object' || typeof (k as { kty?: unknown }).kty !== 'string') throw new Error('every JWK needs a kty');
    const priv = PRIVATE_JWK_MEMBERS.filter((m) => m in (k as object));
    if (priv.length) throw new Error(`jwks must hold public keys only (found ${priv.join(', ')})`);
  }
  const first = keys[0] as PublicJwk;
  const chosen =
    alg ??
    (typeof first.alg === 'string'
      ? first.alg
      : first.kty === 'RSA'
        ? 'RS256'
        : first.kty === 'EC' && first.crv === 'P-256'
          ? 'ES256'
          : first.kty === 'EC' && first.crv === 'P-384'
            ? 'ES384'
            : first.kty === 'OKP'
              ? 'EdDSA'
              : undefined);
  if (!chosen) throw new Error(`cannot pick a signing alg for a ${first.kty} key; pass alg`);
  return { keys: keys as PublicJwk[], alg: chosen };
}

function formBody(req: IncomingMessage, raw: Buffer): URLSearchParams {
  return (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')
    ? new URLSearchParams(raw.toString('utf8'))
    : new URLSearchParams();
}

/** client_id named by a request to the token/revocation endpoint, and the auth method it used. */
function clientOf(req: IncomingMessage, form: URLSearchParams): { clientId: string | undefined; method: string } {
  const authz = req.headers.authorization ?? '';
  if (/^basic /i.test(authz)) {
    const decoded = Buffer.from(authz.slice(6).trim(), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    try {
      return {
        method: 'client_secret_basic',
        clientId: decodeURIComponent((i >= 0 ? decoded.slice(0, i) : decoded).replace(/\+/g, ' ')),
      };
    } catch {
      return { method: 'client_secret_basic', clientId: undefined };
    }
  }
  if (form.has('client_secret')) return { method: 'client_secret_post', clientId: form.get('client_id') ?? undefined };
  const assertion = form.get('client_assertion');
  if (assertion) {
    let iss: string | undefined;
    try {
      const payload = JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss?: unknown };
      if (typeof payload.iss === 'string') iss = payload.iss;
    } catch {
      // not a JWT; oidc-provider will say so
    }
    return { method: 'jwt', clientId: form.get('client_id') ?? iss };
  }
  return { method: 'none', clientId: form.get('client_id') ?? undefined };
}

function inc(counter: Record<string, number>, key: string | null | undefined): void {
  if (key) counter[key] = (counter[key] ?? 0) + 1;
}

export async function startOidcPeer(opts: OidcPeerOptions = {}): Promise<OidcPeer> {
  const host = opts.host ?? '127.0.0.1';
  const ttl = opts.accessTokenTtlS ?? 600;
  const refreshTtl = opts.refreshTokenTtlS ?? 14 * 24 * 60 * 60;
  const codeTtl = opts.authorizationCodeTtlS ?? 60;
  const refreshPolicy: RefreshTokenPolicy = opts.issueRefreshToken ?? 'always';
  const rotate = opts.rotateRefreshToken ?? true;
  const requirePkce = opts.requirePkce ?? true;
  const { Provider } = await loadOidcProvider();

  const clients: OidcPeerClients = {
    basic: { client_id: 'tr-basic', client_secret: secret() },
    post: { client_id: 'tr-post', client_secret: secret() },
    code: { client_id: CODE_CLIENT_ID, client_secret: secret() },
    codePost: { client_id: CODE_POST_CLIENT_ID, client_secret: secret() },
    pkjwt: { client_id: PKJWT_CLIENT_ID },
  };
  const user: { username: string; password: string } = {
    username: opts.username ?? 'alice',
    password: opts.password ?? secret(),
  };
  const registeredMethod = new Map<string, TokenAuthMethod>([
    [clients.basic.client_id, 'client_secret_basic'],
    [clients.post.client_id, 'client_secret_post'],
    [clients.code.client_id, 'client_secret_basic'],
    [clients.codePost.client_id, 'client_secret_post'],
  ]);
  const strict = opts.strictClientAuth ?? true;
  let pkjwt = opts.privateKeyJwtJwks ? checkPublicJwks(opts.privateKeyJwtJwks, opts.privateKeyJwtAlg) : undefined;

  const emptyStats = (): OidcPeerStats => ({
    tokenRequests: 0,
    tokensIssued: 0,
    byClient: {},
    byAuthMethod: {},
    byGrantType: {},
    issuedByGrantType: {},
    revocationRequests: 0,
    logins: 0,
    loginFailures: 0,
    consents: 0,
    denials: 0,
  });
  let stats = emptyStats();
  let tokenDelayMs = opts.tokenDelayMs ?? 0;
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;

  const sendJson = (res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...extra });
    res.end(JSON.stringify(body));
  };
  const sendHtml = (res: ServerResponse, status: number, html: string) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html);
  };

  // Token endpoint front: count, classify, enforce the registered auth method
  // (oidc-provider 9 itself accepts client_secret_basic and client_secret_post
  // interchangeably for any client with a secret), optionally delay, then
  // replay the buffered request into oidc-provider.
  const tokenFront = async (req: IncomingMessage, res: ServerResponse, h: (req: IncomingMessage, res: ServerResponse) => void) => {
    stats.tokenRequests += 1;
    const body = await readBody(req, 64 * 1024);
    const form = formBody(req, body);
    const { clientId, method } = clientOf(req, form);
    inc(stats.byAuthMethod, method);
    inc(stats.byClient, clientId);
    inc(stats.byGrantType, form.get('grant_type'));

    if (tokenDelayMs > 0) await new Promise((r) => setTimeout(r, tokenDelayMs));

    const registered = clientId ? registeredMethod.get(clientId) : undefined;
    if (strict && registered && (method === 'client_secret_basic' || method === 'client_secret_post') && method !== registered) {
      sendJson(res, 401, {
        error: 'invalid_client',
        error_description: `client authentication failed: ${clientId} is registered for ${registered}, request used ${method}`,
      });
      return;
    }
    h(replayRequest(req, body), res);
  };

  const revocationFront = async (req: IncomingMessage, res: ServerResponse, h: (req: IncomingMessage, res: ServerResponse) => void) => {
    stats.revocationRequests += 1;
    const body = await readBody(req, 64 * 1024);
    const { clientId, method } = clientOf(req, formBody(req, body));
    const registered = clientId ? registeredMethod.get(clientId) : undefined;
    if (strict && registered && (method === 'client_secret_basic' || method === 'client_secret_post') && method !== registered) {
      sendJson(res, 401, {
        error: 'invalid_client',
        error_description: `client authentication failed: ${clientId} is registered for ${registered}, request used ${method}`,
      });
      return;
    }
    h(replayRequest(req, body), res);
  };

  // The http server exists first so that port 0 can be resolved before the
  // issuer (which must contain the port) is known.
  const server = createServer((req, res) => {
    const h = handler;
    if (!h) {
      res.writeHead(503).end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://peer.invalid');
    const fail = (err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: String(err) });
      else res.destroy();
    };
    if (url.pathname.startsWith('/__')) {
      control(req, res, url).catch(fail);
      return;
    }
    if (url.pathname.startsWith('/interaction/')) {
      interaction(req, res, url).catch((err: unknown) => {
        if (res.headersSent) return res.destroy();
        const name = (err as { name?: string }).name ?? 'Error';
        const status = name === 'SessionNotFound' ? 400 : 500;
        sendHtml(res, status, htmlPage('Error', `<p id="error">${esc(name)}: ${esc((err as Error).message ?? String(err))}</p>`));
      });
      return;
    }
    if (req.method === 'POST' && url.pathname === TOKEN_PATH) {
      tokenFront(req, res, h).catch(fail);
      return;
    }
    if (req.method === 'POST' && url.pathname === REVOCATION_PATH) {
      revocationFront(req, res, h).catch(fail);
      return;
    }
    h(req, res);
  });
  server.keepAliveTimeout = 5_000;

  // The browser-facing login and consent pages (what oidc-provider calls
  // "interactions"; its devInteractions accept any login without a password,
  // so the peer serves its own). Paths must stay under /interaction/<uid>: the
  // provider scopes its interaction cookie to that path.
  //   GET  /interaction/<uid>          login page (prompt login) or consent page (prompt consent)
  //   POST /interaction/<uid>/login    username=&password=
  //   POST /interaction/<uid>/confirm  grant the requested scopes
  //   POST /interaction/<uid>/abort    deny: the client gets error=access_denied
  const interaction = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const m = /^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/.exec(url.pathname);
    if (!m) return sendHtml(res, 404, htmlPage('Not found', '<p id="error">no such page</p>'));
    const [, uid, action] = m;
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) {
      return sendHtml(res, 400, htmlPage('Error', '<p id="error">interaction mismatch (stale page?)</p>'));
    }
    const base = `/interaction/${encodeURIComponent(details.uid)}`;
    const client = await provider.Client.find(String(details.params.client_id ?? ''));
    const clientName = client?.clientName ?? client?.clientId ?? String(details.params.client_id ?? '?');

    const loginPage = (status: number, error?: string) =>
      sendHtml(
        res,
        status,
        htmlPage(
          'Sign-in',
          `${error ? `<p id="error" class="error">${esc(error)}</p>\n` : ''}<p>Sign in to continue to <strong>${esc(clientName)}</strong>.</p>
<form id="login-form" method="post" action="${esc(`${base}/login`)}" autocomplete="off">
  <input type="hidden" name="uid" value="${esc(details.uid)}">
  <label>Username <input id="username" type="text" name="username" required autofocus></label>
  <label>Password <input id="password" type="password" name="password" required></label>
  <button id="submit" type="submit">Sign in</button>
</form>
<form id="cancel-form" method="post" action="${esc(`${base}/abort`)}">
  <button id="cancel" type="submit">Cancel</button>
</form>`,
        ),
      );

    if (req.method === 'GET' && action === undefined) {
      if (details.prompt.name === 'login') return loginPage(200);
      if (details.prompt.name === 'consent') {
        const scopes = String(details.params.scope ?? '')
          .split(' ')
          .filter(Boolean);
        return sendHtml(
          res,
          200,
          htmlPage(
            'Authorize',
            `<p><strong>${esc(clientName)}</strong> asks for access to your account <strong>${esc(String(details.session?.accountId ?? ''))}</strong>.</p>
<ul id="scopes">${scopes.map((s) => `<li>${esc(s)}</li>`).join('')}</ul>
<form id="consent-form" method="post" action="${esc(`${base}/confirm`)}">
  <input type="hidden" name="uid" value="${esc(details.uid)}">
  <button id="submit" type="submit">Allow</button>
</form>
<form id="deny-form" method="post" action="${esc(`${base}/abort`)}">
  <input type="hidden" name="uid" value="${esc(details.uid)}">
  <button id="deny" type="submit">Deny</button>
</form>`,
          ),
        );
      }
      return sendHtml(res, 501, htmlPage('Error', `<p id="error">prompt ${esc(details.prompt.name)} is not implemented</p>`));
    }
    if (req.method !== 'POST') return sendHtml(res, 405, htmlPage('Error', '<p id="error">method not allowed</p>'));
    const form = formBody(req, await readBody(req, 16 * 1024));

    if (action === 'login') {
      if (details.prompt.name !== 'login') return sendHtml(res, 400, htmlPage('Error', '<p id="error">not at the login step</p>'));
      const username = form.get('username') ?? '';
      const password = form.get('password') ?? '';
      if (!safeEqual(username, user.username) || !safeEqual(password, user.password)) {
        stats.loginFailures += 1;
        return loginPage(401, 'Invalid username or password.');
      }
      stats.logins += 1;
      return provider.interactionFinished(req, res, { login: { accountId: user.username } }, { mergeWithLastSubmission: false });
    }
    if (action === 'confirm') {
      if (details.prompt.name !== 'consent') return sendHtml(res, 400, htmlPage('Error', '<p id="error">not at the consent step</p>'));
      const accountId = details.session?.accountId;
      if (!accountId) return sendHtml(res, 400, htmlPage('Error', '<p id="error">no session</p>'));
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId, clientId: String(details.params.client_id) });
      if (!grant) return sendHtml(res, 400, htmlPage('Error', '<p id="error">grant not found</p>'));
      const missing = details.prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      if (missing.missingResourceScopes) {
        for (const [indicator, scope] of Object.entries(missing.missingResourceScopes)) {
          grant.addResourceScope(indicator, scope.join(' '));
        }
      }
      const grantId = await grant.save();
      stats.consents += 1;
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    // abort
    stats.denials += 1;
    return provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'End-User denied the authorization request' },
      { mergeWithLastSubmission: false },
    );
  };

  // Test-only control endpoints, so a peer running in another process (or in a
  // network namespace) can be asked about itself. Not part of oidc-provider.
  const readJson = async <T>(req: IncomingMessage): Promise<T> => {
    const raw = (await readBody(req, 256 * 1024)).toString('utf8');
    return JSON.parse(raw || '{}') as T;
  };
  const control = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const route = `${req.method} ${url.pathname}`;
    switch (route) {
      case 'GET /__stats':
        return sendJson(res, 200, {
          token_requests: stats.tokenRequests,
          tokens_issued: stats.tokensIssued,
          by_client: stats.byClient,
          by_auth_method: stats.byAuthMethod,
          by_grant_type: stats.byGrantType,
          issued_by_grant_type: stats.issuedByGrantType,
          revocation_requests: stats.revocationRequests,
          logins: stats.logins,
          login_failures: stats.loginFailures,
          consents: stats.consents,
          denials: stats.denials,
          token_delay_ms: tokenDelayMs,
        });
      case 'POST /__reset':
        stats = emptyStats();
        return sendJson(res, 200, { token_requests: 0, tokens_issued: 0 });
      case 'POST /__token-delay': {
        const ms = Number(url.searchParams.get('ms'));
        if (!Number.isFinite(ms) || ms < 0) return sendJson(res, 400, { error: 'ms must be a number >= 0' });
        tokenDelayMs = ms;
        return sendJson(res, 200, { token_delay_ms: tokenDelayMs });
      }
      case 'POST /__introspect': {
        // body: token=... (form) or {"token":"..."} (JSON)
        const raw = (await readBody(req, 64 * 1024)).toString('utf8');
        let token: string | null | undefined;
        if ((req.headers['content-type'] ?? '').includes('json')) {
          token = (JSON.parse(raw || '{}') as { token?: string }).token;
        } else {
          token = new URLSearchParams(raw).get('token');
        }
        if (!token) return sendJson(res, 400, { error: 'token is required' });
        return sendJson(res, 200, await introspect({ provider }, token));
      }
      case 'POST /__login': {
        // {"authorize_url": "...", "username"?, "password"?, "deny"?: bool} -> {"location": "..."}
        const b = await readJson<{ authorize_url?: unknown; username?: unknown; password?: unknown; deny?: unknown }>(req);
        if (typeof b.authorize_url !== 'string') return sendJson(res, 400, { error: 'authorize_url is required' });
        try {
          const location = await login(b.authorize_url, {
            ...(typeof b.username === 'string' ? { username: b.username } : {}),
            ...(typeof b.password === 'string' ? { password: b.password } : {}),
            deny: b.deny === true,
          });
          return sendJson(res, 200, { location });
        } catch (err) {
          return sendJson(res, 400, { error: 'login_failed', error_description: (err as Error).message });
        }
      }
      case 'POST /__redirect-uris': {
        // {"redirect_uris": ["..."]}
        const b = await readJson<{ redirect_uris?: unknown }>(req);
        const uris = b.redirect_uris;
        if (!Array.isArray(uris) || !uris.every((u) => typeof u === 'string')) {
          return sendJson(res, 400, { error: 'redirect_uris must be an array of strings' });
        }
        try {
          await setRedirectUris(uris as string[]);
        } catch (err) {
          return sendJson(res, 400, { error: 'invalid_redirect_uri', error_description: (err as Error).message });
        }
        return sendJson(res, 200, { redirect_uris: redirectUris });
      }
      case 'POST /__pkjwt-jwks': {
        // {"keys": [...], "alg"?: "RS256"}
        const b = await readJson<{ keys?: unknown; alg?: unknown }>(req);
        try {
          await setPrivateKeyJwtJwks({ keys: b.keys as PublicJwk[] }, typeof b.alg === 'string' ? b.alg : undefined);
        } catch (err) {
          return sendJson(res, 400, { error: 'invalid_jwks', error_description: (err as Error).message });
        }
        return sendJson(res, 200, { client_id: clients.pkjwt.client_id, alg: pkjwt?.alg });
      }
      case `GET ${CALLBACK_PATH}`:
        return sendJson(res, 200, { query: Object.fromEntries(url.searchParams) });
      default:
        return sendJson(res, 404, { error: 'unknown control endpoint' });
    }
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://${urlHost(host)}:${port}`;
  let redirectUris = [...(opts.redirectUris ?? [`${issuer}${CALLBACK_PATH}`])];

  const adapter = createAdapterFactory();
  // The code clients live in the adapter (oidc-provider's "dynamic" clients),
  // not in the static `clients` list, so that their redirect_uris and tr-pkjwt's
  // keys can change at runtime: Client.find() rebuilds a client whenever its
  // stored metadata changes.
  const codeScope = ['openid', 'offline_access', ...PEER_SCOPES].join(' ');
  const codeClientsMetadata = (): ClientMetadata[] => {
    const common = {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: redirectUris,
      scope: codeScope,
    };
    const list: ClientMetadata[] = [
      { ...clients.code, token_endpoint_auth_method: 'client_secret_basic', ...common },
      { ...clients.codePost, token_endpoint_auth_method: 'client_secret_post', ...common },
    ];
    if (pkjwt) {
      list.push({
        client_id: clients.pkjwt.client_id,
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: pkjwt.alg,
        jwks: { keys: pkjwt.keys },
        ...common,
        grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
      });
    }
    return list;
  };
  const storeCodeClients = async (list: ClientMetadata[]) => {
    const store = adapter('Client');
    for (const md of list) await store.upsert(md.client_id, md as AdapterPayload);
  };
  // Validate metadata as oidc-provider would before storing it (a bad one
  // would otherwise only surface as invalid_client at the next request).
  const validateClients = async (list: ClientMetadata[]) => {
    for (const md of list) {
      try {
        await provider.Client.validate(md);
      } catch (err) {
        const e = err as { error_description?: string; message?: string };
        throw new Error(`${md.client_id}: ${e.error_description ?? e.message ?? String(err)}`);
      }
    }
  };

  const provider: ProviderClass = new Provider(issuer, {
    adapter,
    jwks: await signingJwks(),
    cookies: { keys: [secret()] },
    clients: [
      {
        ...clients.basic,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: PEER_SCOPES.join(' '),
      },
      {
        ...clients.post,
        token_endpoint_auth_method: 'client_secret_post',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: PEER_SCOPES.join(' '),
      },
    ],
    // Static scopes are checked against each client's `scope` allow-list.
    scopes: ['openid', 'offline_access', ...PEER_SCOPES],
    async findAccount(_ctx: unknown, sub: string) {
      if (sub !== user.username) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { sub };
        },
      };
    },
    features: {
      clientCredentials: { enabled: true },
      // With resource indicators on, a `resource` parameter would switch the token
      // to a resource-server audience; the product does not use it.
      resourceIndicators: { enabled: false },
      devInteractions: { enabled: false },
      introspection: { enabled: false },
      revocation: {
        enabled: true,
        // a client may revoke only its own tokens
        async allowedPolicy(_ctx: unknown, client: { clientId: string }, token: { clientId?: string }) {
          return token.clientId === client.clientId;
        },
      },
    },
    // oidc-provider's error page for errors it cannot redirect to the client
    // (bad client_id / redirect_uri, lost session); the default one logs a NOTICE.
    async renderError(ctx: KoaContextLike, out: Record<string, unknown>) {
      ctx.type = 'html';
      ctx.body = htmlPage(
        'Error',
        Object.entries(out)
          .map(([k, v]) => `<p id="${esc(k)}"><strong>${esc(k)}</strong>: ${esc(String(v))}</p>`)
          .join('\n'),
      );
    },
    interactions: {
      url(_ctx: unknown, interaction: { uid: string }) {
        return `/interaction/${interaction.uid}`;
      },
    },
    pkce: {
      required: () => requirePkce,
    },
    async issueRefreshToken(_ctx: unknown, client: { grantTypeAllowed(t: string): boolean }, code: { scopes: Set<string> }) {
      if (refreshPolicy === 'never' || !client.grantTypeAllowed('refresh_token')) return false;
      return refreshPolicy === 'always' || code.scopes.has('offline_access');
    },
    // refresh tokens outlive the (headless) browser session that created them
    async expiresWithSession() {
      return false;
    },
    rotateRefreshToken: rotate,
    ttl: {
      ClientCredentials: ttl,
      AccessToken: ttl,
      IdToken: ttl,
      AuthorizationCode: codeTtl,
      RefreshToken: refreshTtl,
      Grant: Math.max(refreshTtl * 4, 30 * 24 * 60 * 60),
      Interaction: 10 * 60,
      Session: 24 * 60 * 60,
    },
  });
  provider.on('grant.success', (ctx: KoaContextLike) => {
    stats.tokensIssued += 1;
    const gt = ctx.oidc?.params?.grant_type;
    inc(stats.issuedByGrantType, typeof gt === 'string' ? gt : undefined);
  });
  await validateClients(codeClientsMetadata());
  await storeCodeClients(codeClientsMetadata());
  handler = provider.callback();

  async function setRedirectUris(uris: string[]): Promise<void> {
    const previous = redirectUris;
    redirectUris = [...uris];
    try {
      const list = codeClientsMetadata();
      await validateClients(list);
      await storeCodeClients(list);
    } catch (err) {
      redirectUris = previous;
      throw err;
    }
  }

  async function setPrivateKeyJwtJwks(jwks: { keys: PublicJwk[] }, alg?: string): Promise<void> {
    const previous = pkjwt;
    pkjwt = checkPublicJwks(jwks, alg);
    try {
      const list = codeClientsMetadata();
      await validateClients(list);
      await storeCodeClients(list);
    } catch (err) {
      pkjwt = previous;
      throw err;
    }
  }

  function login(authorizeUrl: string, lo: LoginOptions = {}): Promise<string> {
    return completeLogin(
      authorizeUrl,
      { username: lo.username ?? user.username, password: lo.password ?? user.password },
      { deny: lo.deny === true },
    );
  }

  let closed: Promise<void> | undefined;
  return {
    issuer,
    tokenUrl: `${issuer}${TOKEN_PATH}`,
    authorizationUrl: `${issuer}${AUTH_PATH}`,
    revocationUrl: `${issuer}${REVOCATION_PATH}`,
    jwksUrl: `${issuer}${JWKS_PATH}`,
    discoveryUrl: `${issuer}/.well-known/openid-configuration`,
    callbackUrl: `${issuer}${CALLBACK_PATH}`,
    host,
    port,
    clients,
    user,
    get redirectUris() {
      return [...redirectUris];
    },
    get privateKeyJwtAlg() {
      return pkjwt?.alg;
    },
    scopes: [...PEER_SCOPES],
    tokenRequests: () => stats.tokenRequests,
    tokensIssued: () => stats.tokensIssued,
    stats: () => structuredClone(stats),
    resetStats() {
      stats = emptyStats();
    },
    setTokenDelay(ms: number) {
      tokenDelayMs = ms;
    },
    setRedirectUris,
    setPrivateKeyJwtJwks,
    login,
    provider,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

/**
 * Ask the peer whether `token` is a token it issued and that is still valid:
 * client_credentials tokens (ClientCredentials), user access tokens
 * (AccessToken) and refresh tokens (RefreshToken; a rotated-away one is
 * inactive). Revoked tokens are gone from the store, so they are inactive.
 */
export async function introspect(peer: Pick<OidcPeer, 'provider'>, token: string): Promise<IntrospectionResult> {
  for (const model of [peer.provider.ClientCredentials, peer.provider.AccessToken, peer.provider.RefreshToken]) {
    const found = await model.find(token);
    if (found && !found.isExpired && !found.consumed) {
      const result: IntrospectionResult = { active: true, kind: found.kind };
      if (found.clientId !== undefined) result.client_id = found.clientId;
      if (found.scope !== undefined) result.scope = found.scope;
      if (found.exp !== undefined) result.exp = found.exp;
      if (found.iat !== undefined) result.iat = found.iat;
      if (found.accountId !== undefined) result.sub = found.accountId;
      return result;
    }
  }
  return { active: false };
}
