import fs from 'node:fs';
import path from 'node:path';
import { randomToken } from '../core/ids.js';

/**
 * The bootstrap admin token: TOKENRELAY_ADMIN_TOKEN if set; else `admin-token` in the data dir,
 * generated on first start (mode 0600). Only its hash is kept in memory by the HTTP layer.
 */
export function loadAdminToken(opts: { fromEnv: string | null; dataDir: string }): { token: string; generated: boolean; file: string | null } {
  if (opts.fromEnv) return { token: opts.fromEnv, generated: false, file: null };
  const file = path.join(opts.dataDir, 'admin-token');
  try {
    const token = fs.readFileSync(file, 'utf8').trim();
    if (token) return { token, generated: false, file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const token = `tra_${randomToken(32)}`;
  fs.writeFileSync(file, token + '\n', { mode: 0o600 });
  return { token, generated: true, file };
}
