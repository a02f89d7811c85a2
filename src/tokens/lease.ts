import type { Db } from '../db/schema.js';
import type { Clock } from '../core/clock.js';

/**
 * The refresh lease: one row per credential with an owner token and an expiry that outlives
 * the token HTTP call. Taking it is one INSERT … ON CONFLICT DO UPDATE … WHERE expired, so it
 * is atomic on SQLite and PostgreSQL alike; releasing is compare-and-delete on the owner, so a
 * holder whose lease ran out cannot release the next holder's.
 */
export async function tryAcquireLease(deps: { db: Db; clock: Clock }, credentialId: string, owner: string, ttlMs: number): Promise<boolean> {
  const now = deps.clock.now();
  const r = await deps.db
    .insertInto('token_leases')
    .values({ credential_id: credentialId, owner, expires_at: now + ttlMs })
    .onConflict((oc) =>
      oc
        .column('credential_id')
        .doUpdateSet({ owner, expires_at: now + ttlMs })
        .where('token_leases.expires_at', '<', now),
    )
    .executeTakeFirst();
  return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
}

export async function releaseLease(db: Db, credentialId: string, owner: string): Promise<void> {
  await db.deleteFrom('token_leases').where('credential_id', '=', credentialId).where('owner', '=', owner).execute();
}
