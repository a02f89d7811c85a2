import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { ZodError } from 'zod';
import { AppError, isAppError } from '../core/errors.js';
import type { Log } from '../core/log.js';
import type { Services } from './services.js';
import { registerOpsRoutes } from './routes/ops.js';
import { registerAgentRoutes } from './routes/agent.js';
import { registerProviderRoutes } from './routes/api/providers.js';
import { registerCredentialRoutes } from './routes/api/credentials.js';
import { registerMidServerRoutes } from './routes/api/mid-servers.js';
import { registerEccRoutes } from './routes/api/ecc-queue.js';
import { registerOAuthPages } from './routes/oauth-pages.js';
import { registerRestStepRoutes } from './routes/api/rest-step.js';
import { registerConsole } from './console/index.js';

/**
 * The HTTP edge only: parse, authorize, call a service, serialize. Errors leave as
 * {"error":{"code","message"}}; their private detail goes to the log, never to the client.
 */
export function buildApp(services: Services, opts: { log: Log; adminTokenHash: Buffer }): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.log as unknown as FastifyBaseLogger,
    // Requests are not logged one by one (the hot path serves thousands a second); errors are.
    logController: new LogController({ disableRequestLogging: true }),
    // No per-request child logger: creating one re-compiles pino's redaction (≈7 % of CPU on
    // cached token reads in the profile). Request-scoped lines log through the instance logger.
    childLoggerFactory: (logger) => logger,
    bodyLimit: 1024 * 1024,
    forceCloseConnections: true,
    return503OnClosing: true,
    requestTimeout: 0,
  });

  app.setErrorHandler((err, req, reply) => {
    const e = toAppError(err);
    if (e.status >= 500) req.log.error({ code: e.code, err: e.message, detail: e.detail, cause: (e.cause as Error | undefined)?.message }, 'request failed');
    else if (e.detail) req.log.info({ code: e.code, detail: e.detail }, 'request refused');
    void reply.status(e.status).send({ error: { code: e.code, message: e.message } });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'not_found', message: `No route ${req.method} ${req.url.split('?')[0]}. The API lives under /api/v1; see docs/api.md.` } });
  });

  // Every /api/v1 call carries the admin bearer token.
  const checkAdmin = createAdminCheck(opts.adminTokenHash);
  app.addHook('onRequest', async (req) => {
    if (!req.url.startsWith('/api/')) return;
    if (!checkAdmin(req.headers.authorization)) {
      throw new AppError('unauthorized', {
        message: 'Missing or wrong admin token. Send "Authorization: Bearer <token>"; the token is in the data dir\'s admin-token file or TOKENRELAY_ADMIN_TOKEN.',
      });
    }
  });

  registerOpsRoutes(app, services);
  registerAgentRoutes(app, services);
  registerOAuthPages(app, services);
  registerConsole(app, services, { adminTokenHash: opts.adminTokenHash });
  void app.register(
    async (api) => {
      registerProviderRoutes(api, services);
      registerCredentialRoutes(api, services);
      registerMidServerRoutes(api, services);
      registerEccRoutes(api, services);
      registerRestStepRoutes(api, services);
    },
    { prefix: '/api/v1' },
  );
  return app;
}

export const hashAdminToken = (token: string): Buffer => createHash('sha256').update(token).digest();

/**
 * Compares SHA-256 digests in constant time. The header that passed last is remembered, so the
 * hot path is one constant-time byte comparison instead of a hash per request; any other value
 * is hashed and compared again.
 */
function createAdminCheck(expected: Buffer): (authorization: string | undefined) => boolean {
  let lastGood: Buffer | null = null;
  return (h) => {
    if (!h?.startsWith('Bearer ')) return false;
    const given = Buffer.from(h);
    if (lastGood && given.length === lastGood.length && timingSafeEqual(given, lastGood)) return true;
    const ok = timingSafeEqual(hashAdminToken(h.slice(7).trim()), expected);
    if (ok) lastGood = given;
    return ok;
  };
}

function toAppError(err: unknown): AppError {
  if (isAppError(err)) return err;
  if (err instanceof ZodError) {
    const issue = err.issues[0]!;
    const path = issue.path.join('.');
    let message: string;
    if (issue.code === 'unrecognized_keys') {
      const keys = (issue as { keys: string[] }).keys;
      message = `Unknown field${keys.length > 1 ? 's' : ''} ${keys.map((k) => `"${path ? `${path}.` : ''}${k}"`).join(', ')}; remove ${keys.length > 1 ? 'them' : 'it'}.`;
    } else if (issue.code === 'invalid_type' && issue.input === undefined) {
      message = `Field "${path}" is required.`;
    } else {
      message = `Field "${path || '(body)'}": ${issue.message}.`;
    }
    return new AppError('invalid_request', { message, detail: { issues: err.issues.length } });
  }
  const fe = err as { statusCode?: number; code?: string; message?: string };
  if (fe.statusCode === 415) return new AppError('invalid_request', { message: 'Send the body as JSON with "Content-Type: application/json".' });
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    const msg = fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? 'The body is empty; send a JSON object, e.g. {}.' : `The request could not be read: ${fe.message}.`;
    return new AppError(fe.statusCode === 413 ? 'invalid_request' : 'invalid_request', { message: msg });
  }
  return new AppError('internal', { message: 'Internal error; the instance log has the details.', cause: err });
}
