import { performHttp, HttpExecError } from './http-exec.js';
import { bodyBytes, headerPairs, toResponse, type FetchOptions, type Transport } from './transport.js';
import { AppError } from '../core/errors.js';

/** Straight from the instance to the network. */
export function createDirectTransport(opts: { timeoutMs: number; maxResponseBytes: number }): Transport {
  const trace = { midServer: null, eccOutputId: null, eccInputId: null };
  const fn = async (url: string, options: FetchOptions): Promise<Response> => {
    try {
      const res = await performHttp(
        {
          method: options.method,
          url,
          headers: headerPairs(options.headers),
          body: bodyBytes(options.body),
          timeoutMs: opts.timeoutMs,
          maxResponseBytes: opts.maxResponseBytes,
        },
        options.signal ? { signal: options.signal } : {},
      );
      return toResponse(res.status, res.headers, res.body);
    } catch (err) {
      if (err instanceof HttpExecError) {
        throw new AppError('endpoint_unreachable', {
          message: `The instance could not complete the request directly: ${err.message} If the endpoint is only reachable from a private network, send the request through a MID server inside it (use_mid_server).`,
          detail: { code: err.code },
          cause: err,
        });
      }
      throw err;
    }
  };
  return Object.assign(fn, { trace });
}
