import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createCredential, deleteCredential, getCredential, listCredentials, updateCredential } from '../../credentials/credentials.js';
import { getProfileRow } from '../../registry/profiles.js';
import { listTokenRows } from '../../tokens/store.js';
import type { Ctx } from './context.js';
import { badge, facts, grantLabel, html, parseIso, table, when, type Html } from './html.js';
import { formBody, toFormError, type FormError } from './forms.js';
import { credentialForm, emptyValues, midSummary, pickerData, toInput, valuesFromForm, type CredentialView, type CredValues } from './credential-form.js';
import { relatedLinks, statusBanner, tokensSection } from './credential-tokens.js';

/** Connections & Credentials › Credentials: list, "OAuth 2.0 Credentials" form, the credential record. */

export function registerCredentials(c: FastifyInstance, ctx: Ctx): void {
  type Id = { Params: { id: string } };
  const crumbs: Array<[string, string]> = [['Connections & Credentials', '/console/credentials'], ['Credentials', '/console/credentials']];
  const picker = () => pickerData(ctx.s.db, ctx.now(), ctx.s.config.midDownAfterMs);

  c.get('/credentials', async (req, reply) => {
    const now = ctx.now();
    const items = await listCredentials(ctx.deps.credentials);
    const body = table({
      head: ['Name', 'Grant type', 'Connects via', 'Token', 'Access token expires', 'Created'],
      rows: items.map((x) => [
        html`<a href="/console/credentials/${x.id}">${x.name}</a>`,
        grantLabel(x.grant_type),
        midSummary(x),
        x.status.last_error && !x.status.tokens_available ? badge('failed', 'bad') : x.status.tokens_available ? badge('available', 'ok') : badge('not available', 'muted'),
        when(parseIso(x.status.access_token_expires_at), now),
        when(parseIso(x.created_at), now),
      ]),
      empty: html`No credentials yet. Select <a href="/console/credentials/new">New</a> and choose "OAuth 2.0 Credentials".`,
    });
    return ctx.page(req, reply, {
      title: 'Credentials', nav: 'credentials', crumbs: crumbs.slice(0, 1), body,
      actions: html`<a class="button" href="/console/credentials/new">New</a>`,
      lead: 'OAuth 2.0 credentials: which provider profile to use, and whether to reach its token endpoint through MID servers.',
    });
  });

  const newPage = async (req: FastifyRequest, reply: FastifyReply, values: CredValues, error: FormError | null) =>
    ctx.page(req, reply, {
      title: 'OAuth 2.0 Credentials', nav: 'credentials', crumbs,
      lead: 'Enter a name, select the OAuth Entity Profile, and choose how the token endpoint is reached.',
      body: credentialForm({ action: '/console/credentials', csrf: ctx.csrf(req), values, data: await picker(), error, submit: 'Submit' }),
    }, error ? 400 : 200);

  c.get<{ Querystring: { profile_id?: string } }>('/credentials/new', async (req, reply) =>
    newPage(req, reply, { ...emptyValues(), profile_id: req.query.profile_id ?? '' }, null));

  c.post('/credentials', async (req, reply) => {
    const v = valuesFromForm(formBody(req.body));
    try {
      const x = await createCredential(ctx.deps.credentials, toInput(v));
      ctx.flash(req, 'ok', `Credential "${x.name}" created.`);
      return ctx.redirect(reply, `/console/credentials/${x.id}`);
    } catch (err) {
      return newPage(req, reply, v, toFormError(err));
    }
  });

  const showPage = async (req: FastifyRequest, reply: FastifyReply, x: CredentialView, edit: { values: CredValues; error: FormError | null } | null) => {
    const now = ctx.now();
    const profile = await getProfileRow(ctx.s.db, x.profile_id);
    const hasRefresh = (await listTokenRows(ctx.s.db, x.id)).some((t) => t.token_type === 'refresh');
    const values: CredValues = edit?.values ?? { name: x.name, profile_id: x.profile_id, use_mid_server: x.use_mid_server, applies_to: x.applies_to as 'all' | 'specific', mid_servers: x.mid_servers };
    const body: Html = html`${statusBanner(x)}
<div class="card">${facts([
  ['OAuth Entity Profile', html`<a href="/console/providers/${profile.provider_id}">${profile.name}</a>`],
  ['Grant type', grantLabel(x.grant_type)],
  ['Connect to Auth Server via MID Server', x.use_mid_server ? 'yes' : 'no'],
  ['Applies to', x.use_mid_server ? (x.applies_to === 'all' ? 'All MID Servers' : html`Specific MID Servers: ${x.mid_servers.join(', ')}`) : '—'],
  ['Access token expires', when(parseIso(x.status.access_token_expires_at), now, { empty: 'no access token' })],
  ['Refresh token expires', hasRefresh ? when(parseIso(x.status.refresh_token_expires_at), now, { empty: 'does not expire' }) : html`<span class="muted">no refresh token</span>`],
])}</div>
${relatedLinks(ctx, req, x)}
${await tokensSection(ctx, req, x)}
<h2>Edit the credential</h2>
${credentialForm({ action: `/console/credentials/${x.id}`, csrf: ctx.csrf(req), values, data: await picker(), error: edit?.error ?? null, submit: 'Update' })}
<h2>Delete</h2>
<form method="post" action="/console/credentials/${x.id}/delete" data-confirm="Delete the credential ${x.name} and its stored tokens?">${ctx.csrf(req)}
<p class="muted">Deletes the stored tokens too (use "Revoke tokens" first to revoke them at the provider).</p><button type="submit" class="danger">Delete credential</button></form>`;
    return ctx.page(req, reply, { title: x.name, nav: 'credentials', crumbs, body }, edit?.error ? 400 : 200);
  };

  c.get<Id>('/credentials/:id', async (req, reply) => showPage(req, reply, await getCredential(ctx.deps.credentials, req.params.id), null));

  c.post<Id>('/credentials/:id', async (req, reply) => {
    const x = await getCredential(ctx.deps.credentials, req.params.id);
    const v = valuesFromForm(formBody(req.body));
    try {
      await updateCredential(ctx.deps.credentials, x.id, toInput(v));
      ctx.flash(req, 'ok', `Credential "${v.name || x.name}" updated.`);
      return ctx.redirect(reply, `/console/credentials/${x.id}`);
    } catch (err) {
      return showPage(req, reply, x, { values: v, error: toFormError(err) });
    }
  });

  c.post<Id>('/credentials/:id/delete', async (req, reply) => {
    const x = await getCredential(ctx.deps.credentials, req.params.id);
    return ctx.action(req, reply, { ok: '/console/credentials', error: `/console/credentials/${x.id}` }, async () => {
      await deleteCredential(ctx.deps.credentials, x.id);
      return `Credential "${x.name}" deleted.`;
    });
  });
}
