import type { Db } from '../db/schema.js';
import type { Clock } from '../core/clock.js';
import type { Log } from '../core/log.js';
import type { Vault } from '../vault/vault.js';
import type { Wakeups } from '../ecc/wakeups.js';
import type { TokenBroker } from '../tokens/broker.js';
import type { AgentAuth } from '../mid-servers/agent-auth.js';
import type { InstanceConfig } from '../config/load.js';
import type { JWK } from 'jose';
import type { SessionKeyCache } from '../vault/session-cache.js';
import type { Metrics } from './metrics.js';
import type { RestStepDeps } from '../rest-step/rest-step.js';

/** What the HTTP routes may use; built once by the composition root (instance.ts). */
export interface Services {
  db: Db;
  clock: Clock;
  log: Log;
  vault: Vault;
  wakeups: Wakeups;
  broker: TokenBroker;
  agentAuth: AgentAuth;
  config: InstanceConfig;
  instancePublicJwk: JWK;
  sessions: SessionKeyCache;
  metrics: Metrics;
  restStepDeps: RestStepDeps;
  /** Resolves when the instance is shutting down: long-polls answer at once. */
  closing: AbortSignal;
}
