import type { Db, ProvidersTable } from '../db/schema.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { newId } from '../core/ids.js';
import { AppError, notFound } from '../core/errors.js';
import type { Vault } from '../vault/vault.js';
import { ProviderCreate, ProviderPatch, type GrantType, type ClientAuthMethod } from './schemas.js';
import { createDefaultProfile } from './profiles.js';

/**
 * The Application Registry: third-party OAuth providers. Client secrets and private keys are
 * sealed under the master key (AAD = table:column:id) and never leave this module in a view.
 */
export interface RegistryDeps {
  db: Db;
  vault: Vault;
  clock: Clock;
}

export type ProviderRow = ProvidersTable;

export interface AssertionConfig {
  issuer?: string;
  subject?: string;
  audience?: string;
  lifetime_s?: number;
  signing_alg?: string;
  key_id?: string;
  certificate_pem?: string;
}

/** A provider with its secrets opened, for the grant code only. */
export interface ProviderSecrets {
  row: ProviderRow;
  clientSecret: string | null;
  assertion: AssertionConfig | null;
  privateKeyPem: string | null;
}

const secretAad = (id: string) => `oauth_providers:client_secret:${id}`;
const keyAad = (id: string) => `oauth_providers:assertion_private_key:${id}`;

function checkConsistency(p: {
  default_grant_type: GrantType;
  client_auth_method: ClientAuthMethod;
  authorization_url: string | null;
  hasSecret: boolean;
  hasKey: boolean;
}): void {
  const bad = (field: string, message: string) => new AppError('invalid_request', { message: `Field "${field}": ${message}` });
  if (p.default_grant_type === 'authorization_code' && !p.authorization_url) {
    throw bad('authorization_url', 'the authorization_code grant needs the provider\'s authorization URL.');
  }
  if ((p.client_auth_method === 'client_secret_basic' || p.client_auth_method === 'client_secret_post') && !p.hasSecret) {
    throw bad('client_secret', `client_auth_method "${p.client_auth_method}" needs a client secret; set one, or choose "private_key_jwt" or "none".`);
  }
  const needsKey =
    p.client_auth_method === 'private_key_jwt' ||
    p.default_grant_type === 'urn:ietf:params:oauth:grant-type:jwt-bearer' ||
    p.default_grant_type === 'urn:ietf:params:oauth:grant-type:saml2-bearer';
  if (needsKey && !p.hasKey) {
    throw bad('assertion.private_key_pem', 'this grant or client authentication signs an assertion; give the private key (PEM).');
  }
}

export function toView(p: ProviderRow, defaultProfileId: string | null) {
  const assertion = p.assertion ? (JSON.parse(p.assertion) as AssertionConfig) : null;
  return {
    id: p.id,
    name: p.name,
    client_id: p.client_id,
    client_secret_set: p.client_secret_sealed !== null,
    authorization_url: p.authorization_url,
    token_url: p.token_url,
    revocation_url: p.revocation_url,
    issuer: p.issuer,
    default_grant_type: p.default_grant_type,
    client_auth_method: p.client_auth_method,
    scopes: JSON.parse(p.scopes) as string[],
    pkce: p.pkce === 1,
    token_request_params: JSON.parse(p.token_request_params) as Record<string, string>,
    assertion: assertion ? { ...assertion, private_key_set: p.assertion_private_key_sealed !== null } : null,
    default_profile_id: defaultProfileId,
    created_at: iso(p.created_at),
    updated_at: iso(p.updated_at),
  };
}

function splitAssertion(a: ProviderCreate['assertion']): { config: string | null; key: string | null } {
  if (!a) return { config: null, key: null };
  const { private_key_pem, ...rest } = a;
  return { config: JSON.stringify(rest), key: private_key_pem ?? null };
}

export async function createProvider(deps: RegistryDeps, input: unknown) {
  const p = ProviderCreate.parse(input);
  const now = deps.clock.now();
  const id = newId(now);
  const { config, key } = splitAssertion(p.assertion);
  checkConsistency({
    default_grant_type: p.default_grant_type,
    client_auth_method: p.client_auth_method,
    authorization_url: p.authorization_url ?? null,
    hasSecret: !!p.client_secret,
    hasKey: !!key,
  });
  const row: ProviderRow = {
    id,
    name: p.name,
    client_id: p.client_id,
    client_secret_sealed: p.client_secret ? deps.vault.seal(p.client_secret, secretAad(id)) : null,
    authorization_url: p.authorization_url ?? null,
    token_url: p.token_url,
    revocation_url: p.revocation_url ?? null,
    default_grant_type: p.default_grant_type,
    client_auth_method: p.client_auth_method,
    scopes: JSON.stringify(p.scopes),
    pkce: p.pkce ? 1 : 0,
    token_request_params: JSON.stringify(p.token_request_params),
    assertion: config,
    assertion_private_key_sealed: key ? deps.vault.seal(key, keyAad(id)) : null,
    issuer: p.issuer ?? null,
    created_at: now,
    updated_at: now,
  };
  const profileId = await deps.db.transaction().execute(async (trx) => {
    await assertNameFree(trx, p.name, null);
    await trx.insertInto('oauth_providers').values(row).execute();
    return createDefaultProfile({ ...deps, db: trx }, row);
  });
  return toView(row, profileId);
}

