import { z } from 'zod';
import type { Db } from '../db/schema.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import type { Log } from '../core/log.js';
import { AppError, isAppError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { sleep } from '../core/loop.js';
import type { TokenBroker } from '../tokens/broker.js';
import type { Transport } from '../transport/transport.js';
import type { MidChoice } from '../mid-servers/selection.js';
import { getConnectionRow, type ConnectionRow, type RetryPolicy } from './connections.js';
import { isIdempotent, retryDelay } from './retry.js';

/**
 * The REST step: resolve the connection, attach the credential's bearer token, send the request
 * directly or through a MID server, and return status, headers and body. A 401 gets the token
 * refreshed once and the call retried once (RFC 6750 §3.1: invalid_token); the connection's
 * retry policy covers the rest. Every execution is recorded.
 */
export const RestStepRequest = z
  .object({
    connection: z.string().min(1),
    method: z.string().regex(/^[A-Za-z]+$/).transform((m) => m.toUpperCase()).default('GET'),
    path: z.string().default(''),
    query: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.array(z.string())])).default({}),
    headers: z.record(z.string(), z.string()).default({}),
    body: z.unknown().optional(),
    /** A binary request body, base64. */
    body_base64: z.string().optional(),
    timeout_ms: z.number().int().min(100).max(300_000).optional(),
  })
  .strict();

export interface RestStepDeps {
  db: Db;
  clock: Clock;
  log: Log;
  broker: TokenBroker;
  transportFor(choice: MidChoice | null, opts: { timeoutMs: number; maxResponseBytes: number; maxAttempts: number }): Transport;
}

export interface RestStepResult {
  status: number;
  headers: Record<string, string | string[]>;
  body: unknown;
  body_encoding: 'json' | 'text' | 'base64';
  mid_server: string | null;
  ecc_output_id: string | null;
  execution_id: string;
  attempts: number;
  duration_ms: number;
}

export function buildUrl(base: string, path: string, query: Record<string, string | number | boolean | string[]>): string {
  const url = new URL(base);
  if (path) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(path) || path.startsWith('//')) {
      throw new AppError('invalid_request', { message: 'Field "path": must be a path relative to the connection\'s base_url, not a URL.' });
    }
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
  }
  for (const [k, v] of Object.entries(query)) {
    for (const one of Array.isArray(v) ? v : [v]) url.searchParams.append(k, String(one));
  }
  return url.href;
}

function readBody(res: Response, bytes: Uint8Array): { body: unknown; encoding: RestStepResult['body_encoding'] } {
  const type = (res.headers.get('content-type') ?? '').toLowerCase();
  if (/[/+]json\b/.test(type)) {
    try {
      return { body: JSON.parse(new TextDecoder().decode(bytes)), encoding: 'json' };
    } catch {
      /* not actually JSON: fall through */
    }
  }
  if (/^text\/|xml|x-www-form-urlencoded|javascript|json/.test(type)) return { body: new TextDecoder().decode(bytes), encoding: 'text' };
  if (bytes.length === 0) return { body: '', encoding: 'text' };
  return { body: Buffer.from(bytes).toString('base64'), encoding: 'base64' };
}

function headerObject(h: Headers): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  h.forEach((v, k) => {
    out[k] = v;
  });
  const cookies = h.getSetCookie();
  if (cookies.length) out['set-cookie'] = cookies;
  return out;
}

