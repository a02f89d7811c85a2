import { randomBytes } from 'node:crypto';

/**
 * Time-ordered identifiers (UUID version 7, RFC 9562 §5.7) so that sorting by id is sorting by
 * creation, on SQLite and PostgreSQL alike. A per-process counter in the "rand_a" bits keeps ids
 * made in the same millisecond in order (RFC 9562 §6.2, method 1).
 */
let lastMs = 0;
let counter = 0;

export function newId(now: number = Date.now()): string {
  if (now <= lastMs) {
    counter++;
    if (counter > 0xfff) {
      lastMs++;
      counter = 0;
    }
    now = lastMs;
  } else {
    lastMs = now;
    counter = 0;
  }
  const b = randomBytes(16);
  b.writeUIntBE(now, 0, 6);
  b[6] = 0x70 | (counter >> 8);
  b[7] = counter & 0xff;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** An opaque random secret (enrollment keys, admin tokens, lease owners). */
export const randomToken = (bytes = 32): string => randomBytes(bytes).toString('base64url');
