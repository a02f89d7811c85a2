import { AppError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { EccDeps } from './records.js';

export interface NewInput {
  responseTo: string;
  payload: string;
  errorString: string | null;
}

export type InputOutcome = { responseTo: string; inputId: string } | { responseTo: string; error: AppError };

/**
 * A MID server answers output records it holds: in one transaction, for each answer, the
 * output goes processing → processed (or error) by compare-and-set on (state, claimed_by) and
 * the input record is written. An answer to a record the MID server does not hold (never
 * claimed by it, lease expired, already answered) gets `ecc_lease_lost` and changes nothing;
 * the others in the same batch are still accepted. Several answers share one commit, which is
 * where most of the cost of an answer is under load.
 */
export async function acceptInputs(deps: EccDeps, agent: string, inputs: NewInput[]): Promise<InputOutcome[]> {
  const now = deps.clock.now();
  const outcomes: InputOutcome[] = [];
  const accepted: Array<{ input: NewInput; inputId: string }> = [];
  await deps.db.transaction().execute(async (trx) => {
    for (const input of inputs) {
      const inputId = newId(now);
      // A waiter in this process consumes the input as it is handed over: write it consumed already.
      const local = deps.wakeups.hasWaiter(input.responseTo);
      const out = await trx
        .updateTable('ecc_queue')
        .set({ state: input.errorString ? 'error' : 'processed', error_string: input.errorString, processed_at: now, lease_expires_at: null })
        .where('id', '=', input.responseTo)
        .where('queue', '=', 'output')
        .where('state', '=', 'processing')
        .where('claimed_by', '=', agent)
        .returning(['topic', 'name', 'source'])
        .executeTakeFirst();
      if (!out) {
        outcomes.push({
          responseTo: input.responseTo,
          error: new AppError('ecc_lease_lost', {
            message: `ECC output record ${input.responseTo} is not held by ${agent} (it was never claimed by it, its lease expired, or it was already answered). The result was discarded.`,
            detail: { agent, outputId: input.responseTo },
          }),
        });
        continue;
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
      outcomes.push({ responseTo: input.responseTo, inputId });
      accepted.push({ input, inputId });
    }
  });
  // Waiters in this process get their input at once, without reading it back.
  for (const { input, inputId } of accepted) {
    deps.wakeups.wakeRecord(input.responseTo, { inputId, agent, payload: input.payload, errorString: input.errorString });
  }
  return outcomes;
}

/** One answer; throws `ecc_lease_lost` when the MID server does not hold the record. */
export async function acceptInput(deps: EccDeps, agent: string, input: NewInput): Promise<{ inputId: string }> {
  const [outcome] = await acceptInputs(deps, agent, [input]);
  if (!outcome || 'error' in outcome) throw outcome?.error ?? new Error('no outcome');
  return { inputId: outcome.inputId };
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
