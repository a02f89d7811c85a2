import * as oauth from 'oauth4webapi';
import { clientAuthFor } from './client-auth.js';
import { authorizationServer, client, requestOptions, type GrantContext } from './context.js';

/** RFC 7009: revoke one token at the provider's revocation endpoint. */
export async function revokeToken(ctx: GrantContext, token: string, hint: 'access_token' | 'refresh_token'): Promise<void> {
  const as = authorizationServer(ctx);
  const response = await oauth.revocationRequest(as, client(ctx), await clientAuthFor(ctx.provider), token, {
    ...requestOptions(ctx),
    [oauth.allowInsecureRequests]: (ctx.provider.row.revocation_url ?? '').startsWith('http:'),
    additionalParameters: { token_type_hint: hint },
  });
  await oauth.processRevocationResponse(response);
}
