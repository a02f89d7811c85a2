// Start test/peers/oidc-peer-main.ts as its own process (optionally inside a
// corp network namespace) and talk to its control endpoints.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetchInNamespace } from '../support/netns.js';
import type { CorpNetwork } from '../support/netns.js';
import { spawnLogged } from '../support/processes.js';
import type { Managed } from '../support/processes.js';
import type { IntrospectionResult, LoginOptions, OidcClientCreds, OidcPeerClients, PublicJwk, RefreshTokenPolicy } from './oidc-peer.js';
import type { LoginCredentials } from './oidc-login.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const OIDC_PEER_MAIN = resolve(REPO_ROOT, 'test', 'peers', 'oidc-peer-main.ts');

export interface OidcPeerReady {
  ready: true;
  issuer: string;
  token_url: string;
  discovery_url: string;
  authorization_url: string;
  revocation_url: string;
  jwks_url: string;
  callback_url: string;
  host: string;
  port: number;
  clients: {
    basic: OidcClientCreds;
    post: OidcClientCreds;
    code: OidcClientCreds;
    code_post: OidcClientCreds;
    pkjwt: { client_id: string };
  };
  scopes: string[];
  user: LoginCredentials;
  redirect_uris: string[];
  pkjwt: { client_id: string; registered: boolean; alg: string | null };
}

export interface OidcPeerStats {
  token_requests: number;
  tokens_issued: number;
  by_client: Record<string, number>;
  by_auth_method: Record<string, number>;
  /** token requests per grant_type */
  by_grant_type: Record<string, number>;
  /** successful token responses per grant_type */
  issued_by_grant_type: Record<string, number>;
  revocation_requests: number;
  logins: number;
  login_failures: number;
  consents: number;
  denials: number;
  token_delay_ms: number;
}

export interface OidcPeerProcessOptions {
  host?: string;
  port?: number;
  /** access token TTL, seconds (--ttl) */
  ttlS?: number;
  tokenDelayMs?: number;
  netns?: CorpNetwork;
  name?: string;
  readyTimeoutMs?: number;
  /** redirect_uris of the code clients (--redirect-uri, repeated). Default: the peer's own /__callback. */
  redirectUris?: string[];
  username?: string;
  password?: string;
  /** --refresh-tokens; default 'always' */
  issueRefreshToken?: RefreshTokenPolicy;
  /** --refresh-rotation on|off; default true */
  rotateRefreshToken?: boolean;
  /** --refresh-ttl */
  refreshTokenTtlS?: number;
  /** --code-ttl */
  authorizationCodeTtlS?: number;
  /** --pkce required|optional; default true */
  requirePkce?: boolean;
  /** Public JWKS of tr-pkjwt: written to a temporary file and passed as --pkjwt-jwks. */
  privateKeyJwtJwks?: { keys: PublicJwk[] };
  /** --pkjwt-jwks FILE (instead of privateKeyJwtJwks) */
  privateKeyJwtJwksFile?: string;
  /** --pkjwt-alg */
  privateKeyJwtAlg?: string;
}

export interface OidcPeerProcess {
  managed: Managed;
  info: OidcPeerReady;
  issuer: string;
  tokenUrl: string;
  authorizationUrl: string;
  revocationUrl: string;
  callbackUrl: string;
  /** Same shape as the in-process peer's `clients`. */
  clients: OidcPeerClients;
  user: LoginCredentials;
  /** GET /__stats (from inside the namespace when the peer runs in one). */
  stats(): Promise<OidcPeerStats>;
  /** POST /__reset: zero all counters. */
  resetStats(): Promise<void>;
  /** POST /__introspect. */
  introspect(token: string): Promise<IntrospectionResult>;
  /**
   * POST /__login: the peer process logs its user in (and consents, or denies)
   * starting at `authorizeUrl`, from where it runs (inside the namespace when
   * it runs in one). Resolves with the redirect Location to the client's
   * redirect_uri (code+state, or error=access_denied), not requested.
   */
  login(authorizeUrl: string, opts?: LoginOptions): Promise<string>;
  /** POST /__redirect-uris */
  setRedirectUris(uris: string[]): Promise<void>;
  /** POST /__pkjwt-jwks */
  setPrivateKeyJwtJwks(jwks: { keys: PublicJwk[] }, alg?: string): Promise<void>;
  /** SIGTERM; resolves with the exit code (0 on a clean close). */
  stop(): Promise<number | null>;
}

