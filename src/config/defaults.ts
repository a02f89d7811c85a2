/**
 * Every knob of the instance, with its default and why. `load.ts` fills these from flags and
 * the environment (flags win), validates them and freezes the result.
 */
export const instanceDefaults = {
  /** TOKENRELAY_PORT */
  port: 8080,
  /** TOKENRELAY_HOST: `up` listens on loopback only; a bare `instance` serves the network. */
  host: '0.0.0.0',
  /** TOKENRELAY_DATA_DIR: SQLite file, generated master key and admin token. */
  dataDir: './data',
  /** How long a MID long-poll is held open: below common proxy idle timeouts (60 s). */
  longPollMs: 25_000,
  /** A MID server whose last heartbeat is older than this is `down` (four missed heartbeats). */
  midDownAfterMs: 8_000,
  /** How long a token request waits for any eligible MID server to claim its ECC record. */
  claimTimeoutMs: 15_000,
  /** Timeout of one HTTP request to a token endpoint (direct, or performed by the MID server). */
  tokenRequestTimeoutMs: 30_000,
  /** A claimed ECC record must be answered within its request timeout plus this grace. */
  leaseGraceMs: 10_000,
  /** How often expired leases are looked for. */
  reaperIntervalMs: 1_000,
  /** ECC records older than this are deleted. */
  eccRetentionMs: 7 * 24 * 3600_000,
  /** Lifetime of an enrollment key. */
  enrollmentKeyTtlMs: 24 * 3600_000,
  /** Token used when a reply has neither expires_in nor a JWT exp (seconds). */
  defaultTokenTtlS: 3600,
  /** A stored access token is served only while it has at least this much life left. */
  tokenMinRemainingMs: 30_000,
  /** Largest token endpoint reply accepted. */
  maxTokenResponseBytes: 1024 * 1024,
  /** Refresh lease: must outlive the token HTTP call (and its MID round trip). */
  refreshLeaseMs: 90_000,
  /** The scheduler refreshes an access token after this share of its lifetime (±5 % jitter). */
  refreshShare: 0.75,
  /** How often the refresh scheduler looks for tokens due. */
  schedulerIntervalMs: 1_000,
  /** Refreshes the scheduler runs at once. */
  schedulerConcurrency: 16,
  /** How long an opened access token is served from memory before the store is read again. */
  readCacheMs: 5_000,
  /** Lifetime of an authorization-code `state` or a password login form. */
  stateTtlMs: 10 * 60_000,
};

export const midDefaults = {
  /** Heartbeat interval; the instance marks a MID down after midDownAfterMs of silence. */
  heartbeatMs: 2_000,
  /** How many RESTProbes run at once (the reference's threads.max is 25). */
  maxConcurrent: 25,
  capabilities: ['REST'],
  /** Largest response body a RESTProbe returns to the instance. */
  maxResponseBytes: 10 * 1024 * 1024,
};
