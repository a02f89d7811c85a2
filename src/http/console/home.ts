import type { FastifyInstance } from 'fastify';
import { listMids, isUp, hasRest } from '../../mid-servers/registry.js';
import { listProviders } from '../../registry/providers.js';
import { listCredentials } from '../../credentials/credentials.js';
import { listRecords, TOPIC_REST_PROBE } from '../../ecc/index.js';
import type { Ctx } from './context.js';
import { badge, html, parseIso, table, when } from './html.js';
import { stateBadge } from './ecc.js';

/**
 * The overview: the seed's walkthrough as a checklist that reads the live state, so a new user
 * sees what is done and what to do next, with a link to each screen.
 */
export function registerHome(c: FastifyInstance, ctx: Ctx): void {
  c.get('/', async (req, reply) => {
    const now = ctx.now();
    const mids = await listMids(ctx.s.db);
    const ready = mids.filter((m) => isUp(m, now, ctx.s.config.midDownAfterMs) && m.validated === 1 && m.paused === 0 && hasRest(m));
    const providers = await listProviders(ctx.deps.registry);
    const creds = await listCredentials(ctx.deps.credentials);
    const withToken = creds.filter((x) => x.status.tokens_available);
    const probes = await listRecords(ctx.s.db, { topic: TOPIC_REST_PROBE, limit: 6 });

    const step = (done: boolean, title: string, text: ReturnType<typeof html>, link: [string, string]) =>
      html`<li>${done ? badge('done', 'ok') : badge('to do', 'muted')} <strong>${title}</strong> — ${text} <a href="${link[1]}">${link[0]}</a></li>`;

    const body = html`<div class="card"><h2>Fetch an OAuth token through a MID server</h2>
<ol class="steps">
${step(ready.length > 0, 'A MID server is running', html`${ready.length} of ${mids.length} MID server(s) are up, validated and have REST.`, ['MID Servers', '/console/mid-servers'])}
${step(providers.length > 0, 'Create the OAuth provider', html`System OAuth › Application Registry › New › "Connect to a third-party OAuth Provider" (${providers.length} so far).`, ['Application Registry', '/console/providers'])}
${step(creds.length > 0, 'Create the OAuth credentials', html`Credentials › New › "OAuth 2.0 Credentials", with "Connect to Auth Server via MID Server" (${creds.length} so far).`, ['Credentials', '/console/credentials'])}
${step(withToken.length > 0, 'Get OAuth Token', html`Open the credential and select the "Get OAuth Token" related link (${withToken.length} credential(s) hold a token).`, ['Credentials', '/console/credentials'])}
${step(probes.length > 0, 'Check the ECC Queue', html`The output record (topic RESTProbe, source = the token endpoint) and the MID server's input record.`, ['ECC Queue', '/console/ecc?topic=RESTProbe'])}
</ol></div>
<h2>Latest RESTProbe records</h2>
${table({
  head: ['Created', 'Queue', 'Source', 'Agent', 'State'],
  rows: probes.map((r) => [
    html`<a href="/console/ecc/${r.id}">${when(r.created_at, now)}</a>`,
    r.queue,
    html`<span class="mono">${r.source}</span>`,
    r.agent,
    stateBadge(r.state),
  ]),
  empty: 'No RESTProbe records yet: they appear when a token is requested through a MID server.',
})}
<h2>Credentials</h2>
${table({
  head: ['Name', 'Token', 'Access token expires'],
  rows: creds.slice(0, 8).map((x) => [
    html`<a href="/console/credentials/${x.id}">${x.name}</a>`,
    x.status.tokens_available ? badge('available', 'ok') : badge('not available', 'muted'),
    when(parseIso(x.status.access_token_expires_at), now),
  ]),
  empty: html`No credentials yet. <a href="/console/credentials/new">Create one</a>.`,
})}`;
    return ctx.page(req, reply, { title: 'Overview', nav: 'home', body, lead: 'The seed\'s walkthrough, step by step, with where this instance stands.' });
  });
}
