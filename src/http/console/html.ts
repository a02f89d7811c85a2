import { esc } from '../pages.js';

/**
 * A tiny HTML builder for the console: every interpolated value is escaped unless it is
 * already markup (`Html`, made by `html` or `raw`). Arrays are joined; null, undefined and
 * false render as nothing, so `${cond && html`…`}` reads naturally.
 */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export type Part = Html | string | number | boolean | null | undefined | Part[];

const render = (p: Part): string => {
  if (p === null || p === undefined || p === false) return '';
  if (p instanceof Html) return p.value;
  if (Array.isArray(p)) return p.map(render).join('');
  return esc(String(p));
};

export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** Markup that is trusted as is (only for constants written in this folder). */
export const raw = (s: string): Html => new Html(s);

/** "2026-07-07 17:47:12 UTC": absolute times are UTC and unambiguous. */
export function absTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  return `${new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '')} UTC`;
}

/** "in 9 min", "3 s ago": relative to the instance clock. */
export function relTime(ms: number, now: number): string {
  const d = ms - now;
  const a = Math.abs(d);
  const unit =
    a < 60_000 ? `${Math.round(a / 1000)} s` : a < 3600_000 ? `${Math.round(a / 60_000)} min` : a < 172_800_000 ? `${Math.round(a / 3600_000)} h` : `${Math.round(a / 86_400_000)} days`;
  return d >= 0 ? `in ${unit}` : `${unit} ago`;
}

/** A <time> with the relative time shown and the absolute one beside it. */
export function when(ms: number | null | undefined, now: number, opts: { empty?: string } = {}): Html {
  if (ms === null || ms === undefined) return html`<span class="muted">${opts.empty ?? '—'}</span>`;
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}">${relTime(ms, now)}</time> <span class="muted abs">(${absTime(ms)})</span>`;
}

export const parseIso = (s: string | null | undefined): number | null => (s ? Date.parse(s) : null);

export type Tone = 'ok' | 'warn' | 'bad' | 'info' | 'muted';

export const badge = (text: string, tone: Tone): Html => html`<span class="badge ${tone}">${text}</span>`;

/** A table with a header row, or the empty state when there are no rows. */
export function table(opts: { caption?: string; head: string[]; rows: Part[][]; empty: Part; className?: string }): Html {
  if (opts.rows.length === 0) return html`<div class="empty">${opts.empty}</div>`;
  return html`<div class="table-wrap"><table class="${opts.className ?? ''}">
${opts.caption ? html`<caption>${opts.caption}</caption>` : ''}
<thead><tr>${opts.head.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead>
<tbody>${opts.rows.map((r) => html`<tr>${r.map((c) => html`<td>${c}</td>`)}</tr>`)}</tbody>
</table></div>`;
}

/** A definition list of label → value. */
export const facts = (rows: Array<[string, Part]>): Html =>
  html`<dl class="facts">${rows.map(([k, v]) => html`<dt>${k}</dt><dd>${v === null || v === undefined || v === '' ? html`<span class="muted">—</span>` : v}</dd>`)}</dl>`;

export const GRANT_LABELS: Record<string, string> = {
  client_credentials: 'Client Credentials',
  authorization_code: 'Authorization Code',
  password: 'Resource Owner Password Credentials',
  'urn:ietf:params:oauth:grant-type:saml2-bearer': 'SAML2 Bearer',
  'urn:ietf:params:oauth:grant-type:jwt-bearer': 'JWT Bearer',
};
export const grantLabel = (g: string | null | undefined): string => (g ? (GRANT_LABELS[g] ?? g) : '—');
