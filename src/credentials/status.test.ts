import { describe, expect, it } from 'vitest';
import { credentialStatus, NOT_AVAILABLE } from './status.js';
import type { TokenRow } from '../tokens/store.js';

const now = Date.UTC(2026, 11, 3, 12, 0, 0);
const row = (token_type: 'access' | 'refresh', expires_at: number | null): TokenRow => ({
  id: token_type, credential_id: 'c', token_type, value_sealed: 'v1.x.y', expires_at, scope: null, created_at: now, refresh_at: null,
});
const noError = { code: null, message: null, at: null };
const DAY = 24 * 3600_000;

describe('credential status messages (the reference\'s banner)', () => {
  it('says the seed\'s words before any token', () => {
    expect(credentialStatus([], noError, now)).toMatchObject({ tokens_available: false, message: NOT_AVAILABLE, access_token_expires_at: null, needs_reauth: false });
    expect(NOT_AVAILABLE).toBe(
      "OAuth Access or Refresh tokens are not available. Verify the OAuth configuration and click the 'Get OAuth Token' link below to request a new token.",
    );
  });

  it('an access token under 30 days: "will expire soon at <time>"', () => {
    const s = credentialStatus([row('access', now + 3600_000)], noError, now);
    expect(s.message).toBe('OAuth Access token is available but will expire soon at 2026-12-03T13:00:00.000Z');
    expect(s.tokens_available).toBe(true);
  });

  it('far from expiry, expired, and the refresh token speaks first', () => {
    expect(credentialStatus([row('access', now + 40 * DAY)], noError, now).message).toBe(
      'OAuth Access token is available and will expire at 2027-01-12T12:00:00.000Z.',
    );
    expect(credentialStatus([row('access', now - 1)], noError, now)).toMatchObject({ tokens_available: false, message: expect.stringMatching(/^OAuth Access token is expired\. Verify/) });
    expect(credentialStatus([row('access', now - 1), row('refresh', now + 90 * DAY)], noError, now)).toMatchObject({
      tokens_available: true,
      message: 'OAuth Refresh token is available and will expire at 2027-03-03T12:00:00.000Z.',
    });
  });

  it('after a failure with no usable token, says what failed and what to do', () => {
    const s = credentialStatus([], { code: 'token_endpoint_error', message: 'The token endpoint refused "invalid_client".', at: now }, now);
    expect(s.message).toMatch(/^The last token request failed: The token endpoint refused "invalid_client"\. Verify the OAuth configuration and click the 'Get OAuth Token' link/);
    expect(s.last_error).toMatchObject({ code: 'token_endpoint_error' });
  });
});