export async function executeRestStep(deps: RestStepDeps, input: unknown): Promise<RestStepResult> {
  const req = RestStepRequest.parse(input);
  const conn: ConnectionRow = await getConnectionRow(deps.db, req.connection).catch(() => {
    throw new AppError('invalid_request', { message: `Field "connection": no connection named "${req.connection}"; list them with GET /api/v1/connections.` });
  });
  const url = buildUrl(conn.base_url, req.path, req.query);
  const policy = JSON.parse(conn.retry_policy) as RetryPolicy;
  const names = JSON.parse(conn.mid_servers) as string[];
  const choice: MidChoice | null = conn.use_mid_server === 1 ? { appliesTo: names.length ? 'specific' : 'all', names } : null;
  const timeoutMs = req.timeout_ms ?? conn.timeout_ms;
  let body: Uint8Array | string | undefined;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (k.toLowerCase() === 'authorization' && conn.credential_id) {
      throw new AppError('invalid_request', { message: 'Field "headers.Authorization": the connection\'s credential supplies it; remove it.' });
    }
    headers[k] = v;
  }
  if (req.body_base64 !== undefined) body = Buffer.from(req.body_base64, 'base64');
  else if (typeof req.body === 'string') body = req.body;
  else if (req.body !== undefined) {
    body = JSON.stringify(req.body);
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  }

  const started = deps.clock.now();
  const eccIds: string[] = [];
  let midServer: string | null = null;
  let attempts = 0;
  let retriedAfter401 = false;
  let rejected: string | undefined;
  let lastToken: string | undefined;
  let retries = 0;
  const record = async (status: number | null, err: AppError | null) => {
    const id = newId(deps.clock.now());
    await deps.db
      .insertInto('rest_executions')
      .values({
        id,
        connection_id: conn.id,
        method: req.method,
        url: url.split('?')[0]!,
        status,
        duration_ms: deps.clock.now() - started,
        attempts,
        mid_server: midServer,
        ecc_output_ids: JSON.stringify(eccIds),
        error_code: err?.code ?? null,
        error_message: err?.message ?? null,
        created_at: deps.clock.now(),
      })
      .execute();
    return id;
  };

  try {
    for (;;) {
      attempts++;
      const h = { ...headers };
      if (conn.credential_id) {
        const token = await deps.broker.accessToken(conn.credential_id, rejected ? { rejected } : {});
        h.authorization = `Bearer ${token.access_token}`;
        lastToken = token.access_token;
      }
      const transport = deps.transportFor(choice, {
        timeoutMs,
        maxResponseBytes: conn.max_response_bytes,
        // A lost MID server may re-run only what is safe to run twice.
        maxAttempts: isIdempotent(req.method) ? 2 : 1,
      });
      let res: Response;
      try {
        res = await transport(url, { method: req.method, headers: h, body: body ?? null });
      } catch (err) {
        if (transport.trace.eccOutputId) eccIds.push(transport.trace.eccOutputId);
        midServer = transport.trace.midServer ?? midServer;
        const e = restError(err, url, conn);
        const delay = e.code === 'response_too_large' ? null : retryDelay(policy, retries, { networkError: true }, req.method, deps.clock.now() - started);
        if (delay === null) throw e;
        retries++;
        await sleep(delay);
        continue;
      }
      if (transport.trace.eccOutputId) eccIds.push(transport.trace.eccOutputId);
      midServer = transport.trace.midServer;
      if (res.status === 401 && conn.credential_id && !retriedAfter401) {
        retriedAfter401 = true;
        rejected = lastToken;
        await res.arrayBuffer();
        continue;
      }
      const delay = retryDelay(policy, retries, { status: res.status, retryAfter: res.headers.get('retry-after') }, req.method, deps.clock.now() - started);
      if (delay !== null) {
        retries++;
        await res.arrayBuffer();
        await sleep(delay);
        continue;
      }
      const bytes = new Uint8Array(await res.arrayBuffer());
      const { body: outBody, encoding } = readBody(res, bytes);
      const executionId = await record(res.status, null);
      return {
        status: res.status,
        headers: headerObject(res.headers),
        body: outBody,
        body_encoding: encoding,
        mid_server: midServer,
        ecc_output_id: eccIds.at(-1) ?? null,
        execution_id: executionId,
        attempts,
        duration_ms: deps.clock.now() - started,
      };
    }
  } catch (err) {
    const e = isAppError(err) ? err : new AppError('internal', { message: 'The REST step failed unexpectedly.', cause: err });
    await record(null, e).catch(() => undefined);
    throw e;
  }
}

function restError(err: unknown, url: string, conn: ConnectionRow): AppError {
  if (!isAppError(err)) return new AppError('internal', { message: `The REST step to ${url} failed unexpectedly.`, cause: err });
  if (err.detail?.code === 'response_too_large') {
    return new AppError('response_too_large', {
      message: `The response from ${new URL(url).origin} is larger than connection "${conn.name}" allows (${conn.max_response_bytes} bytes); it was not returned. Raise max_response_bytes (up to 10 MB) or ask for less.`,
    });
  }
  if (err.code === 'endpoint_unreachable') return new AppError('rest_request_failed', { message: err.message, ...(err.detail ? { detail: err.detail } : {}), cause: err });
  return err;
}

export async function listExecutions(db: Db, f: { connectionId?: string; limit: number }) {
  let q = db.selectFrom('rest_executions').selectAll();
  if (f.connectionId) q = q.where('connection_id', '=', f.connectionId);
  const rows = await q.orderBy('id', 'desc').limit(f.limit).execute();
  return rows.map((r) => ({
    id: r.id,
    connection_id: r.connection_id,
    method: r.method,
    url: r.url,
    status: r.status,
    duration_ms: r.duration_ms,
    attempts: r.attempts,
    mid_server: r.mid_server,
    ecc_output_ids: JSON.parse(r.ecc_output_ids) as string[],
    error: r.error_code ? { code: r.error_code, message: r.error_message } : null,
    created_at: iso(r.created_at),
  }));
}
