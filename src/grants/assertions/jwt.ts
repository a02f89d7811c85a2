import { SignJWT, importPKCS8 } from 'jose';
import { randomUUID } from 'node:crypto';
import { AppError } from '../../core/errors.js';
import type { ProviderSecrets } from '../../registry/providers.js';

/**
 * The JWT for the JWT-bearer grant (RFC 7523 §2.1, §3): signed with the provider's key by jose.
 * iss defaults to the client id, aud to the token URL (§3: the token endpoint URL is a value the
 * authorization server must accept), a fresh jti every time so the server can refuse replays.
 */
export async function jwtBearerAssertion(p: ProviderSecrets, now: number): Promise<string> {
  const a = p.assertion ?? {};
  if (!p.privateKeyPem) {
    throw new AppError('invalid_request', { message: `Provider "${p.row.name}" has no assertion.private_key_pem; the JWT-bearer grant signs with it.` });
  }
  if (!a.subject) {
    throw new AppError('invalid_request', { message: `Provider "${p.row.name}" has no assertion.subject; the JWT-bearer grant needs the subject (the user or service the token is for).` });
  }
  const alg = a.signing_alg ?? 'RS256';
  const key = await importPKCS8(p.privateKeyPem, alg).catch((err: Error) => {
    throw new AppError('invalid_request', { message: `Provider "${p.row.name}": the private key cannot be used for ${alg} (${err.message}). Check assertion.signing_alg and the key.` });
  });
  const iat = Math.floor(now / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg, typ: 'JWT', ...(a.key_id ? { kid: a.key_id } : {}) })
    .setIssuer(a.issuer ?? p.row.client_id)
    .setSubject(a.subject)
    .setAudience(a.audience ?? p.row.token_url)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(iat + (a.lifetime_s ?? 300))
    .setJti(randomUUID())
    .sign(key);
}
