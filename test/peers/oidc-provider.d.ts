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
    grantId?: string;
    /** set (epoch seconds) once a refresh token / code has been used */
    consumed?: number;
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
    oidc?: { client?: { clientId: string }; params?: Record<string, unknown>; [key: string]: unknown };
    [key: string]: unknown;
  }

  /** What provider.interactionDetails() resolves with (the parts test/peers reads). */
  export interface InteractionDetails {
    uid: string;
    returnTo: string;
    grantId?: string;
    params: Record<string, unknown> & { client_id?: string; scope?: string; redirect_uri?: string };
    prompt: {
      name: string;
      reasons: string[];
      details: {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
        [key: string]: unknown;
      };
    };
    session?: { accountId?: string; uid?: string; [key: string]: unknown };
    lastSubmission?: Record<string, unknown>;
    [key: string]: unknown;
  }

  export interface InteractionResults {
    login?: { accountId: string; [key: string]: unknown };
    consent?: { grantId?: string; [key: string]: unknown };
    error?: string;
    error_description?: string;
    [key: string]: unknown;
  }

  export interface GrantInstance {
    jti: string;
    accountId?: string;
    clientId?: string;
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: string[]): void;
    addResourceScope(indicator: string, scope: string): void;
    save(ttl?: number): Promise<string>;
  }

  export interface GrantModel {
    new (properties: { accountId: string; clientId: string }): GrantInstance;
    find(id: string): Promise<GrantInstance | undefined>;
  }

  export interface ClientInstance {
    clientId: string;
    clientName?: string;
    [key: string]: unknown;
  }

  export interface ClientModel {
    find(id: string): Promise<ClientInstance | undefined>;
    /** Throws (InvalidClientMetadata) if `metadata` is not a valid client. */
    validate(metadata: ClientMetadata): Promise<void>;
  }

  export class Provider {
    constructor(issuer: string, configuration?: Configuration);
    readonly issuer: string;
    proxy: boolean;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    use(middleware: (ctx: KoaContextLike, next: () => Promise<void>) => Promise<void> | void): this;
    on(event: string, listener: (...args: any[]) => void): this;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: InteractionResults,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>;
    readonly AccessToken: TokenModel;
    readonly ClientCredentials: TokenModel;
    readonly RefreshToken: TokenModel;
    readonly AuthorizationCode: TokenModel;
    readonly Grant: GrantModel;
    readonly Client: ClientModel;
  }

  export default Provider;
}
