// A real OAuth 2.0 authorization server for tests, built on
// @node-oauth/oauth2-server@5 behind node:http (plain http).
//
//   POST /token    password (RFC 6749 §4.3), refresh_token with rotation (§6),
//                  client_credentials (§4.4), and the extension grants
//                  urn:ietf:params:oauth:grant-type:jwt-bearer   (RFC 7523 §2.1/§3)
//                  urn:ietf:params:oauth:grant-type:saml2-bearer (RFC 7522 §2.1/§3)
//                  Client auth: client_secret_basic, client_secret_post, none (public client).
//   POST /revoke   RFC 7009 token revocation
//   GET  /resource RFC 6750 protected resource (bearer token checked by oauth2-server's authenticate())
//   GET  /.well-known/oauth-authorization-server   RFC 8414 metadata
//   /__*           test control endpoints (stats, introspect, reset, token delay, assertion keys, expire)
//
// No mocks: tokens are issued by oauth2-server and kept in a per-peer store;
// JWT assertions are verified with jose, SAML assertions with xml-crypto
// (claims read only from the signed reference) against keys registered per client.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KeyObject, createPublicKey, randomBytes, timingSafeEqual, X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import OAuth2Server from '@node-oauth/oauth2-server';
import { decodeProtectedHeader, importJWK, importSPKI, importX509, jwtVerify } from 'jose';
import type { JWK, JWTPayload } from 'jose';
import { DOMParser } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import type { CorpNetwork } from '../support/netns.js';
import type { Managed } from '../support/processes.js';

export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const SAML2_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:saml2-bearer';
export const NODE_OAUTH_PEER_SCOPES = ['api:read', 'api:write'];
export type JwtAssertionAlg = 'RS256' | 'ES256' | 'PS256';
export const JWT_ASSERTION_ALGS: readonly JwtAssertionAlg[] = ['RS256', 'ES256', 'PS256'];

const TOKEN_PATH = '/token';
const REVOKE_PATH = '/revoke';
const RESOURCE_PATH = '/resource';
const METADATA_PATH = '/.well-known/oauth-authorization-server';
const BODY_LIMIT = 256 * 1024;

const SAML_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';
const DSIG_NS = 'http://www.w3.org/2000/09/xmldsig#';
const SAML_BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
// SHA-1 signatures and digests are refused (xml-crypto 6 enables them by default).
const SAML_SIGNATURE_ALGS = [
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
  'http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1',
];
const SAML_DIGEST_ALGS = ['http://www.w3.org/2001/04/xmlenc#sha256', 'http://www.w3.org/2001/04/xmlenc#sha512'];

// ---------------------------------------------------------------------------
// public types

export interface NodeOauthClientCreds {
  client_id: string;
  client_secret: string;
}

export interface NodeOauthPublicClient {
  client_id: string;
}

export interface NodeOauthClients {
  /** confidential, meant for client_secret_basic (client_secret_post also accepted unless strictClientAuth) */
  basic: NodeOauthClientCreds;
  /** confidential, meant for client_secret_post (client_secret_basic also accepted unless strictClientAuth) */
  post: NodeOauthClientCreds;
  /** public client (token_endpoint_auth_method none): password, refresh_token, jwt-bearer, saml2-bearer */
  public: NodeOauthPublicClient;
}

export interface NodeOauthUser {
  username: string;
  password: string;
}

export interface NodeOauthIntrospection {
  active: boolean;
  token_type_hint?: 'access_token' | 'refresh_token';
  /** grant_type of the token request that issued this token */
  grant_type?: string;
  /** grant_type that started the chain (differs from grant_type after a refresh) */
  origin_grant_type?: string;
  client_id?: string;
  /** subject: username for password, client_id for client_credentials, assertion sub / NameID for jwt/saml bearer */
  sub?: string;
  /** username (password grant only) */
  username?: string;
  /** issuer of the JWT/SAML assertion the token was issued for */
  assertion_issuer?: string;
  scope?: string;
  exp?: number;
  iat?: number;
  /** all tokens of one grant (initial grant and its refreshes) share this id */
  grant_id?: string;
}

export interface NodeOauthPeerStats {
  /** every POST to /token */
  tokenRequests: number;
  /** successful token responses */
  tokensIssued: number;
  /** token requests per grant_type (as sent, "(none)" when missing) */
  byGrantType: Record<string, number>;
  /** successful token responses per grant_type */
  issuedByGrantType: Record<string, number>;
  /** error responses of /token per error code (invalid_grant, invalid_client, ...) */
  errors: Record<string, number>;
  /** token requests per client_id named in the request (Basic header or form) */
  byClient: Record<string, number>;
  /** token requests per client auth method: client_secret_basic | client_secret_post | none */
  byAuthMethod: Record<string, number>;
  /** POSTs to /revoke, and tokens actually removed by them */
  revocationRequests: number;
  tokensRevoked: number;
  /** requests to /resource, and how many carried a valid token */
  resourceRequests: number;
  resourceAuthorized: number;
}

/** Key material for verifying assertions, per client id (start option and --assertion-keys FILE). */
export type AssertionKeysConfig = Record<
  string,
  {
    /** JWT bearer keys: public JWK, or PEM (SPKI public key or X.509 certificate) */
    jwt?: JwtKeyConfig | JwtKeyConfig[];
    /** SAML bearer certificates: PEM string or { cert, issuer } */
    saml?: string | SamlCertConfig | Array<string | SamlCertConfig>;
  }
>;

export interface JwtKeyConfig {
  alg: JwtAssertionAlg;
  key: string | JWK;
  /** If set, the assertion's iss must equal it. */
  issuer?: string;
}

export interface SamlCertConfig {
  cert: string;
  /** If set, the assertion's Issuer must equal it. */
  issuer?: string;
}

export interface NodeOauthPeerOptions {
  host?: string;
  /** 0 = ephemeral (default) */
  port?: number;
  /** Access token lifetime, seconds (>= 1). Default 600. */
  accessTokenTtlS?: number;
  /** Refresh token lifetime, seconds. Default 86400. */
  refreshTokenTtlS?: number;
  /** refresh_token grant issues a new refresh token and revokes the presented one. Default true. */
  rotateRefreshTokens?: boolean;
  /**
   * Reply to a refresh_token grant without a refresh_token; the presented one
   * stays valid (implies no rotation). Default false. With rotateRefreshTokens
   * false and this false, the reply repeats the presented refresh token.
   */
  omitRefreshTokenOnRefresh?: boolean;
  /** Leave expires_in out of token replies (tokens still expire server-side). Default false. */
  omitExpiresIn?: boolean;
  /** Initial artificial delay of every /token request, ms. Default 0. */
  tokenDelayMs?: number;
  /** Reject (401 invalid_client) a client using the other secret method than the one it is meant for. Default false. */
  strictClientAuth?: boolean;
  /** Issue refresh tokens for jwt-bearer / saml2-bearer grants too. Default false. */
  assertionRefreshTokens?: boolean;
  /** Accepted JWT aud values. Default [tokenUrl, issuer]. */
  jwtAudiences?: string[];
  /** Accepted SAML Audience values. Default [tokenUrl]. */
  samlAudiences?: string[];
  /** Maximum time from now to an assertion's exp / NotOnOrAfter, s. Default 3600. */
  maxAssertionLifetimeS?: number;
  /** Allowed clock skew for assertion time checks, s. Default 5. */
  clockSkewS?: number;
  /** Refuse a second use of the same SAML assertion ID (RFC 7522 §3 MAY). Default true. jti replay is always refused. */
  rejectSamlReplay?: boolean;
  /** Verification keys registered at start. */
  assertionKeys?: AssertionKeysConfig;
  /** Password for alice; default random. */
  alicePassword?: string;
}

