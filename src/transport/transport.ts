/**
 * A transport is a fetch-shaped function: grants hand it to oauth4webapi as `[customFetch]`,
 * so protocol code never knows whether a request goes straight out or through a MID server.
 * Each transport keeps a trace of where its last request went, for error messages.
 */
export interface TransportTrace {
  midServer: string | null;
  eccOutputId: string | null;
  eccInputId: string | null;
}

export interface FetchOptions {
  method: string;
  headers: Record<string, string> | Headers | Array<[string, string]>;
  body?: string | URLSearchParams | Uint8Array | null | undefined;
  signal?: AbortSignal | null | undefined;
  redirect?: string;
}

export interface Transport {
  (url: string, options: FetchOptions): Promise<Response>;
  readonly trace: TransportTrace;
}

export function headerPairs(h: FetchOptions['headers']): Array<[string, string]> {
  if (h instanceof Headers) return [...h.entries()];
  if (Array.isArray(h)) return h.map(([k, v]) => [k, v]);
  return Object.entries(h);
}

export function bodyBytes(body: FetchOptions['body']): Uint8Array | null {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') return new TextEncoder().encode(body);
  if (body instanceof URLSearchParams) return new TextEncoder().encode(body.toString());
  return body;
}

/** Builds a WHATWG Response from what came back over the wire. */
export function toResponse(status: number, headers: Array<[string, string]>, body: Uint8Array): Response {
  const nullBody = status === 204 || status === 205 || status === 304 || (status >= 100 && status < 200);
  const h = new Headers();
  for (const [k, v] of headers) {
    // Content-Encoding was already undone by the HTTP client; keep the Response honest.
    if (/^(content-encoding|content-length|transfer-encoding)$/i.test(k)) continue;
    try {
      h.append(k, v);
    } catch {
      /* a header value Headers refuses (non-ASCII): drop it rather than fail the request */
    }
  }
  const res = new Response(nullBody ? null : (body as Uint8Array<ArrayBuffer>), { status: status < 200 || status > 599 ? 502 : status, headers: h });
  return res;
}
