import * as oauth from 'oauth4webapi';
import { clientAuthFor } from './client-auth.js';
import { authorizationServer, client, requestOptions, type GrantContext } from './context.js';
import { AppError } from '../core/errors.js';

/**
 * RFC 6749 §4.1 with PKCE (RFC 7636, S256). `authorizeUrl` builds the redirect for the browser;
 * `exchangeCode` validates the callback (state, error) with oauth4webapi and trades the code.
 */
export async function authorizeUrl(
  ctx: Pick<GrantContext, 'provider' | 'scopes'>,
  opts: { state: string; redirectUri: string; codeVerifier: string | null },
): Promise<string> {
  const { row } = ctx.provider;
  if (!row.authorization_url) {
    throw new AppError('invalid_request', { message: `Provider "${row.name}" has no authorization_url; PATCH it in to use the authorization_code grant.` });
  }
  const url = new URL(row.authorization_url);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', row.client_id);
  url.searchParams.set('redirect_uri', opts.redirectUri);
  url.searchParams.set('state', opts.state);
  if (ctx.scopes.length) url.searchParams.set('scope', ctx.scopes.join(' '));
  if (opts.codeVerifier) {
    url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(opts.codeVerifier));
    url.searchParams.set('code_challenge_method', 'S256');
  }
  for (const [k, v] of Object.entries(JSON.parse(row.token_request_params) as Record<string, string>)) {
    if (k === 'audience' || k === 'resource') url.searchParams.set(k, v);
  }
  return url.href;
}

export async function exchangeCode(
  ctx: GrantContext,
  opts: { callbackUrl: URL; expectedState: string; redirectUri: string; codeVerifier: string | null },
): Promise<oauth.TokenEndpointResponse> {
  const as = authorizationServer(ctx);
  const params = oauth.validateAuthResponse(as, client(ctx), opts.callbackUrl, opts.expectedState);
  const response = await oauth.authorizationCodeGrantRequest(
    as,
    client(ctx),
    await clientAuthFor(ctx.provider),
    params,
    opts.redirectUri,
    opts.codeVerifier ?? oauth.nopkce,
    requestOptions(ctx),
  );
  return oauth.processAuthorizationCodeResponse(as, client(ctx), response);
}
