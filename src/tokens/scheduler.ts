import type { Db } from '../db/schema.js';
import type { Clock } from '../core/clock.js';
import type { Log } from '../core/log.js';
import type { TokenBroker } from './broker.js';

/**
 * Refreshes access tokens ahead of expiry: each stored access token carries `refresh_at` (a
 * share of its lifetime, jittered, set when it is stored). One scan per tick finds those due,
 * skips credentials waiting for a person or backing off after a failure, and hands them to the
 * broker — which takes the per-credential lease, so several instance nodes scanning the same
 * database never refresh one credential twice.
 */
export interface RefreshScheduler {
  /** Refreshes everything due now, `concurrency` at a time; resolves when none is left. */
  tick(): Promise<number>;
}

export function createRefreshScheduler(deps: { db: Db; clock: Clock; log: Log; broker: TokenBroker; concurrency: number; batch?: number }): RefreshScheduler {
  const batch = deps.batch ?? 500;
  const due = (now: number) =>
    deps.db
      .selectFrom('oauth_tokens')
      .innerJoin('credentials', 'credentials.id', 'oauth_tokens.credential_id')
      .select('oauth_tokens.credential_id')
      .where('oauth_tokens.token_type', '=', 'access')
      .where('oauth_tokens.refresh_at', '<=', now)
      .where('credentials.needs_reauth', '=', 0)
      .where((eb) => eb.or([eb('credentials.next_refresh_attempt_at', 'is', null), eb('credentials.next_refresh_attempt_at', '<=', now)]))
      .orderBy('oauth_tokens.refresh_at')
      .limit(batch)
      .execute();

  return {
    async tick() {
      let total = 0;
      const seen = new Set<string>();
      // Work-conserving: keep `concurrency` refreshes running until nothing is due, so the rate
      // follows the load (10,000 credentials with 60 s tokens need ~220 refreshes a second).
      for (;;) {
        // A credential handled in this tick and still due (it could not be moved on) waits for the next tick.
        const rows = (await due(deps.clock.now())).filter((r) => !seen.has(r.credential_id));
        if (rows.length === 0) return total;
        for (const r of rows) seen.add(r.credential_id);
        let next = 0;
        await Promise.all(
          Array.from({ length: Math.min(deps.concurrency, rows.length) }, async () => {
            while (next < rows.length) {
              const { credential_id } = rows[next++]!;
              try {
                await deps.broker.refreshScheduled(credential_id);
              } catch (err) {
                deps.log.error({ credential: credential_id, err: (err as Error).message }, 'token:refresh-crashed');
              }
            }
          }),
        );
        total += rows.length;
        if (rows.length < batch) return total;
      }
    },
  };
}
