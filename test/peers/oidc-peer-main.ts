// CLI for the oidc-provider test peer, for running it as its own process
// (e.g. inside a network namespace):
//
//   node --import tsx test/peers/oidc-peer-main.ts --host H --port P [--ttl S] [--token-delay-ms MS]
//
// Prints exactly one JSON line to stdout once listening:
//   {"ready":true,"issuer":"...","token_url":"...","discovery_url":"...","host":"...","port":N,"clients":{...},"scopes":[...]}
// Everything else goes to stderr. Serves until SIGTERM/SIGINT, then closes and exits 0.
// Control endpoints on the same server: GET /__stats -> {"token_requests":N,"tokens_issued":N,...},
// POST /__introspect (token=...) -> {"active":bool,...}, POST /__reset, POST /__token-delay?ms=N.
import { parseArgs } from 'node:util';
import { startOidcPeer } from './oidc-peer.js';

// oidc-provider's notices use console.info/console.log (stdout); keep stdout for the ready line only.
console.info = console.error;
console.log = console.error;

function usage(msg: string): never {
  process.stderr.write(`oidc-peer-main: ${msg}\nusage: oidc-peer-main --host H --port P [--ttl S] [--token-delay-ms MS]\n`);
  process.exit(2);
}

function intArg(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) usage(`--${name} must be an integer >= 0, got ${JSON.stringify(value)}`);
  return n;
}

let values: Record<string, string | boolean | undefined>;
try {
  ({ values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      ttl: { type: 'string' },
      'token-delay-ms': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  usage((err as Error).message);
}

const host = values.host as string;
const port = intArg('port', values.port as string, 0);
if (port > 65535) usage('--port must be <= 65535');
const ttl = intArg('ttl', values.ttl as string | undefined, 600);
if (ttl < 1) usage('--ttl must be >= 1');
const tokenDelayMs = intArg('token-delay-ms', values['token-delay-ms'] as string | undefined, 0);

const peer = await startOidcPeer({ host, port, accessTokenTtlS: ttl, tokenDelayMs });

process.stdout.write(
  `${JSON.stringify({
    ready: true,
    issuer: peer.issuer,
    token_url: peer.tokenUrl,
    discovery_url: peer.discoveryUrl,
    host: peer.host,
    port: peer.port,
    clients: peer.clients,
    scopes: peer.scopes,
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
