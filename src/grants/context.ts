import * as oauth from 'oauth4webapi';
import type { Transport } from '../transport/transport.js';
import type { ProviderSecrets } from '../registry/providers.js';

/** Everything a grant needs for one token request; no database, no choice of network. */
export interface GrantContext {
  provider: ProviderSecrets;
  scopes: string[];
  transport: Transport;
  timeoutMs: number;
}

export function authorizationServer(ctx: GrantContext): oauth.AuthorizationServer {
  const { row } = ctx.provider;
  // No discovery: the registry holds the endpoints, as the reference's form does. The issuer is
  // checked only in ID tokens (authorization code with the openid scope); without a configured
  // one, the token URL's origin stands in (right for issuers without a path).
  return {
    issuer: row.issuer ?? new URL(row.token_url).origin,
    token_endpoint: row.token_url,
    ...(row.authorization_url ? { authorization_endpoint: row.authorization_url } : {}),
    ...(row.revocation_url ? { revocation_endpoint: row.revocation_url } : {}),
  };
}

export const client = (ctx: GrantContext): oauth.Client => ({ client_id: ctx.provider.row.client_id });

/** Options every token endpoint call carries: our transport, a timeout, and plain http where the registry says so. */
export function requestOptions(ctx: GrantContext, extra: URLSearchParams | undefined = undefined) {
  return {
    [oauth.customFetch]: ctx.transport as unknown as typeof fetch,
    [oauth.allowInsecureRequests]: ctx.provider.row.token_url.startsWith('http:'),
    signal: AbortSignal.timeout(ctx.timeoutMs + 60_000),
    ...(extra ? { additionalParameters: extra } : {}),
  };
}

export function extraParams(ctx: GrantContext): Record<string, string> {
  const params: Record<string, string> = { ...(JSON.parse(ctx.provider.row.token_request_params) as Record<string, string>) };
  if (ctx.scopes.length) params.scope = ctx.scopes.join(' ');
  return params;
}
