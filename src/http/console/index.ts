import type { FastifyInstance } from 'fastify';
import type { Services } from '../services.js';
import { isAppError } from '../../core/errors.js';
import { CSS, JS } from './assets.js';
import { registerAuth } from './auth.js';
import { createCtx, errorMessage } from './context.js';
import { errorBody } from './layout.js';
import { createSessionStore, readCookie, SESSION_COOKIE } from './session.js';
import { registerHome } from './home.js';
import { registerProviders } from './providers.js';
import { registerCredentials } from './credentials.js';
import { registerTokenActions } from './credential-tokens.js';
import { registerMidServers } from './mid-servers.js';
import { registerEcc } from './ecc.js';
import { registerConnections } from './connections.js';

/**
 * The web console: server-rendered pages under /console over the same services as the REST
 * API (see docs/console.md). `/` leads there. Everything is encapsulated in one Fastify
 * plugin, so its hooks, body parser and error pages touch no other route.
 */
export function registerConsole(app: FastifyInstance, services: Services, opts: { adminTokenHash: Buffer }): void {
  app.get('/', async (_req, reply) => reply.redirect('/console', 302));
  void app.register(
    async (c) => {
      // Form posts: repeated fields (a MID server picker) become arrays; PEM keys fit in 256 KB.
      if (c.hasContentTypeParser('application/x-www-form-urlencoded')) c.removeContentTypeParser('application/x-www-form-urlencoded');
      c.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 256 * 1024 }, (_req, body, done) => {
        const out: Record<string, string | string[]> = {};
        for (const [k, v] of new URLSearchParams(body as string)) {
          const prev = out[k];
          out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
        }
        done(null, out);
      });

      const sessions = createSessionStore(services.clock);
      const ctx = createCtx(services);

      c.setErrorHandler((err, req, reply) => {
        const status = isAppError(err) ? err.status : ((err as { statusCode?: number }).statusCode ?? 500);
        if (status >= 500) req.log.error({ err: (err as Error).message, code: isAppError(err) ? err.code : undefined }, 'console:request-failed');
        const message = isAppError(err) || status >= 500 ? errorMessage(err) : `The request could not be read: ${(err as Error).message}`;
        const session = sessions.get(readCookie(req, SESSION_COOKIE));
        if (!session) return reply.status(status).type('text/plain; charset=utf-8').send(message);
        ctx.attach(req, session);
        return ctx.page(req, reply, { title: status === 404 ? 'Not found' : 'Something went wrong', nav: 'home', body: errorBody(message, ['Back to the overview', '/console']) }, status);
      });
      c.setNotFoundHandler((req, reply) => {
        const body = errorBody(`There is no console page at ${req.url.split('?')[0]}.`, ['Back to the overview', '/console']);
        const session = sessions.get(readCookie(req, SESSION_COOKIE));
        if (!session) return reply.redirect('/console/login', 303);
        ctx.attach(req, session);
        return ctx.page(req, reply, { title: 'Not found', nav: 'home', body }, 404);
      });

      registerAuth(c, ctx, sessions, opts.adminTokenHash);
      c.get('/assets/console.css', async (_req, reply) => reply.header('cache-control', 'public, max-age=300').type('text/css; charset=utf-8').send(CSS));
      c.get('/assets/console.js', async (_req, reply) => reply.header('cache-control', 'public, max-age=300').type('text/javascript; charset=utf-8').send(JS));

      registerHome(c, ctx);
      registerProviders(c, ctx);
      registerCredentials(c, ctx);
      registerTokenActions(c, ctx);
      registerMidServers(c, ctx);
      registerEcc(c, ctx);
      registerConnections(c, ctx);
    },
    { prefix: '/console' },
  );
}
