import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { generateEnvelopeKeyPair } from '../vault/envelope.js';
import { VERSION } from '../core/version.js';
import { EnrollResponse } from '../core/wire.js';
import type { InstanceClient } from './instance-client.js';

/**
 * A MID server's identity: its name, the id the instance gave it, and two key pairs it made
 * itself (ES256 to sign its calls, ECDH-ES to receive encrypted work). Kept in the data dir
 * with mode 0600; the private halves never leave it.
 */
export interface MidIdentity {
  version: 1;
  instance_url: string;
  name: string;
  mid_id: string;
  sign_private_jwk: JWK;
  enc_private_jwk: JWK;
  instance_enc_jwk: JWK;
}

export class IdentityError extends Error {
  override name = 'IdentityError';
}

export const identityFile = (dataDir: string) => path.join(dataDir, 'mid-identity.json');

export function readIdentity(dataDir: string): MidIdentity | null {
  try {
    return JSON.parse(fs.readFileSync(identityFile(dataDir), 'utf8')) as MidIdentity;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new IdentityError(`Cannot read ${identityFile(dataDir)}: ${(err as Error).message}. Remove it and enroll again with a new key.`);
  }
}

export function writeIdentity(dataDir: string, id: MidIdentity): void {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = identityFile(dataDir);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(id, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
}

export async function enroll(
  client: InstanceClient,
  opts: { instanceUrl: string; name: string; key: string; dataDir: string; capabilities: string[] },
): Promise<MidIdentity> {
  const sign = await generateKeyPair('ES256', { extractable: true });
  const enc = await generateEnvelopeKeyPair();
  const signPublic = await exportJWK(sign.publicKey);
  const res = EnrollResponse.parse(
    await client.call('/agent/v1/enroll', {
      enrollment_key: opts.key,
      name: opts.name,
      sign_jwk: signPublic,
      enc_jwk: enc.publicJwk,
      host: os.hostname(),
      version: VERSION,
      capabilities: opts.capabilities,
    }, { auth: false }),
  );
  const identity: MidIdentity = {
    version: 1,
    instance_url: opts.instanceUrl,
    name: res.name,
    mid_id: res.mid_id,
    sign_private_jwk: await exportJWK(sign.privateKey),
    enc_private_jwk: enc.privateJwk,
    instance_enc_jwk: res.instance_enc_jwk as JWK,
  };
  writeIdentity(opts.dataDir, identity);
  return identity;
}
