import { sql } from 'kysely';
import type { EccDeps, EccRecord } from './records.js';

/**
 * Leases up to `max` ready output records of one agent, by priority then age. The UPDATE …
 * WHERE id IN (SELECT …) … AND state = 'ready' is one statement: on SQLite it runs under the
 * single writer lock; on PostgreSQL the sub-select takes FOR UPDATE SKIP LOCKED (later), so
 * two pollers never lease the same record.
 */
export async function claimOutputs(
  deps: EccDeps,
  agent: string,
  max: number,
  /** Lease length for records that do not carry their own. */
  leaseMs: number,
): Promise<EccRecord[]> {
  if (max <= 0) return [];
  const now = deps.clock.now();
  const ids = deps.db
    .selectFrom('ecc_queue')
    .select('id')
    .where('agent', '=', agent)
    .where('queue', '=', 'output')
    .where('state', '=', 'ready')
    .orderBy('priority')
    .orderBy('id')
    .limit(max);
  const claimed = await deps.db
    .updateTable('ecc_queue')
    .set((eb) => ({
      state: 'processing',
      claimed_by: agent,
      // The record's own lease length when it has one, else the default.
      lease_expires_at: sql<number>`${now} + coalesce(lease_ms, ${leaseMs})`,
      attempts: eb('attempts', '+', 1),
    }))
    .where('id', 'in', ids)
    .where('state', '=', 'ready')
    .returningAll()
    .execute();
  return claimed.sort((a, b) => a.priority - b.priority || (a.id < b.id ? -1 : 1));
}

/**
 * Gives records back when the poller that claimed them is gone before it received them
 * (the long-poll's client disconnected). Only the holder can do this.
 */
export async function releaseClaims(deps: EccDeps, agent: string, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await deps.db
    .updateTable('ecc_queue')
    .set((eb) => ({ state: 'ready', claimed_by: null, lease_expires_at: null, attempts: eb('attempts', '-', 1) }))
    .where('id', 'in', ids)
    .where('state', '=', 'processing')
    .where('claimed_by', '=', agent)
    .execute();
  deps.wakeups.wakeAgent(agent);
}
