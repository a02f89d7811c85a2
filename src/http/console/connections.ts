import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createConnection, deleteConnection, getConnectionRow, listConnections, toView } from '../../rest-step/connections.js';
import { listCredentials } from '../../credentials/credentials.js';
import { listMids } from '../../mid-servers/registry.js';
import type { Ctx } from './context.js';
import { facts, html, parseIso, table, when } from './html.js';
import { checkbox, checked, formAlert, formBody, input, many, one, select, toFormError, type FormBody, type FormError } from './forms.js';
import { registerRestTest, testPanel, type TestResult } from './rest-test.js';

/** Connections & Credentials › Connections: where a REST step goes, with which credential, through which MID servers. */
const FIELDS = ['name', 'base_url', 'credential_id', 'use_mid_server', 'mid_servers', 'timeout_ms', 'retry_policy'];

function toInput(f: FormBody): Record<string, unknown> {
  const num = (k: string, d: number) => (one(f, k) === '' ? d : /^\d+$/.test(one(f, k)) ? Number(one(f, k)) : one(f, k));
  const strategy = one(f, 'retry_policy.strategy') || 'none';
  return {
    name: one(f, 'name'),
    base_url: one(f, 'base_url'),
    credential_id: one(f, 'credential_id') || null,
    use_mid_server: checked(f, 'use_mid_server'),
    mid_servers: checked(f, 'use_mid_server') ? many(f, 'mid_servers') : [],
    timeout_ms: num('timeout_ms', 30_000),
    retry_policy: { strategy, count: strategy === 'none' ? 0 : num('retry_policy.count', 3), interval_ms: num('retry_policy.interval_ms', 1000) },
  };
}

