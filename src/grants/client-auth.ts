import * as oauth from 'oauth4webapi';
import { importPKCS8 } from 'jose';
import { AppError } from '../core/errors.js';
import type { ProviderSecrets } from '../registry/providers.js';

/**
 * How the client authenticates at the token endpoint (RFC 6749 §2.3, RFC 7523 §2.2), mapped
 * onto oauth4webapi's ClientAuth implementations; nothing here builds a header by hand.
 */
export async function clientAuthFor(p: ProviderSecrets): Promise<oauth.ClientAuth> {
  switch (p.row.client_auth_method) {
    case 'client_secret_basic':
      return oauth.ClientSecretBasic(requireSecret(p));
    case 'client_secret_post':
      return oauth.ClientSecretPost(requireSecret(p));
    case 'none':
      return oauth.None();
    case 'private_key_jwt': {
      if (!p.privateKeyPem) {
        throw new AppError('invalid_request', { message: `Provider "${p.row.name}" uses private_key_jwt but has no assertion.private_key_pem; PATCH it in.` });
      }
      const alg = p.assertion?.signing_alg ?? 'RS256';
      const key = await importPKCS8(p.privateKeyPem, alg);
      return oauth.PrivateKeyJwt({ key, ...(p.assertion?.key_id ? { kid: p.assertion.key_id } : {}) } as oauth.PrivateKey);
    }
    default:
      throw new AppError('invalid_request', { message: `Provider "${p.row.name}" has an unknown client_auth_method "${p.row.client_auth_method}".` });
  }
}

function requireSecret(p: ProviderSecrets): string {
  if (!p.clientSecret) {
    throw new AppError('invalid_request', {
      message: `Provider "${p.row.name}" uses ${p.row.client_auth_method} but has no client secret; PATCH /api/v1/oauth_providers/${p.row.id} with "client_secret".`,
    });
  }
  return p.clientSecret;
}
