import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../services.js';
import { isAppError } from '../../core/errors.js';
import type { Html } from './html.js';
import { csrfField, layout, type PageOpts } from './layout.js';
import type { Flash, Session } from './session.js';

/**
 * What every screen gets: the services (the same ones the REST API uses), the request's
 * session, and helpers to render a page, flash a message and run a button's action.
 */
export interface Ctx {
  s: Services;
  deps: {
    registry: { db: Services['db']; vault: Services['vault']; clock: Services['clock'] };
    credentials: { db: Services['db']; clock: Services['clock']; midDownAfterMs: number };
    mids: { db: Services['db']; clock: Services['clock']; wakeups: Services['wakeups']; downAfterMs: number };
  };
  now(): number;
  session(req: FastifyRequest): Session;
  csrf(req: FastifyRequest): Html;
  flash(req: FastifyRequest, kind: Flash['kind'], text: string): void;
  page(req: FastifyRequest, reply: FastifyReply, opts: PageOpts, status?: number): FastifyReply;
  /**
   * 303 See Other: after a POST, the browser GETs the next page. A form the script sent with
   * fetch (x-console-fetch) gets {"redirect"} instead, so the page stays live while it waits.
   */
  redirect(reply: FastifyReply, url: string): FastifyReply;
  /**
   * Runs a button's action: on success flashes `ok` (or what it returns), on an AppError flashes
   * its message; then goes back to `back`. Internal errors propagate to the error page.
   */
  action(req: FastifyRequest, reply: FastifyReply, back: string | { ok: string; error: string }, fn: () => Promise<string>): Promise<FastifyReply>;
}

export const errorMessage = (err: unknown): string => (isAppError(err) ? err.message : 'Internal error; the instance log has the details.');

export function createCtx(s: Services): Ctx & { attach(req: FastifyRequest, session: Session): void } {
  const sessions = new WeakMap<FastifyRequest, Session>();
  const session = (req: FastifyRequest): Session => {
    const v = sessions.get(req);
    if (!v) throw new Error('console: route reached without a session');
    return v;
  };
  const ctx: Ctx & { attach(req: FastifyRequest, session: Session): void } = {
    s,
    deps: {
      registry: { db: s.db, vault: s.vault, clock: s.clock },
      credentials: { db: s.db, clock: s.clock, midDownAfterMs: s.config.midDownAfterMs },
      mids: { db: s.db, clock: s.clock, wakeups: s.wakeups, downAfterMs: s.config.midDownAfterMs },
    },
    now: () => s.clock.now(),
    attach: (req, v) => void sessions.set(req, v),
    session,
    csrf: (req) => csrfField(session(req)),
    flash(req, kind, text) {
      session(req).flash = { kind, text };
    },
    page(req, reply, opts, status = 200) {
      const sess = session(req);
      const flash = sess.flash;
      sess.flash = null;
      return reply.status(status).type('text/html; charset=utf-8').send(layout(opts, sess, flash));
    },
    redirect: (reply, url) =>
      reply.request.headers['x-console-fetch'] === '1' ? reply.type('application/json').send({ redirect: url }) : reply.redirect(url, 303),
    async action(req, reply, back, fn) {
      const to = typeof back === 'string' ? { ok: back, error: back } : back;
      try {
        ctx.flash(req, 'ok', await fn());
        return ctx.redirect(reply, to.ok);
      } catch (err) {
        if (!isAppError(err) || err.status >= 500) req.log.warn({ err: (err as Error).message, code: isAppError(err) ? err.code : undefined }, 'console:action-failed');
        if (!isAppError(err)) throw err;
        ctx.flash(req, 'error', err.message);
        return ctx.redirect(reply, to.error);
      }
    },
  };
  return ctx;
}