export interface NodeOauthPeer {
  /** e.g. http://127.0.0.1:41234 (no trailing slash) */
  issuer: string;
  /** `${issuer}/token` */
  tokenUrl: string;
  /** `${issuer}/revoke` */
  revocationUrl: string;
  /** `${issuer}/resource`: GET with a bearer token -> 200 {sub, client_id, scope, ...} or 401 */
  resourceUrl: string;
  /** `${issuer}/.well-known/oauth-authorization-server` */
  discoveryUrl: string;
  host: string;
  port: number;
  clients: NodeOauthClients;
  users: { alice: NodeOauthUser };
  scopes: string[];
  jwtAudiences: string[];
  samlAudiences: string[];
  /** Every POST to /token (optionally only those with this grant_type). */
  tokenRequests(grantType?: string): number;
  /** Successful token responses (optionally only this grant_type). */
  tokensIssued(grantType?: string): number;
  stats(): NodeOauthPeerStats;
  resetStats(): void;
  setTokenDelay(ms: number): void;
  /** Register a public key (JWK, SPKI PEM, X.509 PEM or KeyObject) that verifies JWT bearer assertions of this client. */
  registerAssertionKey(clientId: string, key: string | JWK | KeyObject, alg: JwtAssertionAlg, opts?: { issuer?: string }): Promise<void>;
  /** Register an X.509 certificate (PEM) that verifies SAML bearer assertions of this client. */
  registerSamlCertificate(clientId: string, certPem: string, opts?: { issuer?: string }): void;
  /** Forget all registered assertion keys of a client (or of all clients). */
  clearAssertionKeys(clientId?: string): void;
  /** Is this an access (or refresh) token this peer issued and that is still valid? */
  introspect(token: string): NodeOauthIntrospection;
  /** Remove a token (and, for a refresh token, the access tokens of its grant) as /revoke would. Returns whether it existed. */
  revoke(token: string): boolean;
  /** Make a token expire now (keeps it in the store, so it is reported as inactive). */
  expireToken(token: string): boolean;
  /** Drop every token, seen jti and SAML ID (keys and clients stay). */
  clearTokens(): void;
  /** The oauth2-server instance. */
  oauth: OAuth2Server;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------
// internals

interface ClientRec {
  id: string;
  secret?: string;
  authMethod: 'client_secret_basic' | 'client_secret_post' | 'none';
  grants: string[];
  scopes: string[];
}

interface PeerUser {
  sub: string;
  kind: 'user' | 'client' | 'jwt-bearer' | 'saml2-bearer';
  username?: string;
  assertionIssuer?: string;
}

interface TokenRec {
  kind: 'access_token' | 'refresh_token';
  value: string;
  expiresAt: Date;
  issuedAt: Date;
  clientId: string;
  user: PeerUser;
  scope: string[] | undefined;
  grantType: string;
  originGrantType: string;
  grantId: string;
}

interface RequestCtx {
  grantType: string;
  /** the refresh token record presented to the refresh_token grant */
  presented?: TokenRec;
  issuedAccess?: TokenRec;
}

interface JwtKeyRec {
  alg: JwtAssertionAlg;
  key: CryptoKey;
  issuer?: string;
}

interface SamlCertRec {
  certPem: string;
  issuer?: string;
}

function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

function secret(): string {
  // base64url: no characters that RFC 6749 §2.3.1 form-encoding would change
  return randomBytes(24).toString('base64url');
}

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  return ab.length === bb.length && timingSafeEqual(ab, bb);
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

function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...extra });
  res.end(JSON.stringify(body));
}

function formDecode(s: string): string {
  return decodeURIComponent(s.replace(/\+/g, ' '));
}

/** RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64. */
function parseBasic(header: string | undefined): { id: string; secret: string } | undefined | 'malformed' {
  if (!header || !/^basic\s/i.test(header)) return undefined;
  const decoded = Buffer.from(header.replace(/^basic\s+/i, '').trim(), 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return 'malformed';
  try {
    return { id: formDecode(decoded.slice(0, i)), secret: formDecode(decoded.slice(i + 1)) };
  } catch {
    return 'malformed';
  }
}

/** application/x-www-form-urlencoded body -> params; duplicates are an error (RFC 6749 §3.2). */
function parseForm(raw: string): { params: Record<string, string>; duplicate?: string } {
  const params: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(raw)) {
    if (Object.prototype.hasOwnProperty.call(params, k)) return { params, duplicate: k };
    params[k] = v;
  }
  return { params };
}

function toDate(value: string | null, what: string): Date {
  if (value === null || value === '') throw new Error(`${what} is missing`);
  // xs:dateTime; require an explicit zone so the instant is unambiguous
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value)) throw new Error(`${what} is not an xs:dateTime with a time zone: ${value}`);
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new Error(`${what} is not a valid date: ${value}`);
  return new Date(t);
}

function samlChildren(el: Element, localName: string): Element[] {
  const out: Element[] = [];
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1) {
      const e = n as Element;
      if (e.namespaceURI === SAML_NS && e.localName === localName) out.push(e);
    }
  }
  return out;
}

function parseXmlStrict(xml: string): Document {
  const problems: string[] = [];
  const doc = new DOMParser({
    errorHandler: {
      warning: () => {},
      error: (m: string) => problems.push(m),
      fatalError: (m: string) => problems.push(m),
    },
  }).parseFromString(xml, 'text/xml');
  if (problems.length > 0) throw new Error(`not well-formed XML: ${problems[0]}`);
  if (!doc || !doc.documentElement) throw new Error('not an XML document');
  for (let n = doc.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 10) throw new Error('a DOCTYPE is not allowed');
  }
  return doc as unknown as Document;
}

async function importJwtKey(key: string | JWK | KeyObject, alg: JwtAssertionAlg): Promise<CryptoKey> {
  if (!JWT_ASSERTION_ALGS.includes(alg)) throw new Error(`unsupported JWT assertion alg ${String(alg)} (use ${JWT_ASSERTION_ALGS.join(', ')})`);
  if (key instanceof KeyObject) {
    const pub = key.type === 'private' ? createPublicKey(key) : key;
    if (pub.type !== 'public') throw new Error('JWT assertion key must be an asymmetric public key');
    return importJWK(pub.export({ format: 'jwk' }) as JWK, alg) as Promise<CryptoKey>;
  }
  if (typeof key === 'string') {
    if (key.includes('BEGIN CERTIFICATE')) return importX509(key, alg);
    if (key.includes('BEGIN PUBLIC KEY')) return importSPKI(key, alg);
    if (key.includes('PRIVATE KEY')) throw new Error('register the public key (SPKI PEM, certificate or JWK), not a private key');
    // maybe a JSON-encoded JWK
    try {
      return await importJwtKey(JSON.parse(key) as JWK, alg);
    } catch {
      throw new Error('JWT assertion key must be a public JWK, an SPKI PEM or an X.509 certificate PEM');
    }
  }
  if (typeof key !== 'object' || key === null || typeof key.kty !== 'string') throw new Error('JWT assertion key: not a JWK');
  if ('d' in key || key.kty === 'oct') throw new Error('JWT assertion key must be a public JWK (no "d", not "oct")');
  const k = await importJWK(key, alg);
  if (k instanceof Uint8Array) throw new Error('JWT assertion key must be asymmetric');
  return k;
}

// ---------------------------------------------------------------------------

