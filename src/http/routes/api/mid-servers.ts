import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { iso } from '../../../core/clock.js';
import { deleteMid, listMids, requestRekey, requireMid, setPaused, setValidated, toView } from '../../../mid-servers/registry.js';
import { createEnrollmentKey } from '../../../mid-servers/enrollment.js';
import { countOpenByAgent, agentName } from '../../../ecc/index.js';

/** The MID server registry: list, validate/invalidate, delete, and enrollment keys. */
export function registerMidServerRoutes(api: FastifyInstance, s: Services): void {
  const deps = { db: s.db, clock: s.clock, wakeups: s.wakeups, downAfterMs: s.config.midDownAfterMs };
  type Name = { Params: { name: string } };
  const view = async (name: string) => {
    const m = await requireMid(s.db, name);
    const counts = await countOpenByAgent(s.db);
    return toView(m, s.clock.now(), s.config.midDownAfterMs, counts.get(agentName(m.name)));
  };

  api.get('/mid_servers', async () => {
    const counts = await countOpenByAgent(s.db);
    const now = s.clock.now();
    return { items: (await listMids(s.db)).map((m) => toView(m, now, s.config.midDownAfterMs, counts.get(agentName(m.name)))) };
  });
  api.get<Name>('/mid_servers/:name', async (req) => view(req.params.name));
  api.post<Name>('/mid_servers/:name/validate', async (req) => {
    await setValidated(deps, req.params.name, true);
    s.wakeups.wakeAgent(agentName(req.params.name));
    return view(req.params.name);
  });
  api.post<Name>('/mid_servers/:name/invalidate', async (req) => {
    await setValidated(deps, req.params.name, false);
    return view(req.params.name);
  });
  api.post<Name>('/mid_servers/:name/pause', async (req) => {
    await setPaused(deps, req.params.name, true);
    return view(req.params.name);
  });
  api.post<Name>('/mid_servers/:name/resume', async (req) => {
    await setPaused(deps, req.params.name, false);
    return view(req.params.name);
  });
  api.post<Name>('/mid_servers/:name/rekey', async (req) => {
    await requestRekey(deps, req.params.name);
    return view(req.params.name);
  });
  api.delete<Name>('/mid_servers/:name', async (req, reply) => {
    await deleteMid(deps, req.params.name);
    return reply.status(204).send();
  });

  api.post('/mid_enrollment_keys', async (_req, reply) => {
    const { key, expiresAt } = await createEnrollmentKey(s, s.config.enrollmentKeyTtlMs);
    const instanceUrl = s.config.publicUrl;
    return reply.status(201).send({
      key,
      expires_at: iso(expiresAt),
      command: `npx tokenrelay mid --instance ${instanceUrl} --name <NAME> --enroll ${key} --data ./mid-data`,
    });
  });
}
