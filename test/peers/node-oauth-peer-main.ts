// CLI for the @node-oauth/oauth2-server test peer, for running it as its own
// process (e.g. inside a network namespace):
//
//   node --import tsx test/peers/node-oauth-peer-main.ts --host H --port P
//        [--ttl S] [--refresh-ttl S] [--token-delay-ms MS]
//        [--no-rotate] [--omit-refresh-token-on-refresh] [--omit-expires-in]
//        [--strict-client-auth] [--assertion-refresh-tokens]
//        [--assertion-keys FILE] [--saml-audience URI]... [--jwt-audience URI]...
//        [--alice-password PW]
//
// --assertion-keys FILE: JSON {"<client_id>": {"jwt": [{"alg":"RS256","key":<public JWK | SPKI PEM | cert PEM>,"issuer"?:"..."}],
//                                              "saml": ["<cert PEM>" | {"cert":"<PEM>","issuer"?:"..."}]}}
//
// Prints exactly one JSON line to stdout once listening:
//   {"ready":true,"issuer","token_url","revocation_url","resource_url","discovery_url","host","port",
//    "clients":{"basic":{client_id,client_secret},"post":{...},"public":{client_id}},
//    "users":{"alice":{"username":"alice","password":"..."}},"scopes":[...],"grant_types":[...],
//    "jwt_audiences":[...],"saml_audiences":[...],"access_token_ttl_s":N,...}
// Everything else goes to stderr. Serves until SIGTERM/SIGINT, then closes and exits 0.
// Control endpoints on the same server: GET /__stats, POST /__introspect (token=... or {"token"}),
// POST /__reset[?tokens=1], POST /__token-delay?ms=N, POST /__expire, POST /__revoke,
// POST /__assertion-key {"client_id","type":"jwt","alg","key"} | {"client_id","type":"saml","cert"}.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { JWT_BEARER_GRANT, SAML2_BEARER_GRANT, startNodeOauthPeer } from './node-oauth-peer.js';
import type { AssertionKeysConfig } from './node-oauth-peer.js';

console.info = console.error;
console.log = console.error;

const USAGE =
  'usage: node-oauth-peer-main --host H --port P [--ttl S] [--refresh-ttl S] [--token-delay-ms MS] [--no-rotate] ' +
  '[--omit-refresh-token-on-refresh] [--omit-expires-in] [--strict-client-auth] [--assertion-refresh-tokens] ' +
  '[--assertion-keys FILE] [--saml-audience URI]... [--jwt-audience URI]... [--alice-password PW]';

function usage(msg: string): never {
  process.stderr.write(`node-oauth-peer-main: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function intArg(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) usage(`--${name} must be an integer >= 0, got ${JSON.stringify(value)}`);
  return n;
}

type Values = {
  host?: string;
  port?: string;
  ttl?: string;
  'refresh-ttl'?: string;
  'token-delay-ms'?: string;
  'no-rotate'?: boolean;
  'omit-refresh-token-on-refresh'?: boolean;
  'omit-expires-in'?: boolean;
  'strict-client-auth'?: boolean;
  'assertion-refresh-tokens'?: boolean;
  'assertion-keys'?: string;
  'saml-audience'?: string[];
  'jwt-audience'?: string[];
  'alice-password'?: string;
};

let values: Values;
try {
  ({ values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      ttl: { type: 'string' },
      'refresh-ttl': { type: 'string' },
      'token-delay-ms': { type: 'string' },
      'no-rotate': { type: 'boolean' },
      'omit-refresh-token-on-refresh': { type: 'boolean' },
      'omit-expires-in': { type: 'boolean' },
      'strict-client-auth': { type: 'boolean' },
      'assertion-refresh-tokens': { type: 'boolean' },
      'assertion-keys': { type: 'string' },
      'saml-audience': { type: 'string', multiple: true },
      'jwt-audience': { type: 'string', multiple: true },
      'alice-password': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  usage((err as Error).message);
}

const host = values.host ?? '127.0.0.1';
const port = intArg('port', values.port, 0);
if (port > 65535) usage('--port must be <= 65535');
const ttl = intArg('ttl', values.ttl, 600);
if (ttl < 1) usage('--ttl must be >= 1');
const refreshTtl = intArg('refresh-ttl', values['refresh-ttl'], 86_400);
if (refreshTtl < 1) usage('--refresh-ttl must be >= 1');
const tokenDelayMs = intArg('token-delay-ms', values['token-delay-ms'], 0);

let assertionKeys: AssertionKeysConfig | undefined;
if (values['assertion-keys'] !== undefined) {
  try {
    assertionKeys = JSON.parse(await readFile(values['assertion-keys'], 'utf8')) as AssertionKeysConfig;
  } catch (err) {
    usage(`--assertion-keys ${values['assertion-keys']}: ${(err as Error).message}`);
  }
}

const rotate = !values['no-rotate'];
const omitRefresh = values['omit-refresh-token-on-refresh'] ?? false;
const omitExpiresIn = values['omit-expires-in'] ?? false;

let peer: Awaited<ReturnType<typeof startNodeOauthPeer>>;
try {
  peer = await startNodeOauthPeer({
    host,
    port,
    accessTokenTtlS: ttl,
    refreshTokenTtlS: refreshTtl,
    tokenDelayMs,
    rotateRefreshTokens: rotate,
    omitRefreshTokenOnRefresh: omitRefresh,
    omitExpiresIn,
    strictClientAuth: values['strict-client-auth'] ?? false,
    assertionRefreshTokens: values['assertion-refresh-tokens'] ?? false,
    ...(values['saml-audience'] ? { samlAudiences: values['saml-audience'] } : {}),
    ...(values['jwt-audience'] ? { jwtAudiences: values['jwt-audience'] } : {}),
    ...(assertionKeys ? { assertionKeys } : {}),
    ...(values['alice-password'] !== undefined ? { alicePassword: values['alice-password'] } : {}),
  });
} catch (err) {
  process.stderr.write(`node-oauth-peer-main: failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
}

process.stdout.write(
  `${JSON.stringify({
    ready: true,
    issuer: peer.issuer,
    token_url: peer.tokenUrl,
    revocation_url: peer.revocationUrl,
    resource_url: peer.resourceUrl,
    discovery_url: peer.discoveryUrl,
    host: peer.host,
    port: peer.port,
    clients: peer.clients,
    users: peer.users,
    scopes: peer.scopes,
    grant_types: ['password', 'refresh_token', 'client_credentials', JWT_BEARER_GRANT, SAML2_BEARER_GRANT],
    jwt_audiences: peer.jwtAudiences,
    saml_audiences: peer.samlAudiences,
    access_token_ttl_s: ttl,
    rotate_refresh_tokens: rotate && !omitRefresh,
    omit_refresh_token_on_refresh: omitRefresh,
    omit_expires_in: omitExpiresIn,
  })}\n`,
);

let stopping = false;
const shutdown = (signal: NodeJS.Signals) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`node-oauth-peer-main: ${signal}, closing\n`);
  const force = setTimeout(() => {
    process.stderr.write('node-oauth-peer-main: close timed out\n');
    process.exit(1);
  }, 5_000);
  force.unref();
  peer.close().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`node-oauth-peer-main: close failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
