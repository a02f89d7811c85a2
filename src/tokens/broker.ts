import * as oauth from 'oauth4webapi';
import type { Db } from '../db/schema.js';
import type { Clock } from '../core/clock.js';
import type { Log } from '../core/log.js';
import { AppError, isAppError } from '../core/errors.js';
import { randomToken } from '../core/ids.js';
import { backoff, sleep } from '../core/loop.js';
import type { Vault } from '../vault/vault.js';
import { openSecrets } from '../registry/providers.js';
import { resolveCredential, recordFailure, type ResolvedCredential } from '../credentials/credentials.js';
import {
  runUnattendedGrant, refreshGrant, passwordGrant, authorizeUrl, exchangeCode, revokeToken, explainGrantError, isUnattended,
  type GrantContext,
} from '../grants/index.js';
import type { Transport } from '../transport/transport.js';
import { openToken, readAccessRow, readTokenRows, saveTokenResponse, deleteTokens } from './store.js';
import { releaseLease, tryAcquireLease } from './lease.js';
import { consumeState, createState } from './states.js';

/**
 * The token broker. `accessToken` serves the stored token while it has life left; otherwise
 * it refreshes (refresh_token grant when there is a refresh token, a new request for grants
 * that need no person) — one refresh at a time per credential:
 *   1. in-process single-flight: concurrent callers share one promise;
 *   2. a lease row with an owner token that outlives the HTTP call (across processes);
 *   3. a re-read of the token under the lease, so a refresh someone else just finished is used;
 *   4. never a token request without the lease.
 * The same path serves "Get OAuth Token" (a new grant), the authorization-code callback, the
 * password login screen, the scheduler's proactive refresh, and revocation.
 */
export interface TokenBrokerDeps {
  db: Db;
  vault: Vault;
  clock: Clock;
  log: Log;
  transportFor: (r: ResolvedCredential, purpose: 'token') => Transport;
  config: {
    tokenRequestTimeoutMs: number;
    defaultTokenTtlS: number;
    tokenMinRemainingMs: number;
    refreshLeaseMs: number;
    refreshShare: number;
    publicUrl: string;
    stateTtlMs: number;
    readCacheMs: number;
  };
}

export interface AccessToken {
  access_token: string;
  token_type: string;
  expires_at: number | null;
}

export type GetTokenResult =
  | { kind: 'stored' }
  | { kind: 'authorize'; authorize_url: string; expires_at: number }
  | { kind: 'login'; login_url: string; expires_at: number };

export interface TokenBroker {
  /** "Get OAuth Token". */
  getToken(credentialId: string, input: { username?: string; password?: string }, requestedBy: string): Promise<GetTokenResult>;
  /** The provider redirected back to /oauth/callback. */
  completeAuthorization(callbackUrl: URL): Promise<{ credentialId: string }>;
  /** The password login screen was submitted. */
  completePasswordLogin(ticket: string, creds: { username: string; password: string }): Promise<{ credentialId: string }>;
  /**
   * A usable access token: stored, or fetched/refreshed first. `rejected`: the resource server
   * just refused this token (401), so it is not served again even if it looks valid.
   */
  accessToken(credentialId: string, opts?: { rejected?: string }): Promise<AccessToken>;
  /** Proactive refresh by the scheduler; failures back off instead of throwing. */
  refreshScheduled(credentialId: string): Promise<'refreshed' | 'skipped' | 'failed'>;
  /** RFC 7009 at the provider (when it has a revocation URL), then delete the stored tokens. */
  revoke(credentialId: string): Promise<{ revokedAtProvider: boolean }>;
  /** Drop what this process remembers of a credential (it was deleted or changed). */
  forget(credentialId: string): void;
  readonly redirectUri: string;
}

