import { RestProbeRequest, WIRE_VERSION, type ClaimedRecord, type RestProbeResult } from '../core/wire.js';
import type { Dispatcher } from 'undici';
import { openEither, sealSession } from '../vault/envelope.js';
import type { Allowlist } from '../transport/dispatcher.js';
import { performHttp, HttpExecError } from '../transport/http-exec.js';

/**
 * Performs one claimed RESTProbe: open the payload with the MID server's private key, make the
 * HTTP request from inside the private network, and seal the result to the instance's key.
 * Returns the input record to post; `error_string` is a short, secret-free summary.
 */
export interface ExecutorContext {
  /** Session keys (current first; the previous one still opens records sealed before a rekey). */
  sessionIn: CryptoKey[];
  sessionOut: CryptoKey;
  /** Envelope private keys, for records sealed to the key pair itself (ECDH-ES). */
  encPrivateKeys: CryptoKey[];
  maxResponseBytes: number;
  dispatcher: Dispatcher;
  allow: Allowlist | null;
  proxied: boolean;
}

export async function executeProbe(
  rec: ClaimedRecord,
  keys: ExecutorContext,
  signal?: AbortSignal,
): Promise<{ response_to: string; payload: string; error_string: string | null }> {
  const started = performance.now();
  let result: RestProbeResult;
  if (rec.topic !== 'RESTProbe') {
    result = { v: WIRE_VERSION, error: { code: 'unknown_topic', message: `This MID server does not handle topic ${rec.topic}.` }, duration_ms: 0 };
  } else {
    try {
      const probe = RestProbeRequest.parse(JSON.parse(new TextDecoder().decode(await openEither(keys.sessionIn, keys.encPrivateKeys, rec.payload))));
      let target: URL | null = null;
      try {
        target = new URL(probe.url);
      } catch {
        /* performHttp says so */
      }
      if (target && keys.allow && !keys.allow.allowsUrl(target, { proxied: keys.proxied })) {
        throw new HttpExecError('refused_by_allowlist', `Refused by the MID server's allowlist: ${target.host} is not in --allow-hosts.`);
      }
      const res = await performHttp(
        {
          method: probe.method,
          url: probe.url,
          headers: probe.headers,
          body: probe.body_b64 ? Buffer.from(probe.body_b64, 'base64') : null,
          timeoutMs: probe.timeout_ms,
          maxResponseBytes: Math.min(probe.max_response_bytes, keys.maxResponseBytes),
        },
        { dispatcher: keys.dispatcher, ...(signal ? { signal } : {}) },
      );
      result = { v: WIRE_VERSION, status: res.status, headers: res.headers, body_b64: res.body.toString('base64'), duration_ms: res.durationMs };
    } catch (err) {
      const e = err instanceof HttpExecError ? err : null;
      result = {
        v: WIRE_VERSION,
        error: e ? { code: e.code, message: e.message } : { code: 'probe_unreadable', message: 'The MID server could not open this record (its keys may have changed).' },
        duration_ms: performance.now() - started,
      };
    }
  }
  return {
    response_to: rec.id,
    payload: await sealSession(keys.sessionOut, JSON.stringify(result)),
    error_string: 'error' in result ? result.error.message : null,
  };
}
