import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { accessExpiry, scheduleRefresh } from './store.js';

const now = Date.UTC(2026, 11, 3, 12, 0, 0);

describe('access token expiry', () => {
  it('uses expires_in when the reply has it', () => {
    expect(accessExpiry({ access_token: 'x', token_type: 'bearer', expires_in: 600 }, now, 3600)).toBe(now + 600_000);
  });

  it('without expires_in, uses the JWT exp of a JWT access token', async () => {
    const exp = Math.floor(now / 1000) + 900;
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(exp).sign(new Uint8Array(32));
    expect(accessExpiry({ access_token: jwt, token_type: 'bearer' }, now, 3600)).toBe(exp * 1000);
  });

  it('without either, uses the configured default', () => {
    expect(accessExpiry({ access_token: 'opaque', token_type: 'bearer' }, now, 3600)).toBe(now + 3_600_000);
  });
});

describe('refresh schedule', () => {
  it('refreshes after the share of the lifetime, jittered by at most ±5 % of it', () => {
    const life = 60_000;
    expect(scheduleRefresh(now, now + life, 0.75, () => 0.5)).toBe(now + 45_000);
    expect(scheduleRefresh(now, now + life, 0.75, () => 0)).toBe(now + 42_000);
    expect(scheduleRefresh(now, now + life, 0.75, () => 1)).toBe(now + 48_000);
  });
});