export function createTokenBroker(deps: TokenBrokerDeps): TokenBroker {
  const flights = new Map<string, Promise<AccessToken>>();
  const redirectUri = `${deps.config.publicUrl}/oauth/callback`;
  const usable = (expiresAt: number | null) => expiresAt === null || expiresAt - deps.clock.now() > deps.config.tokenMinRemainingMs;

  /**
   * Reads are the hot path (thousands a second): the opened access token of a credential is
   * kept in memory for `readCacheMs` and replaced whenever this process stores a new one. Another
   * node's refresh is seen when the entry ages out; the old token stays valid until it expires
   * anyway, so the only cost is a revocation elsewhere being seen up to `readCacheMs` late.
   */
  const readCache = new Map<string, { token: AccessToken; at: number }>();
  const aliases = new Map<string, string>();
  const remember = (credentialId: string, token: AccessToken) => {
    if (readCache.size >= 100_000) readCache.clear();
    readCache.set(credentialId, { token, at: deps.clock.now() });
  };
  const fromCache = (idOrName: string): AccessToken | null => {
    const e = readCache.get(aliases.get(idOrName) ?? idOrName);
    return e && deps.clock.now() - e.at < deps.config.readCacheMs && usable(e.token.expires_at) ? e.token : null;
  };

  async function stored(credentialId: string): Promise<AccessToken | null> {
    const row = await readAccessRow(deps.db, credentialId);
    if (!row || !usable(row.expires_at)) return null;
    const token = { access_token: openToken(deps.vault, row), token_type: 'Bearer', expires_at: row.expires_at };
    remember(credentialId, token);
    return token;
  }

  function singleFlight(credentialId: string, work: () => Promise<AccessToken>): Promise<AccessToken> {
    let p = flights.get(credentialId);
    if (!p) {
      p = work().finally(() => flights.delete(credentialId));
      flights.set(credentialId, p);
    }
    return p;
  }

  /** Runs `work` holding the credential's lease; `recheck`, under the lease, may make the request unnecessary. */
  async function underLease<T>(credentialId: string, recheck: () => Promise<T | null>, work: () => Promise<T>): Promise<T> {
    const owner = randomToken(16);
    const giveUpAt = deps.clock.now() + deps.config.refreshLeaseMs + 5_000;
    for (let i = 0; ; i++) {
      if (await tryAcquireLease(deps, credentialId, owner, deps.config.refreshLeaseMs)) break;
      // Someone else (another node) is refreshing: wait for their result, never refresh beside them.
      const fresh = await recheck();
      if (fresh) return fresh;
      if (deps.clock.now() > giveUpAt) {
        throw new AppError('refresh_in_progress', { message: "Another node has been refreshing this credential's token for too long; try again shortly." });
      }
      await sleep(Math.min(25 * 2 ** i, 500));
    }
    try {
      const fresh = await recheck();
      if (fresh) return fresh;
      return await work();
    } finally {
      await releaseLease(deps.db, credentialId, owner);
    }
  }

  function context(r: ResolvedCredential): GrantContext {
    return {
      provider: openSecrets(deps.vault, r.provider),
      scopes: r.scopes,
      transport: deps.transportFor(r, 'token'),
      timeoutMs: deps.config.tokenRequestTimeoutMs,
    };
  }

  /** One token request: run the grant, store the reply, or record the failure and throw it explained. */
  async function request(r: ResolvedCredential, grant: (ctx: GrantContext) => Promise<oauth.TokenEndpointResponse>, what: string): Promise<AccessToken> {
    const ctx = context(r);
    const started = performance.now();
    try {
      const resp = await grant(ctx);
      const c = r.credential;
      const { accessExpiresAt } = await saveTokenResponse(deps, c.id, resp, {
        defaultTtlS: deps.config.defaultTokenTtlS,
        requestedScopes: r.scopes,
        refreshShare: deps.config.refreshShare,
        clearFailure: c.last_error_code !== null || c.refresh_failures > 0 || c.next_refresh_attempt_at !== null || c.needs_reauth === 1,
      });
      remember(r.credential.id, { access_token: resp.access_token, token_type: 'Bearer', expires_at: accessExpiresAt });
      deps.log.info(
        { credential: r.credential.id, grant: what, mid: ctx.transport.trace.midServer, ecc_output: ctx.transport.trace.eccOutputId, ms: Math.round(performance.now() - started) },
        'token:stored',
      );
      return { access_token: resp.access_token, token_type: 'Bearer', expires_at: accessExpiresAt };
    } catch (err) {
      readCache.delete(r.credential.id);
      const e = explainGrantError(err, r.provider.name, ctx.transport);
      deps.log.warn({ credential: r.credential.id, grant: what, code: e.code, err: e.message }, 'token:failed');
      await recordFailure(deps, r.credential.id, e);
      throw e;
    }
  }

  const newGrant = (r: ResolvedCredential) => request(r, (ctx) => runUnattendedGrant(r.grantType, ctx, deps.clock.now()), r.grantType);

  /** Refresh token first (RFC 6749 §6); a dead one is dropped; then a new grant if no person is needed. */
  async function refreshOrRequest(r: ResolvedCredential): Promise<AccessToken> {
    const rows = await readTokenRows(deps.db, r.credential.id);
    const refresh = rows.find((t) => t.token_type === 'refresh');
    if (refresh && (refresh.expires_at === null || refresh.expires_at > deps.clock.now())) {
      try {
        return await request(r, (ctx) => refreshGrant(ctx, openToken(deps.vault, refresh)), 'refresh_token');
      } catch (err) {
        if (!(isAppError(err) && err.detail?.oauthError === 'invalid_grant')) throw err;
        await deleteTokens(deps.db, r.credential.id, 'refresh');
        if (!isUnattended(r.grantType)) {
          await deps.db.updateTable('credentials').set({ needs_reauth: 1 }).where('id', '=', r.credential.id).execute();
          throw err;
        }
      }
    }
    if (isUnattended(r.grantType)) return newGrant(r);
    await deps.db.updateTable('credentials').set({ needs_reauth: 1 }).where('id', '=', r.credential.id).execute();
    throw new AppError('token_not_available', {
      message: `Credential "${r.credential.name}" has no valid access or refresh token, and its grant (${r.grantType}) needs a person: click the 'Get OAuth Token' link (POST /api/v1/credentials/${r.credential.id}/get_token).`,
    });
  }

  const exclusive = (r: ResolvedCredential, work: () => Promise<AccessToken>) =>
    singleFlight(r.credential.id, () => underLease(r.credential.id, async () => null, work));

  return {
    redirectUri,

    async getToken(credentialId, input, requestedBy) {
      const r = await resolveCredential(deps.db, credentialId);
      const hasPassword = input.username !== undefined || input.password !== undefined;
      if (hasPassword && r.grantType !== 'password') {
        throw new AppError('invalid_request', { message: `Credential "${r.credential.name}" uses the ${r.grantType} grant; username and password are only for the password grant.` });
      }
      switch (r.grantType) {
        case 'authorization_code': {
          const codeVerifier = r.provider.pkce === 1 ? oauth.generateRandomCodeVerifier() : null;
          const { state, expiresAt } = await createState(deps, {
            kind: 'authorization_code', credentialId: r.credential.id, requestedBy, codeVerifier, redirectUri, ttlMs: deps.config.stateTtlMs,
          });
          const url = await authorizeUrl({ provider: openSecrets(deps.vault, r.provider), scopes: r.scopes }, { state, redirectUri, codeVerifier });
          return { kind: 'authorize', authorize_url: url, expires_at: expiresAt };
        }
        case 'password': {
          if (!hasPassword) {
            const { state, expiresAt } = await createState(deps, { kind: 'password', credentialId: r.credential.id, requestedBy, ttlMs: deps.config.stateTtlMs });
            return { kind: 'login', login_url: `${deps.config.publicUrl}/oauth/login/${state}`, expires_at: expiresAt };
          }
          if (!input.username || !input.password) {
            throw new AppError('invalid_request', { message: `Field "${input.username ? 'password' : 'username'}" is required for the password grant.` });
          }
          const creds = { username: input.username, password: input.password };
          await exclusive(r, () => request(r, (ctx) => passwordGrant(ctx, creds), 'password'));
          return { kind: 'stored' };
        }
        default:
          await exclusive(r, () => newGrant(r));
          return { kind: 'stored' };
      }
    },

    async completeAuthorization(callbackUrl) {
      const st = await consumeState(deps, 'authorization_code', callbackUrl.searchParams.get('state') ?? undefined);
      const r = await resolveCredential(deps.db, st.credentialId);
      const providerError = callbackUrl.searchParams.get('error');
      if (providerError) {
        const desc = callbackUrl.searchParams.get('error_description');
        const e = new AppError('token_endpoint_error', {
          message: `The provider "${r.provider.name}" did not authorize: "${providerError}"${desc ? `: ${desc}` : ''}. Click the 'Get OAuth Token' link to try again.`,
          detail: { oauthError: providerError },
        });
        await recordFailure(deps, r.credential.id, e);
        throw e;
      }
      // One attempt: an authorization code works once (RFC 6749 §4.1.2).
      await exclusive(r, () =>
        request(
          r,
          (ctx) => exchangeCode(ctx, { callbackUrl, expectedState: callbackUrl.searchParams.get('state')!, redirectUri: st.redirectUri ?? redirectUri, codeVerifier: st.codeVerifier }),
          'authorization_code',
        ),
      );
      return { credentialId: r.credential.id };
    },

    async completePasswordLogin(ticket, creds) {
      const st = await consumeState(deps, 'password', ticket);
      const r = await resolveCredential(deps.db, st.credentialId);
      await exclusive(r, () => request(r, (ctx) => passwordGrant(ctx, creds), 'password'));
      return { credentialId: r.credential.id };
    },

    async accessToken(credentialId, opts = {}) {
      const hit = fromCache(credentialId);
      if (hit && hit.access_token !== opts.rejected) return hit;
      const r = await resolveCredential(deps.db, credentialId);
      if (r.credential.name === credentialId) aliases.set(credentialId, r.credential.id);
      const current = async () => {
        const t = await stored(r.credential.id);
        return t && t.access_token !== opts.rejected ? t : null;
      };
      const fresh = await current();
      if (fresh) return fresh;
      return singleFlight(r.credential.id, () => underLease(r.credential.id, current, () => refreshOrRequest(r)));
    },

    async refreshScheduled(credentialId) {
      const r = await resolveCredential(deps.db, credentialId);
      try {
        // Re-read under the lease: if another node refreshed, its new refresh_at is in the future.
        const due = async () => {
          const row = await readAccessRow(deps.db, r.credential.id);
          return row && row.refresh_at !== null && row.refresh_at > deps.clock.now() ? stored(r.credential.id) : null;
        };
        await singleFlight(r.credential.id, () => underLease(r.credential.id, due, () => refreshOrRequest(r)));
        return 'refreshed';
      } catch (err) {
        if (isAppError(err) && err.code === 'token_not_available') {
          // Nothing can renew it without a person (needs_reauth is set): stop scanning it.
          await deps.db.updateTable('oauth_tokens').set({ refresh_at: null }).where('credential_id', '=', r.credential.id).where('token_type', '=', 'access').execute();
          return 'skipped';
        }
        const failures = r.credential.refresh_failures + 1;
        const next = deps.clock.now() + backoff(failures - 1, 5_000, 300_000);
        await deps.db
          .updateTable('credentials')
          .set({ refresh_failures: failures, next_refresh_attempt_at: next })
          .where('id', '=', r.credential.id)
          .execute();
        deps.log.warn({ credential: r.credential.id, failures, next_attempt_at: new Date(next).toISOString(), code: isAppError(err) ? err.code : 'internal' }, 'token:refresh-failed');
        return 'failed';
      }
    },

    async revoke(credentialId) {
      const r = await resolveCredential(deps.db, credentialId);
      let revokedAtProvider = false;
      await underLease(r.credential.id, async () => null, async () => {
        const rows = await readTokenRows(deps.db, r.credential.id);
        if (r.provider.revocation_url && rows.length) {
          const ctx = context(r);
          try {
            // The refresh token first: revoking it usually ends the access tokens issued from it (RFC 7009 §2.1).
            const ordered = [...rows.filter((t) => t.token_type === 'refresh'), ...rows.filter((t) => t.token_type === 'access')];
            for (const t of ordered) {
              await revokeToken(ctx, openToken(deps.vault, t), t.token_type === 'refresh' ? 'refresh_token' : 'access_token');
            }
            revokedAtProvider = true;
          } catch (err) {
            throw explainGrantError(err, r.provider.name, ctx.transport);
          }
        }
        await deleteTokens(deps.db, r.credential.id);
        readCache.delete(r.credential.id);
        return true;
      });
      return { revokedAtProvider };
    },

    forget(credentialId) {
      readCache.delete(credentialId);
      for (const [name, id] of aliases) if (id === credentialId) aliases.delete(name);
    },
  };
}
