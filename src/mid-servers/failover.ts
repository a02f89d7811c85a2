import type { Log } from '../core/log.js';
import { openEither, sealSession } from '../vault/envelope.js';
import type { SessionKeyCache } from '../vault/session-cache.js';
import { agentName, failOutput, type EccDeps, type EccRecord } from '../ecc/index.js';
import { isUp, listMids, type MidRow } from './registry.js';
import { cachedMid, pickMid, type MidChoice } from './selection.js';
import { midNameOf } from '../ecc/states.js';
import { isAppError } from '../core/errors.js';

/**
 * Failover. Each tick looks at MID servers that are down (no heartbeat for `downAfterMs`) or
 * paused, and at their open output records:
 * - `ready` records move to another eligible MID server under the same selection (re-sealed to
 *   its key), except where the selection names a single MID server — that is never moved, as
 *   the reference does for "specific MID server";
 * - `processing` records of a down MID server: those that may run twice (idempotent REST calls,
 *   max_attempts > attempts) move too; token requests end in `error` at once with the reason,
 *   since an authorization code or a rotating refresh token must not be sent twice. A paused
 *   MID server keeps what it is processing (it finishes in-flight work).
 * Every move is a compare-and-set on (state, agent, claimed_by): a record its MID server just
 * answered stays answered.
 */
export interface FailoverDeps extends EccDeps {
  sessions: SessionKeyCache;
  log: Log;
  downAfterMs: number;
}

export async function failoverTick(deps: FailoverDeps): Promise<{ moved: number; failed: number }> {
  const now = deps.clock.now();
  const mids = await listMids(deps.db);
  let moved = 0;
  let failed = 0;
  for (const mid of mids) {
    const down = !isUp(mid, now, deps.downAfterMs);
    const barred = mid.validated !== 1;
    if (!down && !barred && mid.paused !== 1) continue;
    const open = await deps.db
      .selectFrom('ecc_queue')
      .selectAll()
      .where('agent', '=', agentName(mid.name))
      .where('queue', '=', 'output')
      .where('state', 'in', down ? ['ready', 'processing'] : ['ready'])
      .orderBy('id')
      .limit(500)
      .execute();
    for (const rec of open) {
      // Only a down MID server's processing records are fetched above, so a record held here is a down one's.
      const r = await handle(deps, mid, rec, barred);
      if (r === 'moved') moved++;
      if (r === 'failed') failed++;
    }
  }
  if (moved || failed) deps.log.warn({ moved, failed }, 'mid:failover');
  return { moved, failed };
}

async function handle(deps: FailoverDeps, mid: MidRow, rec: EccRecord, barred: boolean): Promise<'moved' | 'failed' | 'kept'> {
  const choice: MidChoice = rec.mid_choice ? (JSON.parse(rec.mid_choice) as MidChoice) : { appliesTo: 'specific', names: [mid.name] };
  const pinned = choice.appliesTo === 'specific' && choice.names.length === 1;
  if (barred && pinned && rec.state === 'ready') {
    // Addressed to a MID server that was invalidated after it was chosen: it will never run it.
    const ok = await failOutput(deps, rec.id, ['ready'], `MID server ${mid.name} is not validated; it gets no work.`);
    return ok ? 'failed' : 'kept';
  }
  const repeatable = rec.attempts < rec.max_attempts;
  if (rec.state === 'processing' && !repeatable) {
    const ok = await failOutput(
      deps,
      rec.id,
      ['processing'],
      `MID server ${mid.name} went down (no heartbeat for ${Math.round(deps.downAfterMs / 1000)} s) while it held this record. ` +
        'The request is not repeated automatically because it may not be safe to run twice.',
    );
    return ok ? 'failed' : 'kept';
  }
  if (pinned) return 'kept';
  let target: MidRow;
  try {
    target = await pickMid(deps.db, { appliesTo: choice.appliesTo, names: choice.appliesTo === 'specific' ? choice.names.filter((n) => n !== mid.name) : [] }, deps.clock.now(), deps.downAfterMs);
  } catch (err) {
    if (isAppError(err) && err.code === 'mid_server_unavailable') return 'kept';
    throw err;
  }
  if (target.name === mid.name) return 'kept';
  return (await readdress(deps, rec, target)) ? 'moved' : 'kept';
}

/**
 * Re-seals a record's request to `target`'s key and gives it to `target`, compare-and-set. The
 * instance holds the session key it sealed the payload with (one per MID server), so it opens
 * the payload itself; `sourceOutKey` is that key when the source's key just changed (rekey).
 */
export async function readdress(deps: FailoverDeps, rec: EccRecord, target: MidRow, sourceOutKey?: CryptoKey): Promise<boolean> {
  let key = sourceOutKey;
  if (!key) {
    const source = await cachedMid(deps.db, midNameOf(rec.agent), deps.clock.now());
    if (!source) return false;
    key = (await deps.sessions.forMid(source)).out;
  }
  let plain: Uint8Array;
  try {
    plain = await openEither([key], [], rec.payload ?? '');
  } catch {
    return false; // sealed with keys this instance no longer has: it stays where it is
  }
  const payload = await sealSession((await deps.sessions.forMid(target)).out, plain);
  let q = deps.db
    .updateTable('ecc_queue')
    .set({ agent: agentName(target.name), payload, state: 'ready', claimed_by: null, lease_expires_at: null, assigned_at: deps.clock.now() })
    .where('id', '=', rec.id)
    .where('state', '=', rec.state)
    .where('agent', '=', rec.agent);
  q = rec.claimed_by === null ? q.where('claimed_by', 'is', null) : q.where('claimed_by', '=', rec.claimed_by);
  const r = await q.executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) return false;
  deps.log.info({ record: rec.id, from: midNameOf(rec.agent), to: target.name, state: rec.state }, 'ecc:moved');
  deps.wakeups.wakeAgent(agentName(target.name));
  deps.wakeups.wakeRecord(rec.id);
  return true;
}
