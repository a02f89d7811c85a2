import type * as oauth from 'oauth4webapi';
import type { Db } from '../db/schema.js';
import type { Clock } from '../core/clock.js';
import type { Log } from '../core/log.js';
import { AppError, isAppError } from '../core/errors.js';
import { randomToken } from '../core/ids.js';
import { sleep } from '../core/loop.js';
import type { Vault } from '../vault/vault.js';
import { openSecrets } from '../registry/providers.js';
import { resolveCredential, recordFailure, type ResolvedCredential } from '../credentials/credentials.js';
import { runUnattendedGrant, refreshGrant, explainGrantError, type GrantContext } from '../grants/index.js';
import type { Transport } from '../transport/transport.js';
import { openToken, readAccessRow, readTokenRows, saveTokenResponse, deleteTokens } from './store.js';
import { releaseLease, tryAcquireLease } from './lease.js';

/**
 * The token broker. `accessToken` serves the stored token while it has life left; otherwise
 * it refreshes (refresh_token grant when there is a refresh token, a new request for grants
 * that need no person) — one refresh at a time per credential:
 *   1. in-process single-flight: concurrent callers share one promise;
 *   2. a lease row with an owner token that outlives the HTTP call (across processes);
 *   3. a re-read of the token under the lease, so a refresh someone else just finished is used;
 *   4. never a token request without the lease.
 */
export interface TokenBrokerDeps {
  db: Db;
  vault: Vault;
  clock: Clock;
  log: Log;
  transportFor: (r: ResolvedCredential, purpose: 'token') => Transport;
  config: { tokenRequestTimeoutMs: number; defaultTokenTtlS: number; tokenMinRemainingMs: number; refreshLeaseMs: number };
}

export interface AccessToken {
  access_token: string;
  token_type: string;
  expires_at: number | null;
}

export interface TokenBroker {
  /** "Get OAuth Token" for grants without a person: always a new request. */
  getToken(credentialId: string): Promise<void>;
  /** A usable access token: stored, or fetched/refreshed first. */
  accessToken(credentialId: string): Promise<AccessToken>;
}

export function createTokenBroker(deps: TokenBrokerDeps): TokenBroker {
  const flights = new Map<string, Promise<AccessToken>>();
  const usable = (expiresAt: number | null) => expiresAt === null || expiresAt - deps.clock.now() > deps.config.tokenMinRemainingMs;

  async function stored(credentialId: string): Promise<AccessToken | null> {
    const row = await readAccessRow(deps.db, credentialId);
    if (!row || !usable(row.expires_at)) return null;
    return { access_token: openToken(deps.vault, row), token_type: 'Bearer', expires_at: row.expires_at };
  }

  function singleFlight(credentialId: string, work: () => Promise<AccessToken>): Promise<AccessToken> {
    let p = flights.get(credentialId);
    if (!p) {
      p = work().finally(() => flights.delete(credentialId));
      flights.set(credentialId, p);
    }
    return p;
  }

  /** Runs `work` holding the credential's lease; `recheck` first, under the lease, may make the request unnecessary. */
  async function underLease(
    credentialId: string,
    recheck: () => Promise<AccessToken | null>,
    work: () => Promise<AccessToken>,
  ): Promise<AccessToken> {
    const owner = randomToken(16);
    const giveUpAt = deps.clock.now() + deps.config.refreshLeaseMs + 5_000;
    for (let i = 0; ; i++) {
      if (await tryAcquireLease(deps, credentialId, owner, deps.config.refreshLeaseMs)) break;
      // Someone else (another instance) is refreshing: wait for their result, never refresh beside them.
      const fresh = await recheck();
      if (fresh) return fresh;
      if (deps.clock.now() > giveUpAt) {
        throw new AppError('refresh_in_progress', { message: 'Another node has been refreshing this credential\'s token for too long; try again shortly.' });
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

  async function request(r: ResolvedCredential, grant: (ctx: GrantContext) => Promise<oauth.TokenEndpointResponse>): Promise<AccessToken> {
    const transport = deps.transportFor(r, 'token');
    const ctx: GrantContext = {
      provider: openSecrets(deps.vault, r.provider),
      scopes: r.scopes,
      transport,
      timeoutMs: deps.config.tokenRequestTimeoutMs,
    };
    const started = performance.now();
    try {
      const resp = await grant(ctx);
      const { accessExpiresAt } = await saveTokenResponse(deps, r.credential.id, resp, {
        defaultTtlS: deps.config.defaultTokenTtlS,
        requestedScopes: r.scopes,
      });
      deps.log.info(
        { credential: r.credential.id, grant: r.grantType, mid: transport.trace.midServer, ecc_output: transport.trace.eccOutputId, ms: Math.round(performance.now() - started) },
        'token:stored',
      );
      return { access_token: resp.access_token, token_type: 'Bearer', expires_at: accessExpiresAt };
    } catch (err) {
      const e = explainGrantError(err, r.provider.name, transport);
      deps.log.warn({ credential: r.credential.id, code: e.code, err: e.message, detail: e.detail }, 'token:failed');
      await recordFailure(deps, r.credential.id, e);
      throw e;
    }
  }

  async function refreshOrRequest(r: ResolvedCredential): Promise<AccessToken> {
    const rows = await readTokenRows(deps.db, r.credential.id);
    const refresh = rows.find((t) => t.token_type === 'refresh');
    if (refresh && (refresh.expires_at === null || refresh.expires_at > deps.clock.now())) {
      try {
        return await request(r, (ctx) => refreshGrant(ctx, openToken(deps.vault, refresh)));
      } catch (err) {
        if (!(isAppError(err) && err.detail?.oauthError === 'invalid_grant')) throw err;
        // The refresh token is dead: drop it, so the banner asks for 'Get OAuth Token' again.
        await deleteTokens(deps.db, r.credential.id, 'refresh');
        if (!unattended(r)) throw err;
      }
    }
    if (unattended(r)) return request(r, (ctx) => runUnattendedGrant(r.grantType, ctx));
    throw new AppError('token_not_available', {
      message: `Credential "${r.credential.name}" has no valid access or refresh token, and its grant (${r.grantType}) needs a person: click the 'Get OAuth Token' link (POST /api/v1/credentials/${r.credential.id}/get_token).`,
    });
  }

  const unattended = (r: ResolvedCredential) => r.grantType === 'client_credentials';

  return {
    async getToken(credentialId) {
      const r = await resolveCredential(deps.db, credentialId);
      await singleFlight(r.credential.id, () =>
        underLease(r.credential.id, async () => null, () => request(r, (ctx) => runUnattendedGrant(r.grantType, ctx))),
      );
    },

    async accessToken(credentialId) {
      const r = await resolveCredential(deps.db, credentialId);
      const fresh = await stored(r.credential.id);
      if (fresh) return fresh;
      return singleFlight(r.credential.id, () => underLease(r.credential.id, () => stored(r.credential.id), () => refreshOrRequest(r)));
    },
  };
}
