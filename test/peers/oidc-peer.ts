// A real OAuth 2.0 / OIDC authorization server for tests: oidc-provider@9 over
// plain http, client_credentials enabled for two confidential clients.
//
// No mocks: tokens are issued by oidc-provider itself and kept in a per-peer
// in-memory store, so `introspect()` can prove a token really came from here.
import { createServer, IncomingMessage } from 'node:http';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { Adapter, AdapterPayload, Provider as ProviderClass } from 'oidc-provider';

export interface OidcClientCreds {
  client_id: string;
  client_secret: string;
}

export interface IntrospectionResult {
  active: boolean;
  /** 'ClientCredentials' | 'AccessToken' when active */
  kind?: string;
  client_id?: string;
  scope?: string;
  exp?: number;
  iat?: number;
}

export interface OidcPeer {
  /** e.g. http://127.0.0.1:41234 (no trailing slash) */
  issuer: string;
  /** `${issuer}/token` */
  tokenUrl: string;
  /** `${issuer}/.well-known/openid-configuration` */
  discoveryUrl: string;
  host: string;
  port: number;
  clients: {
    /** token_endpoint_auth_method: client_secret_basic */
    basic: OidcClientCreds;
    /** token_endpoint_auth_method: client_secret_post */
    post: OidcClientCreds;
  };
  /** Scopes the clients may ask for with client_credentials. */
  scopes: string[];
  /** Every POST to the token endpoint so far, successful or not. */
  tokenRequests(): number;
  /** Successful token responses so far (oidc-provider 'grant.success'). */
  tokensIssued(): number;
  /** Counters, including per client_id and per client auth method used. */
  stats(): OidcPeerStats;
  /** Zero all counters. */
  resetStats(): void;
  /** Delay every token endpoint request by `ms` before it is handled (0 = off). Widens race windows. */
  setTokenDelay(ms: number): void;
  /** The underlying oidc-provider instance (Koa app). */
  provider: ProviderClass;
  close(): Promise<void>;
}

export interface OidcPeerOptions {
  host?: string;
  port?: number;
  /** TTL of client_credentials access tokens, seconds. Default 600. */
  accessTokenTtlS?: number;
  /** Initial artificial delay for token endpoint requests, ms. Default 0. */
  tokenDelayMs?: number;
  /**
   * Reject (401 invalid_client) a client that authenticates with the other
   * secret method than the one it is registered for. oidc-provider 9 alone
   * accepts either. Default true.
   */
  strictClientAuth?: boolean;
}

export type TokenAuthMethod = 'client_secret_basic' | 'client_secret_post';

export interface OidcPeerStats {
  /** every POST to the token endpoint */
  tokenRequests: number;
  /** successful token responses */
  tokensIssued: number;
  /** token requests per client_id named in the request (Basic header or form) */
  byClient: Record<string, number>;
  /** token requests per auth method seen: client_secret_basic | client_secret_post | jwt | none */
  byAuthMethod: Record<string, number>;
}

export const PEER_SCOPES = ['api:read', 'api:write'];

const TOKEN_PATH = '/token';

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

