import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { getRecord, listRecords, midNameOf, toView, type EccRecord } from '../../ecc/index.js';
import { notFound } from '../../core/errors.js';
import type { Ctx } from './context.js';
import { badge, facts, html, table, when, type Html, type Tone } from './html.js';
import { input, select } from './forms.js';

/**
 * MID Server › ECC Queue: the records, newest first, filtered and paged; one record with its
 * pair. Payloads stay encrypted: the page says how big they are, never what they hold.
 */
const PAGE = 50;
const STATES = ['ready', 'processing', 'processed', 'error'] as const;
const TONES: Record<string, Tone> = { ready: 'info', processing: 'warn', processed: 'ok', error: 'bad' };
export const stateBadge = (s: string): Html => badge(s, TONES[s] ?? 'muted');

const Filters = z.object({
  queue: z.enum(['output', 'input']).optional().catch(undefined),
  topic: z.string().max(200).optional().catch(undefined),
  state: z.enum(STATES).optional().catch(undefined),
  agent: z.string().max(200).optional().catch(undefined),
  before: z.string().max(64).optional().catch(undefined),
});

export function registerEcc(c: FastifyInstance, ctx: Ctx): void {
  const crumbs: Array<[string, string]> = [['MID Server', '/console/mid-servers'], ['ECC Queue', '/console/ecc']];

  c.get('/ecc', async (req, reply) => {
    const raw = Filters.parse(req.query ?? {});
    const f = Object.fromEntries(Object.entries(raw).filter(([, v]) => v)) as z.infer<typeof Filters>;
    const now = ctx.now();
    const rows = await listRecords(ctx.s.db, { ...f, limit: PAGE + 1 });
    const more = rows.length > PAGE;
    const shown = rows.slice(0, PAGE);
    const qs = (extra: Record<string, string>) => new URLSearchParams({ ...(f.queue ? { queue: f.queue } : {}), ...(f.topic ? { topic: f.topic } : {}), ...(f.state ? { state: f.state } : {}), ...(f.agent ? { agent: f.agent } : {}), ...extra }).toString();
    const body = html`<form method="get" action="/console/ecc" class="filters" role="search" aria-label="Filter the ECC queue">
${select({ name: 'queue', label: 'Queue', value: f.queue ?? '', options: [{ value: '', label: 'any' }, { value: 'output', label: 'output' }, { value: 'input', label: 'input' }] })}
${input({ name: 'topic', label: 'Topic', value: f.topic ?? '', placeholder: 'RESTProbe' })}
${select({ name: 'state', label: 'State', value: f.state ?? '', options: [{ value: '', label: 'any' }, ...STATES.map((s) => ({ value: s, label: s }))] })}
${input({ name: 'agent', label: 'Agent', value: f.agent ?? '', placeholder: 'mid.server.dc1' })}
<button type="submit">Filter</button> <a href="/console/ecc">Clear</a>
</form>
${table({
  head: ['Created', 'Queue', 'Topic', 'Name', 'Source', 'Agent', 'State', 'Response to', 'Error'],
  rows: shown.map((r) => [
    html`<a href="/console/ecc/${r.id}" aria-label="${r.queue} record ${r.id}">${when(r.created_at, now)}</a>`,
    r.queue,
    r.topic,
    r.name,
    html`<span class="mono">${r.source}</span>`,
    r.agent,
    stateBadge(r.state),
    r.response_to ? html`<a href="/console/ecc/${r.response_to}" class="mono">${r.response_to.slice(-12)}</a>` : '—',
    r.error_string ?? '',
  ]),
  empty: Object.keys(f).length ? 'No record matches these filters.' : 'The ECC queue is empty: records appear when a request goes through a MID server.',
})}
<nav class="pager" aria-label="Pages">${f.before ? html`<a href="/console/ecc?${qs({})}">Newest</a>` : ''}${more ? html`<a href="/console/ecc?${qs({ before: shown[shown.length - 1]!.id })}">Older records →</a>` : ''}</nav>`;
    return ctx.page(req, reply, {
      title: 'ECC Queue', nav: 'ecc', crumbs: crumbs.slice(0, 1), body,
      lead: 'Output records go from the instance to a MID server; the MID server answers each with an input record (response_to). Newest first.',
    });
  });

  c.get<{ Params: { id: string } }>('/ecc/:id', async (req, reply) => {
    const r = await getRecord(ctx.s.db, req.params.id);
    if (!r) throw notFound('ECC record', req.params.id);
    const v = toView(r);
    const now = ctx.now();
    const link = (x: EccRecord) => html`<a href="/console/ecc/${x.id}">${x.queue} record ${x.id}</a> ${stateBadge(x.state)}`;
    let pair: Html;
    if (r.queue === 'output') {
      const inputs = await listRecords(ctx.s.db, { response_to: r.id, limit: 10 });
      pair = inputs.length ? html`${inputs.map((x) => html`<p>Answered by ${link(x)}</p>`)}` : html`<p class="muted">No input record answers it yet.</p>`;
    } else {
      const out = r.response_to ? await getRecord(ctx.s.db, r.response_to) : undefined;
      pair = out ? html`<p>Answers ${link(out)}</p>` : html`<p class="muted">${r.response_to ? `The output record ${r.response_to} is gone (retention).` : 'No output record.'}</p>`;
    }
    const mid = midNameOf(r.agent);
    const body = html`<div class="card">${facts([
      ['Queue', v.queue],
      ['Topic', v.topic],
      ['Name', v.name],
      ['Source', html`<span class="mono">${v.source}</span>`],
      ['Agent', mid !== r.agent ? html`<a href="/console/mid-servers">${v.agent}</a>` : v.agent],
      ['State', stateBadge(v.state)],
      ['Priority', String(v.priority)],
      ['Attempts', String(v.attempts)],
      ['Response to', v.response_to ? html`<a href="/console/ecc/${v.response_to}">${v.response_to}</a>` : null],
      ['Error string', v.error_string ? html`<span class="field-error">${v.error_string}</span>` : null],
      ['Payload', html`encrypted, ${v.payload_bytes} bytes <span class="muted">(JWE to the ${r.queue === 'output' ? 'MID server' : 'instance'}'s key; never decrypted here)</span>`],
      ['Created', when(r.created_at, now)],
      ['Processed', when(r.processed_at, now, { empty: 'not yet' })],
    ])}</div>
<h2>${r.queue === 'output' ? 'Its input record' : 'Its output record'}</h2><div class="card">${pair}</div>`;
    return ctx.page(req, reply, { title: `ECC ${r.queue} record`, nav: 'ecc', crumbs, body, lead: html`<span class="mono">${r.id}</span>` });
  });
}
