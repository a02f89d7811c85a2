import { createHash } from 'node:crypto';
import type { Db, OAuthStatesTable } from '../db/schema.js';
import type { Clock } from '../core/clock.js';
import { newId, randomToken } from '../core/ids.js';
import { AppError } from '../core/errors.js';
import type { Vault } from '../vault/vault.js';

/**
 * Single-use, expiring tickets for the flows that need a person: the authorization-code
 * `state` (RFC 6749 §10.12: binds the redirect to the request that started it) and the
 * password login screen. Stored as a SHA-256 hash with the credential, who asked, and (for
 * PKCE) the sealed code_verifier. Consuming is compare-and-set on `used_at`, so a replayed
 * callback or form post fails.
 */
export type StateKind = OAuthStatesTable['kind'];

const hash = (s: string) => createHash('sha256').update(s).digest('hex');
const aad = (id: string) => `oauth_states:code_verifier:${id}`;

export async function createState(
  deps: { db: Db; clock: Clock; vault: Vault },
  s: { kind: StateKind; credentialId: string; requestedBy: string; codeVerifier?: string | null; redirectUri?: string | null; ttlMs: number },
): Promise<{ state: string; expiresAt: number }> {
  const state = randomToken(32);
  const now = deps.clock.now();
  const id = newId(now);
  await deps.db
    .insertInto('oauth_states')
    .values({
      id,
      state_hash: hash(state),
      kind: s.kind,
      credential_id: s.credentialId,
      requested_by: s.requestedBy,
      code_verifier_sealed: s.codeVerifier ? deps.vault.seal(s.codeVerifier, aad(id)) : null,
      redirect_uri: s.redirectUri ?? null,
      expires_at: now + s.ttlMs,
      used_at: null,
      created_at: now,
    })
    .execute();
  // Old tickets are of no use to anyone: keep the table small.
  await deps.db.deleteFrom('oauth_states').where('expires_at', '<', now - 3600_000).execute();
  return { state, expiresAt: now + s.ttlMs };
}

export interface ConsumedState {
  credentialId: string;
  requestedBy: string;
  codeVerifier: string | null;
  redirectUri: string | null;
}

export async function consumeState(deps: { db: Db; clock: Clock; vault: Vault }, kind: StateKind, state: string | undefined): Promise<ConsumedState> {
  const invalid = new AppError('invalid_request', {
    message:
      kind === 'authorization_code'
        ? "This authorization response is unknown, expired or already used (its state does not match a pending request). Start again with the 'Get OAuth Token' link."
        : "This login form is expired or was already used. Start again with the 'Get OAuth Token' link.",
  });
  if (!state) throw invalid;
  const now = deps.clock.now();
  const row = await deps.db.selectFrom('oauth_states').selectAll().where('state_hash', '=', hash(state)).where('kind', '=', kind).executeTakeFirst();
  if (!row || row.used_at !== null || row.expires_at <= now) throw invalid;
  const r = await deps.db.updateTable('oauth_states').set({ used_at: now }).where('id', '=', row.id).where('used_at', 'is', null).executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) throw invalid;
  return {
    credentialId: row.credential_id,
    requestedBy: row.requested_by,
    codeVerifier: row.code_verifier_sealed ? deps.vault.open(row.code_verifier_sealed, aad(row.id)) : null,
    redirectUri: row.redirect_uri,
  };
}
