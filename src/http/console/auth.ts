import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from './context.js';
import { loginPage } from './layout.js';
import { formBody, one } from './forms.js';
import {
  clearCookie, LOGIN_CSRF_COOKIE, MAX_AGE_MS, randomId, readCookie, safeNext, sameSecret, SESSION_COOKIE, setCookie, type Session, type SessionStore,
} from './session.js';

/**
 * Logging in and out, and the two guards every console request passes:
 * - a session (else: a GET goes to the login page and comes back after; a POST is refused);
 * - on every POST, the session's CSRF token in the `_csrf` field, and an Origin (when the
 *   browser sends one) that is this instance. SameSite=Strict is the third line.
 * The login form itself is protected by a double-submit token (cookie + hidden field).
 */
const PUBLIC = /^\/console\/(login|assets\/[a-z.]+)(\?|$)/;

export function registerAuth(c: FastifyInstance, ctx: Ctx & { attach(req: FastifyRequest, s: Session): void }, sessions: SessionStore, adminTokenHash: Buffer): void {
  const secure = ctx.s.config.publicUrl.startsWith('https:');
  const html = 'text/html; charset=utf-8';

  const forbidden = (reply: FastifyReply, why: string) =>
    reply.status(403).type(html).send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Refused · tokenrelay console</title><link rel="stylesheet" href="/console/assets/console.css"></head><body><main class="login" id="main"><div class="card"><h1>Refused</h1><div class="flash error" role="alert">${why}</div><p><a href="/console">Back to the console</a></p></div></main></body></html>`);

  const sameOrigin = (req: FastifyRequest): boolean => {
    const origin = req.headers.origin;
    if (!origin || origin === 'null') return origin !== 'null';
    try {
      const host = new URL(origin).host;
      return host === req.headers.host || host === new URL(ctx.s.config.publicUrl).host;
    } catch {
      return false;
    }
  };

  c.addHook('onRequest', async (req, reply) => {
    void reply.headers({
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'same-origin',
      'content-security-policy': "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
    });
    if (PUBLIC.test(req.url)) return;
    const session = sessions.get(readCookie(req, SESSION_COOKIE));
    if (session) return ctx.attach(req, session);
    if (req.method === 'GET' || req.method === 'HEAD') {
      const next = safeNext(req.url);
      return reply.redirect(`/console/login${next === '/console' ? '' : `?next=${encodeURIComponent(next)}`}`, 303);
    }
    return reply.redirect('/console/login?expired=1', 303);
  });

  c.addHook('preHandler', async (req, reply) => {
    if (req.method !== 'POST' || PUBLIC.test(req.url)) return;
    if (!sameOrigin(req)) return forbidden(reply, 'This form was posted from another site. Use the console itself.');
    const token = one(formBody(req.body), '_csrf');
    if (!token || !sameSecret(token, ctx.session(req).csrf)) {
      return forbidden(reply, 'The form is missing its security token or it is out of date. Go back, reload the page and try again.');
    }
  });

  const showLogin = (reply: FastifyReply, next: string, error: string | null, info: string | null, status = 200) => {
    const csrf = randomId();
    setCookie(reply, LOGIN_CSRF_COOKIE, csrf, { secure, maxAgeS: 3600 });
    return reply.status(status).type(html).send(loginPage({ csrf, next, error, info }));
  };

  c.get<{ Querystring: { next?: string; expired?: string; out?: string } }>('/login', async (req, reply) => {
    if (sessions.get(readCookie(req, SESSION_COOKIE))) return reply.redirect(safeNext(req.query.next), 303);
    const info = req.query.out ? 'You are logged out.' : req.query.expired ? 'Your session has ended; log in again.' : null;
    return showLogin(reply, safeNext(req.query.next), null, info);
  });

  c.post('/login', async (req, reply) => {
    const f = formBody(req.body);
    const next = safeNext(one(f, 'next'));
    const cookie = readCookie(req, LOGIN_CSRF_COOKIE);
    if (!sameOrigin(req) || !cookie || !sameSecret(cookie, one(f, '_csrf'))) {
      return showLogin(reply, next, null, 'The login form had expired; enter the token again.', 403);
    }
    const token = typeof f.token === 'string' ? f.token.trim() : '';
    const digest = createHash('sha256').update(token).digest();
    if (!token || !timingSafeEqual(digest, adminTokenHash)) {
      req.log.info({ ip: req.ip }, 'console:login-refused');
      return showLogin(reply, next, 'That is not the admin token of this instance. Copy it from the data dir\'s admin-token file (or TOKENRELAY_ADMIN_TOKEN).', null, 401);
    }
    sessions.destroy(readCookie(req, SESSION_COOKIE));
    const { id } = sessions.create();
    clearCookie(reply, LOGIN_CSRF_COOKIE, secure);
    setCookie(reply, SESSION_COOKIE, id, { secure, maxAgeS: MAX_AGE_MS / 1000 });
    req.log.info({ ip: req.ip }, 'console:login');
    return reply.redirect(next, 303);
  });

  c.post('/logout', async (req, reply) => {
    sessions.destroy(readCookie(req, SESSION_COOKIE));
    clearCookie(reply, SESSION_COOKIE, secure);
    return reply.redirect('/console/login?out=1', 303);
  });
}
