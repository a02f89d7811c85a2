import type { CredentialsTable, Db } from '../db/schema.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { newId } from '../core/ids.js';
import { AppError, notFound } from '../core/errors.js';
import { CredentialCreate, CredentialPatch, type GrantType } from '../registry/schemas.js';
import { getProfileRow, type ProfileRow } from '../registry/profiles.js';
import type { ProviderRow } from '../registry/providers.js';
import { eligibleMids, describeIneligible, type MidChoice } from '../mid-servers/selection.js';
import { readTokenRows, type TokenRow } from '../tokens/store.js';
import { credentialStatus } from './status.js';

/**
 * "OAuth 2.0 Credentials": a name, an entity profile (so a provider and a grant), and whether
 * to reach the token endpoint through MID servers ("Connect to Auth Server via MID Server")
 * with "Applies to" all or specific MID servers.
 */
export interface CredentialDeps {
  db: Db;
  clock: Clock;
  midDownAfterMs: number;
}

export type CredentialRow = CredentialsTable;

export interface ResolvedCredential {
  credential: CredentialRow;
  profile: ProfileRow;
  provider: ProviderRow;
  grantType: GrantType;
  scopes: string[];
  midChoice: MidChoice | null;
}

export const midChoiceOf = (c: CredentialRow): MidChoice | null =>
  c.use_mid_server === 1 ? { appliesTo: c.applies_to as 'all' | 'specific', names: JSON.parse(c.mid_servers) as string[] } : null;

export function toView(c: CredentialRow, rows: TokenRow[], now: number, grantType: string | null) {
  return {
    id: c.id,
    name: c.name,
    profile_id: c.profile_id,
    grant_type: grantType,
    use_mid_server: c.use_mid_server === 1,
    applies_to: c.applies_to,
    mid_servers: JSON.parse(c.mid_servers) as string[],
    status: credentialStatus(
      rows,
      { code: c.last_error_code, message: c.last_error_message, at: c.last_error_at, needsReauth: c.needs_reauth === 1, nextAttemptAt: c.next_refresh_attempt_at },
      now,
    ),
    created_at: iso(c.created_at),
    updated_at: iso(c.updated_at),
  };
}

async function checkMidChoice(deps: CredentialDeps, c: Pick<CredentialRow, 'use_mid_server' | 'applies_to' | 'mid_servers'>): Promise<void> {
  const choice = midChoiceOf(c as CredentialRow);
  if (!choice) return;
  if (choice.appliesTo === 'specific') {
    if (choice.names.length === 0) {
      throw new AppError('invalid_request', { message: 'Field "mid_servers": with applies_to "specific", name at least one MID server.' });
    }
    const e = await eligibleMids(deps.db, choice, deps.clock.now(), deps.midDownAfterMs);
    if (e.eligible.length === 0) throw new AppError('invalid_request', { message: `Field "mid_servers": ${describeIneligible(choice, e)}` });
  }
}

async function requireProfile(db: Db, id: string): Promise<ProfileRow> {
  try {
    return await getProfileRow(db, id);
  } catch {
    throw new AppError('invalid_request', { message: `Field "profile_id": no OAuth entity profile "${id}"; use a provider's default_profile_id or GET /api/v1/oauth_profiles.` });
  }
}

async function assertNameFree(db: Db, name: string, exceptId: string | null): Promise<void> {
  const clash = await db.selectFrom('credentials').select('id').where('name', '=', name).executeTakeFirst();
  if (clash && clash.id !== exceptId) throw new AppError('conflict', { message: `A credential named "${name}" already exists. Choose another name.` });
}

export async function createCredential(deps: CredentialDeps, input: unknown) {
  const c = CredentialCreate.parse(input);
  const profile = await requireProfile(deps.db, c.profile_id);
  const now = deps.clock.now();
  const row: CredentialRow = {
    id: newId(now),
    name: c.name,
    profile_id: profile.id,
    use_mid_server: c.use_mid_server ? 1 : 0,
    applies_to: c.applies_to,
    mid_servers: JSON.stringify([...new Set(c.mid_servers)]),
    last_error_code: null,
    last_error_message: null,
    last_error_at: null,
    created_at: now,
    updated_at: now,
    refresh_failures: 0,
    next_refresh_attempt_at: null,
    needs_reauth: 0,
  };
  await checkMidChoice(deps, row);
  await assertNameFree(deps.db, row.name, null);
  await deps.db.insertInto('credentials').values(row).execute();
  return toView(row, [], now, profile.grant_type);
}

export async function getCredentialRow(db: Db, idOrName: string): Promise<CredentialRow> {
  const row = await db
    .selectFrom('credentials')
    .selectAll()
    .where((eb) => eb.or([eb('id', '=', idOrName), eb('name', '=', idOrName)]))
    .executeTakeFirst();
  if (!row) throw notFound('credential', idOrName);
  return row;
}

