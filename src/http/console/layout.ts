import { html, type Html, type Part } from './html.js';
import type { Flash, Session } from './session.js';

/**
 * The shared page shell: a sidebar grouped as the seed names the menus ("System OAuth",
 * "Connections & Credentials", "MID Server"), breadcrumbs, a title with actions, the one-shot
 * flash message, and the page body.
 */
export type NavKey = 'home' | 'providers' | 'credentials' | 'connections' | 'mid-servers' | 'ecc';

const NAV: Array<{ group: string; items: Array<{ key: NavKey; href: string; label: string }> }> = [
  { group: 'Start', items: [{ key: 'home', href: '/console', label: 'Overview' }] },
  { group: 'System OAuth', items: [{ key: 'providers', href: '/console/providers', label: 'Application Registry' }] },
  {
    group: 'Connections & Credentials',
    items: [
      { key: 'credentials', href: '/console/credentials', label: 'Credentials' },
      { key: 'connections', href: '/console/connections', label: 'Connections' },
    ],
  },
  {
    group: 'MID Server',
    items: [
      { key: 'mid-servers', href: '/console/mid-servers', label: 'Servers' },
      { key: 'ecc', href: '/console/ecc', label: 'ECC Queue' },
    ],
  },
];

export interface PageOpts {
  title: string;
  nav: NavKey;
  body: Part;
  /** Breadcrumbs before the title: [label, href]. */
  crumbs?: Array<[string, string]>;
  /** Buttons or links beside the title. */
  actions?: Part;
  lead?: Part;
}

function shell(title: string, body: Html): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · tokenrelay console</title>
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/console.js" defer></script>
</head><body>${body}</body></html>`.value;
}

export const csrfField = (session: Session): Html => html`<input type="hidden" name="_csrf" value="${session.csrf}">`;

export const flashBox = (f: Flash | null): Html =>
  f ? html`<div class="flash ${f.kind}" role="${f.kind === 'error' ? 'alert' : 'status'}">${f.text}</div>` : html``;

export function layout(o: PageOpts, session: Session, flash: Flash | null): string {
  const nav = html`<nav class="side" aria-label="Console">
<a class="brand" href="/console">tokenrelay<small>OAuth tokens via MID servers</small></a>
${NAV.map(
  (g) => html`<h2>${g.group}</h2><ul>${g.items.map((i) => html`<li><a href="${i.href}"${i.key === o.nav ? html` aria-current="page"` : ''}>${i.label}</a></li>`)}</ul>`,
)}
<form method="post" action="/console/logout">${csrfField(session)}<button type="submit" class="linkish">Log out</button></form>
</nav>`;
  const crumbs = o.crumbs?.length
    ? html`<p class="crumbs">${o.crumbs.map(([label, href], i) => html`${i ? ' › ' : ''}<a href="${href}">${label}</a>`)}</p>`
    : '';
  return shell(
    o.title,
    html`<a class="skip" href="#main">Skip to content</a>${nav}
<main id="main">${crumbs}<div class="head"><h1>${o.title}</h1>${o.actions ? html`<div class="actions">${o.actions}</div>` : ''}</div>
${o.lead ? html`<p class="lead">${o.lead}</p>` : ''}${flashBox(flash)}${o.body}</main>`,
  );
}

/** The login page: no navigation, one form. */
export function loginPage(opts: { csrf: string; next: string; error: string | null; info: string | null }): string {
  return shell(
    'Log in',
    html`<main class="login" id="main"><div class="card">
<h1>tokenrelay console</h1>
<p class="muted">Log in with the instance's admin token: the <code>admin-token</code> file in the data dir, or <code>TOKENRELAY_ADMIN_TOKEN</code>. <code>tokenrelay up</code> prints where it is.</p>
${opts.info ? html`<div class="flash info" role="status">${opts.info}</div>` : ''}
<form method="post" action="/console/login" class="stack">
<input type="hidden" name="_csrf" value="${opts.csrf}"><input type="hidden" name="next" value="${opts.next}">
<div class="field${opts.error ? ' invalid' : ''}"><label for="f-token">Admin token</label>
<input id="f-token" name="token" type="password" autocomplete="current-password" required autofocus${opts.error ? html` aria-invalid="true" aria-describedby="f-token-error"` : ''}>
${opts.error ? html`<p class="field-error" id="f-token-error" role="alert">${opts.error}</p>` : ''}</div>
<button type="submit">Log in</button>
</form></div></main>`,
  );
}

/** A page for errors outside any form (unknown record, expired session's POST, …). */
export function errorBody(message: string, back: [string, string] | null): Html {
  return html`<div class="flash error" role="alert">${message}</div>${back ? html`<p><a href="${back[1]}">${back[0]}</a></p>` : ''}`;
}
