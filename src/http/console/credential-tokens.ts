import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { getCredential } from '../../credentials/credentials.js';
import { listTokenRows } from '../../tokens/store.js';
import type { Ctx } from './context.js';
import { errorMessage } from './context.js';
import { midSummary, type CredentialView } from './credential-form.js';
import { html, table, when, type Html } from './html.js';
import { formAlert, formBody, input, one, toFormError, type FormError } from './forms.js';

/**
 * The credential's banner, its "Get OAuth Token" related link, and its tokens (the
 * oauth_credential table, without values). Grants without a person run at once; the
 * authorization code goes to the provider (which comes back through /oauth/callback); the
 * password grant shows a login screen whose password is used once and never kept.
 */
export function statusBanner(x: CredentialView): Html {
  const tone = x.status.tokens_available ? 'ok' : x.status.last_error || x.status.needs_reauth ? 'bad' : 'info';
  return html`<div id="credential-status" class="banner ${tone}" role="status" aria-live="polite">${x.status.message}</div>`;
}

export function relatedLinks(ctx: Ctx, req: FastifyRequest, x: CredentialView): Html {
  const via = x.use_mid_server ? `through ${x.applies_to === 'all' ? 'a MID server' : `MID server ${x.mid_servers.join(' or ')}`}` : 'directly from the instance';
  const progress =
    x.grant_type === 'authorization_code'
      ? 'Opening the provider\'s authorization page…'
      : x.grant_type === 'password'
        ? 'Opening the login screen…'
        : `Requesting a token ${via}: an ECC output record (RESTProbe) is queued, the MID server calls the token endpoint and posts the answer back…`;
  return html`<h2>Related Links</h2>
<div class="card"><ul class="related">
<li><form method="post" action="/console/credentials/${x.id}/get_token" data-progress data-async data-progress-button="Requesting…">${ctx.csrf(req)}
<button type="submit" class="linkish">Get OAuth Token</button>
<p class="progress" role="status"><span class="spinner" aria-hidden="true"></span>${progress}</p></form></li>
<li><a href="/console/ecc?topic=RESTProbe">ECC Queue (RESTProbe)</a></li>
</ul></div>`;
}

export async function tokensSection(ctx: Ctx, req: FastifyRequest, x: CredentialView): Promise<Html> {
  const now = ctx.now();
  const rows = await listTokenRows(ctx.s.db, x.id);
  return html`<h2 id="tokens">OAuth tokens <span class="muted">(oauth_credential)</span></h2>
${table({
  head: ['Type', 'Expires', 'Scope', 'Issued'],
  rows: rows.map((t) => [t.token_type === 'access' ? 'Access token' : 'Refresh token', when(t.expires_at, now, { empty: 'does not expire' }), t.scope ?? '—', when(t.created_at, now)]),
  empty: 'No tokens are stored for this credential. Use the "Get OAuth Token" related link.',
})}
${rows.length
  ? html`<form method="post" action="/console/credentials/${x.id}/revoke" data-confirm="Revoke the tokens of ${x.name} at the provider and delete them?" data-progress data-progress-button="Revoking…">${ctx.csrf(req)}
<button type="submit" class="danger">Revoke tokens</button> <span class="muted">At the provider's revocation URL (via ${midSummary(x)}), then deleted here.</span></form>`
  : ''}`;
}

export function registerTokenActions(c: FastifyInstance, ctx: Ctx): void {
  type Id = { Params: { id: string } };
  const back = (id: string) => `/console/credentials/${id}`;

  c.post<Id>('/credentials/:id/get_token', async (req, reply) => {
    const x = await getCredential(ctx.deps.credentials, req.params.id);
    if (x.grant_type === 'password') return ctx.redirect(reply, `${back(x.id)}/login`);
    let result;
    try {
      result = await ctx.s.broker.getToken(x.id, {}, 'console');
      ctx.s.metrics.inc('tokenrelay_token_requests_total', { result: 'ok' });
    } catch (err) {
      ctx.s.metrics.inc('tokenrelay_token_requests_total', { result: 'error' });
      ctx.flash(req, 'error', `Get OAuth Token failed: ${errorMessage(err)}`);
      if (!(err as { status?: number }).status) req.log.error({ err: (err as Error).message }, 'console:get-token-failed');
      return ctx.redirect(reply, back(x.id));
    }
    if (result.kind === 'authorize') return ctx.redirect(reply, result.authorize_url);
    if (result.kind === 'login') return ctx.redirect(reply, `${back(x.id)}/login`);
    ctx.flash(req, 'ok', 'Get OAuth Token: the token was received and stored.');
    return ctx.redirect(reply, back(x.id));
  });

  const loginPage = (req: FastifyRequest, reply: FastifyReply, x: CredentialView, username: string, error: FormError | null) =>
    ctx.page(req, reply, {
      title: 'Log in to get an OAuth token', nav: 'credentials',
      crumbs: [['Credentials', '/console/credentials'], [x.name, back(x.id)]],
      lead: html`For "${x.name}" (Resource Owner Password Credentials). The username and password are sent once to the provider's token endpoint (via ${midSummary(x)}) and are not stored.`,
      body: html`<form method="post" action="${back(x.id)}/login" class="stack card" novalidate data-progress data-progress-button="Logging in…">${ctx.csrf(req)}
${formAlert(error, ['username', 'password'])}
${input({ name: 'username', label: 'Username', value: username, required: true, autocomplete: 'username', error })}
${input({ name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'current-password', error })}
<button type="submit">Get OAuth Token</button>
<p class="progress" role="status"><span class="spinner" aria-hidden="true"></span>Requesting the token…</p>
</form>`,
    }, error ? 400 : 200);

  c.get<Id>('/credentials/:id/login', async (req, reply) => {
    const x = await getCredential(ctx.deps.credentials, req.params.id);
    if (x.grant_type !== 'password') return ctx.redirect(reply, back(x.id));
    return loginPage(req, reply, x, '', null);
  });

  c.post<Id>('/credentials/:id/login', async (req, reply) => {
    const x = await getCredential(ctx.deps.credentials, req.params.id);
    const f = formBody(req.body);
    const username = one(f, 'username');
    const password = typeof f.password === 'string' ? f.password : '';
    if (!username || !password) {
      return loginPage(req, reply, x, username, { field: username ? 'password' : 'username', message: `Enter the ${username ? 'password' : 'username'}.`, code: 'invalid_request' });
    }
    try {
      await ctx.s.broker.getToken(x.id, { username, password }, 'console');
      ctx.s.metrics.inc('tokenrelay_token_requests_total', { result: 'ok' });
    } catch (err) {
      ctx.s.metrics.inc('tokenrelay_token_requests_total', { result: 'error' });
      const e = toFormError(err);
      return loginPage(req, reply, x, username, { ...e, field: e.field === 'username' || e.field === 'password' ? e.field : null });
    }
    ctx.flash(req, 'ok', 'Get OAuth Token: the token was received and stored. The password was not kept.');
    return ctx.redirect(reply, back(x.id));
  });

  c.post<Id>('/credentials/:id/revoke', async (req, reply) => {
    const x = await getCredential(ctx.deps.credentials, req.params.id);
    return ctx.action(req, reply, back(x.id), async () => {
      const { revokedAtProvider } = await ctx.s.broker.revoke(x.id);
      return revokedAtProvider ? 'Tokens revoked at the provider and deleted.' : 'Tokens deleted (the provider has no revocation URL, so they were not revoked there).';
    });
  });
}
