import type { JWK } from 'jose';
import { deriveSessionKeys, type SessionKeys } from './envelope.js';

/**
 * The instance's session keys per MID server, derived on first use and again when the MID
 * server's public key changes (rekey). Bounded; deriving again is cheap (one ECDH).
 */
export interface SessionKeyCache {
  forMid(mid: { id: string; enc_jwk: string }): Promise<SessionKeys>;
  /** Keys for reading what a MID server sent: current first, then those from before its last rekey. */
  inKeysForMid(mid: { id: string; enc_jwk: string }): Promise<CryptoKey[]>;
}

export function createSessionKeyCache(instancePrivate: CryptoKey): SessionKeyCache {
  const cache = new Map<string, { jwk: string; keys: Promise<SessionKeys>; previous: Promise<SessionKeys> | null }>();
  const forMid = (mid: { id: string; enc_jwk: string }) => {
    const hit = cache.get(mid.id);
    if (hit && hit.jwk === mid.enc_jwk) return hit;
    if (cache.size > 10_000) cache.clear();
    const keys = deriveSessionKeys(instancePrivate, JSON.parse(mid.enc_jwk) as JWK, 'instance', mid.id);
    // A result sealed just before the MID server switched keys still opens.
    const entry = { jwk: mid.enc_jwk, keys, previous: hit?.keys ?? null };
    cache.set(mid.id, entry);
    keys.catch(() => cache.delete(mid.id));
    return entry;
  };
  return {
    forMid: (mid) => forMid(mid).keys,
    async inKeysForMid(mid) {
      const e = forMid(mid);
      return [(await e.keys).in, ...(e.previous ? [(await e.previous).in] : [])];
    },
  };
}
