import type { Db, MidServersTable } from '../db/schema.js';
import { iso } from '../core/clock.js';
import { newId } from '../core/ids.js';
import { AppError } from '../core/errors.js';
import { consumeEnrollmentKey } from './enrollment.js';
import { agentName } from '../ecc/states.js';
import { failOutput, type EccDeps } from '../ecc/index.js';
import { forgetMidList } from './selection.js';

/**
 * The instance's registry of MID servers. Status is derived, not stored: a MID server is `up`
 * while its heartbeats keep arriving (last one younger than `downAfterMs`), `down` otherwise.
 * Only a validated MID server gets work; enrolling never validates (an admin does, or `up` for
 * its own embedded `local`).
 */
export interface MidRegistryDeps extends EccDeps {
  downAfterMs: number;
}

export type MidRow = MidServersTable;

export const parseCaps = (s: string): string[] => JSON.parse(s) as string[];
export const isUp = (m: MidRow, now: number, downAfterMs: number): boolean =>
  m.last_heartbeat_at !== null && now - m.last_heartbeat_at < downAfterMs;
export const hasRest = (m: MidRow): boolean => parseCaps(m.capabilities).some((c) => /^(REST|ALL)$/i.test(c));

export function toView(m: MidRow, now: number, downAfterMs: number, counts?: { ready: number; processing: number }) {
  return {
    id: m.id,
    name: m.name,
    status: isUp(m, now, downAfterMs) ? ('up' as const) : ('down' as const),
    validated: m.validated === 1,
    paused: m.paused === 1,
    rekey_pending: m.rekey_requested === 1,
    capabilities: parseCaps(m.capabilities),
    host: m.host,
    version: m.version,
    last_heartbeat_at: iso(m.last_heartbeat_at),
    created_at: iso(m.created_at),
    pending_jobs: counts?.ready ?? 0,
    processing_jobs: counts?.processing ?? 0,
  };
}

export async function enrollMid(
  deps: MidRegistryDeps,
  req: { key: string; name: string; signJwk: object; encJwk: object; host?: string; version?: string; capabilities?: string[] },
): Promise<MidRow> {
  const now = deps.clock.now();
  const row = await deps.db.transaction().execute(async (trx) => {
    const existing = await trx.selectFrom('mid_servers').select('id').where('name', '=', req.name).executeTakeFirst();
    if (existing) {
      throw new AppError('conflict', {
        message: `A MID server named "${req.name}" is already enrolled. Choose another name, or delete the old one (DELETE /api/v1/mid_servers/${req.name}) first.`,
      });
    }
    await consumeEnrollmentKey(trx, deps.clock, req.key, req.name);
    const row: MidRow = {
      id: newId(now),
      name: req.name,
      sign_jwk: JSON.stringify(req.signJwk),
      enc_jwk: JSON.stringify(req.encJwk),
      validated: 0,
      capabilities: JSON.stringify(req.capabilities ?? ['REST']),
      host: req.host ?? null,
      version: req.version ?? null,
      last_heartbeat_at: now,
      created_at: now,
      paused: 0,
      rekey_requested: 0,
    };
    await trx.insertInto('mid_servers').values(row).execute();
    return row;
  });
  // After the commit: a list re-read before it would miss the new MID server.
  forgetMidList();
  return row;
}

export async function getMid(db: Db, idOrName: string): Promise<MidRow | undefined> {
  return db.selectFrom('mid_servers').selectAll().where((eb) => eb.or([eb('id', '=', idOrName), eb('name', '=', idOrName)])).executeTakeFirst();
}

export async function requireMid(db: Db, name: string): Promise<MidRow> {
  const m = await getMid(db, name);
  if (!m) throw new AppError('not_found', { message: `No MID server named "${name}". List them with GET /api/v1/mid_servers.` });
  return m;
}

export async function listMids(db: Db): Promise<MidRow[]> {
  return db.selectFrom('mid_servers').selectAll().orderBy('name').execute();
}

export async function recordHeartbeat(
  deps: MidRegistryDeps,
  midId: string,
  hb: { host?: string | undefined; version?: string | undefined; capabilities?: string[] | undefined },
): Promise<void> {
  await deps.db
    .updateTable('mid_servers')
    .set({
      last_heartbeat_at: deps.clock.now(),
      ...(hb.host !== undefined ? { host: hb.host } : {}),
      ...(hb.version !== undefined ? { version: hb.version } : {}),
      ...(hb.capabilities !== undefined ? { capabilities: JSON.stringify(hb.capabilities) } : {}),
    })
    .where('id', '=', midId)
    .execute();
}

export async function setValidated(deps: MidRegistryDeps, name: string, validated: boolean): Promise<MidRow> {
  const m = await requireMid(deps.db, name);
  await deps.db.updateTable('mid_servers').set({ validated: validated ? 1 : 0 }).where('id', '=', m.id).execute();
  forgetMidList();
  if (!validated) await abandonWork(deps, m.name, `MID server ${m.name} was invalidated by an administrator.`);
  return { ...m, validated: validated ? 1 : 0 };
}

/** Pause/resume take effect at once: a paused MID server gets no new work (its ready records move), and finishes what it holds. */
export async function setPaused(deps: MidRegistryDeps, name: string, paused: boolean): Promise<MidRow> {
  const m = await requireMid(deps.db, name);
  if (paused && m.validated !== 1) {
    throw new AppError('conflict', { message: `MID server ${m.name} is not validated; only a validated MID server can be paused.` });
  }
  await deps.db.updateTable('mid_servers').set({ paused: paused ? 1 : 0 }).where('id', '=', m.id).execute();
  forgetMidList();
  deps.wakeups.wakeAgent(agentName(m.name));
  return { ...m, paused: paused ? 1 : 0 };
}

/** Asks the MID server to make new key pairs; it does so at its next heartbeat. */
export async function requestRekey(deps: MidRegistryDeps, name: string): Promise<MidRow> {
  const m = await requireMid(deps.db, name);
  await deps.db.updateTable('mid_servers').set({ rekey_requested: 1 }).where('id', '=', m.id).execute();
  return { ...m, rekey_requested: 1 };
}

export async function deleteMid(deps: MidRegistryDeps, name: string): Promise<void> {
  const m = await requireMid(deps.db, name);
  await abandonWork(deps, m.name, `MID server ${m.name} was deleted.`);
  await deps.db.deleteFrom('mid_servers').where('id', '=', m.id).execute();
  forgetMidList();
}

/** Output records that an invalidated or deleted MID server must never run, or finish, end in error. */
async function abandonWork(deps: MidRegistryDeps, name: string, reason: string): Promise<void> {
  const open = await deps.db
    .selectFrom('ecc_queue')
    .select('id')
    .where('agent', '=', agentName(name))
    .where('queue', '=', 'output')
    .where('state', 'in', ['ready', 'processing'])
    .execute();
  for (const r of open) await failOutput(deps, r.id, ['ready', 'processing'], reason);
}
