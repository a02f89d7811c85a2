import type { Db, ProfilesTable } from '../db/schema.js';
import { iso } from '../core/clock.js';
import { newId } from '../core/ids.js';
import { AppError, notFound } from '../core/errors.js';
import { ProfileCreate } from './schemas.js';
import { getProviderRow, type ProviderRow, type RegistryDeps } from './providers.js';

/**
 * OAuth entity profiles: which grant and scopes a credential uses with a provider. Creating a
 * provider creates its default profile (as the reference does on submit).
 */
export type ProfileRow = ProfilesTable;

export function toView(p: ProfileRow) {
  return {
    id: p.id,
    provider_id: p.provider_id,
    name: p.name,
    grant_type: p.grant_type,
    scopes: JSON.parse(p.scopes) as string[],
    is_default: p.is_default === 1,
    created_at: iso(p.created_at),
  };
}

export async function createDefaultProfile(deps: RegistryDeps, provider: ProviderRow): Promise<string> {
  const id = newId(deps.clock.now());
  await deps.db
    .insertInto('oauth_profiles')
    .values({
      id,
      provider_id: provider.id,
      name: `${provider.name} default_profile`,
      grant_type: provider.default_grant_type,
      scopes: provider.scopes,
      is_default: 1,
      created_at: deps.clock.now(),
    })
    .execute();
  return id;
}

export async function createProfile(deps: RegistryDeps, input: unknown) {
  const p = ProfileCreate.parse(input);
  const provider = await getProviderRow(deps.db, p.provider_id).catch(() => {
    throw new AppError('invalid_request', { message: `Field "provider_id": no OAuth provider "${p.provider_id}"; list them with GET /api/v1/oauth_providers.` });
  });
  const clash = await deps.db
    .selectFrom('oauth_profiles')
    .select('id')
    .where('provider_id', '=', provider.id)
    .where('name', '=', p.name)
    .executeTakeFirst();
  if (clash) throw new AppError('conflict', { message: `Provider "${provider.name}" already has a profile named "${p.name}".` });
  const row: ProfileRow = {
    id: newId(deps.clock.now()),
    provider_id: provider.id,
    name: p.name,
    grant_type: p.grant_type ?? provider.default_grant_type,
    scopes: JSON.stringify(p.scopes ?? JSON.parse(provider.scopes)),
    is_default: 0,
    created_at: deps.clock.now(),
  };
  await deps.db.insertInto('oauth_profiles').values(row).execute();
  return toView(row);
}

export async function getProfileRow(db: Db, id: string): Promise<ProfileRow> {
  const row = await db.selectFrom('oauth_profiles').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('OAuth entity profile', id);
  return row;
}

export async function listProfiles(db: Db, providerId?: string) {
  let q = db.selectFrom('oauth_profiles').selectAll();
  if (providerId) q = q.where('provider_id', '=', providerId);
  return (await q.orderBy('id', 'desc').execute()).map(toView);
}
