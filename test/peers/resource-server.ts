import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A protected API for REST-step tests. Every call under /api must carry a bearer token that
 * `verify` accepts (the test passes the real authorization server's introspection), so a
 * request only succeeds with a token the peer really issued.
 */
export interface ResourceServer {
  url: string;
  calls(path?: string): number;
  /** Refuse this token from now on (as if the AS revoked it). */
  rejectToken(token: string): void;
  tokensSeen(): string[];
  close(): Promise<void>;
}

export async function startResourceServer(opts: { host?: string; verify: (token: string) => Promise<boolean> }): Promise<ResourceServer> {
  const counts = new Map<string, number>();
  const rejected = new Set<string>();
  const seen: string[] = [];
  const read = (req: IncomingMessage) =>
    new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks)));
    });
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    counts.set(url.pathname, (counts.get(url.pathname) ?? 0) + 1);
    const body = await read(req);
    if (url.pathname === '/public/ping') return json(res, 200, { pong: true });
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    if (token) seen.push(token);
    if (url.pathname === '/api/always-401' || !token || rejected.has(token) || !(await opts.verify(token))) {
      return json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
    }
    switch (url.pathname) {
      case '/api/items':
        return json(res, 200, { items: [1, 2, 3], query: Object.fromEntries(url.searchParams), method: req.method });
      case '/api/echo':
        res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream', 'x-echo-length': String(body.length) });
        return res.end(body);
      case '/api/big': {
        const n = Number(url.searchParams.get('bytes') ?? '0');
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(64 * 1024, 7);
        let left = n;
        while (left > 0) {
          const part = chunk.subarray(0, Math.min(left, chunk.length));
          left -= part.length;
          if (!res.write(part)) await new Promise((r) => res.once('drain', r));
        }
        return res.end();
      }
      case '/api/slow': {
        await new Promise((r) => setTimeout(r, Number(url.searchParams.get('ms') ?? '1000')));
        return json(res, 200, { slow: true });
      }
      case '/api/flaky': {
        const failFirst = Number(url.searchParams.get('fail') ?? '2');
        const key = `flaky:${url.searchParams.get('key') ?? ''}`;
        const n = (counts.get(key) ?? 0) + 1;
        counts.set(key, n);
        if (n <= failFirst) return json(res, 503, { error: 'busy' }, { 'retry-after': '0' });
        return json(res, 200, { ok: true, attempt: n });
      }
      default:
        return json(res, 404, { error: 'not_found' });
    }
  });
  await new Promise<void>((r) => server.listen(0, opts.host ?? '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    calls: (p) => (p ? counts.get(p) ?? 0 : [...counts.values()].reduce((a, b) => a + b, 0)),
    rejectToken: (t) => void rejected.add(t),
    tokensSeen: () => [...seen],
    close: () => new Promise((r) => server.close(() => r())),
  };
}
