import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freshSqlite, testClock } from '../../test/support/db.js';
import {
  acceptInput, acceptInputs, claimOutputs, createWakeups, enqueueOutput, failOutput, findInputFor, getRecord, purgeOlderThan,
  reapExpiredLeases, releaseClaims, type EccDeps,
} from './index.js';

describe('ECC queue on a real SQLite database', () => {
  let store: Awaited<ReturnType<typeof freshSqlite>>;
  let clock: ReturnType<typeof testClock>;
  let deps: EccDeps;
  const A = 'mid.server.dc1';
  const B = 'mid.server.dc2';
  const LEASE = 40_000;

  beforeEach(async () => {
    store = await freshSqlite();
    clock = testClock();
    deps = { db: store.db, clock, wakeups: createWakeups() };
  });
  afterEach(async () => store.dispose());

  const enqueue = (agent = A, maxAttempts = 1, priority = 0) =>
    enqueueOutput(deps, { topic: 'RESTProbe', name: 'post', source: 'https://as.example/token', agent, payload: 'jwe', maxAttempts, priority });

  it('writes output records ready, and wakes the agent at once', async () => {
    let woken = 0;
    deps.wakeups.onAgent(A, () => woken++);
    const id = await enqueue();
    const r = await getRecord(store.db, id);
    expect(r).toMatchObject({ queue: 'output', state: 'ready', topic: 'RESTProbe', source: 'https://as.example/token', agent: A, attempts: 0 });
    expect(woken).toBe(1);
  });

  it('claims only the agent\'s own ready records, by priority then age, under a lease', async () => {
    const first = await enqueue(A, 1, 2);
    clock.advance(1);
    const urgent = await enqueue(A, 1, 0);
    await enqueue(B);
    const claimed = await claimOutputs(deps, A, 10, LEASE);
    expect(claimed.map((r) => r.id)).toEqual([urgent, first]);
    for (const r of claimed) expect(r).toMatchObject({ state: 'processing', claimed_by: A, lease_expires_at: clock.now() + LEASE, attempts: 1 });
    expect(await claimOutputs(deps, A, 10, LEASE)).toEqual([]);
    expect((await claimOutputs(deps, B, 10, LEASE)).length).toBe(1);
  });

  it('claims no more than asked', async () => {
    for (let i = 0; i < 5; i++) await enqueue();
    expect((await claimOutputs(deps, A, 2, LEASE)).length).toBe(2);
    expect((await claimOutputs(deps, A, 10, LEASE)).length).toBe(3);
  });

  it('completes a claimed record: output processed, input ready with response_to for whoever reads it later', async () => {
    const id = await enqueue();
    await claimOutputs(deps, A, 1, LEASE);
    clock.advance(50);
    const { inputId } = await acceptInput(deps, A, { responseTo: id, payload: 'result-jwe', errorString: null });
    expect(await getRecord(store.db, id)).toMatchObject({ state: 'processed', processed_at: clock.now(), lease_expires_at: null });
    const input = await findInputFor(store.db, id);
    expect(input).toMatchObject({ id: inputId, queue: 'input', state: 'ready', response_to: id, agent: A, topic: 'RESTProbe', source: 'https://as.example/token' });
  });

  it('with a waiter in this process, the input is handed over at once and written consumed', async () => {
    const id = await enqueue();
    await claimOutputs(deps, A, 1, LEASE);
    let handed: unknown;
    deps.wakeups.onRecord(id, (h) => (handed = h));
    const { inputId } = await acceptInput(deps, A, { responseTo: id, payload: 'result-jwe', errorString: null });
    expect(handed).toEqual({ inputId, agent: A, payload: 'result-jwe', errorString: null });
    expect(await findInputFor(store.db, id)).toMatchObject({ id: inputId, state: 'processed', processed_at: clock.now() });
  });

  it('an input carrying an error ends the output in error with the error string', async () => {
    const id = await enqueue();
    await claimOutputs(deps, A, 1, LEASE);
    await acceptInput(deps, A, { responseTo: id, payload: 'x', errorString: 'Could not connect (ECONNREFUSED).' });
    expect(await getRecord(store.db, id)).toMatchObject({ state: 'error', error_string: 'Could not connect (ECONNREFUSED).' });
  });

  it('a second MID server cannot complete a record it does not hold, and nothing changes', async () => {
    const id = await enqueue();
    await claimOutputs(deps, A, 1, LEASE);
    await expect(acceptInput(deps, B, { responseTo: id, payload: 'forged', errorString: null })).rejects.toMatchObject({ code: 'ecc_lease_lost' });
    expect(await getRecord(store.db, id)).toMatchObject({ state: 'processing', claimed_by: A });
    expect(await findInputFor(store.db, id)).toBeUndefined();
  });

  it('several answers in one transaction: each gets its own outcome, a refused one does not refuse the others', async () => {
    const a = await enqueue();
    const b = await enqueue();
    const other = await enqueue(B);
    await claimOutputs(deps, A, 10, LEASE);
    await claimOutputs(deps, B, 10, LEASE);
    const outcomes = await acceptInputs(deps, A, [
      { responseTo: a, payload: 'pa', errorString: null },
      { responseTo: other, payload: 'forged', errorString: null },
      { responseTo: b, payload: 'pb', errorString: 'Could not connect.' },
    ]);
    expect(outcomes.map((o) => ('error' in o ? o.error.code : 'ok'))).toEqual(['ok', 'ecc_lease_lost', 'ok']);
    expect(await getRecord(store.db, a)).toMatchObject({ state: 'processed' });
    expect(await getRecord(store.db, b)).toMatchObject({ state: 'error', error_string: 'Could not connect.' });
    expect(await getRecord(store.db, other)).toMatchObject({ state: 'processing', claimed_by: B });
    expect(await findInputFor(store.db, other)).toBeUndefined();
  });

  it('a record cannot be completed twice, nor before it is claimed', async () => {
    const id = await enqueue();
    await expect(acceptInput(deps, A, { responseTo: id, payload: 'early', errorString: null })).rejects.toMatchObject({ code: 'ecc_lease_lost' });
    await claimOutputs(deps, A, 1, LEASE);
    await acceptInput(deps, A, { responseTo: id, payload: 'once', errorString: null });
    await expect(acceptInput(deps, A, { responseTo: id, payload: 'twice', errorString: null })).rejects.toMatchObject({ code: 'ecc_lease_lost' });
  });

  it('a token request whose lease runs out goes to error with the reason, and is never run again', async () => {
    const id = await enqueue(A, 1);
    await claimOutputs(deps, A, 1, LEASE);
    let woken = false;
    deps.wakeups.onRecord(id, () => (woken = true));
    clock.advance(LEASE - 1);
    expect(await reapExpiredLeases(deps)).toEqual({ retried: 0, failed: 0 });
    clock.advance(2);
    expect(await reapExpiredLeases(deps)).toEqual({ retried: 0, failed: 1 });
    const r = await getRecord(store.db, id);
    expect(r?.state).toBe('error');
    expect(r?.error_string).toMatch(/MID server dc1 claimed this record but did not answer before its lease ran out/);
    expect(woken).toBe(true);
    expect(await claimOutputs(deps, A, 10, LEASE)).toEqual([]);
    // The late answer of the MID server that lost the lease is refused.
    await expect(acceptInput(deps, A, { responseTo: id, payload: 'late', errorString: null })).rejects.toMatchObject({ code: 'ecc_lease_lost' });
  });

  it('an idempotent record whose lease runs out is made ready again, up to its attempts', async () => {
    const id = await enqueue(A, 2);
    await claimOutputs(deps, A, 1, LEASE);
    clock.advance(LEASE + 1);
    expect(await reapExpiredLeases(deps)).toEqual({ retried: 1, failed: 0 });
    expect(await getRecord(store.db, id)).toMatchObject({ state: 'ready', claimed_by: null, attempts: 1 });
    await claimOutputs(deps, A, 1, LEASE);
    clock.advance(LEASE + 1);
    expect(await reapExpiredLeases(deps)).toEqual({ retried: 0, failed: 1 });
    expect(await getRecord(store.db, id)).toMatchObject({ state: 'error', attempts: 2 });
  });

  it('releasing claims gives records back without using up an attempt; only the holder can', async () => {
    const id = await enqueue();
    await claimOutputs(deps, A, 1, LEASE);
    await releaseClaims(deps, B, [id]);
    expect(await getRecord(store.db, id)).toMatchObject({ state: 'processing', claimed_by: A });
    await releaseClaims(deps, A, [id]);
    expect(await getRecord(store.db, id)).toMatchObject({ state: 'ready', claimed_by: null, attempts: 0 });
  });

  it('failOutput is compare-and-set: it never overwrites a finished record', async () => {
    const id = await enqueue();
    await claimOutputs(deps, A, 1, LEASE);
    expect(await failOutput(deps, id, ['ready'], 'nobody claimed it')).toBe(false);
    await acceptInput(deps, A, { responseTo: id, payload: 'ok', errorString: null });
    expect(await failOutput(deps, id, ['ready', 'processing'], 'gave up')).toBe(false);
    expect(await getRecord(store.db, id)).toMatchObject({ state: 'processed', error_string: null });
  });

  it('concurrent claims by two pollers of one agent never hand out a record twice', async () => {
    for (let i = 0; i < 50; i++) await enqueue();
    const [x, y] = await Promise.all([claimOutputs(deps, A, 30, LEASE), claimOutputs(deps, A, 30, LEASE)]);
    const ids = [...x, ...y].map((r) => r.id);
    expect(ids.length).toBe(50);
    expect(new Set(ids).size).toBe(50);
  });

  it('purges records older than the retention, keeps younger ones', async () => {
    const old = await enqueue();
    await claimOutputs(deps, A, 1, LEASE);
    await acceptInput(deps, A, { responseTo: old, payload: 'ok', errorString: null });
    const stale = await enqueue();
    clock.advance(6 * 24 * 3600_000);
    const young = await enqueue();
    clock.advance(2 * 24 * 3600_000);
    // old output, its input, and a ready output nobody claimed in 8 days: 3 records
    expect(await purgeOlderThan(store.db, clock.now() - 7 * 24 * 3600_000)).toBe(3);
    expect(await getRecord(store.db, old)).toBeUndefined();
    expect(await getRecord(store.db, stale)).toBeUndefined();
    expect(await getRecord(store.db, young)).toMatchObject({ state: 'ready' });
  });
});
