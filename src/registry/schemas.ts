import { z } from 'zod';

export const GRANT_TYPES = [
  'client_credentials',
  'authorization_code',
  'password',
  'urn:ietf:params:oauth:grant-type:saml2-bearer',
  'urn:ietf:params:oauth:grant-type:jwt-bearer',
] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

export const CLIENT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;
export type ClientAuthMethod = (typeof CLIENT_AUTH_METHODS)[number];

/** An absolute http(s) URL (token endpoints, connection base URLs). */
export const httpUrl = z.string().refine((s) => {
  try {
    const u = new URL(s);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}, 'must be an absolute http(s) URL');

const name = z.string().trim().min(1, 'must not be empty').max(100);
const scope = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'must be a scope token (no spaces or quotes)');

export const AssertionInput = z
  .object({
    issuer: z.string().min(1).optional(),
    subject: z.string().min(1).optional(),
    audience: z.string().min(1).optional(),
    lifetime_s: z.number().int().min(10).max(86_400).optional(),
    signing_alg: z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']).optional(),
    key_id: z.string().min(1).optional(),
    private_key_pem: z.string().min(1).optional(),
    certificate_pem: z.string().min(1).optional(),
  })
  .strict();

export const ProviderCreate = z
  .object({
    name,
    client_id: z.string().min(1),
    client_secret: z.string().min(1).optional(),
    authorization_url: httpUrl.nullable().optional(),
    token_url: httpUrl,
    revocation_url: httpUrl.nullable().optional(),
    issuer: z.string().min(1).nullable().optional(),
    default_grant_type: z.enum(GRANT_TYPES).default('client_credentials'),
    client_auth_method: z.enum(CLIENT_AUTH_METHODS).default('client_secret_basic'),
    scopes: z.array(scope).max(100).default([]),
    pkce: z.boolean().default(true),
    token_request_params: z.record(z.string(), z.string()).default({}),
    assertion: AssertionInput.nullable().optional(),
  })
  .strict();
export type ProviderCreate = z.infer<typeof ProviderCreate>;

export const ProviderPatch = z
  .object({
    name: name.optional(),
    client_id: z.string().min(1).optional(),
    client_secret: z.string().min(1).nullable().optional(),
    authorization_url: httpUrl.nullable().optional(),
    token_url: httpUrl.optional(),
    revocation_url: httpUrl.nullable().optional(),
    issuer: z.string().min(1).nullable().optional(),
    default_grant_type: z.enum(GRANT_TYPES).optional(),
    client_auth_method: z.enum(CLIENT_AUTH_METHODS).optional(),
    scopes: z.array(scope).max(100).optional(),
    pkce: z.boolean().optional(),
    token_request_params: z.record(z.string(), z.string()).optional(),
    assertion: AssertionInput.nullable().optional(),
  })
  .strict();
export type ProviderPatch = z.infer<typeof ProviderPatch>;

export const ProfileCreate = z
  .object({
    provider_id: z.string().min(1),
    name,
    grant_type: z.enum(GRANT_TYPES).optional(),
    scopes: z.array(scope).max(100).optional(),
  })
  .strict();

export const CredentialCreate = z
  .object({
    name,
    profile_id: z.string().min(1),
    use_mid_server: z.boolean().default(false),
    applies_to: z.enum(['all', 'specific']).default('all'),
    mid_servers: z.array(z.string().min(1)).max(100).default([]),
  })
  .strict();

export const CredentialPatch = z
  .object({
    name: name.optional(),
    profile_id: z.string().min(1).optional(),
    use_mid_server: z.boolean().optional(),
    applies_to: z.enum(['all', 'specific']).optional(),
    mid_servers: z.array(z.string().min(1)).max(100).optional(),
  })
  .strict();
