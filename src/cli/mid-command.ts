import fs from 'node:fs';
import path from 'node:path';
import { createLog } from '../core/log.js';
import { createMidServer, type MidServer } from '../mid/mid-server.js';
import { IdentityError } from '../mid/identity.js';
import { parseAllowlist } from '../transport/dispatcher.js';
import { fail, onSignals } from './signals.js';

/**
 * `tokenrelay mid`: loads only what a MID server needs (no Fastify, no database driver), so an
 * agent on a small host stays small.
 */
export async function runMid(opts: {
  instance: string;
  name: string;
  enroll?: string;
  data: string;
  capabilities: string;
  maxConcurrent?: string;
  allowHosts?: string;
  caFile?: string;
}): Promise<void> {
  let mid: MidServer;
  try {
    try {
      const u = new URL(opts.instance);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
    } catch {
      throw new IdentityError(`--instance must be the instance's http(s) URL, got "${opts.instance}".`);
    }
    const maxConcurrent = opts.maxConcurrent ? Number(opts.maxConcurrent) : undefined;
    if (maxConcurrent !== undefined && (!Number.isInteger(maxConcurrent) || maxConcurrent < 1 || maxConcurrent > 1000)) {
      throw new IdentityError('--max-concurrent must be a whole number between 1 and 1000.');
    }
    let caPem: string | null = null;
    if (opts.caFile) {
      try {
        caPem = fs.readFileSync(opts.caFile, 'utf8');
      } catch (err) {
        throw new IdentityError(`--ca-file ${opts.caFile}: ${(err as Error).message}`);
      }
      if (!caPem.includes('BEGIN CERTIFICATE')) throw new IdentityError(`--ca-file ${opts.caFile} holds no PEM certificate.`);
    }
    const allowHosts = opts.allowHosts ?? process.env.TOKENRELAY_MID_ALLOW_HOSTS ?? null;
    try {
      parseAllowlist(allowHosts);
    } catch (err) {
      throw new IdentityError((err as Error).message);
    }
    mid = createMidServer({
      allowHosts,
      caPem,
      instanceUrl: opts.instance,
      name: opts.name,
      enrollKey: opts.enroll ?? null,
      dataDir: path.resolve(opts.data),
      capabilities: opts.capabilities.split(',').map((c) => c.trim()).filter(Boolean),
      ...(maxConcurrent ? { maxConcurrent } : {}),
      log: createLog({ level: process.env.TOKENRELAY_LOG_LEVEL || 'info', name: 'mid' }),
    });
    await mid.start();
  } catch (err) {
    fail(err);
  }
  onSignals(() => mid.stop());
  mid.done.catch((err: Error) => fail(err));
}
