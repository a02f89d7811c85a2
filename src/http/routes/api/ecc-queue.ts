import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Services } from '../../services.js';
import { getRecord, listRecords, toView } from '../../../ecc/index.js';
import { notFound } from '../../../core/errors.js';

const Query = z.object({
  queue: z.enum(['output', 'input']).optional(),
  topic: z.string().optional(),
  state: z.enum(['ready', 'processing', 'processed', 'error']).optional(),
  agent: z.string().optional(),
  response_to: z.string().optional(),
  before: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** The ECC queue, read-only; payloads stay encrypted and are never returned. */
export function registerEccRoutes(api: FastifyInstance, s: Services): void {
  api.get('/ecc_queue', async (req) => {
    const q = Query.parse(req.query);
    const rows = await listRecords(s.db, {
      limit: q.limit,
      ...(q.queue ? { queue: q.queue } : {}),
      ...(q.topic ? { topic: q.topic } : {}),
      ...(q.state ? { state: q.state } : {}),
      ...(q.agent ? { agent: q.agent } : {}),
      ...(q.response_to ? { response_to: q.response_to } : {}),
      ...(q.before ? { before: q.before } : {}),
    });
    return { items: rows.map(toView) };
  });
  api.get<{ Params: { id: string } }>('/ecc_queue/:id', async (req) => {
    const r = await getRecord(s.db, req.params.id);
    if (!r) throw notFound('ECC record', req.params.id);
    return toView(r);
  });
}
