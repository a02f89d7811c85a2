import type { Db } from '../../db/schema.js';
import type { getCredential } from '../../credentials/credentials.js';
import { listMids, isUp, hasRest, toView as midView } from '../../mid-servers/registry.js';
import { badge, grantLabel, html, type Html } from './html.js';
import { checkbox, checked, formAlert, input, many, one, select, type FormBody, type FormError } from './forms.js';

/**
 * "OAuth 2.0 Credentials": name, OAuth Entity Profile, "Connect to Auth Server via MID
 * Server", "Applies to" and a MID server picker that shows whether each one qualifies.
 */
export type CredentialView = Awaited<ReturnType<typeof getCredential>>;

/** How the token endpoint is reached: "MID server dc1", "any eligible MID server", "directly (no MID server)". */
export const midSummary = (x: Pick<CredentialView, 'use_mid_server' | 'applies_to' | 'mid_servers'>): string =>
  !x.use_mid_server
    ? 'directly (no MID server)'
    : x.applies_to === 'all'
      ? 'any eligible MID server'
      : `MID server${x.mid_servers.length > 1 ? 's' : ''} ${x.mid_servers.join(', ')}`;

export interface CredValues {
  name: string;
  profile_id: string;
  use_mid_server: boolean;
  applies_to: 'all' | 'specific';
  mid_servers: string[];
}

export const FIELDS = ['name', 'profile_id', 'use_mid_server', 'applies_to', 'mid_servers'];

export const emptyValues = (): CredValues => ({ name: '', profile_id: '', use_mid_server: true, applies_to: 'specific', mid_servers: [] });

export function valuesFromForm(f: FormBody): CredValues {
  return {
    name: one(f, 'name'),
    profile_id: one(f, 'profile_id'),
    use_mid_server: checked(f, 'use_mid_server'),
    applies_to: one(f, 'applies_to') === 'all' ? 'all' : 'specific',
    mid_servers: many(f, 'mid_servers'),
  };
}

/** The service input: MID servers are only sent when they matter ("specific"). */
export function toInput(v: CredValues): Record<string, unknown> {
  return {
    name: v.name,
    profile_id: v.profile_id,
    use_mid_server: v.use_mid_server,
    applies_to: v.applies_to,
    mid_servers: v.use_mid_server && v.applies_to === 'specific' ? v.mid_servers : [],
  };
}

export interface PickerData {
  profiles: Array<{ value: string; label: string; group: string }>;
  mids: Array<ReturnType<typeof midView> & { qualifies: boolean }>;
}

export async function pickerData(db: Db, now: number, downAfterMs: number): Promise<PickerData> {
  const rows = await db
    .selectFrom('oauth_profiles')
    .innerJoin('oauth_providers', 'oauth_providers.id', 'oauth_profiles.provider_id')
    .select(['oauth_profiles.id', 'oauth_profiles.name', 'oauth_profiles.grant_type', 'oauth_providers.name as provider'])
    .orderBy('oauth_providers.name')
    .orderBy('oauth_profiles.is_default', 'desc')
    .execute();
  const mids = (await listMids(db)).map((m) => ({
    ...midView(m, now, downAfterMs),
    qualifies: isUp(m, now, downAfterMs) && m.validated === 1 && m.paused === 0 && hasRest(m),
  }));
  return { profiles: rows.map((r) => ({ value: r.id, label: `${r.name} (${grantLabel(r.grant_type)})`, group: r.provider })), mids };
}

export function credentialForm(o: { action: string; csrf: Html; values: CredValues; data: PickerData; error: FormError | null; submit: string }): Html {
  const { values: v, data, error: e } = o;
  const radio = (value: 'all' | 'specific', label: string) =>
    html`<div class="field check"><input type="radio" id="f-applies_to-${value}" name="applies_to" value="${value}"${v.applies_to === value ? html` checked` : ''}><label for="f-applies_to-${value}">${label}</label></div>`;
  const midError = e?.field === 'mid_servers' || e?.field?.startsWith('mid_servers.') ? e : null;
  const picker = data.mids.length
    ? data.mids.map(
        (m) => html`<div class="field check"><input type="checkbox" id="f-mid-${m.name}" name="mid_servers" value="${m.name}"${v.mid_servers.includes(m.name) ? html` checked` : ''}>
<label for="f-mid-${m.name}">${m.name} ${m.status === 'up' ? badge('up', 'ok') : badge('down', 'bad')} ${m.validated ? badge('validated', 'ok') : badge('not validated', 'warn')}${m.paused ? html` ${badge('paused', 'warn')}` : ''} <span class="muted">${m.capabilities.join(', ') || 'no capabilities'}</span></label></div>`,
      )
    : html`<p class="muted">No MID server is enrolled yet. <a href="/console/mid-servers">Add one</a> first.</p>`;
  return html`<form method="post" action="${o.action}" class="stack" novalidate>${o.csrf}
${formAlert(e, FIELDS)}
<fieldset><legend>OAuth 2.0 Credentials</legend>
${input({ name: 'name', label: 'Name', value: v.name, required: true, error: e })}
${data.profiles.length
  ? select({ name: 'profile_id', label: 'OAuth Entity Profile', value: v.profile_id, required: true, error: e, options: data.profiles, hint: 'A provider\'s default profile, or another profile of it.' })
  : html`<div class="field"><label for="f-profile_id">OAuth Entity Profile</label><select id="f-profile_id" name="profile_id" disabled></select><p class="hint">No profile yet: <a href="/console/providers/new">create an OAuth provider</a> first.</p></div>`}
${checkbox({ name: 'use_mid_server', label: 'Connect to Auth Server via MID Server', checked: v.use_mid_server, error: e, hint: 'The token endpoint is reached from inside the private network, by a MID server.' })}
<fieldset class="mid-only"><legend>Applies to</legend>
${radio('all', 'All MID Servers (any that is up, validated and has REST)')}
${radio('specific', 'Specific MID Servers')}
<div id="f-mid_servers" class="specific-only${midError ? ' invalid' : ''}" role="group" aria-labelledby="mid-picker-label"${midError ? html` aria-describedby="f-mid_servers-error"` : ''}>
<p id="mid-picker-label" class="field"><strong>MID Servers</strong> <span class="muted">— select one that is up, validated and has the REST capability</span></p>
<div class="picker">${picker}</div>
${midError ? html`<p class="field-error" id="f-mid_servers-error">${midError.message}</p>` : ''}
</div></fieldset>
</fieldset>
<button type="submit">${o.submit}</button>
</form>`;
}
