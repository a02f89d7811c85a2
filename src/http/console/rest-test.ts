import type { FastifyInstance, FastifyRequest } from 'fastify';
import { executeRestStep, listExecutions, type RestStepResult } from '../../rest-step/rest-step.js';
import { getConnectionRow, toView } from '../../rest-step/connections.js';
import type { Ctx } from './context.js';
import { badge, facts, html, parseIso, table, when, type Html } from './html.js';
import { formAlert, formBody, input, one, pairs, select, textarea, toFormError, type FormError } from './forms.js';

/**
 * The REST step's "Test" panel on a connection: one request through the same executeRestStep
 * the API uses (token attached, MID server, retries, execution record), and its answer:
 * status, headers and body. The Authorization header it sends is never shown.
 */
type ConnectionView = ReturnType<typeof toView>;
export interface TestResult {
  input: Record<string, string>;
  ok?: RestStepResult;
  error?: FormError;
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];
const MAX_SHOWN = 100_000;
const FIELDS = ['method', 'path', 'query', 'headers', 'body'];

function statusBadge(status: number): Html {
  return badge(String(status), status < 300 ? 'ok' : status < 500 ? 'warn' : 'bad');
}

function bodyText(r: RestStepResult): string {
  const text = r.body_encoding === 'json' ? JSON.stringify(r.body, null, 2) : String(r.body ?? '');
  if (r.body_encoding === 'base64') return `(binary, ${Buffer.from(text, 'base64').length} bytes, shown as base64)\n${text.slice(0, MAX_SHOWN)}`;
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}\n… (${text.length - MAX_SHOWN} more characters)` : text;
}

function resultBox(r: TestResult | null): Html {
  if (!r) return html``;
  if (r.error) return formAlert(r.error, FIELDS);
  const ok = r.ok!;
  const headers = Object.entries(ok.headers).flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v]]));
  return html`<div class="card" id="test-result" role="status"><h2>Response ${statusBadge(ok.status)}</h2>
${facts([
  ['Status', String(ok.status)],
  ['Through', ok.mid_server ? `MID server ${ok.mid_server}` : 'the instance (direct)'],
  ['ECC output record', ok.ecc_output_id ? html`<a href="/console/ecc/${ok.ecc_output_id}">${ok.ecc_output_id}</a>` : null],
  ['Attempts', String(ok.attempts)],
  ['Duration', `${ok.duration_ms} ms`],
])}
<h3>Headers</h3>
${table({ head: ['Name', 'Value'], rows: headers.map(([k, v]) => [html`<span class="mono">${k}</span>`, html`<span class="mono">${v}</span>`]), empty: 'No headers.' })}
<h3>Body <span class="muted">(${ok.body_encoding})</span></h3>
<pre id="test-body">${bodyText(ok)}</pre></div>`;
}

export async function testPanel(ctx: Ctx, req: FastifyRequest, x: ConnectionView, r: TestResult | null): Promise<Html> {
  const v = r?.input ?? {};
  const e = r?.error ?? null;
  const now = ctx.now();
  const runs = await listExecutions(ctx.s.db, { connectionId: x.id, limit: 10 });
  return html`<h2 id="test">Test the REST step</h2>
<form method="post" action="/console/connections/${x.id}/test#test-result" class="stack card" novalidate data-progress data-progress-button="Sending…">${ctx.csrf(req)}
${select({ name: 'method', label: 'Method', value: v.method ?? 'GET', error: e, options: METHODS.map((m) => ({ value: m, label: m })) })}
${input({ name: 'path', label: 'Path', value: v.path ?? '', error: e, placeholder: '/accounts', hint: html`Relative to <span class="mono">${x.base_url}</span>.` })}
${textarea({ name: 'query', label: 'Query parameters', value: v.query ?? '', error: e, rows: 2, hint: 'One "name=value" per line.' })}
${textarea({ name: 'headers', label: 'Headers', value: v.headers ?? '', error: e, rows: 2, hint: 'One "Name: value" per line. The credential\'s bearer token is added for you.' })}
${textarea({ name: 'body', label: 'Body', value: v.body ?? '', error: e, rows: 4, hint: 'JSON is sent as application/json; anything else as text.' })}
<button type="submit">Test</button>
<p class="progress" role="status"><span class="spinner" aria-hidden="true"></span>Sending the request${x.use_mid_server ? ' through a MID server' : ''}…</p>
</form>
${resultBox(r)}
<h2>Recent executions</h2>
${table({
  head: ['When', 'Method', 'URL', 'Status', 'Duration', 'Attempts', 'MID server', 'Error'],
  rows: runs.map((run) => [
    when(parseIso(run.created_at), now),
    run.method,
    html`<span class="mono">${run.url}</span>`,
    run.status === null ? '—' : statusBadge(run.status),
    `${run.duration_ms} ms`,
    String(run.attempts),
    run.mid_server ?? 'direct',
    run.error ? `${run.error.code}: ${run.error.message ?? ''}` : '',
  ]),
  empty: 'No executions yet.',
})}`;
}

export function registerRestTest(c: FastifyInstance, ctx: Ctx, body: (req: FastifyRequest, x: ConnectionView, r: TestResult) => Promise<Html>): void {
  c.post<{ Params: { id: string } }>('/connections/:id/test', async (req, reply) => {
    const x = toView(await getConnectionRow(ctx.s.db, req.params.id));
    const f = formBody(req.body);
    const input: Record<string, string> = Object.fromEntries(FIELDS.map((k) => [k, k === 'body' && typeof f.body === 'string' ? f.body : one(f, k)]));
    const headers = pairs(input.headers ?? '', ':');
    let payload: unknown;
    if (input.body?.trim()) {
      const hasType = Object.keys(headers).some((k) => k.toLowerCase() === 'content-type');
      try {
        payload = hasType ? input.body : JSON.parse(input.body);
      } catch {
        payload = input.body;
      }
    }
    let result: TestResult;
    try {
      const ok = await executeRestStep(ctx.s.restStepDeps, {
        connection: x.name, method: input.method || 'GET', path: input.path ?? '', query: pairs(input.query ?? '', '='), headers, ...(payload !== undefined ? { body: payload } : {}),
      });
      result = { input, ok };
    } catch (err) {
      result = { input, error: toFormError(err) };
    }
    return ctx.page(req, reply, { title: x.name, nav: 'connections', crumbs: [['Connections', '/console/connections']], body: await body(req, x, result) }, result.error ? 400 : 200);
  });
}
