import { CLIENT_AUTH_METHODS, GRANT_TYPES } from '../../registry/schemas.js';
import type { getProvider } from '../../registry/providers.js';
import { html, grantLabel, type Html } from './html.js';
import { checkbox, checked, formAlert, input, one, pairs, secret, select, textarea, words, type FormBody, type FormError } from './forms.js';

/**
 * "Connect to a third-party OAuth Provider": the form, its values (never a secret), and the
 * mapping from the posted form to the service's input (the same JSON the REST API takes).
 */
export type ProviderView = Awaited<ReturnType<typeof getProvider>>;
export type Values = Record<string, string>;

const ASSERTION = ['issuer', 'subject', 'audience', 'lifetime_s', 'signing_alg', 'key_id', 'certificate_pem'] as const;
const SIGNING_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const AUTH_LABELS: Record<string, string> = {
  client_secret_basic: 'client_secret_basic (HTTP Basic)',
  client_secret_post: 'client_secret_post (in the form body)',
  private_key_jwt: 'private_key_jwt (signed assertion)',
  none: 'none (public client)',
};

export const FIELDS = [
  'name', 'client_id', 'client_secret', 'default_grant_type', 'client_auth_method', 'authorization_url', 'token_url', 'revocation_url', 'issuer',
  'scopes', 'pkce', 'token_request_params', ...ASSERTION.map((k) => `assertion.${k}`), 'assertion.private_key_pem',
];

/** What the form shows for a stored provider. */
export function valuesOf(p: ProviderView): Values {
  const v: Values = {
    name: p.name, client_id: p.client_id, default_grant_type: p.default_grant_type, client_auth_method: p.client_auth_method,
    authorization_url: p.authorization_url ?? '', token_url: p.token_url, revocation_url: p.revocation_url ?? '', issuer: p.issuer ?? '',
    scopes: p.scopes.join(' '), pkce: p.pkce ? 'on' : '', token_request_params: Object.entries(p.token_request_params).map(([k, x]) => `${k}=${x}`).join('\n'),
  };
  for (const k of ASSERTION) {
    const x = (p.assertion as Record<string, unknown> | null)?.[k];
    v[`assertion.${k}`] = x === undefined || x === null ? '' : String(x);
  }
  return v;
}

/** What the form shows after a refused post: what was typed, minus the secrets. */
export function valuesFromForm(f: FormBody): Values {
  const v: Values = {};
  for (const k of FIELDS) if (k !== 'client_secret' && k !== 'assertion.private_key_pem') v[k] = one(f, k);
  return v;
}

/** The service input for a create (`isNew`) or a patch; blank secrets keep what is stored. */
export function toInput(f: FormBody, isNew: boolean): Record<string, unknown> {
  const url = (k: string) => (one(f, k) ? one(f, k) : isNew ? undefined : null);
  const out: Record<string, unknown> = {
    name: one(f, 'name'),
    client_id: one(f, 'client_id'),
    token_url: one(f, 'token_url'),
    authorization_url: url('authorization_url'),
    revocation_url: url('revocation_url'),
    issuer: url('issuer'),
    default_grant_type: one(f, 'default_grant_type') || undefined,
    client_auth_method: one(f, 'client_auth_method') || undefined,
    scopes: words(one(f, 'scopes')),
    pkce: checked(f, 'pkce'),
    token_request_params: pairs(one(f, 'token_request_params'), '='),
  };
  const secretValue = typeof f.client_secret === 'string' ? f.client_secret.trim() : '';
  if (secretValue) out.client_secret = secretValue;
  else if (!isNew && checked(f, 'client_secret_remove')) out.client_secret = null;

  const a: Record<string, unknown> = {};
  for (const k of ASSERTION) {
    const x = one(f, `assertion.${k}`);
    if (x) a[k] = k === 'lifetime_s' && /^\d+$/.test(x) ? Number(x) : x;
  }
  const key = typeof f['assertion.private_key_pem'] === 'string' ? f['assertion.private_key_pem'].trim() : '';
  if (key) a.private_key_pem = key;
  if (!isNew && checked(f, 'assertion_remove')) out.assertion = null;
  else if (Object.keys(a).length) out.assertion = a;
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}

