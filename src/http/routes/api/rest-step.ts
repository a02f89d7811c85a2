import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Services } from '../../services.js';
import { createConnection, deleteConnection, getConnectionRow, listConnections, toView, updateConnection } from '../../../rest-step/connections.js';
import { executeRestStep, listExecutions } from '../../../rest-step/rest-step.js';

/** Connections, the REST step, and its execution records. */
export function registerRestStepRoutes(api: FastifyInstance, s: Services): void {
  type Id = { Params: { id: string } };
  api.post('/connections', async (req, reply) => reply.status(201).send(await createConnection(s, req.body)));
  api.get('/connections', async () => ({ items: await listConnections(s.db) }));
  api.get<Id>('/connections/:id', async (req) => toView(await getConnectionRow(s.db, req.params.id)));
  api.patch<Id>('/connections/:id', async (req) => updateConnection(s, req.params.id, req.body));
  api.delete<Id>('/connections/:id', async (req, reply) => {
    await deleteConnection(s.db, req.params.id);
    return reply.status(204).send();
  });

  api.post('/rest_step', { bodyLimit: 16 * 1024 * 1024 }, async (req) => executeRestStep(s.restStepDeps, req.body));

  const Query = z.object({ connection: z.string().optional(), limit: z.coerce.number().int().min(1).max(1000).default(100) });
  api.get('/rest_executions', async (req) => {
    const q = Query.parse(req.query);
    const connectionId = q.connection ? (await getConnectionRow(s.db, q.connection)).id : undefined;
    return { items: await listExecutions(s.db, { limit: q.limit, ...(connectionId ? { connectionId } : {}) }) };
  });
}
