import type { FastifyInstance } from 'fastify';
import type { Services } from '../services.js';
import { listMids, isUp } from '../../mid-servers/registry.js';

/** /healthz (no auth): the process is serving and its database answers. /metrics: Prometheus text. */
export function registerOpsRoutes(app: FastifyInstance, s: Services): void {
  app.get('/healthz', async (_req, reply) => {
    await s.db.selectFrom('settings').select('key').limit(1).execute();
    return reply.send({ status: 'ok' });
  });

  app.get('/metrics', async (_req, reply) => {
    const now = s.clock.now();
    const mids = await listMids(s.db);
    const ecc = await s.db
      .selectFrom('ecc_queue')
      .select(['queue', 'state', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy(['queue', 'state'])
      .execute();
    const body = s.metrics.render([
      {
        name: 'tokenrelay_mid_server_up',
        help: '1 while the MID server heartbeats, else 0.',
        values: mids.map((m) => [{ name: m.name }, isUp(m, now, s.config.midDownAfterMs) ? 1 : 0]),
      },
      {
        name: 'tokenrelay_ecc_records',
        help: 'ECC queue records by queue and state.',
        values: ecc.map((r) => [{ queue: r.queue, state: r.state }, Number(r.n)]),
      },
    ]);
    return reply.type('text/plain; version=0.0.4').send(body);
  });
}
