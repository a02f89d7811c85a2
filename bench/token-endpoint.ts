import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';

/**
 * A minimal, fast OAuth token endpoint for benchmarks, so that tokenrelay's overhead is what
 * gets measured rather than an authorization server's. It answers any POST /token with a fresh
 * opaque bearer token of `ttlS` seconds (RFC 6749 §5.1), and counts requests.
 */
export interface TokenEndpoint {
  url: string;
  requests(): number;
  setTtl(s: number): void;
  close(): Promise<void>;
}

export async function startTokenEndpoint(opts: { host?: string; ttlS?: number } = {}): Promise<TokenEndpoint> {
  let ttl = opts.ttlS ?? 3600;
  let count = 0;
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method !== 'POST' || !req.url?.startsWith('/token')) {
        res.writeHead(404).end();
        return;
      }
      count++;
      const body = JSON.stringify({ access_token: randomBytes(24).toString('base64url'), token_type: 'Bearer', expires_in: ttl });
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, opts.host ?? '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}/token`,
    requests: () => count,
    setTtl: (s) => void (ttl = s),
    close: () => new Promise((r) => server.close(() => r())),
  };
}
