import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Services } from '../services.js';
import { esc, page, resultPage } from '../pages.js';
import { isAppError } from '../../core/errors.js';
import { getCredential, getCredentialRow } from '../../credentials/credentials.js';
import { createState } from '../../tokens/states.js';

/**
 * Browser-facing pages of the "Get OAuth Token" link:
 * - GET /oauth/callback: where the provider redirects after the user authorized (or refused);
 * - GET/POST /oauth/login/{ticket}: the password grant's login screen, reached through the
 *   single-use login_url that get_token hands out.
 * Failures are pages that say what happened (HTTP 400), never a bare 500.
 */
export function registerOAuthPages(app: FastifyInstance, s: Services): void {
  const deps = { db: s.db, clock: s.clock, midDownAfterMs: s.config.midDownAfterMs };
  const html = 'text/html; charset=utf-8';
  const message = (err: unknown) => (isAppError(err) ? err.message : 'Internal error; the instance log has the details.');

  app.get('/oauth/callback', async (req, reply) => {
    const url = new URL(req.url, s.config.publicUrl);
    try {
      const { credentialId } = await s.broker.completeAuthorization(url);
      const c = await getCredential(deps, credentialId);
      return reply.type(html).send(resultPage(true, `Token stored for "${c.name}"`, c.status.message, credentialLink(c.id)));
    } catch (err) {
      if (!isAppError(err) || err.status >= 500) req.log.error({ err: (err as Error).message }, 'oauth:callback-failed');
      return reply.status(400).type(html).send(resultPage(false, 'The authorization did not complete', message(err)));
    }
  });

  app.get<{ Params: { ticket: string } }>('/oauth/login/:ticket', async (req, reply) => {
    // Only shows the form; the ticket is checked (and used up) when the form is posted.
    const row = await s.db.selectFrom('oauth_states').select(['credential_id', 'expires_at', 'used_at']).where('kind', '=', 'password').where('state_hash', '=', hashTicket(req.params.ticket)).executeTakeFirst();
    if (!row || row.used_at !== null || row.expires_at <= s.clock.now()) {
      return reply.status(400).type(html).send(resultPage(false, 'This login form has expired', "Start again with the 'Get OAuth Token' link."));
    }
    const cred = await getCredentialRow(s.db, row.credential_id);
    return reply.type(html).send(loginForm(cred.name, req.params.ticket, null));
  });

  app.post<{ Params: { ticket: string }; Body: Record<string, string> }>('/oauth/login/:ticket', async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, string>;
    const username = String(body.username ?? '');
    const password = String(body.password ?? '');
    let credentialId: string | null = null;
    try {
      if (!username || !password) {
        // Not a try: give the same ticket back with the reason.
        return reply.status(400).type(html).send(loginForm('', req.params.ticket, 'Enter both the username and the password.'));
      }
      ({ credentialId } = await s.broker.completePasswordLogin(req.params.ticket, { username, password }));
      const c = await getCredential(deps, credentialId);
      return reply.type(html).send(resultPage(true, `Token stored for "${c.name}"`, c.status.message, credentialLink(c.id)));
    } catch (err) {
      // A refused password should not end the session: hand out a fresh ticket with the reason.
      const row = await s.db.selectFrom('oauth_states').select(['credential_id', 'requested_by']).where('state_hash', '=', hashTicket(req.params.ticket)).executeTakeFirst();
      if (row && isAppError(err) && err.code !== 'invalid_request') {
        const { state } = await createState(s, { kind: 'password', credentialId: row.credential_id, requestedBy: row.requested_by, ttlMs: s.config.stateTtlMs });
        const cred = await getCredentialRow(s.db, row.credential_id);
        return reply.status(400).type(html).send(loginForm(cred.name, state, message(err)));
      }
      return reply.status(400).type(html).send(resultPage(false, 'The login did not complete', message(err)));
    }
  });

  // Form posts from the login screen.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
}

const hashTicket = (t: string) => createHash('sha256').update(t).digest('hex');

const credentialLink = (id: string) => `<p><a href="/console/credentials/${esc(id)}">Back to the credential in the console</a> (API: <code>GET /api/v1/credentials/${esc(id)}</code>)</p>`;

function loginForm(credentialName: string, ticket: string, error: string | null): string {
  return page(
    'Log in',
    `<h1>Log in to get an OAuth token${credentialName ? ` for "${esc(credentialName)}"` : ''}</h1>
<p>The username and password are sent once to the provider's token endpoint (through the credential's MID server when it has one) and are not stored.</p>
${error ? `<p class="err" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/oauth/login/${esc(ticket)}">
<label for="username">Username</label><input id="username" name="username" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Get OAuth Token</button>
</form>`,
  );
}
