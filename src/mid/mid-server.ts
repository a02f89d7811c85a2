import os from 'node:os';
import type { JWK } from 'jose';
import type { Log } from '../core/log.js';
import { backoff, sleep, startLoop } from '../core/loop.js';
import { VERSION } from '../core/version.js';
import { PollResponse, HeartbeatResponse, type ClaimedRecord } from '../core/wire.js';
import { importPrivate, ENVELOPE_ALG } from '../vault/envelope.js';
import { midDefaults } from '../config/defaults.js';
import { createInstanceClient, InstanceCallError, type InstanceClient } from './instance-client.js';
import { enroll, readIdentity, writeIdentity, IdentityError, type MidIdentity } from './identity.js';
import { exportJWK, generateKeyPair } from 'jose';
import { generateEnvelopeKeyPair, deriveSessionKeys } from '../vault/envelope.js';
import { createDispatcher, parseAllowlist, proxyConfigured } from '../transport/dispatcher.js';
import { executeProbe, type ExecutorContext } from './executor.js';
import { createInputSender } from './input-sender.js';

/**
 * The MID server process: enroll once (or load the identity from the data dir), then run two
 * loops: heartbeats, and a long-poll that claims only as many records as it has free slots
 * and runs each as it arrives. Every connection is outbound, to the instance.
 */
export interface MidConfig {
  instanceUrl: string;
  name: string;
  enrollKey: string | null;
  dataDir: string;
  capabilities?: string[];
  maxConcurrent?: number;
  heartbeatMs?: number;
  longPollMs?: number;
  /** --allow-hosts: comma-separated patterns; empty = allow every target (said at startup). */
  allowHosts?: string | null;
  /** --ca-file: extra trusted CA certificates (PEM) for targets and the instance. */
  caPem?: string | null;
  log: Log;
}

export interface MidServer {
  start(): Promise<MidIdentity>;
  stop(): Promise<void>;
  /** Settles when the MID server stops by itself (e.g. it was deleted on the instance). */
  readonly done: Promise<void>;
}

