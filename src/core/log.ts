import { pino, type Logger } from 'pino';

export type Log = Logger;

/**
 * Field names whose values must never reach a log line. Secrets are also kept out of log calls
 * by construction (services log ids, not objects); this list is the second line of defence.
 */
const redactPaths = [
  'client_secret', 'clientSecret', 'password', 'access_token', 'accessToken', 'refresh_token', 'refreshToken',
  'private_key_pem', 'privateKey', 'assertion', 'client_assertion', 'authorization', 'Authorization', 'payload',
  'code_verifier', 'enrollment_key', 'admin_token',
].flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

export function createLog(opts: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Log {
  return pino(
    {
      level: opts.level ?? 'info',
      name: opts.name,
      redact: { paths: [...redactPaths, 'req.headers.authorization', 'req.headers.cookie'], censor: '[redacted]' },
      base: undefined,
    },
    opts.destination as pino.DestinationStream | undefined,
  );
}

export const silentLog = (): Log => pino({ level: 'silent' });
