import { AppError } from '../core/errors.js';
import { sleep } from '../core/loop.js';
import { RestProbeRequest, RestProbeResult, WIRE_VERSION } from '../core/wire.js';
import { sealSession, openEither } from '../vault/envelope.js';
import type { SessionKeyCache } from '../vault/session-cache.js';

import {
  TOPIC_REST_PROBE, agentName, enqueueOutput, failOutput, findInputFor, getRecord, markInputProcessed, type EccDeps,
} from '../ecc/index.js';
import { cachedMid, pickMid, type MidChoice } from '../mid-servers/selection.js';
import type { InputHandoff } from '../ecc/wakeups.js';
import { bodyBytes, headerPairs, toResponse, type FetchOptions, type Transport, type TransportTrace } from './transport.js';

/**
 * Through a MID server: the request becomes an ECC output record (topic RESTProbe, source =
 * the URL, agent = mid.server.<name>) whose payload is encrypted to that MID server's key; the
 * MID server performs it and posts an input record (response_to = the output's id) encrypted
 * to the instance's key; this side waits for that input and turns it back into a Response.
 *
 * Waiting: woken at once by the in-process notification, with a database re-read on a floor
 * interval so a notification from elsewhere is never needed for correctness. A record no MID
 * server claims within `claimTimeoutMs` is ended (compare-and-set from `ready`), so it cannot
 * run after its caller gave up; one that was claimed but not answered is ended by the reaper
 * when its lease runs out.
 */
export interface ViaMidDeps extends EccDeps {
  instanceKey: CryptoKey;
  sessions: SessionKeyCache;
  downAfterMs: number;
  claimTimeoutMs: number;
  /** Added to the request's timeout to make its lease. */
  leaseGraceMs: number;
  pollFloorMs?: number;
}

export interface ViaMidOptions {
  choice: MidChoice;
  timeoutMs: number;
  maxResponseBytes: number;
  /** 1 for requests that must never be repeated (every token request). */
  maxAttempts: number;
}

const ids = (t: TransportTrace) =>
  `ECC output ${t.eccOutputId ?? '-'}${t.eccInputId ? `, input ${t.eccInputId}` : ''}, MID server ${t.midServer ?? '-'}`;