export function createMidServer(cfg: MidConfig): MidServer {
  const log = cfg.log;
  const capabilities = cfg.capabilities ?? midDefaults.capabilities;
  const maxConcurrent = cfg.maxConcurrent ?? midDefaults.maxConcurrent;
  const heartbeatMs = cfg.heartbeatMs ?? midDefaults.heartbeatMs;
  const longPollMs = cfg.longPollMs ?? 25_000;
  const allow = parseAllowlist(cfg.allowHosts);
  const targetDispatcher = createDispatcher({ ca: cfg.caPem ?? null, allow });
  const client: InstanceClient = createInstanceClient({ instanceUrl: cfg.instanceUrl, dispatcher: createDispatcher({ ca: cfg.caPem ?? null }) });
  const sender = createInputSender(client, log);
  const loops: Array<{ stop(): Promise<void> }> = [];
  const running = new Set<Promise<void>>();
  const inflight = new AbortController();
  let slotFreed: (() => void) | null = null;
  let resolveDone!: () => void;
  let rejectDone!: (e: Error) => void;
  const done = new Promise<void>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  done.catch(() => undefined);
  let validated: boolean | null = null;

  async function loadOrEnroll(): Promise<MidIdentity> {
    const existing = readIdentity(cfg.dataDir);
    if (existing) {
      if (existing.name !== cfg.name) {
        throw new IdentityError(
          `The data dir ${cfg.dataDir} belongs to MID server "${existing.name}", not "${cfg.name}". Use --name ${existing.name}, or another --data dir for a new MID server.`,
        );
      }
      return existing;
    }
    if (!cfg.enrollKey) {
      throw new IdentityError(
        `MID server "${cfg.name}" is not enrolled yet (no identity in ${cfg.dataDir}). Create a key with POST /api/v1/mid_enrollment_keys and pass it with --enroll KEY.`,
      );
    }
    try {
      const id = await enroll(client, { instanceUrl: cfg.instanceUrl, name: cfg.name, key: cfg.enrollKey, dataDir: cfg.dataDir, capabilities });
      log.info({ mid: id.name, mid_id: id.mid_id, data: cfg.dataDir }, 'mid:enrolled');
      return id;
    } catch (err) {
      if (err instanceof InstanceCallError) throw new IdentityError(`Enrollment failed: ${err.message}`);
      throw err;
    }
  }

  const fatal = (err: InstanceCallError) => err.status === 401 && err.code === 'mid_server_unknown';

  return {
    done,
    async start() {
      const identity = await loadOrEnroll();
      let current = identity;
      client.setIdentity({ midId: identity.mid_id, signPrivateJwk: identity.sign_private_jwk });
      let encPrivateKeys = [await importPrivate(identity.enc_private_jwk, ENVELOPE_ALG)];
      let instanceEncJwk: JWK = identity.instance_enc_jwk;
      let session = await deriveSessionKeys(encPrivateKeys[0]!, instanceEncJwk, 'mid', identity.mid_id);
      let oldSessionIn: CryptoKey[] = [];
      const proxied = proxyConfigured();
      const keys = (): ExecutorContext => ({
        sessionIn: [session.in, ...oldSessionIn],
        sessionOut: session.out,
        encPrivateKeys,
        maxResponseBytes: midDefaults.maxResponseBytes,
        dispatcher: targetDispatcher,
        allow,
        proxied,
      });
      if (allow) log.info({ mid: cfg.name, allow_hosts: allow.patterns }, 'mid:allowlist — only these targets are allowed');
      else log.warn({ mid: cfg.name }, 'mid:allowlist — none set: requests to any host are allowed (restrict with --allow-hosts)');

      /** Rekey: new key pairs, announced with the old signing key, then kept; the old envelope key still opens records already sealed to it. */
      const rekey = async () => {
        const sign = await generateKeyPair('ES256', { extractable: true });
        const enc = await generateEnvelopeKeyPair();
        const newEnc = await importPrivate(enc.privateJwk, ENVELOPE_ALG);
        const next = await deriveSessionKeys(newEnc, instanceEncJwk, 'mid', current.mid_id);
        // Records the instance re-seals to the new key may arrive before the call returns.
        oldSessionIn = [next.in];
        await client.call('/agent/v1/rekey', { sign_jwk: await exportJWK(sign.publicKey), enc_jwk: enc.publicJwk });
        current = { ...current, sign_private_jwk: await exportJWK(sign.privateKey), enc_private_jwk: enc.privateJwk };
        writeIdentity(cfg.dataDir, current);
        client.setIdentity({ midId: current.mid_id, signPrivateJwk: current.sign_private_jwk });
        encPrivateKeys = [newEnc, encPrivateKeys[0]!];
        oldSessionIn = [session.in];
        session = next;
        log.info({ mid: cfg.name }, 'mid:rekeyed');
      };
      let paused: boolean | null = null;

      const stopSelf = (err: InstanceCallError) => {
        log.error({ mid: cfg.name }, `mid:stopped: ${err.message}`);
        rejectDone(new Error(err.message));
      };

      // First heartbeat before polling: proves the identity works and says whether we are validated.
      const beat = async () => {
        const r = HeartbeatResponse.parse(await client.call('/agent/v1/heartbeat', { host: os.hostname(), version: VERSION, capabilities }, { timeoutMs: 10_000 }));
        if (JSON.stringify(r.instance_enc_jwk) !== JSON.stringify(instanceEncJwk)) {
          instanceEncJwk = r.instance_enc_jwk as JWK;
          session = await deriveSessionKeys(encPrivateKeys[0]!, instanceEncJwk, 'mid', current.mid_id);
        }
        if (r.rekey) await rekey();
        if (r.paused !== paused) {
          if (paused !== null || r.paused) log.info({ mid: cfg.name }, r.paused ? 'mid:paused — finishing in-flight work, taking no new work' : 'mid:resumed');
          paused = r.paused;
        }
        if (r.validated !== validated) {
          validated = r.validated;
          if (validated) log.info({ mid: cfg.name }, 'mid:validated — accepting work');
          else log.warn({ mid: cfg.name }, `mid:not-validated — waiting for an administrator: POST /api/v1/mid_servers/${cfg.name}/validate`);
        }
      };
      await beat().catch((err: unknown) => {
        if (err instanceof InstanceCallError && fatal(err)) throw new IdentityError(err.message);
        log.warn({ err: (err as Error).message }, 'mid:heartbeat-failed');
      });

      let hbFailures = 0;
      loops.push(
        startLoop(async (signal) => {
          await sleep(heartbeatMs, signal);
          if (signal.aborted) return;
          try {
            await beat();
            hbFailures = 0;
          } catch (err) {
            if (err instanceof InstanceCallError && fatal(err)) return stopSelf(err);
            hbFailures++;
            log.warn({ err: (err as Error).message, failures: hbFailures }, 'mid:heartbeat-failed');
          }
        }),
      );

      let pollFailures = 0;
      loops.push(
        startLoop(async (signal) => {
          const free = maxConcurrent - running.size;
          if (free <= 0) {
            await new Promise<void>((r) => {
              slotFreed = r;
              signal.addEventListener('abort', () => r(), { once: true });
            });
            return;
          }
          let records: ClaimedRecord[];
          try {
            const r = PollResponse.parse(
              await client.call('/agent/v1/poll', { max: free, wait_ms: longPollMs }, { timeoutMs: longPollMs + 15_000, signal }),
            );
            records = r.records;
            pollFailures = 0;
          } catch (err) {
            if (signal.aborted) return;
            if (err instanceof InstanceCallError && fatal(err)) return stopSelf(err);
            const wait = backoff(pollFailures++, 500, 30_000);
            log.warn({ err: (err as Error).message, retry_in_ms: Math.round(wait) }, 'mid:poll-failed');
            await sleep(wait, signal);
            return;
          }
          for (const rec of records) {
            const p = runOne(rec, keys()).finally(() => {
              running.delete(p);
              slotFreed?.();
              slotFreed = null;
            });
            running.add(p);
          }
        }),
      );
      log.info({ mid: cfg.name, instance: cfg.instanceUrl, capabilities, max_concurrent: maxConcurrent }, 'mid:started');
      return identity;
    },

    async stop() {
      // First stop asking for work; then let what is running finish (it holds leases), briefly.
      await Promise.all(loops.map((l) => l.stop()));
      const drain = Promise.allSettled([...running]);
      const timer = setTimeout(() => inflight.abort(), 10_000);
      await drain;
      clearTimeout(timer);
      resolveDone();
    },
  };

  async function runOne(rec: ClaimedRecord, keys: ExecutorContext): Promise<void> {
    const input = await executeProbe(rec, keys, inflight.signal);
    await sender.send(input, rec.lease_expires_at);
  }
}
