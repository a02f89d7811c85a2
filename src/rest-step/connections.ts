import { z } from 'zod';
import type { ConnectionsTable, Db } from '../db/schema.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { newId } from '../core/ids.js';
import { AppError, notFound } from '../core/errors.js';
import { getCredentialRow } from '../credentials/credentials.js';
import { getMid } from '../mid-servers/registry.js';
import { httpUrl } from '../registry/schemas.js';

/**
 * Connections (the reference's Connection & Credential alias): where a REST step goes (base
 * URL), with which credential's token, through which MID servers, with what limits and retry
 * policy.
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 5 * 1024 * 1024;
export const MAX_RESPONSE_BYTES_LIMIT = 10 * 1024 * 1024;

export const RetryPolicy = z
  .object({
    strategy: z.enum(['none', 'exponential', 'fixed', 'retry_after']).default('none'),
    count: z.number().int().min(0).max(10).default(0),
    interval_ms: z.number().int().min(0).max(600_000).default(1_000),
    max_elapsed_ms: z.number().int().min(0).max(86_400_000).default(60_000),
    on_status: z.array(z.number().int().min(400).max(599)).default([429, 502, 503, 504]),
    retry_non_idempotent: z.boolean().default(false),
  })
  .strict();
export type RetryPolicy = z.infer<typeof RetryPolicy>;

const fields = {
  name: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/, 'letters, digits, "_", "." and "-"'),
  base_url: httpUrl,
  credential_id: z.string().min(1).nullable(),
  use_mid_server: z.boolean(),
  mid_servers: z.array(z.string().min(1)).max(100),
  timeout_ms: z.number().int().min(100).max(300_000),
  max_response_bytes: z.number().int().min(1).max(MAX_RESPONSE_BYTES_LIMIT),
  retry_policy: RetryPolicy,
};

export const ConnectionCreate = z
  .object({
    ...fields,
    credential_id: fields.credential_id.optional(),
    use_mid_server: fields.use_mid_server.default(false),
    mid_servers: fields.mid_servers.default([]),
    timeout_ms: fields.timeout_ms.default(30_000),
    max_response_bytes: fields.max_response_bytes.default(DEFAULT_MAX_RESPONSE_BYTES),
    retry_policy: RetryPolicy.optional(),
  })
  .strict();
export const ConnectionPatch = z.object(Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v.optional()]))).strict();

export type ConnectionRow = ConnectionsTable;

export function toView(c: ConnectionRow) {
  return {
    id: c.id,
    name: c.name,
    base_url: c.base_url,
    credential_id: c.credential_id,
    use_mid_server: c.use_mid_server === 1,
    mid_servers: JSON.parse(c.mid_servers) as string[],
    timeout_ms: c.timeout_ms,
    max_response_bytes: c.max_response_bytes,
    retry_policy: JSON.parse(c.retry_policy) as RetryPolicy,
    created_at: iso(c.created_at),
    updated_at: iso(c.updated_at),
  };
}

async function check(db: Db, c: ConnectionRow): Promise<void> {
  if (c.credential_id) {
    try {
      c.credential_id = (await getCredentialRow(db, c.credential_id)).id;
    } catch {
      throw new AppError('invalid_request', { message: `Field "credential_id": no credential "${c.credential_id}".` });
    }
  }
  for (const name of JSON.parse(c.mid_servers) as string[]) {
    if (!(await getMid(db, name))) throw new AppError('invalid_request', { message: `Field "mid_servers": no MID server named "${name}" is enrolled.` });
  }
  const clash = await db.selectFrom('connections').select('id').where('name', '=', c.name).executeTakeFirst();
  if (clash && clash.id !== c.id) throw new AppError('conflict', { message: `A connection named "${c.name}" already exists. Choose another name.` });
}

export async function createConnection(deps: { db: Db; clock: Clock }, input: unknown) {
  const c = ConnectionCreate.parse(input);
  const now = deps.clock.now();
  const row: ConnectionRow = {
    id: newId(now),
    name: c.name,
    base_url: c.base_url,
    credential_id: c.credential_id ?? null,
    use_mid_server: c.use_mid_server ? 1 : 0,
    mid_servers: JSON.stringify([...new Set(c.mid_servers)]),
    timeout_ms: c.timeout_ms,
    max_response_bytes: c.max_response_bytes,
    retry_policy: JSON.stringify(c.retry_policy ?? RetryPolicy.parse({})),
    created_at: now,
    updated_at: now,
  };
  await check(deps.db, row);
  await deps.db.insertInto('connections').values(row).execute();
  return toView(row);
}

export async function getConnectionRow(db: Db, idOrName: string): Promise<ConnectionRow> {
  const row = await db.selectFrom('connections').selectAll().where((eb) => eb.or([eb('id', '=', idOrName), eb('name', '=', idOrName)])).executeTakeFirst();
  if (!row) throw notFound('connection', idOrName);
  return row;
}

export async function listConnections(db: Db) {
  return (await db.selectFrom('connections').selectAll().orderBy('id', 'desc').execute()).map(toView);
}

export async function updateConnection(deps: { db: Db; clock: Clock }, id: string, input: unknown) {
  const p = ConnectionPatch.parse(input) as Partial<z.infer<typeof ConnectionCreate>>;
  const row = await getConnectionRow(deps.db, id);
  const next: ConnectionRow = { ...row, updated_at: deps.clock.now() };
  if (p.name !== undefined) next.name = p.name;
  if (p.base_url !== undefined) next.base_url = p.base_url;
  if (p.credential_id !== undefined) next.credential_id = p.credential_id;
  if (p.use_mid_server !== undefined) next.use_mid_server = p.use_mid_server ? 1 : 0;
  if (p.mid_servers !== undefined) next.mid_servers = JSON.stringify([...new Set(p.mid_servers)]);
  if (p.timeout_ms !== undefined) next.timeout_ms = p.timeout_ms;
  if (p.max_response_bytes !== undefined) next.max_response_bytes = p.max_response_bytes;
  if (p.retry_policy !== undefined) next.retry_policy = JSON.stringify(p.retry_policy);
  await check(deps.db, next);
  await deps.db.updateTable('connections').set(next).where('id', '=', row.id).execute();
  return toView(next);
}

export async function deleteConnection(db: Db, id: string): Promise<void> {
  const row = await getConnectionRow(db, id);
  await db.deleteFrom('connections').where('id', '=', row.id).execute();
}
