import { importJWK, jwtVerify, type JWK } from 'jose';
import type { Db } from '../db/schema.js';
import type { Clock } from '../core/clock.js';
import { AppError } from '../core/errors.js';
import { AGENT_AUDIENCE } from '../core/wire.js';
import type { MidRow } from './registry.js';
import { cachedMid } from './selection.js';

/**
 * Every MID call carries a short-lived JWT (ES256, ≤ 5 minutes) that the MID server signs with
 * the private key it generated at enrollment; the instance keeps only the public key. Verified
 * tokens are cached until they expire, so the hot path does one map lookup and one row read.
 */
export interface AgentAuth {
  authenticate(authorization: string | undefined): Promise<MidRow>;
}

export const MAX_AGENT_TOKEN_LIFETIME_S = 300;

export function createAgentAuth(deps: { db: Db; clock: Clock }): AgentAuth {
  const verified = new Map<string, { midId: string; exp: number }>();
  const keys = new Map<string, { jwk: string; key: CryptoKey }>();

  async function keyFor(mid: MidRow): Promise<CryptoKey> {
    const k = keys.get(mid.id);
    if (k && k.jwk === mid.sign_jwk) return k.key;
    const key = (await importJWK(JSON.parse(mid.sign_jwk) as JWK, 'ES256')) as CryptoKey;
    keys.set(mid.id, { jwk: mid.sign_jwk, key });
    return key;
  }

  const unauthorized = (why: string) =>
    new AppError('mid_server_unknown', {
      message: `MID server authentication failed: ${why}. If the MID server was deleted or rekeyed, enroll it again with a new key.`,
    });

  return {
    async authenticate(authorization) {
      const token = authorization?.startsWith('Bearer ') ? authorization.slice(7) : undefined;
      if (!token) throw unauthorized('no bearer token');
      const nowS = Math.floor(deps.clock.now() / 1000);
      const hit = verified.get(token);
      if (hit && hit.exp > nowS) {
        const mid = await cachedMid(deps.db, hit.midId, deps.clock.now());
        if (!mid) throw unauthorized('this MID server is no longer enrolled');
        return mid;
      }
      const [, body] = token.split('.');
      let sub: string | undefined;
      try {
        sub = (JSON.parse(Buffer.from(body ?? '', 'base64url').toString('utf8')) as { sub?: string }).sub;
      } catch {
        throw unauthorized('malformed token');
      }
      if (!sub) throw unauthorized('token has no subject');
      const mid = await deps.db.selectFrom('mid_servers').selectAll().where('id', '=', sub).executeTakeFirst();
      if (!mid) throw unauthorized('this MID server is no longer enrolled');
      let payload;
      try {
        ({ payload } = await jwtVerify(token, await keyFor(mid), {
          algorithms: ['ES256'],
          audience: AGENT_AUDIENCE,
          subject: mid.id,
          currentDate: new Date(deps.clock.now()),
          maxTokenAge: MAX_AGENT_TOKEN_LIFETIME_S,
          requiredClaims: ['exp', 'iat'],
        }));
      } catch (err) {
        throw unauthorized(`token rejected (${(err as Error).message})`);
      }
      if (payload.exp! - payload.iat! > MAX_AGENT_TOKEN_LIFETIME_S) throw unauthorized('token lifetime too long');
      if (verified.size > 10_000) verified.clear();
      verified.set(token, { midId: mid.id, exp: payload.exp! });
      return mid;
    },
  };
}