export function providerForm(o: {
  action: string; csrf: Html; values: Values; isNew: boolean; secretSet: boolean; keySet: boolean; error: FormError | null; submit: string;
}): Html {
  const v = o.values;
  const e = o.error;
  return html`<form method="post" action="${o.action}" class="stack" novalidate>${o.csrf}
${formAlert(e, FIELDS)}
<fieldset><legend>Connect to a third-party OAuth Provider</legend>
${input({ name: 'name', label: 'Name', value: v.name, required: true, error: e, hint: 'Unique in the Application Registry, e.g. corp-keycloak.' })}
${input({ name: 'client_id', label: 'Client ID', value: v.client_id, required: true, error: e })}
${secret({ name: 'client_secret', label: 'Client Secret', isSet: o.secretSet, error: e })}
${!o.isNew && o.secretSet ? checkbox({ name: 'client_secret_remove', label: 'Remove the stored client secret', checked: false }) : ''}
${select({ name: 'default_grant_type', label: 'Default Grant type', value: v.default_grant_type || 'client_credentials', error: e, options: GRANT_TYPES.map((g) => ({ value: g, label: grantLabel(g) })) })}
${select({ name: 'client_auth_method', label: 'Client authentication', value: v.client_auth_method || 'client_secret_basic', error: e, options: CLIENT_AUTH_METHODS.map((m) => ({ value: m, label: AUTH_LABELS[m] ?? m })) })}
</fieldset>
<fieldset><legend>Endpoints</legend>
${input({ name: 'token_url', label: 'Token URL', value: v.token_url, type: 'url', required: true, error: e, hint: 'Reached from the MID server when a credential uses one.' })}
${input({ name: 'authorization_url', label: 'Authorization URL', value: v.authorization_url, type: 'url', error: e, hint: 'Needed for the Authorization Code grant.' })}
${input({ name: 'revocation_url', label: 'Token Revocation URL', value: v.revocation_url, type: 'url', error: e, hint: 'Optional (RFC 7009).' })}
${input({ name: 'issuer', label: 'Issuer', value: v.issuer, error: e, hint: 'Optional; defaults to the token URL\'s origin.' })}
</fieldset>
<fieldset><legend>Scopes and token request</legend>
${input({ name: 'scopes', label: 'Default scopes', value: v.scopes, error: e, hint: 'Separated by spaces, e.g. "api:read api:write".' })}
${checkbox({ name: 'pkce', label: 'Use PKCE (S256) with the Authorization Code grant', checked: o.isNew && v.pkce === undefined ? true : v.pkce === 'on', error: e })}
${textarea({ name: 'token_request_params', label: 'Extra token request parameters', value: v.token_request_params, error: e, rows: 2, hint: 'One "name=value" per line, e.g. audience=https://api.corp.' })}
</fieldset>
<fieldset class="assertion-only"><legend>Assertion (JWT Bearer, SAML2 Bearer, private_key_jwt)</legend>
${input({ name: 'assertion.issuer', label: 'Assertion issuer', value: v['assertion.issuer'], error: e })}
${input({ name: 'assertion.subject', label: 'Assertion subject', value: v['assertion.subject'], error: e })}
${input({ name: 'assertion.audience', label: 'Assertion audience', value: v['assertion.audience'], error: e, hint: 'Defaults to the token URL.' })}
${input({ name: 'assertion.lifetime_s', label: 'Assertion lifetime (seconds)', value: v['assertion.lifetime_s'], type: 'number', error: e })}
${select({ name: 'assertion.signing_alg', label: 'Signing algorithm', value: v['assertion.signing_alg'] ?? '', error: e, options: [{ value: '', label: '(from the key)' }, ...SIGNING_ALGS.map((a) => ({ value: a, label: a }))] })}
${input({ name: 'assertion.key_id', label: 'Key ID (kid)', value: v['assertion.key_id'], error: e })}
${secret({ name: 'assertion.private_key_pem', label: 'Private key (PEM)', isSet: o.keySet, multiline: true, error: e, placeholder: '-----BEGIN PRIVATE KEY-----' })}
${textarea({ name: 'assertion.certificate_pem', label: 'Certificate (PEM, SAML2 only)', value: v['assertion.certificate_pem'], error: e, rows: 3 })}
${!o.isNew && (o.keySet || v['assertion.subject']) ? checkbox({ name: 'assertion_remove', label: 'Remove the assertion settings and the stored private key', checked: false }) : ''}
</fieldset>
<button type="submit">${o.submit}</button>
</form>`;
}
