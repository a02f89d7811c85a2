import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createVault, loadMasterKey } from './vault.js';
import { generateEnvelopeKeyPair, importPrivate, open, seal, ENVELOPE_ALG } from './envelope.js';

describe('vault (AES-256-GCM at rest)', () => {
  const vault = createVault(randomBytes(32));

  it('round-trips and never contains the plaintext', () => {
    const sealed = vault.seal('s3cr3t-client-secret', 'oauth_providers:client_secret:1');
    expect(sealed).not.toContain('s3cr3t');
    expect(sealed.startsWith(`v1.${vault.keyId}.`)).toBe(true);
    expect(vault.open(sealed, 'oauth_providers:client_secret:1')).toBe('s3cr3t-client-secret');
  });

  it('binds a value to its place: another row or column does not open it', () => {
    const sealed = vault.seal('token', 'oauth_tokens:value:a:access');
    expect(() => vault.open(sealed, 'oauth_tokens:value:b:access')).toThrow(/integrity/);
  });

  it('a tampered value does not open', () => {
    const sealed = vault.seal('token', 'x');
    const raw = Buffer.from(sealed.split('.')[2]!, 'base64url');
    raw[raw.length - 20]! ^= 1;
    expect(() => vault.open(`v1.${vault.keyId}.${raw.toString('base64url')}`, 'x')).toThrow(/integrity/);
  });

  it('names the key when a value was sealed under another master key', () => {
    const other = createVault(randomBytes(32));
    expect(() => other.open(vault.seal('t', 'x'), 'x')).toThrow(/sealed with master key/);
  });

  it('generates the master key once into the data dir with mode 0600, refuses a bad env key', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenrelay-key-'));
    const a = loadMasterKey({ fromEnv: null, dataDir: dir });
    expect(a.generated).toBe(true);
    expect(fs.statSync(path.join(dir, 'master.key')).mode & 0o777).toBe(0o600);
    const b = loadMasterKey({ fromEnv: null, dataDir: dir });
    expect(b.generated).toBe(false);
    expect(b.key.equals(a.key)).toBe(true);
    expect(() => loadMasterKey({ fromEnv: Buffer.alloc(16).toString('base64'), dataDir: dir })).toThrow(/32 bytes/);
    fs.rmSync(dir, { recursive: true });
  });
});

describe('ECC payload envelope (JWE ECDH-ES)', () => {
  it('only the recipient opens it', async () => {
    const mid = await generateEnvelopeKeyPair();
    const other = await generateEnvelopeKeyPair();
    const jwe = await seal(mid.publicJwk, '{"client_secret":"abc"}');
    expect(jwe).not.toContain('abc');
    const pt = await open(await importPrivate(mid.privateJwk, ENVELOPE_ALG), jwe);
    expect(new TextDecoder().decode(pt)).toBe('{"client_secret":"abc"}');
    await expect(open(await importPrivate(other.privateJwk, ENVELOPE_ALG), jwe)).rejects.toThrow();
  });
});