export async function startOidcPeer(opts: OidcPeerOptions = {}): Promise<OidcPeer> {
  const host = opts.host ?? '127.0.0.1';
  const ttl = opts.accessTokenTtlS ?? 600;
  const { Provider } = await loadOidcProvider();

  const clients = {
    basic: { client_id: 'tr-basic', client_secret: secret() },
    post: { client_id: 'tr-post', client_secret: secret() },
  };
  const registeredMethod = new Map<string, TokenAuthMethod>([
    [clients.basic.client_id, 'client_secret_basic'],
    [clients.post.client_id, 'client_secret_post'],
  ]);
  const strict = opts.strictClientAuth ?? true;

  const emptyStats = (): OidcPeerStats => ({ tokenRequests: 0, tokensIssued: 0, byClient: {}, byAuthMethod: {} });
  let stats = emptyStats();
  let tokenDelayMs = opts.tokenDelayMs ?? 0;
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;

  const sendJson = (res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...extra });
    res.end(JSON.stringify(body));
  };

  // Token endpoint front: count, classify, enforce the registered auth method
  // (oidc-provider 9 itself accepts client_secret_basic and client_secret_post
  // interchangeably for any client with a secret), optionally delay, then
  // replay the buffered request into oidc-provider.
  const tokenFront = async (req: IncomingMessage, res: ServerResponse, h: (req: IncomingMessage, res: ServerResponse) => void) => {
    stats.tokenRequests += 1;
    const body = await readBody(req, 64 * 1024);
    const form = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')
      ? new URLSearchParams(body.toString('utf8'))
      : new URLSearchParams();
    const authz = req.headers.authorization ?? '';
    let clientId: string | undefined;
    let method: string;
    if (/^basic /i.test(authz)) {
      method = 'client_secret_basic';
      const decoded = Buffer.from(authz.slice(6).trim(), 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      try {
        clientId = decodeURIComponent((i >= 0 ? decoded.slice(0, i) : decoded).replace(/\+/g, ' '));
      } catch {
        clientId = undefined;
      }
    } else if (form.has('client_secret')) {
      method = 'client_secret_post';
      clientId = form.get('client_id') ?? undefined;
    } else {
      method = form.has('client_assertion') ? 'jwt' : 'none';
      clientId = form.get('client_id') ?? undefined;
    }
    stats.byAuthMethod[method] = (stats.byAuthMethod[method] ?? 0) + 1;
    if (clientId) stats.byClient[clientId] = (stats.byClient[clientId] ?? 0) + 1;

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
    if (req.method === 'POST' && url.pathname === TOKEN_PATH) {
      tokenFront(req, res, h).catch(fail);
      return;
    }
    h(req, res);
  });
  server.keepAliveTimeout = 5_000;

  // Test-only control endpoints, so a peer running in another process (or in a
  // network namespace) can be asked about itself. Not part of oidc-provider.
  const control = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const route = `${req.method} ${url.pathname}`;
    switch (route) {
      case 'GET /__stats':
        return sendJson(res, 200, {
          token_requests: stats.tokenRequests,
          tokens_issued: stats.tokensIssued,
          by_client: stats.byClient,
          by_auth_method: stats.byAuthMethod,
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

  const provider: ProviderClass = new Provider(issuer, {
    adapter: createAdapterFactory(),
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
    features: {
      clientCredentials: { enabled: true },
      // With resource indicators on, a `resource` parameter would switch the token
      // to a resource-server audience; the product does not use it.
      resourceIndicators: { enabled: false },
      devInteractions: { enabled: false },
      introspection: { enabled: false },
    },
    ttl: {
      ClientCredentials: ttl,
      AccessToken: ttl,
    },
  });
  provider.on('grant.success', () => {
    stats.tokensIssued += 1;
  });
  handler = provider.callback();

  let closed: Promise<void> | undefined;
  return {
    issuer,
    tokenUrl: `${issuer}${TOKEN_PATH}`,
    discoveryUrl: `${issuer}/.well-known/openid-configuration`,
    host,
    port,
    clients,
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
 * Ask the peer whether `token` is an access token it issued and that is still
 * valid. Works for client_credentials tokens (ClientCredentials model) and for
 * user access tokens (AccessToken model).
 */
export async function introspect(peer: Pick<OidcPeer, 'provider'>, token: string): Promise<IntrospectionResult> {
  for (const model of [peer.provider.ClientCredentials, peer.provider.AccessToken]) {
    const found = await model.find(token);
    if (found && !found.isExpired) {
      const result: IntrospectionResult = { active: true, kind: found.kind };
      if (found.clientId !== undefined) result.client_id = found.clientId;
      if (found.scope !== undefined) result.scope = found.scope;
      if (found.exp !== undefined) result.exp = found.exp;
      if (found.iat !== undefined) result.iat = found.iat;
      return result;
    }
  }
  return { active: false };
}