export async function getCredential(deps: CredentialDeps, id: string) {
  const row = await getCredentialRow(deps.db, id);
  const profile = await getProfileRow(deps.db, row.profile_id);
  return toView(row, await readTokenRows(deps.db, row.id), deps.clock.now(), profile.grant_type);
}

export async function listCredentials(deps: CredentialDeps) {
  const rows = await deps.db.selectFrom('credentials').selectAll().orderBy('id', 'desc').execute();
  const tokens = await deps.db.selectFrom('oauth_tokens').selectAll().execute();
  const profiles = new Map((await deps.db.selectFrom('oauth_profiles').select(['id', 'grant_type']).execute()).map((p) => [p.id, p.grant_type]));
  const now = deps.clock.now();
  return rows.map((r) => toView(r, tokens.filter((t) => t.credential_id === r.id), now, profiles.get(r.profile_id) ?? null));
}

export async function updateCredential(deps: CredentialDeps, id: string, input: unknown) {
  const patch = CredentialPatch.parse(input);
  const row = await getCredentialRow(deps.db, id);
  const next: CredentialRow = { ...row, updated_at: deps.clock.now() };
  if (patch.name !== undefined) next.name = patch.name;
  if (patch.profile_id !== undefined) next.profile_id = (await requireProfile(deps.db, patch.profile_id)).id;
  if (patch.use_mid_server !== undefined) next.use_mid_server = patch.use_mid_server ? 1 : 0;
  if (patch.applies_to !== undefined) next.applies_to = patch.applies_to;
  if (patch.mid_servers !== undefined) next.mid_servers = JSON.stringify([...new Set(patch.mid_servers)]);
  await checkMidChoice(deps, next);
  await assertNameFree(deps.db, next.name, row.id);
  await deps.db.updateTable('credentials').set(next).where('id', '=', row.id).execute();
  return getCredential(deps, row.id);
}

export async function deleteCredential(deps: CredentialDeps, id: string): Promise<void> {
  const row = await getCredentialRow(deps.db, id);
  await deps.db.transaction().execute(async (trx) => {
    await trx.deleteFrom('oauth_tokens').where('credential_id', '=', row.id).execute();
    await trx.deleteFrom('token_leases').where('credential_id', '=', row.id).execute();
    await trx.deleteFrom('credentials').where('id', '=', row.id).execute();
  });
}

const PROFILE_COLUMNS = ['id', 'provider_id', 'name', 'grant_type', 'scopes', 'is_default', 'created_at'] as const;
const PROVIDER_COLUMNS = [
  'id', 'name', 'client_id', 'client_secret_sealed', 'authorization_url', 'token_url', 'revocation_url', 'default_grant_type',
  'client_auth_method', 'scopes', 'pkce', 'token_request_params', 'assertion', 'assertion_private_key_sealed', 'issuer', 'created_at', 'updated_at',
] as const;

/**
 * Credential → profile → provider in one query: this runs for every token request and
 * scheduled refresh, so it is one round through SQLite rather than three.
 */
export async function resolveCredential(db: Db, id: string): Promise<ResolvedCredential> {
  const row = (await db
    .selectFrom('credentials as c')
    .innerJoin('oauth_profiles as p', 'p.id', 'c.profile_id')
    .innerJoin('oauth_providers as v', 'v.id', 'p.provider_id')
    .selectAll('c')
    .select(PROFILE_COLUMNS.map((k) => `p.${k} as p__${k}`) as unknown as ['p.id'])
    .select(PROVIDER_COLUMNS.map((k) => `v.${k} as v__${k}`) as unknown as ['v.id'])
    .where((eb) => eb.or([eb('c.id', '=', id), eb('c.name', '=', id)]))
    .executeTakeFirst()) as Record<string, unknown> | undefined;
  if (!row) throw notFound('credential', id);
  const part = <T>(prefix: string, cols: readonly string[]) => Object.fromEntries(cols.map((k) => [k, row[`${prefix}__${k}`]])) as T;
  const profile = part<ProfileRow>('p', PROFILE_COLUMNS);
  const provider = part<ProviderRow>('v', PROVIDER_COLUMNS);
  const credential = Object.fromEntries(Object.entries(row).filter(([k]) => !k.includes('__'))) as unknown as CredentialRow;
  return {
    credential,
    profile,
    provider,
    grantType: profile.grant_type as GrantType,
    scopes: JSON.parse(profile.scopes) as string[],
    midChoice: midChoiceOf(credential),
  };
}

export async function recordFailure(deps: { db: Db; clock: Clock }, credentialId: string, err: AppError): Promise<void> {
  await deps.db
    .updateTable('credentials')
    .set({ last_error_code: err.code, last_error_message: err.message, last_error_at: deps.clock.now() })
    .where('id', '=', credentialId)
    .execute();
}
