import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDb, type OpenedDb } from '../../src/db/connect.js';
import type { Clock } from '../../src/core/clock.js';

/** A fresh SQLite database file per test file (real engine, real WAL), removed afterwards. */
export async function freshSqlite(): Promise<OpenedDb & { dir: string; dispose(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenrelay-db-'));
  const opened = await openDb({ sqlitePath: path.join(dir, 'test.sqlite') });
  return {
    ...opened,
    dir,
    async dispose() {
      await opened.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A clock the test moves by hand: rows are backdated by moving time, never by sleeping. */
export function testClock(start = Date.UTC(2026, 11, 3, 12, 0, 0)): Clock & { advance(ms: number): void; set(ms: number): void } {
  let t = start;
  return {
    now: () => t,
    advance(ms) {
      t += ms;
    },
    set(ms) {
      t = ms;
    },
  };
}
