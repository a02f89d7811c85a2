import type * as oauth from 'oauth4webapi';
import { AppError } from '../core/errors.js';
import type { GrantType } from '../registry/schemas.js';
import { clientCredentials } from './client-credentials.js';
import type { GrantContext } from './context.js';

export { refreshGrant } from './refresh.js';
export { explainGrantError } from './errors.js';
export type { GrantContext } from './context.js';

/** Grants the instance can run without a person in the loop ("Get OAuth Token" with body {}). */
export function runUnattendedGrant(grant: GrantType, ctx: GrantContext): Promise<oauth.TokenEndpointResponse> {
  switch (grant) {
    case 'client_credentials':
      return clientCredentials(ctx);
    default:
      throw new AppError('grant_not_supported', {
        message: `Grant type "${grant}" cannot be requested by this version of tokenrelay yet; use client_credentials.`,
      });
  }
}
