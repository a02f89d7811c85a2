import { request, type Dispatcher } from 'undici';
import { SignJWT, importJWK, type JWK } from 'jose';
import { randomUUID } from 'node:crypto';
import { AGENT_AUDIENCE } from '../core/wire.js';
import { defaultDispatcher } from '../transport/http-exec.js';

/**
 * The MID server's only connection: outbound HTTP(S) calls to the instance, through
 * HTTPS_PROXY/NO_PROXY when set. Calls carry a short-lived ES256 JWT signed with the MID
 * server's own key, re-signed every minute.
 */
export class InstanceCallError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly code: string | null,
  ) {
    super(message);
    this.name = 'InstanceCallError';
  }
}

export interface InstanceClient {
  call(path: string, body: unknown, opts?: { auth?: boolean; timeoutMs?: number; signal?: AbortSignal }): Promise<unknown>;
  setIdentity(id: { midId: string; signPrivateJwk: JWK }): void;
}

export function createInstanceClient(opts: { instanceUrl: string; dispatcher?: Dispatcher }): InstanceClient {
  const base = opts.instanceUrl.replace(/\/+$/, '');
  let identity: { midId: string; key: CryptoKey | null; jwk: JWK } | null = null;
  let cached: { token: string; renewAt: number } | null = null;

  async function bearer(): Promise<string> {
    if (!identity) throw new Error('MID server has no identity yet');
    const now = Date.now();
    if (cached && cached.renewAt > now) return cached.token;
    identity.key ??= (await importJWK(identity.jwk, 'ES256')) as CryptoKey;
    const iat = Math.floor(now / 1000);
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256' })
      .setSubject(identity.midId)
      .setAudience(AGENT_AUDIENCE)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 120)
      .setJti(randomUUID())
      .sign(identity.key);
    cached = { token, renewAt: now + 60_000 };
    return token;
  }

  return {
    setIdentity(id) {
      identity = { midId: id.midId, key: null, jwk: id.signPrivateJwk };
      cached = null;
    },
    async call(path, body, callOpts = {}) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (callOpts.auth !== false) headers.authorization = `Bearer ${await bearer()}`;
      const timeoutMs = callOpts.timeoutMs ?? 30_000;
      let res;
      try {
        res = await request(`${base}${path}`, {
          method: 'POST',
          headers,
          body: JSON.stringify(body),
          dispatcher: opts.dispatcher ?? defaultDispatcher(),
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
          ...(callOpts.signal ? { signal: callOpts.signal } : {}),
        });
      } catch (err) {
        const e = err as { code?: string; message?: string };
        throw new InstanceCallError(`Cannot reach the instance at ${base} (${e.code ?? e.message}).`, null, null);
      }
      const text = await res.body.text();
      let json: unknown = null;
      try {
        json = text ? JSON.parse(text) : null;
      } catch {
        /* not JSON */
      }
      if (res.statusCode >= 400) {
        const error = (json as { error?: { code?: string; message?: string } } | null)?.error;
        throw new InstanceCallError(
          error?.message ?? `The instance answered HTTP ${res.statusCode} to ${path}.`,
          res.statusCode,
          error?.code ?? null,
        );
      }
      return json;
    },
  };
}
