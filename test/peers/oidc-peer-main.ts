// CLI for the oidc-provider test peer, for running it as its own process
// (e.g. inside a network namespace):
//
//   node --import tsx test/peers/oidc-peer-main.ts --host H --port P [--ttl S] [--token-delay-ms MS]
//     [--redirect-uri URL]... [--username NAME] [--password PW]
//     [--refresh-tokens always|offline_access|never] [--refresh-rotation on|off] [--refresh-ttl S]
//     [--code-ttl S] [--pkce required|optional] [--pkjwt-jwks FILE] [--pkjwt-alg ALG]
//
// Prints exactly one JSON line to stdout once listening:
//   {"ready":true,"issuer":"...","token_url":"...","discovery_url":"...","authorization_url":"...",
//    "revocation_url":"...","jwks_url":"...","callback_url":"...","host":"...","port":N,
//    "clients":{"basic":{..},"post":{..},"code":{..},"code_post":{..},"pkjwt":{"client_id":".."}},
//    "scopes":[...],"user":{"username":"alice","password":"..."},"redirect_uris":[...],
//    "pkjwt":{"client_id":"tr-pkjwt","registered":bool,"alg":"RS256"|null}}
// Everything else goes to stderr. Serves until SIGTERM/SIGINT, then closes and exits 0.
// Control endpoints on the same server: GET /__stats -> {"token_requests":N,"tokens_issued":N,
// "by_grant_type":{...},...}, POST /__introspect (token=...) -> {"active":bool,...}, POST /__reset,
// POST /__token-delay?ms=N, POST /__login {"authorize_url","username"?,"password"?,"deny"?} ->
// {"location"}, POST /__redirect-uris {"redirect_uris":[...]}, POST /__pkjwt-jwks {"keys":[...],"alg"?}.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startOidcPeer } from './oidc-peer.js';
import type { PublicJwk, RefreshTokenPolicy } from './oidc-peer.js';

// oidc-provider's notices use console.info/console.log (stdout); keep stdout for the ready line only.
console.info = console.error;
console.log = console.error;

const USAGE =
  'usage: oidc-peer-main --host H --port P [--ttl S] [--token-delay-ms MS] [--redirect-uri URL]... ' +
  '[--username NAME] [--password PW] [--refresh-tokens always|offline_access|never] [--refresh-rotation on|off] ' +
  '[--refresh-ttl S] [--code-ttl S] [--pkce required|optional] [--pkjwt-jwks FILE] [--pkjwt-alg ALG]';

function usage(msg: string): never {
  process.stderr.write(`oidc-peer-main: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function intArg(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) usage(`--${name} must be an integer >= 0, got ${JSON.stringify(value)}`);
  return n;
}

function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) usage(`--${name} must be one of ${allowed.join('|')}, got ${JSON.stringify(value)}`);
  return value as T;
}

let values: Record<string, string | boolean | string[] | undefined>;
try {
  ({ values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      ttl: { type: 'string' },
      'token-delay-ms': { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true },
      username: { type: 'string' },
      password: { type: 'string' },
      'refresh-tokens': { type: 'string' },
      'refresh-rotation': { type: 'string' },
      'refresh-ttl': { type: 'string' },
      'code-ttl': { type: 'string' },
      pkce: { type: 'string' },
      'pkjwt-jwks': { type: 'string' },
      'pkjwt-alg': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  usage((err as Error).message);
}

const str = (name: string) => values[name] as string | undefined;
const host = values.host as string;
const port = intArg('port', values.port as string, 0);
if (port > 65535) usage('--port must be <= 65535');
const ttl = intArg('ttl', str('ttl'), 600);
if (ttl < 1) usage('--ttl must be >= 1');
const tokenDelayMs = intArg('token-delay-ms', str('token-delay-ms'), 0);
const redirectUris = values['redirect-uri'] as string[] | undefined;
for (const u of redirectUris ?? []) {
  if (!URL.canParse(u)) usage(`--redirect-uri must be an absolute URL, got ${JSON.stringify(u)}`);
}
const refreshTokens = oneOf<RefreshTokenPolicy>('refresh-tokens', str('refresh-tokens'), ['always', 'offline_access', 'never']);
const rotation = oneOf('refresh-rotation', str('refresh-rotation'), ['on', 'off'] as const);
const refreshTtl = str('refresh-ttl') === undefined ? undefined : intArg('refresh-ttl', str('refresh-ttl'), 0);
if (refreshTtl !== undefined && refreshTtl < 1) usage('--refresh-ttl must be >= 1');
const codeTtl = str('code-ttl') === undefined ? undefined : intArg('code-ttl', str('code-ttl'), 0);
if (codeTtl !== undefined && codeTtl < 1) usage('--code-ttl must be >= 1');
const pkce = oneOf('pkce', str('pkce'), ['required', 'optional'] as const);
let pkjwtJwks: { keys: PublicJwk[] } | undefined;
const jwksFile = str('pkjwt-jwks');
if (jwksFile !== undefined) {
  try {
    pkjwtJwks = JSON.parse(readFileSync(jwksFile, 'utf8')) as { keys: PublicJwk[] };
  } catch (err) {
    usage(`--pkjwt-jwks ${jwksFile}: ${(err as Error).message}`);
  }
}
const pkjwtAlg = str('pkjwt-alg');

const peer = await startOidcPeer({
  host,
  port,
  accessTokenTtlS: ttl,
  tokenDelayMs,
  ...(redirectUris ? { redirectUris } : {}),
  ...(str('username') !== undefined ? { username: str('username') } : {}),
  ...(str('password') !== undefined ? { password: str('password') } : {}),
  ...(refreshTokens ? { issueRefreshToken: refreshTokens } : {}),
  ...(rotation ? { rotateRefreshToken: rotation === 'on' } : {}),
  ...(refreshTtl !== undefined ? { refreshTokenTtlS: refreshTtl } : {}),
  ...(codeTtl !== undefined ? { authorizationCodeTtlS: codeTtl } : {}),
  ...(pkce ? { requirePkce: pkce === 'required' } : {}),
  ...(pkjwtJwks ? { privateKeyJwtJwks: pkjwtJwks } : {}),
  ...(pkjwtAlg ? { privateKeyJwtAlg: pkjwtAlg } : {}),
}).catch((err: unknown) => usage(`cannot start: ${(err as Error).message ?? String(err)}`));

process.stdout.write(
  `${JSON.stringify({
    ready: true,
    issuer: peer.issuer,
    token_url: peer.tokenUrl,
    discovery_url: peer.discoveryUrl,
    authorization_url: peer.authorizationUrl,
    revocation_url: peer.revocationUrl,
    jwks_url: peer.jwksUrl,
    callback_url: peer.callbackUrl,
    host: peer.host,
    port: peer.port,
    clients: {
      basic: peer.clients.basic,
      post: peer.clients.post,
      code: peer.clients.code,
      code_post: peer.clients.codePost,
      pkjwt: peer.clients.pkjwt,
    },
    scopes: peer.scopes,
    user: peer.user,
    redirect_uris: peer.redirectUris,
    pkjwt: { client_id: peer.clients.pkjwt.client_id, registered: peer.privateKeyJwtAlg !== undefined, alg: peer.privateKeyJwtAlg ?? null },
  })}\n`,
);

let stopping = false;
const shutdown = (signal: NodeJS.Signals) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`oidc-peer-main: ${signal}, closing\n`);
  const force = setTimeout(() => {
    process.stderr.write('oidc-peer-main: close timed out\n');
    process.exit(1);
  }, 5_000);
  force.unref();
  peer.close().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`oidc-peer-main: close failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
