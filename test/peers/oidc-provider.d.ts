// Minimal ambient types for oidc-provider@9 (the package ships no typings and
// @types/oidc-provider lags behind v9). Only what test/peers uses is declared;
// widen it here when a test needs more.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface AdapterPayload {
    [key: string]: unknown;
    jti?: string;
    kind?: string;
    clientId?: string;
    scope?: string;
    exp?: number;
    iat?: number;
    grantId?: string;
    uid?: string;
    userCode?: string;
    consumed?: number;
  }

  export interface Adapter {
    upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void>;
    find(id: string): Promise<AdapterPayload | undefined>;
    findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
    findByUid(uid: string): Promise<AdapterPayload | undefined>;
    consume(id: string): Promise<void>;
    destroy(id: string): Promise<void>;
    revokeByGrantId(grantId: string): Promise<void>;
  }

  export interface ClientMetadata {
    client_id: string;
    client_secret?: string;
    token_endpoint_auth_method?: string;
    grant_types?: string[];
    response_types?: string[];
    redirect_uris?: string[];
    scope?: string;
    [key: string]: unknown;
  }

  /** Any oidc-provider token model instance (AccessToken, ClientCredentials, ...). */
  export interface TokenInstance {
    jti: string;
    kind: string;
    clientId?: string;
    scope?: string;
    exp?: number;
    iat?: number;
    accountId?: string;
    isExpired: boolean;
    [key: string]: unknown;
  }

  export interface TokenModel {
    find(value: string, options?: { ignoreExpiration?: boolean }): Promise<TokenInstance | undefined>;
  }

  export interface Configuration {
    [key: string]: unknown;
    adapter?: (name: string) => Adapter;
    clients?: ClientMetadata[];
    features?: Record<string, unknown>;
    scopes?: string[];
    ttl?: Record<string, number | ((...args: unknown[]) => number)>;
    jwks?: { keys: unknown[] };
    cookies?: { keys?: string[]; [key: string]: unknown };
  }

  export interface KoaContextLike {
    method: string;
    path: string;
    status: number;
    body: unknown;
    oidc?: { client?: { clientId: string } };
    [key: string]: unknown;
  }

  export class Provider {
    constructor(issuer: string, configuration?: Configuration);
    readonly issuer: string;
    proxy: boolean;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    use(middleware: (ctx: KoaContextLike, next: () => Promise<void>) => Promise<void> | void): this;
    on(event: string, listener: (...args: any[]) => void): this;
    readonly AccessToken: TokenModel;
    readonly ClientCredentials: TokenModel;
    readonly RefreshToken: TokenModel;
  }

  export default Provider;
}
