import { decodeJwt } from 'jose';
import type * as oauth from 'oauth4webapi';
import type { Db, OAuthTokensTable } from '../db/schema.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { newId } from '../core/ids.js';
import type { Vault } from '../vault/vault.js';

/**
 * The oauth_credential table: at most one access and one refresh token per credential, values
 * sealed under the master key (AAD = oauth_tokens:value:<credential>:<type>).
 */
export type TokenRow = OAuthTokensTable;

const aad = (credentialId: string, type: 'access' | 'refresh') => `oauth_tokens:value:${credentialId}:${type}`;

export async function readTokenRows(db: Db, credentialId: string): Promise<TokenRow[]> {
  return db.selectFrom('oauth_tokens').selectAll().where('credential_id', '=', credentialId).execute();
}

export async function readAccessRow(db: Db, credentialId: string): Promise<TokenRow | undefined> {
  return db
    .selectFrom('oauth_tokens')
    .selectAll()
    .where('credential_id', '=', credentialId)
    .where('token_type', '=', 'access')
    .executeTakeFirst();
}

export const openToken = (vault: Vault, row: TokenRow): string => vault.open(row.value_sealed, aad(row.credential_id, row.token_type));

/**
 * When the access token expires: `expires_in` if the reply has it; else the JWT `exp` when the
 * token is a JWT; else the configured default, so a reply without expiry is still refreshed.
 */
export function accessExpiry(resp: oauth.TokenEndpointResponse, now: number, defaultTtlS: number): number {
  if (typeof resp.expires_in === 'number' && Number.isFinite(resp.expires_in)) return now + resp.expires_in * 1000;
  try {
    const { exp } = decodeJwt(resp.access_token);
    if (typeof exp === 'number') return exp * 1000;
  } catch {
    /* opaque token */
  }
  return now + defaultTtlS * 1000;
}

/**
 * Stores a token endpoint reply in one transaction: the access token replaces the old one; a
 * refresh token in the reply replaces the stored one atomically with it. RFC 6749 §6: the
 * server MAY issue a new refresh token; when the reply has none the old one is kept, because
 * sending a rotated-out token later would fail with invalid_grant.
 */
export async function saveTokenResponse(
  deps: { db: Db; vault: Vault; clock: Clock },
  credentialId: string,
  resp: oauth.TokenEndpointResponse,
  opts: {
    defaultTtlS: number;
    requestedScopes: string[];
    refreshShare: number;
    random?: () => number;
    /** The credential carries a failure, backoff or needs-reauth flag to clear (skipped otherwise: hot path). */
    clearFailure?: boolean;
  },
): Promise<{ accessExpiresAt: number }> {
  const now = deps.clock.now();
  const accessExpiresAt = accessExpiry(resp, now, opts.defaultTtlS);
  const refreshAt = scheduleRefresh(now, accessExpiresAt, opts.refreshShare, opts.random ?? Math.random);
  const scope = resp.scope ?? (opts.requestedScopes.length ? opts.requestedScopes.join(' ') : null);
  await deps.db.transaction().execute(async (trx) => {
    const upsert = async (type: 'access' | 'refresh', value: string, expiresAt: number | null) => {
      const row: TokenRow = {
        id: newId(now),
        credential_id: credentialId,
        token_type: type,
        value_sealed: deps.vault.seal(value, aad(credentialId, type)),
        expires_at: expiresAt,
        scope,
        created_at: now,
        refresh_at: type === 'access' ? refreshAt : null,
      };
      await trx
        .insertInto('oauth_tokens')
        .values(row)
        .onConflict((oc) =>
          oc.columns(['credential_id', 'token_type']).doUpdateSet({
            id: row.id,
            value_sealed: row.value_sealed,
            expires_at: row.expires_at,
            scope: row.scope,
            created_at: row.created_at,
            refresh_at: row.refresh_at,
          }),
        )
        .execute();
    };
    await upsert('access', resp.access_token, accessExpiresAt);
    if (resp.refresh_token) {
      const rexp = (resp as { refresh_expires_in?: unknown }).refresh_expires_in;
      await upsert('refresh', resp.refresh_token, typeof rexp === 'number' && rexp > 0 ? now + rexp * 1000 : null);
    }
    if (opts.clearFailure ?? true) {
      await trx
        .updateTable('credentials')
        .set({ last_error_code: null, last_error_message: null, last_error_at: null, refresh_failures: 0, next_refresh_attempt_at: null, needs_reauth: 0 })
        .where('id', '=', credentialId)
        .execute();
    }
  });
  return { accessExpiresAt };
}

/**
 * When the scheduler refreshes an access token: after `share` of its lifetime, jittered by
 * ±5 % of the lifetime so that tokens issued together are not refreshed together.
 */
export function scheduleRefresh(now: number, expiresAt: number, share: number, random: () => number): number {
  const life = Math.max(0, expiresAt - now);
  return Math.round(now + life * share + life * 0.05 * (2 * random() - 1));
}

export async function deleteTokens(db: Db, credentialId: string, type?: 'access' | 'refresh'): Promise<void> {
  let q = db.deleteFrom('oauth_tokens').where('credential_id', '=', credentialId);
  if (type) q = q.where('token_type', '=', type);
  await q.execute();
}

export function toView(r: TokenRow) {
  return {
    id: r.id,
    credential_id: r.credential_id,
    token_type: r.token_type,
    expires_at: iso(r.expires_at),
    scope: r.scope,
    created_at: iso(r.created_at),
  };
}

export async function listTokenRows(db: Db, credentialId?: string): Promise<TokenRow[]> {
  let q = db.selectFrom('oauth_tokens').selectAll();
  if (credentialId) q = q.where('credential_id', '=', credentialId);
  return q.orderBy('created_at', 'desc').execute();
}
