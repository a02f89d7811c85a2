import { createHash } from 'node:crypto';
import type { Db } from '../db/schema.js';
import type { Clock } from '../core/clock.js';
import { newId, randomToken } from '../core/ids.js';
import { AppError } from '../core/errors.js';

/**
 * Enrollment keys: single use, expiring, stored only as a SHA-256 hash. A MID server presents
 * one once, with the public keys it generated; from then on it authenticates with its own key.
 */
export const hashKey = (key: string): string => createHash('sha256').update(key).digest('hex');

export async function createEnrollmentKey(deps: { db: Db; clock: Clock }, ttlMs: number): Promise<{ key: string; expiresAt: number }> {
  const key = `tre_${randomToken(24)}`;
  const now = deps.clock.now();
  await deps.db
    .insertInto('mid_enrollment_keys')
    .values({ id: newId(now), key_hash: hashKey(key), expires_at: now + ttlMs, used_at: null, used_by: null, created_at: now })
    .execute();
  return { key, expiresAt: now + ttlMs };
}

/** Marks the key used by `midName`, inside the caller's transaction; refuses unknown, used or expired keys. */
export async function consumeEnrollmentKey(trx: Db, clock: Clock, key: string, midName: string): Promise<void> {
  const now = clock.now();
  const r = await trx
    .updateTable('mid_enrollment_keys')
    .set({ used_at: now, used_by: midName })
    .where('key_hash', '=', hashKey(key))
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) {
    throw new AppError('enrollment_key_invalid', {
      message: 'The enrollment key is unknown, already used or expired. Create a new one with POST /api/v1/mid_enrollment_keys and enroll again.',
    });
  }
}