export function registerConnections(c: FastifyInstance, ctx: Ctx): void {
  type Id = { Params: { id: string } };
  const crumbs: Array<[string, string]> = [['Connections & Credentials', '/console/connections'], ['Connections', '/console/connections']];

  c.get('/connections', async (req, reply) => {
    const now = ctx.now();
    const creds = new Map((await listCredentials(ctx.deps.credentials)).map((x) => [x.id, x.name]));
    const body = table({
      head: ['Name', 'Base URL', 'Credential', 'Connects via', 'Timeout', 'Retries', 'Created'],
      rows: (await listConnections(ctx.s.db)).map((x) => [
        html`<a href="/console/connections/${x.id}">${x.name}</a>`,
        html`<span class="mono">${x.base_url}</span>`,
        x.credential_id ? html`<a href="/console/credentials/${x.credential_id}">${creds.get(x.credential_id) ?? x.credential_id}</a>` : 'none',
        !x.use_mid_server ? 'direct' : x.mid_servers.length ? x.mid_servers.join(', ') : 'any MID server',
        `${x.timeout_ms / 1000} s`,
        x.retry_policy.strategy === 'none' ? 'none' : `${x.retry_policy.strategy} ×${x.retry_policy.count}`,
        when(parseIso(x.created_at), now),
      ]),
      empty: html`No connections yet. <a href="/console/connections/new">Create one</a> to call an API with a credential's token.`,
    });
    return ctx.page(req, reply, {
      title: 'Connections', nav: 'connections', crumbs: crumbs.slice(0, 1), body,
      actions: html`<a class="button" href="/console/connections/new">New</a>`,
      lead: 'The REST step\'s connections: a base URL, the credential whose bearer token is attached, and the MID servers that make the call.',
    });
  });

  const newPage = async (req: FastifyRequest, reply: FastifyReply, f: FormBody, error: FormError | null) => {
    const creds = await listCredentials(ctx.deps.credentials);
    const mids = await listMids(ctx.s.db);
    const picked = many(f, 'mid_servers');
    const body = html`<form method="post" action="/console/connections" class="stack" novalidate>${ctx.csrf(req)}
${formAlert(error, FIELDS)}
<fieldset><legend>Connection</legend>
${input({ name: 'name', label: 'Name', value: one(f, 'name'), required: true, error, hint: 'Used by the REST step, e.g. crm.' })}
${input({ name: 'base_url', label: 'Base URL', value: one(f, 'base_url'), type: 'url', required: true, error, placeholder: 'https://crm.corp.internal/api' })}
${select({ name: 'credential_id', label: 'Credential', value: one(f, 'credential_id'), error, options: [{ value: '', label: '(none: no Authorization header)' }, ...creds.map((x) => ({ value: x.id, label: x.name }))] })}
${checkbox({ name: 'use_mid_server', label: 'Call through a MID Server', checked: error ? checked(f, 'use_mid_server') : true, error })}
<div class="mid-only" id="f-mid_servers" role="group" aria-labelledby="conn-mids"><p id="conn-mids" class="field"><strong>MID Servers</strong> <span class="muted">— none selected = any eligible one</span></p>
<div class="picker">${mids.length ? mids.map((m) => checkbox({ name: 'mid_servers', id: `f-mid-${m.name}`, label: m.name, value: m.name, checked: picked.includes(m.name) })) : html`<p class="muted">No MID server enrolled.</p>`}</div>
${error?.field?.startsWith('mid_servers') ? html`<p class="field-error">${error.message}</p>` : ''}</div>
${input({ name: 'timeout_ms', label: 'Timeout (ms)', value: one(f, 'timeout_ms') || '30000', type: 'number', error })}
</fieldset>
<fieldset><legend>Retry policy</legend>
${select({ name: 'retry_policy.strategy', label: 'Strategy', value: one(f, 'retry_policy.strategy') || 'none', error, options: ['none', 'exponential', 'fixed', 'retry_after'].map((s) => ({ value: s, label: s })) })}
${input({ name: 'retry_policy.count', label: 'Retries', value: one(f, 'retry_policy.count') || '3', type: 'number', error })}
${input({ name: 'retry_policy.interval_ms', label: 'Interval (ms)', value: one(f, 'retry_policy.interval_ms') || '1000', type: 'number', error })}
</fieldset>
<button type="submit">Submit</button></form>`;
    return ctx.page(req, reply, { title: 'New connection', nav: 'connections', crumbs, body }, error ? 400 : 200);
  };

  c.get('/connections/new', async (req, reply) => newPage(req, reply, {}, null));

  c.post('/connections', async (req, reply) => {
    const f = formBody(req.body);
    try {
      const x = await createConnection(ctx.s, toInput(f));
      ctx.flash(req, 'ok', `Connection "${x.name}" created. Try it with the Test panel.`);
      return ctx.redirect(reply, `/console/connections/${x.id}`);
    } catch (err) {
      return newPage(req, reply, f, toFormError(err));
    }
  });

  c.get<Id>('/connections/:id', async (req, reply) => {
    const x = toView(await getConnectionRow(ctx.s.db, req.params.id));
    return ctx.page(req, reply, { title: x.name, nav: 'connections', crumbs, body: await connectionBody(ctx, req, x, null) });
  });

  c.post<Id>('/connections/:id/delete', async (req, reply) => {
    const x = await getConnectionRow(ctx.s.db, req.params.id);
    return ctx.action(req, reply, { ok: '/console/connections', error: `/console/connections/${x.id}` }, async () => {
      await deleteConnection(ctx.s.db, x.id);
      return `Connection "${x.name}" deleted.`;
    });
  });

  registerRestTest(c, ctx, (req, x, result) => connectionBody(ctx, req, x, result));
}

export type ConnectionView = ReturnType<typeof toView>;

async function connectionBody(ctx: Ctx, req: FastifyRequest, x: ConnectionView, result: TestResult | null) {
  const cred = x.credential_id ? (await listCredentials(ctx.deps.credentials)).find((y) => y.id === x.credential_id) : undefined;
  return html`<div class="card">${facts([
    ['Base URL', html`<span class="mono">${x.base_url}</span>`],
    ['Credential', cred ? html`<a href="/console/credentials/${cred.id}">${cred.name}</a>` : 'none'],
    ['Connects via', !x.use_mid_server ? 'the instance (direct)' : x.mid_servers.length ? `MID server ${x.mid_servers.join(', ')}` : 'any eligible MID server'],
    ['Timeout', `${x.timeout_ms} ms`],
    ['Retry policy', x.retry_policy.strategy === 'none' ? 'none' : `${x.retry_policy.strategy}, ${x.retry_policy.count} retries, ${x.retry_policy.interval_ms} ms`],
  ])}</div>
${await testPanel(ctx, req, x, result)}
<h2>Delete</h2><form method="post" action="/console/connections/${x.id}/delete" data-confirm="Delete the connection ${x.name}?">${ctx.csrf(req)}<button type="submit" class="danger">Delete connection</button></form>`;
}
