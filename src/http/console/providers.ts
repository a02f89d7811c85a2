import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createProvider, deleteProvider, getProvider, listProviders, updateProvider } from '../../registry/providers.js';
import { createProfile, listProfiles } from '../../registry/profiles.js';
import { GRANT_TYPES } from '../../registry/schemas.js';
import type { Ctx } from './context.js';
import { badge, facts, grantLabel, html, parseIso, table, when } from './html.js';
import { formAlert, formBody, input, one, select, toFormError, words, type FormError } from './forms.js';
import { providerForm, toInput, valuesFromForm, valuesOf, type ProviderView, type Values } from './provider-form.js';

/** System OAuth › Application Registry: providers and their OAuth entity profiles. */
export function registerProviders(c: FastifyInstance, ctx: Ctx): void {
  type Id = { Params: { id: string } };
  const crumbs: Array<[string, string]> = [['System OAuth', '/console/providers'], ['Application Registry', '/console/providers']];

  c.get('/providers', async (req, reply) => {
    const now = ctx.now();
    const items = await listProviders(ctx.deps.registry);
    const profiles = new Map((await listProfiles(ctx.s.db)).map((p) => [p.id, p]));
    const body = table({
      head: ['Name', 'Default grant type', 'Token URL', 'Client authentication', 'Client secret', 'Default profile', 'Created'],
      rows: items.map((p) => [
        html`<a href="/console/providers/${p.id}">${p.name}</a>`,
        grantLabel(p.default_grant_type),
        html`<span class="mono">${p.token_url}</span>`,
        p.client_auth_method,
        p.client_secret_set ? badge('set', 'ok') : badge('not set', 'muted'),
        profiles.get(p.default_profile_id ?? '')?.name ?? '—',
        when(parseIso(p.created_at), now),
      ]),
      empty: html`No OAuth providers yet. Select <a href="/console/providers/new">New</a> to connect to a third-party OAuth provider.`,
    });
    return ctx.page(req, reply, {
      title: 'Application Registry', nav: 'providers', crumbs: crumbs.slice(0, 1), body,
      actions: html`<a class="button" href="/console/providers/new">New</a>`,
      lead: 'The OAuth providers tokens are fetched from. Each has a default OAuth entity profile for credentials to use.',
    });
  });

  const newPage = (req: FastifyRequest, reply: FastifyReply, values: Values, error: FormError | null) =>
    ctx.page(req, reply, {
      title: 'Connect to a third-party OAuth Provider', nav: 'providers', crumbs,
      lead: 'Complete the form with the information received from the OAuth provider, select the Default Grant type, and submit.',
      body: providerForm({ action: '/console/providers', csrf: ctx.csrf(req), values, isNew: true, secretSet: false, keySet: false, error, submit: 'Submit' }),
    }, error ? 400 : 200);

  c.get('/providers/new', async (req, reply) => newPage(req, reply, {}, null));

  c.post('/providers', async (req, reply) => {
    const f = formBody(req.body);
    try {
      const p = await createProvider(ctx.deps.registry, toInput(f, true));
      ctx.flash(req, 'ok', `OAuth provider "${p.name}" created, with its default profile "${p.name} default_profile". Next: create a credential that uses it.`);
      return ctx.redirect(reply, `/console/providers/${p.id}`);
    } catch (err) {
      return newPage(req, reply, valuesFromForm(f), toFormError(err));
    }
  });

  const showPage = async (req: FastifyRequest, reply: FastifyReply, p: ProviderView, edit: { values: Values; error: FormError | null } | null, profileError: FormError | null = null) => {
    const now = ctx.now();
    const profiles = await listProfiles(ctx.s.db, p.id);
    const body = html`<div class="card">${facts([
      ['Default grant type', grantLabel(p.default_grant_type)],
      ['Token URL', html`<span class="mono">${p.token_url}</span>`],
      ['Client ID', p.client_id],
      ['Client secret', p.client_secret_set ? badge('set', 'ok') : badge('not set', 'muted')],
      ['Default profile', profiles.find((x) => x.is_default)?.name ?? '—'],
    ])}</div>
<h2 id="profiles">OAuth Entity Profiles</h2>
${table({
  head: ['Name', 'Grant type', 'Scopes', 'Default', 'Created'],
  rows: profiles.map((x) => [x.name, grantLabel(x.grant_type), x.scopes.join(' ') || '—', x.is_default ? badge('default', 'info') : '', when(parseIso(x.created_at), now)]),
  empty: 'No profiles.',
})}
<details class="card"${profileError ? html` open` : ''}><summary>Add a profile (another grant type or set of scopes)</summary>
<form method="post" action="/console/providers/${p.id}/profiles" class="stack" novalidate>${ctx.csrf(req)}
${formAlert(profileError, ['name', 'grant_type', 'scopes'])}
${input({ name: 'name', label: 'Profile name', required: true, error: profileError })}
${select({ name: 'grant_type', label: 'Grant type', value: p.default_grant_type, error: profileError, options: GRANT_TYPES.map((g) => ({ value: g, label: grantLabel(g) })) })}
${input({ name: 'scopes', label: 'Scopes', value: p.scopes.join(' '), error: profileError, hint: 'Separated by spaces.' })}
<button type="submit">Add profile</button></form></details>
<h2>Edit the provider</h2>
${providerForm({ action: `/console/providers/${p.id}`, csrf: ctx.csrf(req), values: edit?.values ?? valuesOf(p), isNew: false, secretSet: p.client_secret_set, keySet: !!p.assertion?.private_key_set, error: edit?.error ?? null, submit: 'Update' })}
<h2>Delete</h2>
<form method="post" action="/console/providers/${p.id}/delete" data-confirm="Delete the OAuth provider ${p.name} and its profiles?">${ctx.csrf(req)}
<p class="muted">A provider still used by a credential cannot be deleted.</p><button type="submit" class="danger">Delete provider</button></form>`;
    return ctx.page(req, reply, { title: p.name, nav: 'providers', crumbs, body }, edit?.error || profileError ? 400 : 200);
  };

  c.get<Id>('/providers/:id', async (req, reply) => showPage(req, reply, await getProvider(ctx.deps.registry, req.params.id), null));

  c.post<Id>('/providers/:id', async (req, reply) => {
    const f = formBody(req.body);
    const p = await getProvider(ctx.deps.registry, req.params.id);
    try {
      await updateProvider(ctx.deps.registry, p.id, toInput(f, false));
      ctx.flash(req, 'ok', `OAuth provider "${one(f, 'name') || p.name}" updated.`);
      return ctx.redirect(reply, `/console/providers/${p.id}`);
    } catch (err) {
      return showPage(req, reply, p, { values: valuesFromForm(f), error: toFormError(err) });
    }
  });

  c.post<Id>('/providers/:id/profiles', async (req, reply) => {
    const f = formBody(req.body);
    const p = await getProvider(ctx.deps.registry, req.params.id);
    try {
      const x = await createProfile(ctx.deps.registry, { provider_id: p.id, name: one(f, 'name'), grant_type: one(f, 'grant_type') || undefined, scopes: words(one(f, 'scopes')) });
      ctx.flash(req, 'ok', `Profile "${x.name}" added.`);
      return ctx.redirect(reply, `/console/providers/${p.id}#profiles`);
    } catch (err) {
      return showPage(req, reply, p, null, toFormError(err));
    }
  });

  c.post<Id>('/providers/:id/delete', async (req, reply) => {
    const p = await getProvider(ctx.deps.registry, req.params.id);
    return ctx.action(req, reply, { ok: '/console/providers', error: `/console/providers/${p.id}` }, async () => {
      await deleteProvider(ctx.deps.registry, p.id);
      return `OAuth provider "${p.name}" deleted.`;
    });
  });
}
