import type { Kysely } from 'kysely';

/**
 * The REST step (IntegrationHub): connections (the alias: base URL, credential, MID servers,
 * retry policy, limits) and one row per execution for the record; per-record ECC leases.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // Each output record carries its own lease length: a REST step may run far longer than a token request.
  await db.schema.alterTable('ecc_queue').addColumn('lease_ms', 'integer').execute();

  await db.schema
    .createTable('connections')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('base_url', 'text', (c) => c.notNull())
    .addColumn('credential_id', 'text', (c) => c.references('credentials.id'))
    .addColumn('use_mid_server', 'integer', (c) => c.notNull())
    .addColumn('mid_servers', 'text', (c) => c.notNull())
    .addColumn('timeout_ms', 'integer', (c) => c.notNull())
    .addColumn('max_response_bytes', 'integer', (c) => c.notNull())
    .addColumn('retry_policy', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('rest_executions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('connection_id', 'text', (c) => c.notNull().references('connections.id').onDelete('cascade'))
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('status', 'integer')
    .addColumn('duration_ms', 'integer', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('mid_server', 'text')
    .addColumn('ecc_output_ids', 'text', (c) => c.notNull())
    .addColumn('error_code', 'text')
    .addColumn('error_message', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('rest_executions_connection').on('rest_executions').columns(['connection_id', 'id']).execute();
}
