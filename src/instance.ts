import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { InstanceConfig } from './config/load.js';
import { loadAdminToken } from './config/admin-token.js';
import { systemClock, type Clock } from './core/clock.js';
import { createLog, type Log } from './core/log.js';
import { startLoop, sleep } from './core/loop.js';
import { openDb } from './db/connect.js';
import { createVault, loadMasterKey } from './vault/vault.js';
import { loadInstanceKeys } from './vault/instance-keys.js';
import { createSessionKeyCache } from './vault/session-cache.js';
import { createWakeups, reapExpiredLeases, purgeOlderThan } from './ecc/index.js';
import { createAgentAuth } from './mid-servers/agent-auth.js';
import { createTokenBroker } from './tokens/broker.js';
import { createRefreshScheduler } from './tokens/scheduler.js';
import { failoverTick } from './mid-servers/failover.js';
import { createDirectTransport } from './transport/direct.js';
import { createViaMidTransport } from './transport/via-mid.js';
import { buildApp, hashAdminToken } from './http/app.js';
import { createMetrics } from './http/metrics.js';
import type { Services } from './http/services.js';
import type { MidChoice } from './mid-servers/selection.js';

/**
 * The composition root: builds every dependency once, wires them, and owns the background
 * loops (lease reaper, retention purge). Nothing else reads configuration or opens the database.
 */
export interface Instance {
  app: FastifyInstance;
  services: Services;
  adminToken: { token: string; generated: boolean; file: string | null };
  masterKeyGenerated: boolean;
  start(): Promise<string>;
  stop(): Promise<void>;
}

export async function createInstance(config: InstanceConfig, opts: { log?: Log; clock?: Clock } = {}): Promise<Instance> {
  const log = opts.log ?? createLog({ level: config.logLevel, name: 'instance' });
  const clock = opts.clock ?? systemClock;
  const master = loadMasterKey({ fromEnv: config.masterKey, dataDir: config.dataDir });
  const vault = createVault(master.key);
  const adminToken = loadAdminToken({ fromEnv: config.adminToken, dataDir: config.dataDir });
  const store = await openDb({ sqlitePath: path.join(config.dataDir, 'tokenrelay.sqlite') });
  const db = store.db;
  const instanceKeys = await loadInstanceKeys(db, vault);
  const wakeups = createWakeups();
  const closing = new AbortController();

  const sessions = createSessionKeyCache(instanceKeys.privateKey);
  const viaMidDeps = { db, clock, wakeups, sessions, instanceKey: instanceKeys.privateKey, downAfterMs: config.midDownAfterMs, claimTimeoutMs: config.claimTimeoutMs, leaseGraceMs: config.leaseGraceMs };
  /** The one place that decides how a request reaches the network. */
  const transportFor = (choice: MidChoice | null, opts: { timeoutMs: number; maxResponseBytes: number; maxAttempts: number }) =>
    choice ? createViaMidTransport(viaMidDeps, { choice, ...opts }) : createDirectTransport(opts);
  const broker = createTokenBroker({
    db,
    vault,
    clock,
    log,
    config,
    // Token requests are never repeated by the queue: an authorization code works once, a refresh token may rotate.
    transportFor: (r) => transportFor(r.midChoice, { timeoutMs: config.tokenRequestTimeoutMs, maxResponseBytes: config.maxTokenResponseBytes, maxAttempts: 1 }),
  });

  const scheduler = createRefreshScheduler({ db, clock, log, broker, concurrency: config.schedulerConcurrency });

  const services: Services = {
    db,
    clock,
    log,
    vault,
    wakeups,
    broker,
    agentAuth: createAgentAuth({ db, clock }),
    config,
    instancePublicJwk: instanceKeys.publicJwk,
    sessions,
    metrics: createMetrics(),
    restStepDeps: { db, clock, log, broker, transportFor },
    closing: closing.signal,
  };
  const app = buildApp(services, { log, adminTokenHash: hashAdminToken(adminToken.token) });
  app.addHook('preClose', async () => {
    closing.abort();
    wakeups.wakeAll();
  });

  const loops: Array<{ stop(): Promise<void> }> = [];
  return {
    app,
    services,
    adminToken,
    masterKeyGenerated: master.generated,
    async start() {
      const address = await app.listen({ port: config.port, host: config.host });
      loops.push(
        startLoop(async (signal) => {
          try {
            const r = await reapExpiredLeases({ db, clock, wakeups });
            if (r.failed || r.retried) log.warn(r, 'ecc:leases-expired');
            await failoverTick({ db, clock, wakeups, sessions, log, downAfterMs: config.midDownAfterMs });
          } catch (err) {
            log.error({ err: (err as Error).message }, 'ecc:reaper-failed');
          }
          await sleep(config.reaperIntervalMs, signal);
        }),
        startLoop(async (signal) => {
          try {
            await scheduler.tick();
          } catch (err) {
            log.error({ err: (err as Error).message }, 'token:scheduler-failed');
          }
          await sleep(config.schedulerIntervalMs, signal);
        }),
        startLoop(async (signal) => {
          try {
            const n = await purgeOlderThan(db, clock.now() - config.eccRetentionMs);
            if (n) log.info({ deleted: n }, 'ecc:purged');
          } catch (err) {
            log.error({ err: (err as Error).message }, 'ecc:purge-failed');
          }
          await sleep(3600_000, signal);
        }),
      );
      return address;
    },
    async stop() {
      closing.abort();
      await Promise.all(loops.map((l) => l.stop()));
      await app.close();
      await store.close();
    },
  };
}
