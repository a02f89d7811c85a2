import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Services } from '../services.js';
import { AppError } from '../../core/errors.js';
import { EnrollRequest, Heartbeat, InputRequest, InputsRequest, PollRequest, RekeyRequest } from '../../core/wire.js';
import { readdress } from '../../mid-servers/failover.js';
import { cachedMid, forgetMidList } from '../../mid-servers/selection.js';
import { enrollMid, recordHeartbeat, type MidRow } from '../../mid-servers/registry.js';
import { agentName, claimOutputs, releaseClaims, acceptInput, acceptInputs } from '../../ecc/index.js';

/**
 * The MID-facing API (/agent/v1). MID servers only ever call in: enroll once, then heartbeat,
 * long-poll for output records and post input records. Every call but enroll is authenticated
 * by the MID server's own signing key (see mid-servers/agent-auth.ts).
 */
export function registerAgentRoutes(app: FastifyInstance, s: Services): void {
  const deps = { db: s.db, clock: s.clock, wakeups: s.wakeups, downAfterMs: s.config.midDownAfterMs };
  const leaseMs = s.config.tokenRequestTimeoutMs + s.config.leaseGraceMs;
  const auth = (req: FastifyRequest): Promise<MidRow> => s.agentAuth.authenticate(req.headers.authorization);
  /** Results are accepted only from a validated MID server (an invalidated one's in-flight answers are refused). */
  const authValidated = async (req: FastifyRequest): Promise<MidRow> => {
    const mid = await auth(req);
    if (mid.validated !== 1) {
      throw new AppError('mid_server_not_validated', { message: `MID server ${mid.name} is not validated; its results are refused.` });
    }
    return mid;
  };

  app.post('/agent/v1/enroll', async (req, reply) => {
    const body = EnrollRequest.parse(req.body);
    const mid = await enrollMid(deps, {
      key: body.enrollment_key,
      name: body.name,
      signJwk: body.sign_jwk,
      encJwk: body.enc_jwk,
      ...(body.host !== undefined ? { host: body.host } : {}),
      ...(body.version !== undefined ? { version: body.version } : {}),
      ...(body.capabilities !== undefined ? { capabilities: body.capabilities } : {}),
    });
    req.log.info({ mid: mid.name, host: mid.host }, 'mid:enrolled');
    return reply.status(201).send({ mid_id: mid.id, name: mid.name, instance_enc_jwk: s.instancePublicJwk });
  });

  app.post('/agent/v1/heartbeat', async (req, reply) => {
    const mid = await auth(req);
    const hb = Heartbeat.parse(req.body ?? {});
    await recordHeartbeat(deps, mid.id, hb);
    return reply.send({ validated: mid.validated === 1, paused: mid.paused === 1, rekey: mid.rekey_requested === 1, instance_enc_jwk: s.instancePublicJwk });
  });

  /**
   * Rekey: the MID server sends new public keys, authenticated with its current key. Ready
   * records addressed to its old key are re-sealed to the new one.
   */
  app.post('/agent/v1/rekey', async (req, reply) => {
    const mid = await auth(req);
    const body = RekeyRequest.parse(req.body);
    // The key ready records were sealed with, before it changes.
    const oldOut = (await s.sessions.forMid(mid)).out;
    await s.db
      .updateTable('mid_servers')
      .set({ sign_jwk: JSON.stringify(body.sign_jwk), enc_jwk: JSON.stringify(body.enc_jwk), rekey_requested: 0 })
      .where('id', '=', mid.id)
      .execute();
    forgetMidList();
    const updated = { ...mid, enc_jwk: JSON.stringify(body.enc_jwk) };
    const ready = await s.db.selectFrom('ecc_queue').selectAll().where('agent', '=', agentName(mid.name)).where('queue', '=', 'output').where('state', '=', 'ready').execute();
    for (const rec of ready) await readdress({ ...deps, sessions: s.sessions, log: s.log }, rec, updated, oldOut);
    req.log.info({ mid: mid.name }, 'mid:rekeyed');
    return reply.send({ ok: true });
  });

  /**
   * Long-poll: answers at once with whatever this MID server can claim, else waits until an
   * enqueue wakes it, the deadline passes, the client goes away, or the instance shuts down.
   * An unvalidated MID server is held here without work (it still counts as alive).
   */
  app.post('/agent/v1/poll', async (req, reply) => {
    const mid = await auth(req);
    const { max, wait_ms } = PollRequest.parse(req.body);
    const agent = agentName(mid.name);
    const deadline = s.clock.now() + Math.min(wait_ms, s.config.longPollMs);
    const gone = new AbortController();
    const onClose = () => gone.abort();
    req.raw.socket.on('close', onClose);
    try {
      for (;;) {
        // From the short-lived MID list: admin changes (invalidate, pause) clear it at once.
        const current = await cachedMid(s.db, mid.id, s.clock.now());
        if (!current) throw new AppError('mid_server_unknown', { message: 'This MID server is no longer enrolled; enroll it again.' });
        if (current.validated === 1 && current.paused !== 1) {
          const claimed = await claimOutputs(deps, agent, max, leaseMs);
          for (const r of claimed) {
            const age = s.wakeups.takeEnqueueAge(r.id);
            if (age !== undefined) s.metrics.observe('tokenrelay_ecc_claim_wait_seconds', age / 1000);
          }
          if (claimed.length) {
            if (gone.signal.aborted) {
              await releaseClaims(deps, agent, claimed.map((r) => r.id));
              return reply.send({ records: [] });
            }
            return reply.send({
              records: claimed.map((r) => ({
                id: r.id,
                topic: r.topic,
                name: r.name,
                source: r.source,
                payload: r.payload ?? '',
                lease_expires_at: r.lease_expires_at ?? 0,
              })),
            });
          }
        }
        const left = deadline - s.clock.now();
        if (left <= 0 || gone.signal.aborted || s.closing.aborted) return reply.send({ records: [] });
        await waitForWork(agent, left, gone.signal);
      }
    } finally {
      req.raw.socket.off('close', onClose);
    }
  });

  function waitForWork(agent: string, ms: number, gone: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      // Poll floor: a record enqueued by another instance node (no in-process wake-up) is still seen.
      const timer = setTimeout(done, Math.min(ms, 5_000));
      const off = s.wakeups.onAgent(agent, done);
      gone.addEventListener('abort', done, { once: true });
      s.closing.addEventListener('abort', done, { once: true });
      function done() {
        clearTimeout(timer);
        off();
        gone.removeEventListener('abort', done);
        s.closing.removeEventListener('abort', done);
        resolve();
      }
    });
  }

  // Results carry response bodies (up to 10 MB, base64 inside a JWE): a larger body limit here only.
  app.post('/agent/v1/input', { bodyLimit: 32 * 1024 * 1024 }, async (req, reply) => {
    const mid = await authValidated(req);
    const body = InputRequest.parse(req.body);
    const { inputId } = await acceptInput(deps, agentName(mid.name), {
      responseTo: body.response_to,
      payload: body.payload,
      errorString: body.error_string,
    });
    s.metrics.inc('tokenrelay_ecc_inputs_total', { mid: mid.name });
    return reply.status(201).send({ id: inputId });
  });

  /** Several answers at once: each gets its own outcome; one refused answer does not refuse the others. */
  app.post('/agent/v1/inputs', { bodyLimit: 64 * 1024 * 1024 }, async (req, reply) => {
    const mid = await authValidated(req);
    const body = InputsRequest.parse(req.body);
    const outcomes = await acceptInputs(
      deps,
      agentName(mid.name),
      body.inputs.map((i) => ({ responseTo: i.response_to, payload: i.payload, errorString: i.error_string })),
    );
    s.metrics.inc('tokenrelay_ecc_inputs_total', { mid: mid.name }, outcomes.filter((o) => !('error' in o)).length);
    return reply.status(200).send({
      results: outcomes.map((o) => ('error' in o ? { response_to: o.responseTo, error: { code: o.error.code, message: o.error.message } } : { response_to: o.responseTo, id: o.inputId })),
    });
  });
}
