import { CompactEncrypt, compactDecrypt, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';

/**
 * End-to-end encryption of ECC payloads: an output record is encrypted to the chosen MID
 * server's public key, an input record to the instance's. JWE compact, ECDH-ES on P-256 with
 * A256GCM (RFC 7518 §4.6): the queue and the database only ever see ciphertext.
 */
export const ENVELOPE_ALG = 'ECDH-ES';
export const ENVELOPE_ENC = 'A256GCM';

export type PublicJwk = JWK;

const publicKeys = new Map<string, CryptoKey>();

async function publicKeyFor(jwk: JWK): Promise<CryptoKey> {
  const cacheKey = `${jwk.x}.${jwk.y}`;
  let key = publicKeys.get(cacheKey);
  if (!key) {
    key = (await importJWK(jwk, ENVELOPE_ALG)) as CryptoKey;
    if (publicKeys.size > 10_000) publicKeys.clear();
    publicKeys.set(cacheKey, key);
  }
  return key;
}

export async function seal(recipient: JWK, plaintext: Uint8Array | string, kid?: string): Promise<string> {
  const bytes = typeof plaintext === 'string' ? new TextEncoder().encode(plaintext) : plaintext;
  return new CompactEncrypt(bytes)
    .setProtectedHeader({ alg: ENVELOPE_ALG, enc: ENVELOPE_ENC, ...(kid ? { kid } : {}) })
    .encrypt(await publicKeyFor(recipient));
}

export async function open(privateKey: CryptoKey, jwe: string): Promise<Uint8Array> {
  const { plaintext } = await compactDecrypt(jwe, privateKey, {
    keyManagementAlgorithms: [ENVELOPE_ALG],
    contentEncryptionAlgorithms: [ENVELOPE_ENC],
  });
  return plaintext;
}

export async function generateEnvelopeKeyPair(): Promise<{ publicJwk: JWK; privateJwk: JWK }> {
  const { publicKey, privateKey } = await generateKeyPair(ENVELOPE_ALG, { crv: 'P-256', extractable: true });
  return { publicJwk: await exportJWK(publicKey), privateJwk: await exportJWK(privateKey) };
}

export const importPrivate = async (jwk: JWK, alg: string): Promise<CryptoKey> => (await importJWK(jwk, alg)) as CryptoKey;
