import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../core/errors.js';

/**
 * Secrets and tokens at rest: AES-256-GCM under the master key, always on. The additional
 * authenticated data binds a ciphertext to its place (`table:column:row id`), so a sealed value
 * copied into another row or column does not open.
 *
 * Format: `v1.<key id>.<base64url(iv ‖ ciphertext ‖ tag)>`; the key id (first 8 hex digits of
 * SHA-256 of the key) says which master key sealed it, for rotation.
 */
export type Sealed = string & { readonly __sealed: unique symbol };

export interface Vault {
  seal(plaintext: string, aad: string): Sealed;
  open(sealed: string, aad: string): string;
  readonly keyId: string;
}

export function createVault(masterKey: Buffer): Vault {
  if (masterKey.length !== 32) throw new Error('master key must be 32 bytes');
  const keyId = createHash('sha256').update(masterKey).digest('hex').slice(0, 8);
  return {
    keyId,
    seal(plaintext, aad) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', masterKey, iv);
      c.setAAD(Buffer.from(aad));
      const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
      return `v1.${keyId}.${Buffer.concat([iv, ct, c.getAuthTag()]).toString('base64url')}` as Sealed;
    },
    open(sealed, aad) {
      const [v, kid, body] = sealed.split('.');
      if (v !== 'v1' || !body) throw new AppError('internal', { message: 'A stored secret is not in a known format.' });
      if (kid !== keyId) {
        throw new AppError('internal', {
          message: `A stored secret was sealed with master key ${kid}, but the instance runs with key ${keyId}. Start it with the original TOKENRELAY_MASTER_KEY.`,
        });
      }
      const raw = Buffer.from(body, 'base64url');
      const d = createDecipheriv('aes-256-gcm', masterKey, raw.subarray(0, 12));
      d.setAAD(Buffer.from(aad));
      d.setAuthTag(raw.subarray(raw.length - 16));
      try {
        return Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]).toString('utf8');
      } catch (err) {
        throw new AppError('internal', { message: 'A stored secret failed its integrity check; it was altered or moved.', cause: err });
      }
    },
  };
}

/**
 * The master key: TOKENRELAY_MASTER_KEY (base64 of 32 bytes) if given, else `master.key` in the
 * data dir, generated on first start with mode 0600.
 */
export function loadMasterKey(opts: { fromEnv: string | null; dataDir: string }): { key: Buffer; generated: boolean; file: string | null } {
  if (opts.fromEnv) {
    const key = Buffer.from(opts.fromEnv, 'base64');
    if (key.length !== 32) {
      throw new AppError('invalid_request', {
        message: `TOKENRELAY_MASTER_KEY must be the base64 of exactly 32 bytes (got ${key.length}); generate one with: openssl rand -base64 32`,
      });
    }
    return { key, generated: false, file: null };
  }
  const file = path.join(opts.dataDir, 'master.key');
  fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  try {
    const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new AppError('invalid_request', { message: `${file} does not hold a 32-byte base64 key. Restore it from backup.` });
    return { key, generated: false, file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = randomBytes(32);
  // 'wx': never overwrite a key another process just wrote.
  fs.writeFileSync(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return { key, generated: true, file };
}
