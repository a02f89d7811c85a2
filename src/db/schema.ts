import type { Generated, Kysely } from 'kysely';

/**
 * Row types. Portable on purpose: times are epoch milliseconds (bigint), booleans are 0/1
 * integers, lists are JSON text, ids are time-ordered UUID strings made by the application.
 * Columns ending in `_sealed` hold vault ciphertext, never plain text.
 */
export interface SettingsTable {
  key: string;
  value: string;
}

export interface ProvidersTable {
  id: string;
  name: string;
  client_id: string;
  client_secret_sealed: string | null;
  authorization_url: string | null;
  token_url: string;
  revocation_url: string | null;
  default_grant_type: string;
  client_auth_method: string;
  scopes: string;
  pkce: number;
  token_request_params: string;
  assertion: string | null;
  assertion_private_key_sealed: string | null;
  issuer: string | null;
  created_at: number;
  updated_at: number;
}

export interface ProfilesTable {
  id: string;
  provider_id: string;
  name: string;
  grant_type: string;
  scopes: string;
  is_default: number;
  created_at: number;
}

export interface CredentialsTable {
  id: string;
  name: string;
  profile_id: string;
  use_mid_server: number;
  applies_to: string;
  mid_servers: string;
  last_error_code: string | null;
  last_error_message: string | null;
  last_error_at: number | null;
  created_at: number;
  updated_at: number;
  refresh_failures: number;
  next_refresh_attempt_at: number | null;
  needs_reauth: number;
}

export interface OAuthTokensTable {
  id: string;
  credential_id: string;
  token_type: 'access' | 'refresh';
  value_sealed: string;
  expires_at: number | null;
  scope: string | null;
  created_at: number;
  /** access tokens: when the scheduler refreshes it; null for refresh tokens. */
  refresh_at: number | null;
}

export interface OAuthStatesTable {
  id: string;
  state_hash: string;
  kind: 'authorization_code' | 'password';
  credential_id: string;
  requested_by: string;
  code_verifier_sealed: string | null;
  redirect_uri: string | null;
  expires_at: number;
  used_at: number | null;
  created_at: number;
}

export interface TokenLeasesTable {
  credential_id: string;
  owner: string;
  expires_at: number;
}

export interface MidServersTable {
  id: string;
  name: string;
  sign_jwk: string;
  enc_jwk: string;
  validated: number;
  capabilities: string;
  host: string | null;
  version: string | null;
  last_heartbeat_at: number | null;
  created_at: number;
  paused: number;
  rekey_requested: number;
}

export interface EnrollmentKeysTable {
  id: string;
  key_hash: string;
  expires_at: number;
  used_at: number | null;
  used_by: string | null;
  created_at: number;
}

export type EccState = 'ready' | 'processing' | 'processed' | 'error';

export interface EccQueueTable {
  id: string;
  queue: 'output' | 'input';
  topic: string;
  name: string;
  source: string;
  agent: string;
  state: EccState;
  priority: number;
  response_to: string | null;
  error_string: string | null;
  payload: string | null;
  claimed_by: string | null;
  lease_expires_at: number | null;
  attempts: number;
  max_attempts: number;
  /** How long a claim of this record lasts (null: the claimer's default). */
  lease_ms: number | null;
  /** Unused since payloads are sealed with per-MID session keys the instance holds (failover opens the payload itself). */
  request_sealed: string | null;
  /** Output records: the MID selection it was made under ({appliesTo, names}). */
  mid_choice: string | null;
  /** When the record was last given to its current agent (enqueue or failover). */
  assigned_at: number | null;
  created_at: number;
  processed_at: number | null;
}

export interface ConnectionsTable {
  id: string;
  name: string;
  base_url: string;
  credential_id: string | null;
  use_mid_server: number;
  mid_servers: string;
  timeout_ms: number;
  max_response_bytes: number;
  retry_policy: string;
  created_at: number;
  updated_at: number;
}

export interface RestExecutionsTable {
  id: string;
  connection_id: string;
  method: string;
  url: string;
  status: number | null;
  duration_ms: number;
  attempts: number;
  mid_server: string | null;
  ecc_output_ids: string;
  error_code: string | null;
  error_message: string | null;
  created_at: number;
}

export interface Database {
  connections: ConnectionsTable;
  rest_executions: RestExecutionsTable;
  settings: SettingsTable;
  oauth_providers: ProvidersTable;
  oauth_profiles: ProfilesTable;
  credentials: CredentialsTable;
  oauth_tokens: OAuthTokensTable;
  oauth_states: OAuthStatesTable;
  token_leases: TokenLeasesTable;
  mid_servers: MidServersTable;
  mid_enrollment_keys: EnrollmentKeysTable;
  ecc_queue: EccQueueTable;
}

export type Db = Kysely<Database>;
// Generated is re-exported for later migrations that add serial columns.
export type { Generated };
