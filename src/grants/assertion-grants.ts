import * as oauth from 'oauth4webapi';
import { clientAuthFor } from './client-auth.js';
import { authorizationServer, client, extraParams, requestOptions, type GrantContext } from './context.js';
import { jwtBearerAssertion } from './assertions/jwt.js';
import { saml2BearerAssertion } from './assertions/saml.js';

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const SAML2_BEARER = 'urn:ietf:params:oauth:grant-type:saml2-bearer';

/**
 * RFC 7521 §4.1 assertion grants: a fresh, short-lived assertion each time, sent as
 * `assertion`; client authentication as configured (RFC 7523 §3.1 allows none).
 */
export async function assertionGrant(ctx: GrantContext, grantType: typeof JWT_BEARER | typeof SAML2_BEARER, now: number): Promise<oauth.TokenEndpointResponse> {
  const assertion = grantType === JWT_BEARER ? await jwtBearerAssertion(ctx.provider, now) : saml2BearerAssertion(ctx.provider, now);
  const as = authorizationServer(ctx);
  const response = await oauth.genericTokenEndpointRequest(
    as,
    client(ctx),
    await clientAuthFor(ctx.provider),
    grantType,
    { ...extraParams(ctx), assertion },
    requestOptions(ctx),
  );
  return oauth.processGenericTokenEndpointResponse(as, client(ctx), response);
}
