import * as oauth from 'oauth4webapi';
import { clientAuthFor } from './client-auth.js';
import { authorizationServer, client, extraParams, requestOptions, type GrantContext } from './context.js';

/** RFC 6749 §4.4: the client asks for a token on its own behalf. */
export async function clientCredentials(ctx: GrantContext): Promise<oauth.TokenEndpointResponse> {
  const as = authorizationServer(ctx);
  const response = await oauth.clientCredentialsGrantRequest(as, client(ctx), await clientAuthFor(ctx.provider), extraParams(ctx), requestOptions(ctx));
  return oauth.processClientCredentialsResponse(as, client(ctx), response);
}
