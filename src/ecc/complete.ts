import { AppError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { EccDeps } from './records.js';

/**
 * A MID server answers an output record it holds: in one transaction the output goes
 * processing → processed (or error) by compare-and-set on (state, claimed_by), and the input
 * record is written `ready`. A MID server that does not hold the record, or whose lease was
 * taken away, gets `ecc_lease_lost` and nothing changes.
 */
export async function acceptInput(
  deps: EccDeps,
  agent: string,
  input: { responseTo: string; payload: string; errorString: string | null },
): Promise<{ inputId: string }> {
  const now = deps.clock.now();
  const inputId = newId(now);
  // A waiter in this process consumes the input as it is handed over: write it consumed already.
  const local = deps.wakeups.hasWaiter(input.responseTo);
  await deps.db.transaction().execute(async (trx) => {
    const out = await trx
      .updateTable('ecc_queue')
      .set({
        state: input.errorString ? 'error' : 'processed',
        error_string: input.errorString,
        processed_at: now,
        lease_expires_at: null,
      })
      .where('id', '=', input.responseTo)
      .where('queue', '=', 'output')
      .where('state', '=', 'processing')
      .where('claimed_by', '=', agent)
      .returning(['topic', 'name', 'source'])
      .executeTakeFirst();
    if (!out) {
      throw new AppError('ecc_lease_lost', {
        message: `ECC output record ${input.responseTo} is not held by ${agent} (it was never claimed by it, its lease expired, or it was already answered). The result was discarded.`,
        detail: { agent, outputId: input.responseTo },
      });
    }
    await trx
      .insertInto('ecc_queue')
      .values({
        id: inputId,
        queue: 'input',
        topic: out.topic,
        name: out.name,
        source: out.source,
        agent,
        state: local ? (input.errorString ? 'error' : 'processed') : 'ready',
        priority: 0,
        response_to: input.responseTo,
        error_string: input.errorString,
        payload: input.payload,
        claimed_by: null,
        lease_expires_at: null,
        attempts: 0,
        max_attempts: 1,
        lease_ms: null,
        request_sealed: null,
        mid_choice: null,
        assigned_at: null,
        created_at: now,
        processed_at: local ? now : null,
      })
      .execute();
  });
  // The waiter in this process (if any) gets the input at once, without reading it back.
  deps.wakeups.wakeRecord(input.responseTo, { inputId, agent, payload: input.payload, errorString: input.errorString });
  return { inputId };
}

/** The waiting side (the sensor) has consumed an input record. */
export async function markInputProcessed(deps: EccDeps, inputId: string, failed: boolean, evenIfConsumed = false): Promise<void> {
  let q = deps.db.updateTable('ecc_queue').set({ state: failed ? 'error' : 'processed', processed_at: deps.clock.now() }).where('id', '=', inputId);
  if (!evenIfConsumed) q = q.where('state', '=', 'ready');
  await q.execute();
}

/**
 * Ends an output record nobody will answer: compare-and-set from the given states only, so a
 * record a MID server finished a moment ago keeps its result. Answers whether it changed.
 */
export async function failOutput(
  deps: EccDeps,
  id: string,
  fromStates: Array<'ready' | 'processing'>,
  errorString: string,
): Promise<boolean> {
  const r = await deps.db
    .updateTable('ecc_queue')
    .set({ state: 'error', error_string: errorString, processed_at: deps.clock.now(), lease_expires_at: null })
    .where('id', '=', id)
    .where('queue', '=', 'output')
    .where('state', 'in', fromStates)
    .executeTakeFirst();
  const changed = Number(r.numUpdatedRows) > 0;
  if (changed) deps.wakeups.wakeRecord(id);
  return changed;
}