async function assertNameFree(db: Db, name: string, exceptId: string | null): Promise<void> {
  const clash = await db.selectFrom('oauth_providers').select('id').where('name', '=', name).executeTakeFirst();
  if (clash && clash.id !== exceptId) {
    throw new AppError('conflict', { message: `An OAuth provider named "${name}" already exists. Choose another name, or PATCH the existing one.` });
  }
}

export async function getProviderRow(db: Db, id: string): Promise<ProviderRow> {
  const row = await db.selectFrom('oauth_providers').selectAll().where((eb) => eb.or([eb('id', '=', id), eb('name', '=', id)])).executeTakeFirst();
  if (!row) throw notFound('OAuth provider', id);
  return row;
}

async function defaultProfileId(db: Db, providerId: string): Promise<string | null> {
  const r = await db.selectFrom('oauth_profiles').select('id').where('provider_id', '=', providerId).where('is_default', '=', 1).executeTakeFirst();
  return r?.id ?? null;
}

export async function getProvider(deps: RegistryDeps, id: string) {
  const row = await getProviderRow(deps.db, id);
  return toView(row, await defaultProfileId(deps.db, row.id));
}

export async function listProviders(deps: RegistryDeps) {
  const rows = await deps.db.selectFrom('oauth_providers').selectAll().orderBy('id', 'desc').execute();
  const defaults = await deps.db.selectFrom('oauth_profiles').select(['id', 'provider_id']).where('is_default', '=', 1).execute();
  const byProvider = new Map(defaults.map((d) => [d.provider_id, d.id]));
  return rows.map((r) => toView(r, byProvider.get(r.id) ?? null));
}

export async function updateProvider(deps: RegistryDeps, id: string, input: unknown) {
  const patch = ProviderPatch.parse(input);
  const row = await getProviderRow(deps.db, id);
  const next: ProviderRow = { ...row, updated_at: deps.clock.now() };
  if (patch.name !== undefined) next.name = patch.name;
  if (patch.client_id !== undefined) next.client_id = patch.client_id;
  if (patch.client_secret !== undefined) {
    next.client_secret_sealed = patch.client_secret === null ? null : deps.vault.seal(patch.client_secret, secretAad(row.id));
  }
  if (patch.authorization_url !== undefined) next.authorization_url = patch.authorization_url;
  if (patch.token_url !== undefined) next.token_url = patch.token_url;
  if (patch.revocation_url !== undefined) next.revocation_url = patch.revocation_url;
  if (patch.issuer !== undefined) next.issuer = patch.issuer;
  if (patch.default_grant_type !== undefined) next.default_grant_type = patch.default_grant_type;
  if (patch.client_auth_method !== undefined) next.client_auth_method = patch.client_auth_method;
  if (patch.scopes !== undefined) next.scopes = JSON.stringify(patch.scopes);
  if (patch.pkce !== undefined) next.pkce = patch.pkce ? 1 : 0;
  if (patch.token_request_params !== undefined) next.token_request_params = JSON.stringify(patch.token_request_params);
  if (patch.assertion !== undefined) {
    const { config, key } = splitAssertion(patch.assertion);
    next.assertion = config;
    // A new assertion block without a key keeps the stored key; `assertion: null` removes both.
    if (patch.assertion === null) next.assertion_private_key_sealed = null;
    else if (key) next.assertion_private_key_sealed = deps.vault.seal(key, keyAad(row.id));
  }
  checkConsistency({
    default_grant_type: next.default_grant_type as GrantType,
    client_auth_method: next.client_auth_method as ClientAuthMethod,
    authorization_url: next.authorization_url,
    hasSecret: next.client_secret_sealed !== null,
    hasKey: next.assertion_private_key_sealed !== null,
  });
  await deps.db.transaction().execute(async (trx) => {
    await assertNameFree(trx, next.name, row.id);
    await trx.updateTable('oauth_providers').set(next).where('id', '=', row.id).execute();
  });
  return toView(next, await defaultProfileId(deps.db, row.id));
}

export async function deleteProvider(deps: RegistryDeps, id: string): Promise<void> {
  const row = await getProviderRow(deps.db, id);
  const used = await deps.db
    .selectFrom('credentials')
    .innerJoin('oauth_profiles', 'oauth_profiles.id', 'credentials.profile_id')
    .select('credentials.name')
    .where('oauth_profiles.provider_id', '=', row.id)
    .execute();
  if (used.length) {
    throw new AppError('conflict', {
      message: `OAuth provider "${row.name}" is used by credential(s) ${used.map((u) => `"${u.name}"`).join(', ')}; delete or re-point them first.`,
    });
  }
  await deps.db.deleteFrom('oauth_providers').where('id', '=', row.id).execute();
}

/** Opens the provider's secrets for one token request. */
export function openSecrets(vault: Vault, row: ProviderRow): ProviderSecrets {
  return {
    row,
    clientSecret: row.client_secret_sealed ? vault.open(row.client_secret_sealed, secretAad(row.id)) : null,
    assertion: row.assertion ? (JSON.parse(row.assertion) as AssertionConfig) : null,
    privateKeyPem: row.assertion_private_key_sealed ? vault.open(row.assertion_private_key_sealed, keyAad(row.id)) : null,
  };
}
