import type { Db, EccQueueTable, EccState } from '../db/schema.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { newId } from '../core/ids.js';
import type { Wakeups } from './wakeups.js';
import { PRIORITY_INTERACTIVE } from './states.js';

export interface EccDeps {
  db: Db;
  clock: Clock;
  wakeups: Wakeups;
}

export interface NewOutput {
  topic: string;
  /** The command: for a RESTProbe, the HTTP method in lower case (the reference's `name`). */
  name: string;
  /** The target: for a RESTProbe, the URL called. */
  source: string;
  agent: string;
  payload: string;
  priority?: number;
  /** 1 for anything that must not run twice (a token request); more for idempotent probes. */
  maxAttempts: number;
  /** How long a MID server may hold it once claimed (its request timeout plus a grace). */
  leaseMs?: number;
  /** For failover: the selection it was made under. */
  midChoice?: string;
}

/** Writes an output record `ready` and wakes its agent's long-poll. */
export async function enqueueOutput(deps: EccDeps, rec: NewOutput): Promise<string> {
  const id = newId(deps.clock.now());
  await deps.db
    .insertInto('ecc_queue')
    .values({
      id,
      queue: 'output',
      topic: rec.topic,
      name: rec.name.slice(0, 120),
      source: rec.source,
      agent: rec.agent,
      state: 'ready',
      priority: rec.priority ?? PRIORITY_INTERACTIVE,
      response_to: null,
      error_string: null,
      payload: rec.payload,
      claimed_by: null,
      lease_expires_at: null,
      attempts: 0,
      max_attempts: rec.maxAttempts,
      lease_ms: rec.leaseMs ?? null,
      request_sealed: null,
      mid_choice: rec.midChoice ?? null,
      assigned_at: deps.clock.now(),
      created_at: deps.clock.now(),
      processed_at: null,
    })
    .execute();
  deps.wakeups.noteEnqueued(id);
  deps.wakeups.wakeAgent(rec.agent);
  return id;
}

export type EccRecord = EccQueueTable;

export async function getRecord(db: Db, id: string): Promise<EccRecord | undefined> {
  return db.selectFrom('ecc_queue').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findInputFor(db: Db, outputId: string): Promise<EccRecord | undefined> {
  return db
    .selectFrom('ecc_queue')
    .selectAll()
    .where('response_to', '=', outputId)
    .where('queue', '=', 'input')
    .orderBy('id', 'desc')
    .executeTakeFirst();
}

/** The API's view of a record: every field but the payload, which stays encrypted and private. */
export function toView(r: EccRecord) {
  return {
    id: r.id,
    queue: r.queue,
    topic: r.topic,
    name: r.name,
    source: r.source,
    agent: r.agent,
    state: r.state,
    priority: r.priority,
    response_to: r.response_to,
    error_string: r.error_string,
    attempts: r.attempts,
    payload_bytes: r.payload?.length ?? 0,
    created_at: iso(r.created_at),
    processed_at: iso(r.processed_at),
  };
}

export interface ListFilter {
  queue?: 'output' | 'input';
  topic?: string;
  state?: EccState;
  agent?: string;
  response_to?: string;
  limit: number;
  /** Paging: records strictly older than this id. */
  before?: string;
}

export async function listRecords(db: Db, f: ListFilter): Promise<EccRecord[]> {
  let q = db.selectFrom('ecc_queue').selectAll();
  if (f.queue) q = q.where('queue', '=', f.queue);
  if (f.topic) q = q.where('topic', '=', f.topic);
  if (f.state) q = q.where('state', '=', f.state);
  if (f.agent) q = q.where('agent', '=', f.agent);
  if (f.response_to) q = q.where('response_to', '=', f.response_to);
  if (f.before) q = q.where('id', '<', f.before);
  return q.orderBy('id', 'desc').limit(f.limit).execute();
}

/** Counts of ready and processing output records per agent (pending and processing jobs). */
export async function countOpenByAgent(db: Db): Promise<Map<string, { ready: number; processing: number }>> {
  const rows = await db
    .selectFrom('ecc_queue')
    .select(['agent', 'state', (eb) => eb.fn.countAll<number>().as('n')])
    .where('queue', '=', 'output')
    .where('state', 'in', ['ready', 'processing'])
    .groupBy(['agent', 'state'])
    .execute();
  const out = new Map<string, { ready: number; processing: number }>();
  for (const r of rows) {
    const c = out.get(r.agent) ?? { ready: 0, processing: 0 };
    c[r.state as 'ready' | 'processing'] = Number(r.n);
    out.set(r.agent, c);
  }
  return out;
}

/**
 * Retention: deletes records created before the cutoff, whatever their state: a record nobody
 * answered in days has no waiter left (every waiter gives up within minutes).
 */
export async function purgeOlderThan(db: Db, cutoff: number): Promise<number> {
  const r = await db.deleteFrom('ecc_queue').where('created_at', '<', cutoff).executeTakeFirst();
  return Number(r.numDeletedRows);
}
