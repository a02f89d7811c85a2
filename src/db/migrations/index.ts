import type { Migration, MigrationProvider } from 'kysely';
import * as m001 from './001-initial.js';
import * as m002 from './002-grants-and-refresh.js';
import * as m003 from './003-rest-step.js';
import * as m004 from './004-fleet.js';

/** Migrations are compiled in, not read from disk, so the built CLI runs from anywhere. */
export const migrationProvider: MigrationProvider = {
  async getMigrations(): Promise<Record<string, Migration>> {
    return { '001-initial': m001, '002-grants-and-refresh': m002, '003-rest-step': m003, '004-fleet': m004 };
  },
};