export async function startNodeOauthPeer(opts: NodeOauthPeerOptions = {}): Promise<NodeOauthPeer> {
  const host = opts.host ?? '127.0.0.1';
  const ttl = opts.accessTokenTtlS ?? 600;
  if (!Number.isInteger(ttl) || ttl < 1) throw new Error('accessTokenTtlS must be an integer >= 1 (oauth2-server refuses a falsy lifetime)');
  const refreshTtl = opts.refreshTokenTtlS ?? 86_400;
  if (!Number.isInteger(refreshTtl) || refreshTtl < 1) throw new Error('refreshTokenTtlS must be an integer >= 1');
  const omitRefreshOnRefresh = opts.omitRefreshTokenOnRefresh ?? false;
  const rotate = (opts.rotateRefreshTokens ?? true) && !omitRefreshOnRefresh;
  const omitExpiresIn = opts.omitExpiresIn ?? false;
  const strictClientAuth = opts.strictClientAuth ?? false;
  const assertionRefreshTokens = opts.assertionRefreshTokens ?? false;
  const maxAssertionLifetimeS = opts.maxAssertionLifetimeS ?? 3600;
  const skewS = opts.clockSkewS ?? 5;
  const rejectSamlReplay = opts.rejectSamlReplay ?? true;
  let tokenDelayMs = opts.tokenDelayMs ?? 0;

  const clients: NodeOauthClients = {
    basic: { client_id: 'tr-basic', client_secret: secret() },
    post: { client_id: 'tr-post', client_secret: secret() },
    public: { client_id: 'tr-public' },
  };
  const confidentialGrants = ['password', 'refresh_token', 'client_credentials', JWT_BEARER_GRANT, SAML2_BEARER_GRANT];
  const clientRecs = new Map<string, ClientRec>([
    [clients.basic.client_id, { id: clients.basic.client_id, secret: clients.basic.client_secret, authMethod: 'client_secret_basic', grants: confidentialGrants, scopes: NODE_OAUTH_PEER_SCOPES }],
    [clients.post.client_id, { id: clients.post.client_id, secret: clients.post.client_secret, authMethod: 'client_secret_post', grants: confidentialGrants, scopes: NODE_OAUTH_PEER_SCOPES }],
    [clients.public.client_id, { id: clients.public.client_id, authMethod: 'none', grants: ['password', 'refresh_token', JWT_BEARER_GRANT, SAML2_BEARER_GRANT], scopes: NODE_OAUTH_PEER_SCOPES }],
  ]);
  const users = { alice: { username: 'alice', password: opts.alicePassword ?? secret() } };

  // ---- store
  const accessTokens = new Map<string, TokenRec>();
  const refreshTokens = new Map<string, TokenRec>();
  const seenJti = new Map<string, number>(); // key -> expiry ms
  const seenSamlIds = new Map<string, number>();
  let saves = 0;
  const sweep = () => {
    const now = Date.now();
    for (const m of [accessTokens, refreshTokens]) for (const [k, r] of m) if (r.expiresAt.getTime() <= now) m.delete(k);
    for (const m of [seenJti, seenSamlIds]) for (const [k, exp] of m) if (exp <= now) m.delete(k);
  };

  // ---- assertion keys
  const jwtKeys = new Map<string, JwtKeyRec[]>();
  const samlCerts = new Map<string, SamlCertRec[]>();
  const requireClient = (clientId: string) => {
    if (!clientRecs.has(clientId)) throw new Error(`unknown client ${JSON.stringify(clientId)} (known: ${[...clientRecs.keys()].join(', ')})`);
  };
  const registerAssertionKey = async (clientId: string, key: string | JWK | KeyObject, alg: JwtAssertionAlg, o: { issuer?: string } = {}) => {
    requireClient(clientId);
    const cryptoKey = await importJwtKey(key, alg);
    const list = jwtKeys.get(clientId) ?? [];
    list.push({ alg, key: cryptoKey, ...(o.issuer !== undefined ? { issuer: o.issuer } : {}) });
    jwtKeys.set(clientId, list);
  };
  const registerSamlCertificate = (clientId: string, certPem: string, o: { issuer?: string } = {}) => {
    requireClient(clientId);
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(certPem);
    } catch (err) {
      throw new Error(`SAML verification certificate is not a readable X.509 PEM: ${(err as Error).message}`);
    }
    if (cert.publicKey.asymmetricKeyType !== 'rsa' && cert.publicKey.asymmetricKeyType !== 'rsa-pss') {
      throw new Error(`SAML verification certificate must hold an RSA key (xml-crypto 6 verifies RSA signatures only), got ${cert.publicKey.asymmetricKeyType}`);
    }
    const list = samlCerts.get(clientId) ?? [];
    list.push({ certPem: cert.toString(), ...(o.issuer !== undefined ? { issuer: o.issuer } : {}) });
    samlCerts.set(clientId, list);
  };
  const registerFromConfig = async (cfg: AssertionKeysConfig) => {
    for (const [clientId, entry] of Object.entries(cfg)) {
      const jwts = entry.jwt === undefined ? [] : Array.isArray(entry.jwt) ? entry.jwt : [entry.jwt];
      for (const j of jwts) await registerAssertionKey(clientId, j.key, j.alg, j.issuer !== undefined ? { issuer: j.issuer } : {});
      const samls = entry.saml === undefined ? [] : Array.isArray(entry.saml) ? entry.saml : [entry.saml];
      for (const s of samls) {
        if (typeof s === 'string') registerSamlCertificate(clientId, s);
        else registerSamlCertificate(clientId, s.cert, s.issuer !== undefined ? { issuer: s.issuer } : {});
      }
    }
  };

  // ---- stats
  const emptyStats = (): NodeOauthPeerStats => ({
    tokenRequests: 0,
    tokensIssued: 0,
    byGrantType: {},
    issuedByGrantType: {},
    errors: {},
    byClient: {},
    byAuthMethod: {},
    revocationRequests: 0,
    tokensRevoked: 0,
    resourceRequests: 0,
    resourceAuthorized: 0,
  });
  let stats = emptyStats();
  const bump = (m: Record<string, number>, k: string) => {
    m[k] = (m[k] ?? 0) + 1;
  };

  // The http server exists first so that port 0 is resolved before the issuer
  // (which contains the port) is known.
  let handler: ((req: IncomingMessage, res: ServerResponse) => Promise<void>) | undefined;
  const server = createServer((req, res) => {
    const h = handler;
    if (!h) {
      res.writeHead(503).end();
      return;
    }
    h(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: String(err) });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolvePromise();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://${urlHost(host)}:${port}`;
  const tokenUrl = `${issuer}${TOKEN_PATH}`;
  const revocationUrl = `${issuer}${REVOKE_PATH}`;
  const jwtAudiences = opts.jwtAudiences ?? [tokenUrl, issuer];
  const samlAudiences = opts.samlAudiences ?? [tokenUrl];

  const als = new AsyncLocalStorage<RequestCtx>();

  // ---- oauth2-server model
  const toClient = (c: ClientRec): OAuth2Server.Client => ({ id: c.id, grants: [...c.grants] });
  const live = (m: Map<string, TokenRec>, value: string): TokenRec | undefined => {
    const r = m.get(value);
    if (!r) return undefined;
    if (r.expiresAt.getTime() <= Date.now()) return undefined;
    return r;
  };

  const model = {
    async getClient(clientId: string, clientSecret: string | undefined): Promise<OAuth2Server.Client | false> {
      const c = clientRecs.get(clientId);
      if (!c) return false;
      if (c.secret !== undefined) {
        if (typeof clientSecret !== 'string' || !safeEqual(clientSecret, c.secret)) return false;
      } else if (clientSecret) {
        // a public client has no secret to check; one that sends a secret is confused
        return false;
      }
      return toClient(c);
    },
    async getUser(username: string, password: string): Promise<OAuth2Server.User | false> {
      const u = Object.values(users).find((x) => x.username === username);
      if (!u || !safeEqual(password, u.password)) return false;
      return { sub: u.username, kind: 'user', username: u.username } satisfies PeerUser;
    },
    async getUserFromClient(client: OAuth2Server.Client): Promise<OAuth2Server.User> {
      return { sub: client.id, kind: 'client' } satisfies PeerUser;
    },
    async validateScope(_user: OAuth2Server.User, client: OAuth2Server.Client, scope?: string[]): Promise<string[] | false> {
      const allowed = clientRecs.get(client.id)?.scopes ?? [];
      // no scope requested: the client's default scope (RFC 6749 §3.3) = all it may have
      if (!scope || scope.length === 0) return [...allowed];
      return scope.every((s) => allowed.includes(s)) ? scope : false;
    },
    async saveToken(token: OAuth2Server.Token, client: OAuth2Server.Client, user: OAuth2Server.User): Promise<OAuth2Server.Token> {
      const ctx = als.getStore();
      const grantType = ctx?.grantType ?? 'unknown';
      const now = new Date();
      const grantId = ctx?.presented?.grantId ?? randomBytes(8).toString('hex');
      const originGrantType = ctx?.presented?.originGrantType ?? grantType;
      const base = { issuedAt: now, clientId: client.id, user: user as PeerUser, scope: token.scope, grantType, originGrantType, grantId };
      const access: TokenRec = { kind: 'access_token', value: token.accessToken, expiresAt: token.accessTokenExpiresAt ?? new Date(now.getTime() + ttl * 1000), ...base };
      accessTokens.set(access.value, access);
      if (ctx) ctx.issuedAccess = access;
      if (token.refreshToken) {
        refreshTokens.set(token.refreshToken, {
          kind: 'refresh_token',
          value: token.refreshToken,
          expiresAt: token.refreshTokenExpiresAt ?? new Date(now.getTime() + refreshTtl * 1000),
          ...base,
        });
      }
      if (++saves % 500 === 0) sweep();
      return { ...token, client, user };
    },
    async getAccessToken(accessToken: string): Promise<OAuth2Server.Token | false> {
      const r = live(accessTokens, accessToken);
      if (!r) return false;
      const c = clientRecs.get(r.clientId);
      if (!c) return false;
      return { accessToken: r.value, accessTokenExpiresAt: r.expiresAt, ...(r.scope ? { scope: r.scope } : {}), client: toClient(c), user: r.user, rec: r };
    },
    async getRefreshToken(refreshToken: string): Promise<OAuth2Server.RefreshToken | false> {
      const r = live(refreshTokens, refreshToken);
      if (!r) return false;
      const c = clientRecs.get(r.clientId);
      if (!c) return false;
      const ctx = als.getStore();
      if (ctx) ctx.presented = r;
      return { refreshToken: r.value, refreshTokenExpiresAt: r.expiresAt, ...(r.scope ? { scope: r.scope } : {}), client: toClient(c), user: r.user };
    },
    async revokeToken(token: OAuth2Server.RefreshToken): Promise<boolean> {
      // rotation: the presented refresh token is deleted before the new one is issued;
      // of two concurrent refreshes with the same token only one gets here with `true`
      return refreshTokens.delete(token.refreshToken);
    },
  };

  // ---- extension grants (classes close over this peer's state)
  const jwtVerifyOptionsFor = (alg: JwtAssertionAlg) => ({
    algorithms: [alg],
    audience: jwtAudiences,
    requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti'],
    maxTokenAge: maxAssertionLifetimeS,
    clockTolerance: skewS,
  });

  const invalidGrant = (msg: string) => new OAuth2Server.InvalidGrantError(`Invalid grant: ${msg}`);

  async function verifyJwtAssertion(assertion: string, clientId: string): Promise<PeerUser> {
    const keys = jwtKeys.get(clientId) ?? [];
    if (keys.length === 0) throw invalidGrant(`no JWT assertion verification key is registered for client ${clientId}`);
    let alg: string | undefined;
    try {
      const header = decodeProtectedHeader(assertion);
      alg = header.alg;
      if (assertion.split('.').length !== 3) throw new Error('not a compact JWS');
    } catch {
      throw invalidGrant('assertion is not a JWT (RFC 7523 §2.1 expects a single compact-serialized JWS)');
    }
    const candidates = keys.filter((k) => k.alg === alg);
    if (candidates.length === 0) {
      throw invalidGrant(`JWT assertion alg ${String(alg)} does not match a key registered for client ${clientId} (registered: ${[...new Set(keys.map((k) => k.alg))].join(', ')})`);
    }
    let payload: JWTPayload | undefined;
    let matched: JwtKeyRec | undefined;
    let lastSigError = '';
    for (const k of candidates) {
      try {
        ({ payload } = await jwtVerify(assertion, k.key, jwtVerifyOptionsFor(k.alg)));
        matched = k;
        break;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') {
          lastSigError = 'JWT assertion signature verification failed (tampered, or signed with a key not registered for this client)';
          continue;
        }
        // jose checks claims only after the signature verified
        const claim = (err as { claim?: string }).claim;
        const extra = claim === 'aud' ? ` (accepted: ${jwtAudiences.join(', ')})` : '';
        throw invalidGrant(`JWT assertion rejected: ${(err as Error).message}${extra}`);
      }
    }
    if (!payload || !matched) throw invalidGrant(lastSigError || 'JWT assertion could not be verified');
    const nowS = Math.floor(Date.now() / 1000);
    if (typeof payload.exp === 'number' && payload.exp - nowS > maxAssertionLifetimeS + skewS) {
      throw invalidGrant(`JWT assertion "exp" is too far in the future (more than ${maxAssertionLifetimeS} s ahead)`);
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') throw invalidGrant('JWT assertion "sub" must be a non-empty string');
    if (typeof payload.iss !== 'string' || payload.iss === '') throw invalidGrant('JWT assertion "iss" must be a non-empty string');
    if (typeof payload.jti !== 'string' || payload.jti === '') throw invalidGrant('JWT assertion "jti" must be a non-empty string');
    if (matched.issuer !== undefined && payload.iss !== matched.issuer) {
      throw invalidGrant(`JWT assertion "iss" ${JSON.stringify(payload.iss)} is not the issuer registered for client ${clientId}`);
    }
    // replay: check and record with no await in between
    const jtiKey = `${clientId}\u0000${payload.iss}\u0000${payload.jti}`;
    const seen = seenJti.get(jtiKey);
    if (seen !== undefined && seen > Date.now()) throw invalidGrant(`JWT assertion "jti" ${JSON.stringify(payload.jti)} was already used (replay)`);
    seenJti.set(jtiKey, ((payload.exp ?? nowS) + skewS + 1) * 1000);
    return { sub: payload.sub, kind: 'jwt-bearer', assertionIssuer: payload.iss };
  }

  function verifySamlAssertion(assertion: string, clientId: string): PeerUser {
    const certs = samlCerts.get(clientId) ?? [];
    if (certs.length === 0) throw invalidGrant(`no SAML verification certificate is registered for client ${clientId}`);
    if (!/^[A-Za-z0-9_-]+$/.test(assertion)) {
      throw invalidGrant('SAML assertion must be base64url-encoded without padding or line breaks (RFC 7522 §2.1)');
    }
    const xml = Buffer.from(assertion, 'base64url').toString('utf8');
    let doc: Document;
    try {
      doc = parseXmlStrict(xml);
    } catch (err) {
      throw invalidGrant(`SAML assertion: ${(err as Error).message}`);
    }
    const root = doc.documentElement;
    if (root.namespaceURI !== SAML_NS || root.localName !== 'Assertion') {
      throw invalidGrant(`SAML assertion: the document element must be a SAML 2.0 Assertion, got {${root.namespaceURI ?? ''}}${root.localName}`);
    }
    const outerId = root.getAttribute('ID');
    if (!outerId) throw invalidGrant('SAML assertion has no ID attribute');

    // exactly one enveloped signature, a direct child of the Assertion
    const sigs = doc.getElementsByTagNameNS(DSIG_NS, 'Signature');
    if (sigs.length === 0) throw invalidGrant('SAML assertion is not signed');
    if (sigs.length > 1) throw invalidGrant('SAML assertion carries more than one ds:Signature');
    const sigNode = sigs.item(0)!;
    if (sigNode.parentNode !== root) throw invalidGrant('SAML assertion signature must be enveloped (a direct child of the Assertion)');

    let signedXml: string | undefined;
    let matched: SamlCertRec | undefined;
    let lastError = '';
    for (const c of certs) {
      // KeyInfo is ignored: only the registered certificate counts
      const sig = new SignedXml({ publicCert: c.certPem, getCertFromKeyInfo: () => null });
      for (const alg of Object.keys(sig.SignatureAlgorithms)) if (!SAML_SIGNATURE_ALGS.includes(alg)) delete sig.SignatureAlgorithms[alg];
      for (const alg of Object.keys(sig.HashAlgorithms)) if (!SAML_DIGEST_ALGS.includes(alg)) delete sig.HashAlgorithms[alg];
      try {
        sig.loadSignature(sigNode as unknown as Node);
        if (!sig.checkSignature(xml)) {
          lastError = 'SAML assertion signature is invalid: a reference digest does not match (content changed after signing)';
          continue;
        }
        const refs = sig.getSignedReferences();
        if (refs.length !== 1) {
          lastError = `SAML assertion signature must have exactly one reference, has ${refs.length}`;
          continue;
        }
        signedXml = refs[0];
        matched = c;
        break;
      } catch (err) {
        lastError = `SAML assertion signature is invalid: ${(err as Error).message}`;
      }
    }
    if (signedXml === undefined || !matched) throw invalidGrant(lastError || 'SAML assertion signature could not be verified');

    // From here on, read ONLY the signed bytes (defeats signature wrapping).
    let signedDoc: Document;
    try {
      signedDoc = parseXmlStrict(signedXml);
    } catch (err) {
      throw invalidGrant(`SAML assertion: signed reference unreadable: ${(err as Error).message}`);
    }
    const a = signedDoc.documentElement;
    if (a.namespaceURI !== SAML_NS || a.localName !== 'Assertion') throw invalidGrant('SAML assertion: the signed reference is not the Assertion');
    const id = a.getAttribute('ID');
    if (id !== outerId) throw invalidGrant('SAML assertion: the signature does not cover the Assertion element itself');
    if (a.getAttribute('Version') !== '2.0') throw invalidGrant('SAML assertion: Version must be 2.0');

    const now = Date.now();
    const skewMs = skewS * 1000;
    const fail = (m: string): never => {
      throw invalidGrant(`SAML assertion: ${m}`);
    };
    const time = (el: Element, attr: string, what: string, required: boolean): Date | undefined => {
      const v = el.getAttribute(attr);
      if (v === null || v === '') return required ? fail(`${what} is missing`) : undefined;
      try {
        return toDate(v, what);
      } catch (err) {
        return fail((err as Error).message);
      }
    };

    const issuerEl = samlChildren(a, 'Issuer')[0];
    const assertionIssuer = issuerEl?.textContent?.trim() ?? '';
    if (!assertionIssuer) fail('Issuer is missing');
    if (matched.issuer !== undefined && assertionIssuer !== matched.issuer) {
      fail(`Issuer ${JSON.stringify(assertionIssuer)} is not the issuer registered for client ${clientId}`);
    }

    const subject = samlChildren(a, 'Subject')[0] ?? fail('Subject is missing');
    const nameId = samlChildren(subject, 'NameID')[0]?.textContent?.trim() ?? '';
    if (!nameId) fail('Subject/NameID is missing');

    const bearer = samlChildren(subject, 'SubjectConfirmation').filter((sc) => sc.getAttribute('Method') === SAML_BEARER);
    if (bearer.length === 0) fail(`no SubjectConfirmation with Method ${SAML_BEARER}`);
    const problems: string[] = [];
    let confirmedUntil: Date | undefined;
    for (const sc of bearer) {
      const data = samlChildren(sc, 'SubjectConfirmationData')[0];
      if (!data) {
        problems.push('SubjectConfirmationData is missing');
        continue;
      }
      const recipient = data.getAttribute('Recipient');
      if (recipient !== tokenUrl) {
        problems.push(`SubjectConfirmationData Recipient ${JSON.stringify(recipient)} is not the token endpoint ${tokenUrl}`);
        continue;
      }
      let notOnOrAfter: Date | undefined;
      let notBefore: Date | undefined;
      try {
        notOnOrAfter = toDate(data.getAttribute('NotOnOrAfter'), 'SubjectConfirmationData NotOnOrAfter');
        const nb = data.getAttribute('NotBefore');
        if (nb) notBefore = toDate(nb, 'SubjectConfirmationData NotBefore');
      } catch (err) {
        problems.push((err as Error).message);
        continue;
      }
      if (notOnOrAfter.getTime() + skewMs <= now) {
        problems.push(`SubjectConfirmationData NotOnOrAfter ${notOnOrAfter.toISOString()} has passed (expired)`);
        continue;
      }
      if (notBefore && notBefore.getTime() - skewMs > now) {
        problems.push(`SubjectConfirmationData NotBefore ${notBefore.toISOString()} is in the future`);
        continue;
      }
      confirmedUntil = notOnOrAfter;
      break;
    }
    if (!confirmedUntil) fail(`no valid bearer SubjectConfirmation: ${problems.join('; ')}`);

    const conditions = samlChildren(a, 'Conditions')[0] ?? fail('Conditions is missing');
    const condNotOnOrAfter = time(conditions, 'NotOnOrAfter', 'Conditions NotOnOrAfter', true)!;
    if (condNotOnOrAfter.getTime() + skewMs <= now) fail(`Conditions NotOnOrAfter ${condNotOnOrAfter.toISOString()} has passed (expired)`);
    const condNotBefore = time(conditions, 'NotBefore', 'Conditions NotBefore', false);
    if (condNotBefore && condNotBefore.getTime() - skewMs > now) fail(`Conditions NotBefore ${condNotBefore.toISOString()} is in the future`);
    const latest = Math.max(condNotOnOrAfter.getTime(), confirmedUntil!.getTime());
    if (latest - now > (maxAssertionLifetimeS + skewS) * 1000) fail(`expiry is more than ${maxAssertionLifetimeS} s ahead`);
    const restrictions = samlChildren(conditions, 'AudienceRestriction');
    if (restrictions.length === 0) fail('Conditions/AudienceRestriction is missing');
    for (const r of restrictions) {
      const auds = samlChildren(r, 'Audience').map((x) => x.textContent?.trim() ?? '');
      if (!auds.some((x) => samlAudiences.includes(x))) {
        fail(`AudienceRestriction ${JSON.stringify(auds)} does not name this server (accepted: ${samlAudiences.join(', ')})`);
      }
    }

    if (samlChildren(a, 'AuthnStatement').length === 0) fail('AuthnStatement is missing');

    if (rejectSamlReplay) {
      const key = `${clientId}\u0000${assertionIssuer}\u0000${id}`;
      const seen = seenSamlIds.get(key);
      if (seen !== undefined && seen > now) fail(`assertion ID ${JSON.stringify(id)} was already used (replay)`);
      seenSamlIds.set(key, latest + skewMs + 1000);
    }
    return { sub: nameId, kind: 'saml2-bearer', assertionIssuer };
  }

  const makeAssertionGrant = (verify: (assertion: string, clientId: string) => Promise<PeerUser> | PeerUser) =>
    class AssertionGrant extends OAuth2Server.AbstractGrantType {
      async handle(request: OAuth2Server.Request, client: OAuth2Server.Client): Promise<OAuth2Server.Token | false> {
        const body = (request.body ?? {}) as Record<string, unknown>;
        const assertion = body.assertion;
        if (typeof assertion !== 'string' || assertion === '') throw new OAuth2Server.InvalidRequestError('Missing parameter: `assertion`');
        const scope = this.getScope(request) as string[] | undefined;
        const user = await verify(assertion, client.id);
        const validated = await this.validateScope(user, client, scope);
        if (!validated) throw new OAuth2Server.InvalidScopeError('Invalid scope: Requested scope is invalid');
        const token: OAuth2Server.Token = {
          accessToken: await this.generateAccessToken(client, user, validated),
          accessTokenExpiresAt: this.getAccessTokenExpiresAt(),
          scope: validated,
          client,
          user,
        };
        if (assertionRefreshTokens) {
          token.refreshToken = await this.generateRefreshToken(client, user, validated);
          token.refreshTokenExpiresAt = this.getRefreshTokenExpiresAt();
        }
        return model.saveToken(token, client, user);
      }
    };

  const oauth = new OAuth2Server({
    model,
    accessTokenLifetime: ttl,
    refreshTokenLifetime: refreshTtl,
    alwaysIssueNewRefreshToken: rotate,
    // client_id without a secret is accepted for these grants (then only a
    // public client passes model.getClient); client_credentials always needs a secret
    requireClientAuthentication: { password: false, refresh_token: false, [JWT_BEARER_GRANT]: false, [SAML2_BEARER_GRANT]: false },
    extendedGrantTypes: {
      [JWT_BEARER_GRANT]: makeAssertionGrant(verifyJwtAssertion),
      [SAML2_BEARER_GRANT]: makeAssertionGrant(verifySamlAssertion),
    },
  });

  // ---- client identification for stats / strict mode / revoke
  type ClientAuth = { method: 'client_secret_basic' | 'client_secret_post' | 'none'; id?: string; secret?: string } | { method: 'malformed' };
  const clientAuthOf = (req: IncomingMessage, form: Record<string, string>): ClientAuth => {
    const basic = parseBasic(req.headers.authorization);
    if (basic === 'malformed') return { method: 'malformed' };
    if (basic) return { method: 'client_secret_basic', id: basic.id, secret: basic.secret };
    if (form.client_secret !== undefined) return { method: 'client_secret_post', ...(form.client_id !== undefined ? { id: form.client_id } : {}), secret: form.client_secret };
    return { method: 'none', ...(form.client_id !== undefined ? { id: form.client_id } : {}) };
  };

  const isForm = (req: IncomingMessage) => (req.headers['content-type'] ?? '').toLowerCase().split(';')[0]!.trim() === 'application/x-www-form-urlencoded';

  const oauthError = (res: ServerResponse, status: number, error: string, description: string, extra: Record<string, string> = {}) =>
    sendJson(res, status, { error, error_description: description }, { pragma: 'no-cache', ...extra });

  // ---- /token
  const handleToken = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    stats.tokenRequests += 1;
    const raw = (await readBody(req, BODY_LIMIT)).toString('utf8');
    const { params, duplicate } = isForm(req) ? parseForm(raw) : { params: {} as Record<string, string>, duplicate: undefined };
    const grantType = params.grant_type ?? '(none)';
    bump(stats.byGrantType, grantType);
    const auth = clientAuthOf(req, params);
    bump(stats.byAuthMethod, auth.method);
    if (auth.method !== 'malformed' && auth.id) bump(stats.byClient, auth.id);

    if (tokenDelayMs > 0) await new Promise((r) => setTimeout(r, tokenDelayMs));

    const fail = (status: number, error: string, description: string, extra: Record<string, string> = {}) => {
      bump(stats.errors, error);
      oauthError(res, status, error, description, extra);
    };
    if (duplicate) return fail(400, 'invalid_request', `Invalid request: parameter \`${duplicate}\` is repeated (RFC 6749 §3.2)`);
    if (auth.method === 'malformed') return fail(401, 'invalid_client', 'Invalid client: malformed Basic credentials', { 'www-authenticate': 'Basic realm="Service"' });
    if (auth.method === 'client_secret_basic' && params.client_secret !== undefined) {
      return fail(400, 'invalid_request', 'Invalid request: more than one client authentication method used (RFC 6749 §2.3)');
    }
    if (strictClientAuth && auth.id && auth.method !== 'none') {
      const registered = clientRecs.get(auth.id)?.authMethod;
      if (registered && registered !== 'none' && registered !== auth.method) {
        return fail(401, 'invalid_client', `Invalid client: ${auth.id} is registered for ${registered}, request used ${auth.method}`, auth.method === 'client_secret_basic' ? { 'www-authenticate': 'Basic realm="Service"' } : {});
      }
    }

    // Hand oauth2-server the form-decoded Basic credentials (its basic-auth
    // parser does not undo the RFC 6749 §2.3.1 form-encoding).
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    if (auth.method === 'client_secret_basic') {
      headers.authorization = `Basic ${Buffer.from(`${auth.id ?? ''}:${auth.secret ?? ''}`, 'utf8').toString('base64')}`;
    }
    const request = new OAuth2Server.Request({ headers, method: req.method ?? 'POST', query: {}, body: params });
    const response = new OAuth2Server.Response({ headers: {} });
    const ctx: RequestCtx = { grantType };
    try {
      await als.run(ctx, () => oauth.token(request, response));
    } catch (err) {
      const status = typeof response.status === 'number' && response.status >= 400 ? response.status : ((err as { code?: number }).code ?? 500);
      const body = (response.body ?? {}) as { error?: string; error_description?: string };
      const error = body.error ?? (err as { name?: string }).name ?? 'server_error';
      const description = body.error_description ?? (err as Error).message;
      const extra: Record<string, string> = {};
      const wwwAuth = response.get('www-authenticate') as string | undefined;
      if (wwwAuth) extra['www-authenticate'] = wwwAuth;
      return fail(status, error, description, extra);
    }

    const body = { ...(response.body as Record<string, unknown>) };
    const issued = ctx.issuedAccess;
    if (omitExpiresIn) delete body.expires_in;
    else if (issued) body.expires_in = Math.max(0, Math.round((issued.expiresAt.getTime() - Date.now()) / 1000));
    if (grantType === 'refresh_token' && !rotate && !omitRefreshOnRefresh && ctx.presented) {
      // no rotation: the presented refresh token stays valid; hand it back
      body.refresh_token = ctx.presented.value;
    }
    stats.tokensIssued += 1;
    bump(stats.issuedByGrantType, grantType);
    sendJson(res, 200, body, { pragma: 'no-cache' });
  };

  // ---- revocation (RFC 7009)
  const revokeRec = (rec: TokenRec): number => {
    let n = 0;
    if (rec.kind === 'refresh_token') {
      if (refreshTokens.delete(rec.value)) n += 1;
      // RFC 7009 §2.1: SHOULD also invalidate access tokens of the same grant
      for (const [k, r] of accessTokens) if (r.grantId === rec.grantId && accessTokens.delete(k)) n += 1;
    } else if (accessTokens.delete(rec.value)) n += 1;
    return n;
  };
  const findRec = (token: string, hint?: string): TokenRec | undefined => {
    const order = hint === 'refresh_token' ? [refreshTokens, accessTokens] : [accessTokens, refreshTokens];
    for (const m of order) {
      const r = m.get(token);
      if (r) return r;
    }
    return undefined;
  };

  const handleRevoke = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    stats.revocationRequests += 1;
    const raw = (await readBody(req, BODY_LIMIT)).toString('utf8');
    if (!isForm(req)) return oauthError(res, 400, 'invalid_request', 'Invalid request: content must be application/x-www-form-urlencoded');
    const { params, duplicate } = parseForm(raw);
    if (duplicate) return oauthError(res, 400, 'invalid_request', `Invalid request: parameter \`${duplicate}\` is repeated`);
    const auth = clientAuthOf(req, params);
    const basicUsed = auth.method === 'client_secret_basic' || auth.method === 'malformed';
    const unauthorized = (why: string) =>
      oauthError(res, 401, 'invalid_client', `Invalid client: ${why}`, basicUsed ? { 'www-authenticate': 'Basic realm="Service"' } : {});
    if (auth.method === 'malformed') return unauthorized('malformed Basic credentials');
    if (!auth.id) return unauthorized('cannot retrieve client credentials');
    const client = await model.getClient(auth.id, auth.method === 'none' ? undefined : auth.secret);
    if (!client) return unauthorized('client is invalid');
    const token = params.token;
    if (!token) return oauthError(res, 400, 'invalid_request', 'Missing parameter: `token`');
    const rec = findRec(token, params.token_type_hint);
    if (rec) {
      if (rec.clientId !== client.id) return oauthError(res, 400, 'invalid_grant', 'Invalid grant: token was issued to another client');
      stats.tokensRevoked += revokeRec(rec);
    }
    // RFC 7009 §2.2: 200 also for unknown / already invalid tokens
    res.writeHead(200, { 'cache-control': 'no-store', 'content-length': '0' }).end();
  };

  // ---- protected resource (RFC 6750)
  const handleResource = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    stats.resourceRequests += 1;
    const raw = (await readBody(req, BODY_LIMIT)).toString('utf8');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const body = req.method === 'POST' && isForm(req) ? parseForm(raw).params : {};
    const request = new OAuth2Server.Request({ headers, method: req.method ?? 'GET', query: Object.fromEntries(url.searchParams), body });
    const response = new OAuth2Server.Response({ headers: {} });
    try {
      const token = await oauth.authenticate(request, response);
      const rec = (token as { rec?: TokenRec }).rec;
      stats.resourceAuthorized += 1;
      sendJson(res, 200, {
        ok: true,
        sub: rec?.user.sub,
        client_id: rec?.clientId,
        scope: rec?.scope?.join(' '),
        grant_type: rec?.grantType,
      });
    } catch (err) {
      const e = err as { code?: number; name?: string; message?: string };
      const extra: Record<string, string> = {};
      const wwwAuth = response.get('www-authenticate') as string | undefined;
      if (wwwAuth) extra['www-authenticate'] = wwwAuth;
      sendJson(res, e.code ?? 500, { error: e.name ?? 'server_error', error_description: e.message ?? String(err) }, extra);
    }
  };

  // ---- introspection (test helper, not RFC 7662 over the wire)
  const introspect = (token: string): NodeOauthIntrospection => {
    for (const m of [accessTokens, refreshTokens]) {
      const r = live(m, token);
      if (!r) continue;
      const out: NodeOauthIntrospection = {
        active: true,
        token_type_hint: r.kind,
        grant_type: r.grantType,
        origin_grant_type: r.originGrantType,
        client_id: r.clientId,
        sub: r.user.sub,
        exp: Math.floor(r.expiresAt.getTime() / 1000),
        iat: Math.floor(r.issuedAt.getTime() / 1000),
        grant_id: r.grantId,
      };
      if (r.user.username !== undefined) out.username = r.user.username;
      if (r.user.assertionIssuer !== undefined) out.assertion_issuer = r.user.assertionIssuer;
      if (r.scope && r.scope.length > 0) out.scope = r.scope.join(' ');
      return out;
    }
    return { active: false };
  };

  const expireToken = (token: string): boolean => {
    const r = accessTokens.get(token) ?? refreshTokens.get(token);
    if (!r) return false;
    r.expiresAt = new Date(Date.now() - 1000);
    return true;
  };

  const clearTokens = () => {
    accessTokens.clear();
    refreshTokens.clear();
    seenJti.clear();
    seenSamlIds.clear();
  };

  const statsJson = () => ({
    token_requests: stats.tokenRequests,
    tokens_issued: stats.tokensIssued,
    by_grant_type: stats.byGrantType,
    issued_by_grant_type: stats.issuedByGrantType,
    errors: stats.errors,
    by_client: stats.byClient,
    by_auth_method: stats.byAuthMethod,
    revocation_requests: stats.revocationRequests,
    tokens_revoked: stats.tokensRevoked,
    resource_requests: stats.resourceRequests,
    resource_authorized: stats.resourceAuthorized,
    token_delay_ms: tokenDelayMs,
    live_access_tokens: [...accessTokens.values()].filter((r) => r.expiresAt.getTime() > Date.now()).length,
    live_refresh_tokens: [...refreshTokens.values()].filter((r) => r.expiresAt.getTime() > Date.now()).length,
  });

  const readTokenParam = async (req: IncomingMessage): Promise<string | undefined> => {
    const raw = (await readBody(req, BODY_LIMIT)).toString('utf8');
    if ((req.headers['content-type'] ?? '').includes('json')) return (JSON.parse(raw || '{}') as { token?: string }).token;
    return new URLSearchParams(raw).get('token') ?? undefined;
  };

  // ---- test control endpoints
  const control = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    switch (`${req.method} ${url.pathname}`) {
      case 'GET /__stats':
        return sendJson(res, 200, statsJson());
      case 'POST /__reset':
        stats = emptyStats();
        if (url.searchParams.get('tokens') === '1') clearTokens();
        return sendJson(res, 200, statsJson());
      case 'POST /__token-delay': {
        const ms = Number(url.searchParams.get('ms'));
        if (!Number.isFinite(ms) || ms < 0) return sendJson(res, 400, { error: 'ms must be a number >= 0' });
        tokenDelayMs = ms;
        return sendJson(res, 200, { token_delay_ms: tokenDelayMs });
      }
      case 'POST /__introspect': {
        const token = await readTokenParam(req);
        if (!token) return sendJson(res, 400, { error: 'token is required' });
        return sendJson(res, 200, introspect(token));
      }
      case 'POST /__expire': {
        const token = await readTokenParam(req);
        if (!token) return sendJson(res, 400, { error: 'token is required' });
        return sendJson(res, 200, { expired: expireToken(token) });
      }
      case 'POST /__revoke': {
        const token = await readTokenParam(req);
        if (!token) return sendJson(res, 400, { error: 'token is required' });
        const rec = findRec(token);
        return sendJson(res, 200, { revoked: rec ? revokeRec(rec) > 0 : false });
      }
      case 'POST /__assertion-key': {
        // JSON: {"client_id","type":"jwt","alg":"RS256","key":<JWK|PEM>,"issuer"?}
        //    or {"client_id","type":"saml","cert":"<PEM>","issuer"?}
        //    or an AssertionKeysConfig object {"<client_id>":{"jwt":...,"saml":...}}
        const raw = (await readBody(req, BODY_LIMIT)).toString('utf8');
        let b: Record<string, unknown>;
        try {
          b = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          return sendJson(res, 400, { error: 'body must be JSON' });
        }
        try {
          if (typeof b.client_id === 'string') {
            const issuerOpt = typeof b.issuer === 'string' ? { issuer: b.issuer } : {};
            if (b.type === 'saml') {
              if (typeof b.cert !== 'string') return sendJson(res, 400, { error: 'cert (PEM) is required for type saml' });
              registerSamlCertificate(b.client_id, b.cert, issuerOpt);
            } else if (b.type === 'jwt' || b.type === undefined) {
              await registerAssertionKey(b.client_id, b.key as string | JWK, b.alg as JwtAssertionAlg, issuerOpt);
            } else {
              return sendJson(res, 400, { error: 'type must be "jwt" or "saml"' });
            }
          } else {
            await registerFromConfig(b as AssertionKeysConfig);
          }
        } catch (err) {
          return sendJson(res, 400, { error: (err as Error).message });
        }
        return sendJson(res, 200, { ok: true, jwt_keys: Object.fromEntries([...jwtKeys].map(([k, v]) => [k, v.length])), saml_certs: Object.fromEntries([...samlCerts].map(([k, v]) => [k, v.length])) });
      }
      default:
        return sendJson(res, 404, { error: 'unknown control endpoint' });
    }
  };

  const metadata = {
    issuer,
    token_endpoint: tokenUrl,
    revocation_endpoint: revocationUrl,
    grant_types_supported: ['password', 'refresh_token', 'client_credentials', JWT_BEARER_GRANT, SAML2_BEARER_GRANT],
    response_types_supported: [] as string[],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    scopes_supported: NODE_OAUTH_PEER_SCOPES,
  };

  handler = async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://peer.invalid');
    if (url.pathname.startsWith('/__')) return control(req, res, url);
    if (url.pathname === TOKEN_PATH) {
      if (req.method !== 'POST') return oauthError(res, 405, 'invalid_request', 'Invalid request: method must be POST', { allow: 'POST' });
      return handleToken(req, res);
    }
    if (url.pathname === REVOKE_PATH) {
      if (req.method !== 'POST') return oauthError(res, 405, 'invalid_request', 'Invalid request: method must be POST', { allow: 'POST' });
      return handleRevoke(req, res);
    }
    if (url.pathname === RESOURCE_PATH) return handleResource(req, res, url);
    if (req.method === 'GET' && url.pathname === METADATA_PATH) return sendJson(res, 200, metadata, { 'cache-control': 'max-age=0' });
    return sendJson(res, 404, { error: 'not_found' });
  };

  if (opts.assertionKeys) {
    try {
      await registerFromConfig(opts.assertionKeys);
    } catch (err) {
      server.close();
      server.closeAllConnections();
      throw err;
    }
  }

  let closed: Promise<void> | undefined;
  return {
    issuer,
    tokenUrl,
    revocationUrl,
    resourceUrl: `${issuer}${RESOURCE_PATH}`,
    discoveryUrl: `${issuer}${METADATA_PATH}`,
    host,
    port,
    clients,
    users,
    scopes: [...NODE_OAUTH_PEER_SCOPES],
    jwtAudiences: [...jwtAudiences],
    samlAudiences: [...samlAudiences],
    tokenRequests: (g?: string) => (g === undefined ? stats.tokenRequests : (stats.byGrantType[g] ?? 0)),
    tokensIssued: (g?: string) => (g === undefined ? stats.tokensIssued : (stats.issuedByGrantType[g] ?? 0)),
    stats: () => structuredClone(stats),
    resetStats() {
      stats = emptyStats();
    },
    setTokenDelay(ms: number) {
      tokenDelayMs = ms;
    },
    registerAssertionKey,
    registerSamlCertificate,
    clearAssertionKeys(clientId?: string) {
      if (clientId === undefined) {
        jwtKeys.clear();
        samlCerts.clear();
      } else {
        jwtKeys.delete(clientId);
        samlCerts.delete(clientId);
      }
    },
    introspect,
    revoke(token: string) {
      const rec = findRec(token);
      return rec ? revokeRec(rec) > 0 : false;
    },
    expireToken,
    clearTokens,
    oauth,
    close() {
      closed ??= new Promise<void>((resolvePromise) => {
        server.close(() => resolvePromise());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

// ---------------------------------------------------------------------------
// as a separate process (optionally inside a corp network namespace)

export const NODE_OAUTH_PEER_MAIN = resolve(dirname(fileURLToPath(import.meta.url)), 'node-oauth-peer-main.ts');
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The one JSON line node-oauth-peer-main prints on stdout once listening. */
export interface NodeOauthPeerReady {
  ready: true;
  issuer: string;
  token_url: string;
  revocation_url: string;
  resource_url: string;
  discovery_url: string;
  host: string;
  port: number;
  clients: NodeOauthClients;
  users: { alice: NodeOauthUser };
  scopes: string[];
  grant_types: string[];
  jwt_audiences: string[];
  saml_audiences: string[];
  access_token_ttl_s: number;
  rotate_refresh_tokens: boolean;
  omit_refresh_token_on_refresh: boolean;
  omit_expires_in: boolean;
}

/** GET /__stats */
export interface NodeOauthPeerStatsJson {
  token_requests: number;
  tokens_issued: number;
  by_grant_type: Record<string, number>;
  issued_by_grant_type: Record<string, number>;
  errors: Record<string, number>;
  by_client: Record<string, number>;
  by_auth_method: Record<string, number>;
  revocation_requests: number;
  tokens_revoked: number;
  resource_requests: number;
  resource_authorized: number;
  token_delay_ms: number;
  live_access_tokens: number;
  live_refresh_tokens: number;
}

export interface NodeOauthPeerProcessOptions {
  host?: string;
  port?: number;
  ttlS?: number;
  refreshTtlS?: number;
  tokenDelayMs?: number;
  /** default true; false passes --no-rotate */
  rotateRefreshTokens?: boolean;
  omitRefreshTokenOnRefresh?: boolean;
  omitExpiresIn?: boolean;
  strictClientAuth?: boolean;
  assertionRefreshTokens?: boolean;
  samlAudiences?: string[];
  jwtAudiences?: string[];
  /** written to a temp file and passed as --assertion-keys */
  assertionKeys?: AssertionKeysConfig;
  /** an existing --assertion-keys file */
  assertionKeysFile?: string;
  netns?: CorpNetwork;
  name?: string;
  readyTimeoutMs?: number;
  extraArgs?: string[];
}

export interface NodeOauthPeerProcess {
  managed: Managed;
  info: NodeOauthPeerReady;
  issuer: string;
  tokenUrl: string;
  revocationUrl: string;
  clients: NodeOauthClients;
  users: { alice: NodeOauthUser };
  /** GET /__stats (from inside the namespace when the peer runs in one). */
  stats(): Promise<NodeOauthPeerStatsJson>;
  introspect(token: string): Promise<NodeOauthIntrospection>;
  /** POST /__reset (tokens too with clearTokens) */
  reset(clearTokens?: boolean): Promise<void>;
  setTokenDelay(ms: number): Promise<void>;
  expireToken(token: string): Promise<boolean>;
  /** POST /__assertion-key with a JWT key (JWK or PEM; a KeyObject is exported as JWK). */
  registerAssertionKey(clientId: string, key: string | JWK | KeyObject, alg: JwtAssertionAlg, opts?: { issuer?: string }): Promise<void>;
  registerSamlCertificate(clientId: string, certPem: string, opts?: { issuer?: string }): Promise<void>;
  /** SIGTERM; resolves with the exit code (0 on a clean close). */
  stop(): Promise<number | null>;
}

export async function startNodeOauthPeerProcess(opts: NodeOauthPeerProcessOptions = {}): Promise<NodeOauthPeerProcess> {
  // loaded lazily: processes.ts imports vitest, which node-oauth-peer-main must not load
  const [{ spawnLogged }, { fetchInNamespace }] = await Promise.all([import('../support/processes.js'), import('../support/netns.js')]);
  const host = opts.host ?? opts.netns?.corpIp ?? '127.0.0.1';
  const args = ['--import', 'tsx', NODE_OAUTH_PEER_MAIN, '--host', host, '--port', String(opts.port ?? 0)];
  if (opts.ttlS !== undefined) args.push('--ttl', String(opts.ttlS));
  if (opts.refreshTtlS !== undefined) args.push('--refresh-ttl', String(opts.refreshTtlS));
  if (opts.tokenDelayMs !== undefined) args.push('--token-delay-ms', String(opts.tokenDelayMs));
  if (opts.rotateRefreshTokens === false) args.push('--no-rotate');
  if (opts.omitRefreshTokenOnRefresh) args.push('--omit-refresh-token-on-refresh');
  if (opts.omitExpiresIn) args.push('--omit-expires-in');
  if (opts.strictClientAuth) args.push('--strict-client-auth');
  if (opts.assertionRefreshTokens) args.push('--assertion-refresh-tokens');
  for (const a of opts.samlAudiences ?? []) args.push('--saml-audience', a);
  for (const a of opts.jwtAudiences ?? []) args.push('--jwt-audience', a);
  let tmpDir: string | undefined;
  if (opts.assertionKeys) {
    tmpDir = await mkdtemp(join(tmpdir(), 'tr-node-oauth-peer-'));
    const file = join(tmpDir, 'assertion-keys.json');
    await writeFile(file, JSON.stringify(opts.assertionKeys), { mode: 0o600 });
    args.push('--assertion-keys', file);
  }
  if (opts.assertionKeysFile) args.push('--assertion-keys', opts.assertionKeysFile);
  args.push(...(opts.extraArgs ?? []));

  const managed = spawnLogged(process.execPath, args, {
    name: opts.name ?? 'node-oauth-peer',
    cwd: REPO_ROOT,
    ...(opts.netns ? { netns: opts.netns } : {}),
  });
  let info: NodeOauthPeerReady;
  try {
    info = await managed.waitForJsonLine<NodeOauthPeerReady>((o) => o.ready === true, opts.readyTimeoutMs ?? 60_000);
  } catch (err) {
    managed.kill();
    throw err;
  } finally {
    if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
  }

  const call = async (path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<unknown> => {
    const url = `${info.issuer}${path}`;
    if (opts.netns) {
      const r = await fetchInNamespace(opts.netns, url, init);
      if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status} ${r.body}`);
      return JSON.parse(r.body) as unknown;
    }
    const r = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
    if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status} ${await r.text()}`);
    return (await r.json()) as unknown;
  };
  const postJson = (path: string, body: unknown) => call(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  return {
    managed,
    info,
    issuer: info.issuer,
    tokenUrl: info.token_url,
    revocationUrl: info.revocation_url,
    clients: info.clients,
    users: info.users,
    stats: async () => (await call('/__stats')) as NodeOauthPeerStatsJson,
    introspect: async (token) => (await postJson('/__introspect', { token })) as NodeOauthIntrospection,
    reset: async (clear = false) => {
      await call(`/__reset${clear ? '?tokens=1' : ''}`, { method: 'POST' });
    },
    setTokenDelay: async (ms) => {
      await call(`/__token-delay?ms=${ms}`, { method: 'POST' });
    },
    expireToken: async (token) => ((await postJson('/__expire', { token })) as { expired: boolean }).expired,
    registerAssertionKey: async (clientId, key, alg, o = {}) => {
      const k = key instanceof KeyObject ? ((key.type === 'private' ? createPublicKey(key) : key).export({ format: 'jwk' }) as JWK) : key;
      await postJson('/__assertion-key', { client_id: clientId, type: 'jwt', alg, key: k, ...o });
    },
    registerSamlCertificate: async (clientId, certPem, o = {}) => {
      await postJson('/__assertion-key', { client_id: clientId, type: 'saml', cert: certPem, ...o });
    },
    stop: () => managed.stop('SIGTERM', 10_000),
  };
}
