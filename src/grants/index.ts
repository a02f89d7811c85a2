import type * as oauth from 'oauth4webapi';
import { AppError } from '../core/errors.js';
import type { GrantType } from '../registry/schemas.js';
import { clientCredentials } from './client-credentials.js';
import { assertionGrant, JWT_BEARER, SAML2_BEARER } from './assertion-grants.js';
import type { GrantContext } from './context.js';

export { refreshGrant } from './refresh.js';
export { passwordGrant } from './password.js';
export { authorizeUrl, exchangeCode } from './authorization-code.js';
export { revokeToken } from './revoke.js';
export { explainGrantError } from './errors.js';
export type { GrantContext } from './context.js';

/** Grants the instance runs without a person: client credentials and the two assertion grants. */
export const isUnattended = (grant: string): boolean => grant === 'client_credentials' || grant === JWT_BEARER || grant === SAML2_BEARER;

export function runUnattendedGrant(grant: GrantType, ctx: GrantContext, now: number): Promise<oauth.TokenEndpointResponse> {
  switch (grant) {
    case 'client_credentials':
      return clientCredentials(ctx);
    case JWT_BEARER:
    case SAML2_BEARER:
      return assertionGrant(ctx, grant, now);
    default:
      throw new AppError('grant_not_supported', {
        message: `Grant type "${grant}" needs a person: use the 'Get OAuth Token' link (authorization_code redirects to the provider; password asks for the username and password).`,
      });
  }
}
