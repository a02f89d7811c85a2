import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { z } from 'zod';
import { iso } from '../../../core/clock.js';
import {
  createCredential, deleteCredential, getCredential, getCredentialRow, listCredentials, updateCredential,
} from '../../../credentials/credentials.js';
import { listTokenRows, toView as tokenView } from '../../../tokens/store.js';

const GetTokenBody = z.object({ username: z.string().min(1).optional(), password: z.string().min(1).optional() }).strict();

/** Credentials, the "Get OAuth Token" link, access tokens for callers, and the oauth_credential table. */
export function registerCredentialRoutes(api: FastifyInstance, s: Services): void {
  const deps = { db: s.db, clock: s.clock, midDownAfterMs: s.config.midDownAfterMs };
  type Id = { Params: { id: string } };

  api.post('/credentials', async (req, reply) => reply.status(201).send(await createCredential(deps, req.body)));
  api.get('/credentials', async () => ({ items: await listCredentials(deps) }));
  api.get<Id>('/credentials/:id', async (req) => getCredential(deps, req.params.id));
  api.patch<Id>('/credentials/:id', async (req) => {
    const updated = await updateCredential(deps, req.params.id, req.body);
    s.broker.forget(updated.id);
    return updated;
  });
  api.delete<Id>('/credentials/:id', async (req, reply) => {
    const cred = await getCredentialRow(s.db, req.params.id);
    await deleteCredential(deps, cred.id);
    s.broker.forget(cred.id);
    return reply.status(204).send();
  });

  /**
   * "Get OAuth Token": grants without a person answer once the token is stored; the password
   * grant takes {username, password} (or, with {}, answers a single-use login_url for the login
   * screen); authorization_code answers the authorize_url for the browser.
   */
  api.post<Id>('/credentials/:id/get_token', async (req) => {
    const body = GetTokenBody.parse(req.body ?? {});
    const cred = await getCredentialRow(s.db, req.params.id);
    let result;
    try {
      result = await s.broker.getToken(cred.id, body, 'admin');
      s.metrics.inc('tokenrelay_token_requests_total', { result: 'ok' });
    } catch (err) {
      s.metrics.inc('tokenrelay_token_requests_total', { result: 'error' });
      throw err;
    }
    if (result.kind === 'authorize') return { authorize_url: result.authorize_url, expires_at: iso(result.expires_at), redirect_uri: s.broker.redirectUri };
    if (result.kind === 'login') return { login_url: result.login_url, expires_at: iso(result.expires_at) };
    return getCredential(deps, cred.id);
  });

  api.post<Id>('/credentials/:id/revoke', async (req) => {
    const cred = await getCredentialRow(s.db, req.params.id);
    const { revokedAtProvider } = await s.broker.revoke(cred.id);
    return { ...(await getCredential(deps, cred.id)), revoked_at_provider: revokedAtProvider };
  });

  api.get<Id>('/credentials/:id/access_token', async (req) => {
    const t = await s.broker.accessToken(req.params.id);
    return { access_token: t.access_token, token_type: t.token_type, expires_at: iso(t.expires_at) };
  });

  api.get<{ Querystring: { credential_id?: string } }>('/oauth_tokens', async (req) => {
    const credentialId = req.query.credential_id ? (await getCredentialRow(s.db, req.query.credential_id)).id : undefined;
    return { items: (await listTokenRows(s.db, credentialId)).map(tokenView) };
  });
}
