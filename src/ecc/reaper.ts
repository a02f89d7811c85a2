import { midNameOf } from './states.js';
import type { EccDeps } from './records.js';

/**
 * Leases that ran out. A record with attempts left goes back to `ready` for its agent; one that
 * must not run twice (a token request: max_attempts = 1) goes to `error` with the reason, and
 * whoever waits for it is woken to report that.
 */
export async function reapExpiredLeases(deps: EccDeps): Promise<{ retried: number; failed: number }> {
  const now = deps.clock.now();
  const expired = await deps.db
    .selectFrom('ecc_queue')
    .select(['id', 'agent', 'attempts', 'max_attempts', 'lease_expires_at', 'claimed_by'])
    .where('state', '=', 'processing')
    .where('lease_expires_at', '<', now)
    .limit(500)
    .execute();
  let retried = 0;
  let failed = 0;
  for (const r of expired) {
    const cas = deps.db
      .updateTable('ecc_queue')
      .where('id', '=', r.id)
      .where('state', '=', 'processing')
      .where('claimed_by', '=', r.claimed_by)
      .where('lease_expires_at', '=', r.lease_expires_at);
    if (r.attempts < r.max_attempts) {
      const u = await cas.set({ state: 'ready', claimed_by: null, lease_expires_at: null }).executeTakeFirst();
      if (Number(u.numUpdatedRows) > 0) {
        retried++;
        deps.wakeups.wakeAgent(r.agent);
      }
    } else {
      const reason =
        `MID server ${midNameOf(r.claimed_by ?? r.agent)} claimed this record but did not answer before its lease ran out ` +
        `(attempt ${r.attempts} of ${r.max_attempts}); it may have stopped or lost its connection. ` +
        'The request is not repeated automatically because it may not be safe to run twice.';
      const u = await cas.set({ state: 'error', error_string: reason, processed_at: now, lease_expires_at: null }).executeTakeFirst();
      if (Number(u.numUpdatedRows) > 0) {
        failed++;
        deps.wakeups.wakeRecord(r.id);
      }
    }
  }
  return { retried, failed };
}
