import type { Kysely } from 'kysely';

/**
 * Grants with a person in the loop, and proactive refresh:
 * - oauth_states: single-use, expiring tickets for the authorization-code redirect (`state`)
 *   and the password login screen, bound to a credential and to who asked;
 * - oauth_tokens.refresh_at: when the scheduler refreshes the access token (a share of its
 *   lifetime, jittered), indexed for the scheduler's scan;
 * - credentials: the refresh backoff and the "needs Get OAuth Token" flag;
 * - oauth_providers.issuer: the authorization server's issuer identifier, checked in ID tokens.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('oauth_states')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('state_hash', 'text', (c) => c.notNull().unique())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('credential_id', 'text', (c) => c.notNull().references('credentials.id').onDelete('cascade'))
    .addColumn('requested_by', 'text', (c) => c.notNull())
    .addColumn('code_verifier_sealed', 'text')
    .addColumn('redirect_uri', 'text')
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema.alterTable('oauth_tokens').addColumn('refresh_at', 'bigint').execute();
  await db.schema.createIndex('oauth_tokens_refresh_at').on('oauth_tokens').columns(['token_type', 'refresh_at']).execute();

  await db.schema.alterTable('oauth_providers').addColumn('issuer', 'text').execute();
  await db.schema.alterTable('credentials').addColumn('refresh_failures', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('credentials').addColumn('next_refresh_attempt_at', 'bigint').execute();
  await db.schema.alterTable('credentials').addColumn('needs_reauth', 'integer', (c) => c.notNull().defaultTo(0)).execute();
}
