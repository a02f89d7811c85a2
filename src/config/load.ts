import path from 'node:path';
import { instanceDefaults } from './defaults.js';
import { AppError } from '../core/errors.js';

export type InstanceConfig = Readonly<
  typeof instanceDefaults & {
    publicUrl: string;
    databaseUrl: string | null;
    adminToken: string | null;
    masterKey: string | null;
    logLevel: string;
  }
>;

export interface InstanceFlags {
  port?: string | number;
  host?: string;
  data?: string;
}

function parsePort(value: string | number, from: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new AppError('invalid_request', { message: `${from} must be a port number between 0 and 65535, got "${value}".` });
  }
  return n;
}

/** A number from the environment, or null when unset; a bad value is refused, saying what is expected. */
function numberFromEnv(env: NodeJS.ProcessEnv, name: string, ok: (n: number) => boolean, expected: string): number | null {
  const raw = env[name];
  if (raw === undefined || raw === '') return null;
  const n = Number(raw);
  if (!Number.isFinite(n) || !ok(n)) throw new AppError('invalid_request', { message: `${name} must be ${expected}, got "${raw}".` });
  return n;
}

/** Flags win over the environment, which wins over defaults. The only reader of process.env for the instance. */
export function loadInstanceConfig(
  flags: InstanceFlags,
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<typeof instanceDefaults> = {},
): InstanceConfig {
  const port =
    flags.port !== undefined ? parsePort(flags.port, '--port')
    : env.TOKENRELAY_PORT ? parsePort(env.TOKENRELAY_PORT, 'TOKENRELAY_PORT')
    : instanceDefaults.port;
  const host = flags.host ?? env.TOKENRELAY_HOST ?? overrides.host ?? instanceDefaults.host;
  const dataDir = path.resolve(flags.data ?? env.TOKENRELAY_DATA_DIR ?? instanceDefaults.dataDir);
  const databaseUrl = env.TOKENRELAY_DATABASE_URL || null;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new AppError('invalid_request', {
      message: 'TOKENRELAY_DATABASE_URL must be a postgres:// URL; leave it unset to use the embedded SQLite store.',
    });
  }
  if (databaseUrl) {
    throw new AppError('invalid_request', {
      message: 'PostgreSQL support is not available in this version; unset TOKENRELAY_DATABASE_URL to use the embedded SQLite store.',
    });
  }
  const publicUrl = (env.TOKENRELAY_PUBLIC_URL || `http://localhost:${port}`).replace(/\/+$/, '');
  try {
    new URL(publicUrl);
  } catch {
    throw new AppError('invalid_request', { message: `TOKENRELAY_PUBLIC_URL "${publicUrl}" is not a URL; use e.g. https://tokenrelay.example.com.` });
  }
  const retentionDays = numberFromEnv(env, 'TOKENRELAY_ECC_RETENTION_DAYS', (d) => d > 0, 'a positive number of days');
  const eccRetentionMs = retentionDays !== null ? retentionDays * 24 * 3600_000 : (overrides.eccRetentionMs ?? instanceDefaults.eccRetentionMs);
  const readCacheMs =
    numberFromEnv(env, 'TOKENRELAY_READ_CACHE_MS', (n) => Number.isInteger(n) && n >= 0, 'a whole number of milliseconds (0 turns the cache off)') ??
    overrides.readCacheMs ??
    instanceDefaults.readCacheMs;
  return Object.freeze({
    ...instanceDefaults,
    ...overrides,
    eccRetentionMs,
    readCacheMs,
    port,
    host,
    dataDir,
    publicUrl,
    databaseUrl,
    adminToken: env.TOKENRELAY_ADMIN_TOKEN || null,
    masterKey: env.TOKENRELAY_MASTER_KEY || null,
    logLevel: env.TOKENRELAY_LOG_LEVEL || 'info',
  });
}
