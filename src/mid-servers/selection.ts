import type { Db } from '../db/schema.js';
import { AppError } from '../core/errors.js';
import { agentName, countOpenByAgent } from '../ecc/index.js';
import { getMid, hasRest, isUp, listMids, type MidRow } from './registry.js';

/**
 * Which MID servers may run a request: `specific` limits to the named ones, `all` takes every
 * one. Eligible = up, validated and with the REST (or ALL) capability. Among the eligible, the
 * one with the fewest open records wins, ties broken at random, so load spreads.
 */
export interface MidChoice {
  appliesTo: 'all' | 'specific';
  names: string[];
}

export interface Eligibility {
  eligible: MidRow[];
  /** Why each named-but-ineligible MID server was passed over (for the error message). */
  rejected: Array<{ name: string; reason: string }>;
}

/**
 * The MID list changes slowly (heartbeats every 2 s, admin actions) but is read for every
 * relayed request: one read serves every request within 250 ms. Admin changes go through
 * `forgetMidList()` so they apply at once.
 */
let listCache: { db: Db; at: number; rows: Promise<MidRow[]> } | null = null;
export const forgetMidList = (): void => {
  listCache = null;
};
function cachedMids(db: Db, now: number): Promise<MidRow[]> {
  if (!listCache || listCache.db !== db || now - listCache.at > 250 || now < listCache.at) listCache = { db, at: now, rows: listMids(db) };
  return listCache.rows;
}

/** A MID server row from the short-lived list (falls back to the database for one not in it). */
export async function cachedMid(db: Db, idOrName: string, now: number): Promise<MidRow | undefined> {
  const hit = (await cachedMids(db, now)).find((m) => m.id === idOrName || m.name === idOrName);
  return hit ?? getMid(db, idOrName);
}

export async function eligibleMids(db: Db, choice: MidChoice, now: number, downAfterMs: number): Promise<Eligibility> {
  const all = await cachedMids(db, now);
  const candidates = choice.appliesTo === 'specific' ? all.filter((m) => choice.names.includes(m.name)) : all;
  const rejected: Eligibility['rejected'] = [];
  if (choice.appliesTo === 'specific') {
    for (const n of choice.names) if (!all.some((m) => m.name === n)) rejected.push({ name: n, reason: 'is not enrolled' });
  }
  const eligible: MidRow[] = [];
  for (const m of candidates) {
    const reasons: string[] = [];
    if (!isUp(m, now, downAfterMs)) reasons.push('is down');
    if (m.validated !== 1) reasons.push('is not validated');
    if (m.paused === 1) reasons.push('is paused');
    if (!hasRest(m)) reasons.push('lacks the REST capability');
    if (reasons.length) rejected.push({ name: m.name, reason: reasons.join(', ') });
    else eligible.push(m);
  }
  return { eligible, rejected };
}

export function describeIneligible(choice: MidChoice, e: Eligibility): string {
  const scope = choice.appliesTo === 'specific' ? `none of the MID servers named (${choice.names.join(', ')})` : 'no MID server';
  const why = e.rejected.length ? ` ${e.rejected.map((r) => `${r.name} ${r.reason}`).join('; ')}.` : ' None is enrolled.';
  return (
    `No valid MID server with REST capability available to obtain new access token: ${scope} is up, validated and has the REST capability.${why} ` +
    'Start or validate a MID server (POST /api/v1/mid_servers/{name}/validate), or change the credential\'s MID servers.'
  );
}

export async function pickMid(db: Db, choice: MidChoice, now: number, downAfterMs: number, random = Math.random): Promise<MidRow> {
  const e = await eligibleMids(db, choice, now, downAfterMs);
  if (e.eligible.length === 0) {
    throw new AppError('mid_server_unavailable', { message: describeIneligible(choice, e), detail: { choice } });
  }
  if (e.eligible.length === 1) return e.eligible[0]!;
  const open = await countOpenByAgent(db);
  const load = (m: MidRow) => {
    const c = open.get(agentName(m.name));
    return (c?.ready ?? 0) + (c?.processing ?? 0);
  };
  const min = Math.min(...e.eligible.map(load));
  const best = e.eligible.filter((m) => load(m) === min);
  return best[Math.floor(random() * best.length)]!;
}
