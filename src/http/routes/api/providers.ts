import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { createProvider, deleteProvider, getProvider, listProviders, updateProvider } from '../../../registry/providers.js';
import { createProfile, getProfileRow, listProfiles, toView as profileView } from '../../../registry/profiles.js';

/** The Application Registry and its entity profiles. */
export function registerProviderRoutes(api: FastifyInstance, s: Services): void {
  const deps = { db: s.db, vault: s.vault, clock: s.clock };
  type Id = { Params: { id: string } };

  api.post('/oauth_providers', async (req, reply) => reply.status(201).send(await createProvider(deps, req.body)));
  api.get('/oauth_providers', async () => ({ items: await listProviders(deps) }));
  api.get<Id>('/oauth_providers/:id', async (req) => getProvider(deps, req.params.id));
  api.patch<Id>('/oauth_providers/:id', async (req) => updateProvider(deps, req.params.id, req.body));
  api.delete<Id>('/oauth_providers/:id', async (req, reply) => {
    await deleteProvider(deps, req.params.id);
    return reply.status(204).send();
  });

  api.post('/oauth_profiles', async (req, reply) => reply.status(201).send(await createProfile(deps, req.body)));
  api.get<{ Querystring: { provider_id?: string } }>('/oauth_profiles', async (req) => ({ items: await listProfiles(s.db, req.query.provider_id) }));
  api.get<Id>('/oauth_profiles/:id', async (req) => profileView(await getProfileRow(s.db, req.params.id)));
}
