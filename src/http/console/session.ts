import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../../core/clock.js';

/**
 * Console sessions, server-side: the browser holds only a random id (cookie: HttpOnly,
 * SameSite=Strict, Path=/console, Secure behind an https public URL); the instance keeps
 * sha256(id) → session in memory, with an idle and an absolute expiry. Restarting the
 * instance logs everyone out, which is the safe default for an admin console.
 */
export const SESSION_COOKIE = 'tokenrelay_console';
export const LOGIN_CSRF_COOKIE = 'tokenrelay_login';
export const IDLE_MS = 60 * 60_000;
export const MAX_AGE_MS = 12 * 3600_000;
const MAX_SESSIONS = 1000;

export interface Flash {
  kind: 'ok' | 'error' | 'info';
  text: string;
}

export interface Session {
  /** Sent in every form as `_csrf` and compared on every POST. */
  csrf: string;
  createdAt: number;
  seenAt: number;
  /** A one-shot message for the next page (set before a redirect). */
  flash: Flash | null;
}

const digest = (s: string) => createHash('sha256').update(s).digest('hex');
export const randomId = () => randomBytes(32).toString('base64url');

/** Constant-time comparison of two strings of any length. */
export const sameSecret = (a: string, b: string): boolean => timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());

export interface SessionStore {
  create(): { id: string; session: Session };
  get(id: string | undefined): Session | null;
  destroy(id: string | undefined): void;
  size(): number;
}

export function createSessionStore(clock: Clock): SessionStore {
  const sessions = new Map<string, Session>();
  const live = (s: Session, now: number) => now - s.seenAt < IDLE_MS && now - s.createdAt < MAX_AGE_MS;
  const prune = (now: number) => {
    for (const [k, s] of sessions) if (!live(s, now)) sessions.delete(k);
    // Past the cap, the least recently seen go first.
    if (sessions.size >= MAX_SESSIONS) {
      const byAge = [...sessions.entries()].sort((a, b) => a[1].seenAt - b[1].seenAt);
      for (const [k] of byAge.slice(0, sessions.size - MAX_SESSIONS + 1)) sessions.delete(k);
    }
  };
  return {
    create() {
      const now = clock.now();
      prune(now);
      const id = randomId();
      const session: Session = { csrf: randomId(), createdAt: now, seenAt: now, flash: null };
      sessions.set(digest(id), session);
      return { id, session };
    },
    get(id) {
      if (!id) return null;
      const key = digest(id);
      const s = sessions.get(key);
      const now = clock.now();
      if (!s) return null;
      if (!live(s, now)) {
        sessions.delete(key);
        return null;
      }
      s.seenAt = now;
      return s;
    },
    destroy(id) {
      if (id) sessions.delete(digest(id));
    },
    size: () => sessions.size,
  };
}

export function readCookie(req: FastifyRequest, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return undefined;
}

export function setCookie(reply: FastifyReply, name: string, value: string, opts: { secure: boolean; maxAgeS: number }): void {
  const c = `${name}=${encodeURIComponent(value)}; Path=/console; HttpOnly; SameSite=Strict; Max-Age=${opts.maxAgeS}${opts.secure ? '; Secure' : ''}`;
  const prev = reply.getHeader('set-cookie');
  reply.header('set-cookie', prev === undefined ? [c] : [...(Array.isArray(prev) ? prev : [String(prev)]), c]);
}

export const clearCookie = (reply: FastifyReply, name: string, secure: boolean) => setCookie(reply, name, '', { secure, maxAgeS: 0 });

/** A console path to return to after login: only paths under /console, never another origin. */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/console(\/[^\\]*)?$/.test(next) && !next.startsWith('//') && !next.includes('//') ? next : '/console';
}
