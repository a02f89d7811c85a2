import * as oauth from 'oauth4webapi';
import { clientAuthFor } from './client-auth.js';
import { authorizationServer, client, requestOptions, type GrantContext } from './context.js';

/** RFC 6749 §6: a new access token (and maybe a rotated refresh token) for a refresh token. */
export async function refreshGrant(ctx: GrantContext, refreshToken: string): Promise<oauth.TokenEndpointResponse> {
  const as = authorizationServer(ctx);
  const extra = new URLSearchParams(JSON.parse(ctx.provider.row.token_request_params) as Record<string, string>);
  const response = await oauth.refreshTokenGrantRequest(as, client(ctx), await clientAuthFor(ctx.provider), refreshToken, requestOptions(ctx, extra));
  return oauth.processRefreshTokenResponse(as, client(ctx), response);
}