export async function startOidcPeerProcess(opts: OidcPeerProcessOptions = {}): Promise<OidcPeerProcess> {
  const host = opts.host ?? opts.netns?.corpIp ?? '127.0.0.1';
  const args = ['--import', 'tsx', OIDC_PEER_MAIN, '--host', host, '--port', String(opts.port ?? 0)];
  if (opts.ttlS !== undefined) args.push('--ttl', String(opts.ttlS));
  if (opts.tokenDelayMs !== undefined) args.push('--token-delay-ms', String(opts.tokenDelayMs));
  for (const u of opts.redirectUris ?? []) args.push('--redirect-uri', u);
  if (opts.username !== undefined) args.push('--username', opts.username);
  if (opts.password !== undefined) args.push('--password', opts.password);
  if (opts.issueRefreshToken !== undefined) args.push('--refresh-tokens', opts.issueRefreshToken);
  if (opts.rotateRefreshToken !== undefined) args.push('--refresh-rotation', opts.rotateRefreshToken ? 'on' : 'off');
  if (opts.refreshTokenTtlS !== undefined) args.push('--refresh-ttl', String(opts.refreshTokenTtlS));
  if (opts.authorizationCodeTtlS !== undefined) args.push('--code-ttl', String(opts.authorizationCodeTtlS));
  if (opts.requirePkce !== undefined) args.push('--pkce', opts.requirePkce ? 'required' : 'optional');
  if (opts.privateKeyJwtAlg !== undefined) args.push('--pkjwt-alg', opts.privateKeyJwtAlg);
  let tmpDir: string | undefined;
  if (opts.privateKeyJwtJwks) {
    tmpDir = mkdtempSync(join(tmpdir(), 'oidc-peer-'));
    const file = join(tmpDir, 'pkjwt-jwks.json');
    writeFileSync(file, JSON.stringify(opts.privateKeyJwtJwks), { mode: 0o600 });
    args.push('--pkjwt-jwks', file);
  } else if (opts.privateKeyJwtJwksFile !== undefined) {
    args.push('--pkjwt-jwks', opts.privateKeyJwtJwksFile);
  }
  const managed = spawnLogged(process.execPath, args, {
    name: opts.name ?? 'oidc-peer',
    cwd: REPO_ROOT,
    ...(opts.netns ? { netns: opts.netns } : {}),
  });
  let info: OidcPeerReady;
  try {
    info = await managed.waitForJsonLine<OidcPeerReady>((o) => o.ready === true, opts.readyTimeoutMs ?? 60_000);
  } catch (err) {
    managed.kill();
    throw err;
  } finally {
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
  }

  const call = async (path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) => {
    const url = `${info.issuer}${path}`;
    if (opts.netns) {
      const r = await fetchInNamespace(opts.netns, url, { ...init, timeoutMs: 30_000 });
      if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status} ${r.body}`);
      return JSON.parse(r.body) as unknown;
    }
    const r = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
    if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status} ${await r.text()}`);
    return (await r.json()) as unknown;
  };
  const postJson = (path: string, body: unknown) =>
    call(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  return {
    managed,
    info,
    issuer: info.issuer,
    tokenUrl: info.token_url,
    authorizationUrl: info.authorization_url,
    revocationUrl: info.revocation_url,
    callbackUrl: info.callback_url,
    clients: {
      basic: info.clients.basic,
      post: info.clients.post,
      code: info.clients.code,
      codePost: info.clients.code_post,
      pkjwt: info.clients.pkjwt,
    },
    user: info.user,
    stats: async () => (await call('/__stats')) as OidcPeerStats,
    resetStats: async () => {
      await call('/__reset', { method: 'POST' });
    },
    introspect: async (token) => (await postJson('/__introspect', { token })) as IntrospectionResult,
    login: async (authorizeUrl, lo = {}) => {
      const r = (await postJson('/__login', {
        authorize_url: authorizeUrl,
        ...(lo.username !== undefined ? { username: lo.username } : {}),
        ...(lo.password !== undefined ? { password: lo.password } : {}),
        deny: lo.deny === true,
      })) as { location: string };
      return r.location;
    },
    setRedirectUris: async (uris) => {
      await postJson('/__redirect-uris', { redirect_uris: uris });
    },
    setPrivateKeyJwtJwks: async (jwks, alg) => {
      await postJson('/__pkjwt-jwks', { keys: jwks.keys, ...(alg !== undefined ? { alg } : {}) });
    },
    stop: () => managed.stop('SIGTERM', 10_000),
  };
}
