import type { TokenRow } from '../tokens/store.js';
import { iso } from '../core/clock.js';

/**
 * The credential banner, in the reference's words and order: the refresh token speaks first,
 * then the access token; expired, "will expire soon" (under 30 days), or "available and will
 * expire"; and the seed's message when there is neither. After a failed request with no
 * usable token, the failure is said instead, with what to do.
 */
export const NOT_AVAILABLE =
  "OAuth Access or Refresh tokens are not available. Verify the OAuth configuration and click the 'Get OAuth Token' link below to request a new token.";
const VERIFY = "Verify the OAuth configuration and click the 'Get OAuth Token' link below to request a new token.";
const SOON_MS = 30 * 24 * 3600_000;

export interface CredentialStatus {
  tokens_available: boolean;
  message: string;
  needs_reauth: boolean;
  next_refresh_attempt_at: string | null;
  access_token_expires_at: string | null;
  refresh_token_expires_at: string | null;
  last_error: { code: string; message: string; at: string | null } | null;
}

export interface StatusFacts {
  code: string | null;
  message: string | null;
  at: number | null;
  /** The provider refused the refresh token (invalid_grant): a person must get a new token. */
  needsReauth?: boolean;
  /** When the scheduler tries again after a failure. */
  nextAttemptAt?: number | null;
}

export function credentialStatus(rows: TokenRow[], lastError: StatusFacts, now: number): CredentialStatus {
  const access = rows.find((r) => r.token_type === 'access');
  const refresh = rows.find((r) => r.token_type === 'refresh');
  const live = (r: TokenRow | undefined) => !!r && (r.expires_at === null || r.expires_at > now);
  const err = lastError.code && lastError.message ? { code: lastError.code, message: lastError.message, at: iso(lastError.at) } : null;
  let message: string;
  if (refresh) message = describe('Refresh', refresh, now);
  else if (access) message = describe('Access', access, now);
  else message = err ? `The last token request failed: ${err.message} ${VERIFY}` : NOT_AVAILABLE;
  if (err && !live(access) && !live(refresh) && (access || refresh)) message = `The last token request failed: ${err.message} ${VERIFY}`;
  if (lastError.needsReauth) {
    message = `The provider no longer accepts the refresh token${err ? ` (${err.message})` : ''}. Click the 'Get OAuth Token' link below to request a new token.`;
  } else if (err && lastError.nextAttemptAt) {
    message += ` The last automatic refresh failed: ${err.message} Next attempt at ${iso(lastError.nextAttemptAt)}.`;
  }
  return {
    tokens_available: live(access) || live(refresh),
    message,
    needs_reauth: !!lastError.needsReauth,
    next_refresh_attempt_at: iso(lastError.nextAttemptAt ?? null),
    access_token_expires_at: iso(access?.expires_at),
    refresh_token_expires_at: iso(refresh?.expires_at),
    last_error: err,
  };
}

function describe(kind: 'Access' | 'Refresh', r: TokenRow, now: number): string {
  if (r.expires_at === null) return `OAuth ${kind} token is available and does not expire.`;
  const at = iso(r.expires_at);
  const left = r.expires_at - now;
  if (left <= 0) return `OAuth ${kind} token is expired. ${VERIFY}`;
  if (left < SOON_MS) return `OAuth ${kind} token is available but will expire soon at ${at}`;
  return `OAuth ${kind} token is available and will expire at ${at}.`;
}
