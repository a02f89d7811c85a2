/** Sleep that ends early when the signal aborts (resolves, never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** min(base·2ⁿ, cap) × (0.5 + random): spreads retries of many agents after an outage. */
export function backoff(attempt: number, baseMs = 500, capMs = 30_000, random: () => number = Math.random): number {
  return Math.min(baseMs * 2 ** attempt, capMs) * (0.5 + random());
}

/**
 * A loop you can stop: `stop()` aborts the current sleep and whatever the body passed the
 * signal to (a long-poll, say), then waits for the body to return.
 */
export function startLoop(body: (signal: AbortSignal) => Promise<void>): { stop(): Promise<void>; signal: AbortSignal } {
  const ac = new AbortController();
  const done = (async () => {
    while (!ac.signal.aborted) await body(ac.signal);
  })();
  return {
    signal: ac.signal,
    async stop() {
      ac.abort();
      await done;
    },
  };
}