export function createViaMidTransport(deps: ViaMidDeps, opts: ViaMidOptions): Transport {
  const trace: TransportTrace = { midServer: null, eccOutputId: null, eccInputId: null };

  const fn = async (url: string, options: FetchOptions): Promise<Response> => {
    const now = deps.clock.now();
    const mid = await pickMid(deps.db, opts.choice, now, deps.downAfterMs);
    trace.midServer = mid.name;
    trace.eccOutputId = null;
    trace.eccInputId = null;
    const body = bodyBytes(options.body);
    const probe: RestProbeRequest = {
      v: WIRE_VERSION,
      method: options.method,
      url,
      headers: headerPairs(options.headers),
      body_b64: body ? Buffer.from(body).toString('base64') : null,
      timeout_ms: opts.timeoutMs,
      max_response_bytes: opts.maxResponseBytes,
    };
    const plain = JSON.stringify(probe);
    const payload = await sealSession((await deps.sessions.forMid(mid)).out, plain);
    const agent = agentName(mid.name);
    const outputId = await enqueueOutput(deps, {
      midChoice: JSON.stringify(opts.choice),
      topic: TOPIC_REST_PROBE,
      name: options.method.toLowerCase(),
      source: url,
      agent,
      payload,
      maxAttempts: opts.maxAttempts,
      leaseMs: opts.timeoutMs + deps.leaseGraceMs,
    });
    trace.eccOutputId = outputId;
    return awaitResult(outputId, mid.name, options.signal ?? undefined);
  };

  async function awaitResult(outputId: string, firstMid: string, signal: AbortSignal | undefined): Promise<Response> {
    let midName = firstMid;
    const started = deps.clock.now();
    let claimDeadline = started + deps.claimTimeoutMs;
    // Past the lease the reaper ends the record; this outer bound only guards against a stopped reaper.
    let hardDeadline = claimDeadline + opts.timeoutMs + deps.leaseGraceMs + 5_000;
    let woken = false;
    let handoff: InputHandoff | undefined;
    const unsubscribe = deps.wakeups.onRecord(outputId, (h) => {
      woken = true;
      if (h) handoff = h;
      wake?.abort();
    });
    let wake: AbortController | undefined;
    try {
      for (;;) {
        woken = false;
        if (handoff) return await readInput(handoff.inputId, handoff.agent, handoff.payload, handoff.errorString, true);
        const out = await getRecord(deps.db, outputId);
        if (!out) throw new AppError('internal', { message: `ECC output record ${outputId} disappeared while waiting for it.` });
        if (out.assigned_at !== null && out.assigned_at > started) {
          // Failover moved it to another MID server: that one gets its own time to claim it.
          claimDeadline = out.assigned_at + deps.claimTimeoutMs;
          hardDeadline = Math.max(hardDeadline, claimDeadline + opts.timeoutMs + deps.leaseGraceMs + 5_000);
          trace.midServer = out.agent.replace(/^mid\.server\./, '');
          midName = trace.midServer;
        }
        if (out.state === 'processed' || out.state === 'error') {
          const input = await findInputFor(deps.db, outputId);
          if (input) return await readInput(input.id, input.agent, input.payload, input.error_string);
          if (out.state === 'error') {
            throw new AppError('mid_server_timeout', {
              message: `${out.error_string ?? 'The request failed.'} (${ids(trace)})`,
              detail: { outputId },
            });
          }
        }
        const now = deps.clock.now();
        if (out.state === 'ready' && now >= claimDeadline) {
          const ended = await failOutput(
            deps,
            outputId,
            ['ready'],
            `No MID server claimed this record within ${Math.round(deps.claimTimeoutMs / 1000)} s.`,
          );
          if (ended) {
            throw new AppError('mid_server_timeout', {
              message: `MID server ${midName} did not pick up the request within ${Math.round(deps.claimTimeoutMs / 1000)} s; it may have just stopped or lost its connection to the instance. Check that it is running (GET /api/v1/mid_servers) and try again. (${ids(trace)})`,
              detail: { outputId },
            });
          }
          continue;
        }
        if (now >= hardDeadline) {
          await failOutput(deps, outputId, ['ready', 'processing'], 'The instance stopped waiting for an answer.');
          throw new AppError('mid_server_timeout', {
            message: `MID server ${midName} did not answer in time. (${ids(trace)})`,
            detail: { outputId },
          });
        }
        if (signal?.aborted) {
          await failOutput(deps, outputId, ['ready'], 'The caller cancelled the request before a MID server claimed it.');
          throw new AppError('mid_server_timeout', { message: `The request was cancelled while waiting for MID server ${midName}. (${ids(trace)})` });
        }
        if (!woken) {
          wake = new AbortController();
          const wait = Math.min(deps.pollFloorMs ?? 1_000, Math.max(1, (out.state === 'ready' ? claimDeadline : hardDeadline) - now));
          await sleep(wait, signal ? AbortSignal.any([wake.signal, signal]) : wake.signal);
        }
      }
    } finally {
      unsubscribe();
    }
  }

  /** `consumed`: handed over in-process, and already written as consumed by acceptInput. */
  async function readInput(inputId: string, agent: string, payload: string | null, errorString: string | null, consumed = false): Promise<Response> {
    trace.eccInputId = inputId;
    let result: RestProbeResult;
    try {
      const from = await cachedMid(deps.db, agent.replace(/^mid\.server\./, ''), deps.clock.now());
      const sessionIn = from ? await deps.sessions.inKeysForMid(from) : [];
      result = RestProbeResult.parse(JSON.parse(new TextDecoder().decode(await openEither(sessionIn, [deps.instanceKey], payload ?? ''))));
    } catch (err) {
      await markInputProcessed(deps, inputId, true, consumed);
      throw new AppError('internal', {
        message: `The answer from MID server ${trace.midServer} could not be decrypted or read (${ids(trace)}). Its keys may be out of date: restart it, or invalidate and re-enroll it.`,
        cause: err,
      });
    }
    // Bookkeeping only (the input's state): off the request's critical path, and not needed at
    // all when acceptInput already wrote the outcome.
    if (!consumed) void markInputProcessed(deps, inputId, 'error' in result).catch(() => undefined);
    if ('error' in result) {
      throw new AppError('endpoint_unreachable', {
        message: `MID server ${trace.midServer} could not complete the request: ${result.error.message} Check that the MID server can reach it (DNS, firewall, proxy). (${ids(trace)})`,
        detail: { code: result.error.code, errorString },
      });
    }
    return toResponse(result.status, result.headers, Buffer.from(result.body_b64, 'base64'));
  }

  return Object.assign(fn, { trace });
}

