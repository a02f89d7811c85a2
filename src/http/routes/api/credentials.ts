import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { AppError } from '../../../core/errors.js';
import { iso } from '../../../core/clock.js';
import {
  createCredential, deleteCredential, getCredential, getCredentialRow, listCredentials, updateCredential,
} from '../../../credentials/credentials.js';
import { listTokenRows, toView as tokenView } from '../../../tokens/store.js';

/** Credentials, the "Get OAuth Token" link, access tokens for callers, and the oauth_credential table. */
export function registerCredentialRoutes(api: FastifyInstance, s: Services): void {
  const deps = { db: s.db, clock: s.clock, midDownAfterMs: s.config.midDownAfterMs };
  type Id = { Params: { id: string } };

  api.post('/credentials', async (req, reply) => reply.status(201).send(await createCredential(deps, req.body)));
  api.get('/credentials', async () => ({ items: await listCredentials(deps) }));
  api.get<Id>('/credentials/:id', async (req) => getCredential(deps, req.params.id));
  api.patch<Id>('/credentials/:id', async (req) => updateCredential(deps, req.params.id, req.body));
  api.delete<Id>('/credentials/:id', async (req, reply) => {
    await deleteCredential(deps, req.params.id);
    return reply.status(204).send();
  });

  api.post<Id>('/credentials/:id/get_token', async (req) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (typeof body !== 'object' || Array.isArray(body)) throw new AppError('invalid_request', { message: 'The body must be a JSON object, e.g. {}.' });
    const unknown = Object.keys(body).filter((k) => !['username', 'password'].includes(k));
    if (unknown.length) throw new AppError('invalid_request', { message: `Unknown field "${unknown[0]}"; get_token takes {} (or username and password for the password grant).` });
    const cred = await getCredentialRow(s.db, req.params.id);
    try {
      await s.broker.getToken(cred.id);
      s.metrics.inc('tokenrelay_token_requests_total', { result: 'ok' });
    } catch (err) {
      s.metrics.inc('tokenrelay_token_requests_total', { result: 'error' });
      throw err;
    }
    return getCredential(deps, cred.id);
  });

  api.get<Id>('/credentials/:id/access_token', async (req) => {
    const cred = await getCredentialRow(s.db, req.params.id);
    const t = await s.broker.accessToken(cred.id);
    return { access_token: t.access_token, token_type: t.token_type, expires_at: iso(t.expires_at) };
  });

  api.get<{ Querystring: { credential_id?: string } }>('/oauth_tokens', async (req) => {
    const credentialId = req.query.credential_id ? (await getCredentialRow(s.db, req.query.credential_id)).id : undefined;
    return { items: (await listTokenRows(s.db, credentialId)).map(tokenView) };
  });
}
