import { request, type Dispatcher } from 'undici';
import { createDispatcher } from './dispatcher.js';

/**
 * One HTTP request, performed for real: used by the direct transport on the instance and by
 * the MID server's RESTProbe executor, so both behave the same. No redirects are followed (a
 * token endpoint that redirects is misconfigured, and following would re-send credentials),
 * the response body is capped, and failures come back as a short code plus a message that
 * names the target but never a header or body.
 */
export interface HttpRequest {
  method: string;
  url: string;
  headers: Array<[string, string]>;
  body: Uint8Array | null;
  timeoutMs: number;
  maxResponseBytes: number;
}

export interface HttpResponse {
  status: number;
  headers: Array<[string, string]>;
  body: Buffer;
  durationMs: number;
}

export class HttpExecError extends Error {
  constructor(
    readonly code:
      | 'invalid_url' | 'dns_failed' | 'connect_failed' | 'timeout' | 'tls_failed' | 'connection_reset' | 'response_too_large'
      | 'refused_by_allowlist' | 'request_failed',
    message: string,
  ) {
    super(message);
    this.name = 'HttpExecError';
  }
}

let sharedDispatcher: Dispatcher | undefined;

/** The process-wide default: HTTPS_PROXY / HTTP_PROXY / NO_PROXY honoured when set. */
export function defaultDispatcher(): Dispatcher {
  sharedDispatcher ??= createDispatcher();
  return sharedDispatcher;
}

export async function performHttp(req: HttpRequest, opts: { dispatcher?: Dispatcher; signal?: AbortSignal } = {}): Promise<HttpResponse> {
  let url: URL;
  try {
    url = new URL(req.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new HttpExecError('invalid_url', `"${req.url}" is not an http(s) URL.`);
  }
  const target = `${url.protocol}//${url.host}`;
  const started = performance.now();
  const timeout = AbortSignal.timeout(req.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  try {
    const res = await request(url, {
      method: req.method.toUpperCase() as Dispatcher.HttpMethod,
      headers: req.headers.flat(),
      body: req.body ?? undefined,
      signal,
      dispatcher: opts.dispatcher ?? defaultDispatcher(),
      headersTimeout: req.timeoutMs,
      bodyTimeout: req.timeoutMs,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > req.maxResponseBytes) {
        res.body.destroy();
        throw new HttpExecError(
          'response_too_large',
          `The response from ${target} is larger than the ${req.maxResponseBytes}-byte limit; it was not returned.`,
        );
      }
      chunks.push(chunk as Buffer);
    }
    const headers: Array<[string, string]> = [];
    for (const [k, v] of Object.entries(res.headers)) {
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) headers.push([k, one]);
    }
    return { status: res.statusCode, headers, body: Buffer.concat(chunks), durationMs: performance.now() - started };
  } catch (err) {
    if (err instanceof HttpExecError) throw err;
    throw classify(err, target, req.timeoutMs, timeout.aborted);
  }
}

function classify(err: unknown, target: string, timeoutMs: number, timedOut: boolean): HttpExecError {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  const detail = code || e.message || 'unknown error';
  if (code === 'refused_by_allowlist') return new HttpExecError('refused_by_allowlist', `Refused by the MID server's allowlist: ${e.message ?? e.cause?.message}`);
  if (timedOut || /TIMEOUT|ETIMEDOUT/.test(code)) return new HttpExecError('timeout', `${target} did not answer within ${timeoutMs} ms.`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new HttpExecError('dns_failed', `The host of ${target} could not be resolved (${code}).`);
  if (['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_SOCKET'].includes(code)) {
    return new HttpExecError('connect_failed', `Could not connect to ${target} (${code}).`);
  }
  if (code === 'ECONNRESET' || code === 'UND_ERR_CLOSED') return new HttpExecError('connection_reset', `${target} closed the connection (${code}).`);
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO/.test(code)) return new HttpExecError('tls_failed', `TLS with ${target} failed (${code}).`);
  if (e.message === 'This operation was aborted' || code === 'UND_ERR_ABORTED') return new HttpExecError('request_failed', `The request to ${target} was cancelled.`);
  return new HttpExecError('request_failed', `The request to ${target} failed (${detail}).`);
}
