import * as oauth from 'oauth4webapi';
import { clientAuthFor } from './client-auth.js';
import { authorizationServer, client, extraParams, requestOptions, type GrantContext } from './context.js';

/**
 * RFC 6749 §4.3: the resource owner's username and password, used for this one request and
 * never stored; only the tokens are kept.
 */
export async function passwordGrant(ctx: GrantContext, creds: { username: string; password: string }): Promise<oauth.TokenEndpointResponse> {
  const as = authorizationServer(ctx);
  const response = await oauth.genericTokenEndpointRequest(
    as,
    client(ctx),
    await clientAuthFor(ctx.provider),
    'password',
    { ...extraParams(ctx), username: creds.username, password: creds.password },
    requestOptions(ctx),
  );
  return oauth.processGenericTokenEndpointResponse(as, client(ctx), response);
}
