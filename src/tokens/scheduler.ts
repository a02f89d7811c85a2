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
  tick(): Promise<number>;
}

export function createRefreshScheduler(deps: { db: Db; clock: Clock; log: Log; broker: TokenBroker; concurrency: number; batch?: number }): RefreshScheduler {
  const running = new Set<string>();
  return {
    async tick() {
      const now = deps.clock.now();
      const free = deps.concurrency - running.size;
      if (free <= 0) return 0;
      const due = await deps.db
        .selectFrom('oauth_tokens')
        .innerJoin('credentials', 'credentials.id', 'oauth_tokens.credential_id')
        .select('oauth_tokens.credential_id')
        .where('oauth_tokens.token_type', '=', 'access')
        .where('oauth_tokens.refresh_at', '<=', now)
        .where('credentials.needs_reauth', '=', 0)
        .where((eb) => eb.or([eb('credentials.next_refresh_attempt_at', 'is', null), eb('credentials.next_refresh_attempt_at', '<=', now)]))
        .orderBy('oauth_tokens.refresh_at')
        .limit(Math.min(free + running.size, deps.batch ?? 500))
        .execute();
      let started = 0;
      for (const { credential_id } of due) {
        if (running.has(credential_id) || running.size >= deps.concurrency) continue;
        running.add(credential_id);
        started++;
        void deps.broker
          .refreshScheduled(credential_id)
          .catch((err: Error) => deps.log.error({ credential: credential_id, err: err.message }, 'token:refresh-crashed'))
          .finally(() => running.delete(credential_id));
      }
      return started;
    },
  };
}
