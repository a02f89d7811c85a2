import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { deleteMid, listMids, requestRekey, requireMid, setPaused, setValidated, toView } from '../../mid-servers/registry.js';
import { createEnrollmentKey } from '../../mid-servers/enrollment.js';
import { agentName, countOpenByAgent } from '../../ecc/index.js';
import { EnrollRequest } from '../../core/wire.js';
import type { Ctx } from './context.js';
import { absTime, badge, html, parseIso, table, when, type Html } from './html.js';
import { formAlert, formBody, input, one, type FormError } from './forms.js';

/**
 * MID Server › Servers: the fleet with everything an operator checks (status, validation,
 * pause, capabilities, host, version, heartbeat, queue depth), its buttons, and enrollment
 * keys shown once with the exact command to run inside the private network.
 */
const shellArg = (s: string) => (/^[A-Za-z0-9_./~:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export function registerMidServers(c: FastifyInstance, ctx: Ctx): void {
  type Name = { Params: { name: string } };

  const button = (req: FastifyRequest, name: string, action: string, label: string, opts: { danger?: boolean; confirm?: string } = {}) =>
    html`<form method="post" action="/console/mid-servers/${encodeURIComponent(name)}/${action}"${opts.confirm ? html` data-confirm="${opts.confirm}"` : ''}>${ctx.csrf(req)}<button type="submit" class="small ${opts.danger ? 'danger' : 'secondary'}" aria-label="${label} ${name}">${label}</button></form>`;

  const page = async (req: FastifyRequest, reply: FastifyReply, extra: { enrolled?: Html; values?: Record<string, string>; error?: FormError | null } = {}) => {
    const now = ctx.now();
    const counts = await countOpenByAgent(ctx.s.db);
    const mids = (await listMids(ctx.s.db)).map((m) => toView(m, now, ctx.s.config.midDownAfterMs, counts.get(agentName(m.name))));
    const e = extra.error ?? null;
    const list = table({
      head: ['Name', 'Status', 'Validated', 'Paused', 'Capabilities', 'Host', 'Version', 'Last heartbeat', 'Pending', 'Processing', 'Actions'],
      rows: mids.map((m) => [
        html`<strong>${m.name}</strong>${m.rekey_pending ? html`<br>${badge('rekey pending', 'info')}` : ''}`,
        m.status === 'up' ? badge('up', 'ok') : badge('down', 'bad'),
        m.validated ? badge('validated', 'ok') : badge('not validated', 'warn'),
        m.paused ? badge('paused', 'warn') : 'no',
        m.capabilities.join(', ') || '—',
        m.host ?? '—',
        m.version ?? '—',
        when(parseIso(m.last_heartbeat_at), now, { empty: 'never' }),
        html`<a href="/console/ecc?queue=output&amp;state=ready&amp;agent=${agentName(m.name)}">${m.pending_jobs}</a>`,
        html`<a href="/console/ecc?queue=output&amp;state=processing&amp;agent=${agentName(m.name)}">${m.processing_jobs}</a>`,
        html`<div class="actions">
${m.validated ? button(req, m.name, 'invalidate', 'Invalidate', { danger: true, confirm: `Invalidate ${m.name}? Its open records end in error and its results are refused.` }) : button(req, m.name, 'validate', 'Validate')}
${m.validated ? (m.paused ? button(req, m.name, 'resume', 'Resume') : button(req, m.name, 'pause', 'Pause')) : ''}
${button(req, m.name, 'rekey', 'Rekey')}
${button(req, m.name, 'delete', 'Delete', { danger: true, confirm: `Delete ${m.name}? It must be enrolled again to come back.` })}</div>`,
      ]),
      empty: 'No MID server is enrolled yet. Create an enrollment key below and run the command it shows inside the private network.',
    });
    const body = html`${extra.enrolled ?? ''}${list}
<div class="card"><h2>Add a MID server</h2>
<p class="muted">Creates a single-use enrollment key (valid ${Math.round(ctx.s.config.enrollmentKeyTtlMs / 3600_000)} h) and the command to run on a host inside the private network. The new MID server starts unvalidated: validate it here once it shows up.</p>
<form method="post" action="/console/mid-servers/enroll" class="stack" novalidate>${ctx.csrf(req)}
${formAlert(e, ['name', 'data_dir'])}
${input({ name: 'name', label: 'MID server name', value: extra.values?.name ?? '', required: true, error: e, hint: 'Letters, digits, "_", "." and "-", e.g. dc1.' })}
${input({ name: 'data_dir', label: 'Data dir on that host', value: extra.values?.data_dir ?? '', error: e, placeholder: './mid-<name>', hint: 'Where the MID server keeps its identity (private keys, mode 0600).' })}
<button type="submit">Create enrollment key</button></form></div>`;
    return ctx.page(req, reply, {
      title: 'MID Servers', nav: 'mid-servers', crumbs: [['MID Server', '/console/mid-servers']], body,
      actions: html`<a class="button secondary" href="/console/mid-servers">Refresh</a>`,
      lead: `A MID server is up while its heartbeats arrive (down after ${ctx.s.config.midDownAfterMs / 1000} s of silence). Only validated MID servers get work.`,
    }, e ? 400 : 200);
  };

  c.get('/mid-servers', async (req, reply) => page(req, reply));

  c.post('/mid-servers/enroll', async (req, reply) => {
    const f = formBody(req.body);
    const values = { name: one(f, 'name'), data_dir: one(f, 'data_dir') };
    const bad = (field: string, message: string) => page(req, reply, { values, error: { field, message, code: 'invalid_request' } });
    const parsed = EnrollRequest.shape.name.safeParse(values.name);
    if (!values.name) return bad('name', 'Field "name" is required: the MID server\'s name, e.g. dc1.');
    if (!parsed.success) return bad('name', `Field "name": ${parsed.error.issues[0]?.message ?? 'invalid'}.`);
    if ((await listMids(ctx.s.db)).some((m) => m.name === values.name)) return bad('name', `Field "name": a MID server named "${values.name}" is already enrolled; choose another name.`);
    const { key, expiresAt } = await createEnrollmentKey(ctx.s, ctx.s.config.enrollmentKeyTtlMs);
    req.log.info({ mid: values.name }, 'console:enrollment-key-created');
    const command = `npx tokenrelay mid --instance ${ctx.s.config.publicUrl} --name ${values.name} --enroll ${key} --data ${shellArg(values.data_dir || `./mid-${values.name}`)}`;
    const enrolled = html`<div class="card" id="enrollment"><h2>Enrollment key for ${values.name}</h2>
<p>Run this on a host inside the private network (from a checkout of tokenrelay, after <code>npm ci</code>). The key works once and expires ${when(expiresAt, ctx.now())}; it is shown only now.</p>
<div class="command"><pre id="enroll-command" aria-label="Command to run">${command}</pre><button type="button" class="secondary" data-copy="#enroll-command" hidden>Copy</button></div>
<p class="muted">Expires at ${absTime(expiresAt)}. Then select <strong>Refresh</strong>: "${values.name}" appears here, up but not validated — select <strong>Validate</strong>.</p></div>`;
    return page(req, reply, { enrolled });
  });

  const act = (action: string, run: (name: string) => Promise<unknown>, done: (name: string) => string) =>
    c.post<Name>(`/mid-servers/:name/${action}`, async (req, reply) => {
      const m = await requireMid(ctx.s.db, req.params.name);
      return ctx.action(req, reply, '/console/mid-servers', async () => {
        await run(m.name);
        return done(m.name);
      });
    });
  act('validate', async (n) => {
    await setValidated(ctx.deps.mids, n, true);
    ctx.s.wakeups.wakeAgent(agentName(n));
  }, (n) => `MID server ${n} is validated: it gets work now.`);
  act('invalidate', (n) => setValidated(ctx.deps.mids, n, false), (n) => `MID server ${n} is invalidated: its open records ended in error and its results are refused.`);
  act('pause', (n) => setPaused(ctx.deps.mids, n, true), (n) => `MID server ${n} is paused: it gets no new work; its queued records move to other MID servers.`);
  act('resume', (n) => setPaused(ctx.deps.mids, n, false), (n) => `MID server ${n} is resumed.`);
  act('rekey', (n) => requestRekey(ctx.deps.mids, n), (n) => `MID server ${n} will make new key pairs at its next heartbeat.`);
  act('delete', (n) => deleteMid(ctx.deps.mids, n), (n) => `MID server ${n} deleted.`);
}
