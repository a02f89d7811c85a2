import type { Kysely } from 'kysely';

/**
 * The MID server fleet: pause/resume and rekey on MID servers; on ECC output records, what a
 * failover needs to move a record to another MID server — the request sealed under the master
 * key (the payload is encrypted to one MID server's key and cannot be re-addressed otherwise),
 * the selection it was made under, and when it was last assigned.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('mid_servers').addColumn('paused', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('mid_servers').addColumn('rekey_requested', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('ecc_queue').addColumn('request_sealed', 'text').execute();
  await db.schema.alterTable('ecc_queue').addColumn('mid_choice', 'text').execute();
  await db.schema.alterTable('ecc_queue').addColumn('assigned_at', 'bigint').execute();
}
