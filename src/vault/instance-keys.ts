import type { JWK } from 'jose';
import type { Db } from '../db/schema.js';
import type { Vault } from './vault.js';
import { generateEnvelopeKeyPair, importPrivate, ENVELOPE_ALG } from './envelope.js';

/**
 * The instance's own envelope key pair: MID servers encrypt their results to its public half.
 * The private half lives in the settings table, sealed under the master key, so every instance
 * node sharing the database has the same one. Created once (insert-if-absent, then re-read).
 */
const KEY = 'instance_enc_key';
const aad = `settings:value:${KEY}`;

export async function loadInstanceKeys(db: Db, vault: Vault): Promise<{ publicJwk: JWK; privateKey: CryptoKey }> {
  let row = await db.selectFrom('settings').select('value').where('key', '=', KEY).executeTakeFirst();
  if (!row) {
    const { privateJwk } = await generateEnvelopeKeyPair();
    await db
      .insertInto('settings')
      .values({ key: KEY, value: vault.seal(JSON.stringify(privateJwk), aad) })
      .onConflict((oc) => oc.column('key').doNothing())
      .execute();
    row = await db.selectFrom('settings').select('value').where('key', '=', KEY).executeTakeFirstOrThrow();
  }
  const privateJwk = JSON.parse(vault.open(row.value, aad)) as JWK;
  const { d: _d, ...publicJwk } = privateJwk;
  return { publicJwk, privateKey: await importPrivate(privateJwk, ENVELOPE_ALG) };
}
