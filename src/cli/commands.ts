import fs from 'node:fs';
import path from 'node:path';
import { loadInstanceConfig, type InstanceFlags } from '../config/load.js';
import { createInstance, type Instance } from '../instance.js';
import { createLog } from '../core/log.js';
import { fail, onSignals } from './signals.js';
import { createMidServer, type MidServer } from '../mid/mid-server.js';
import { enroll, identityFile, readIdentity } from '../mid/identity.js';
import { createInstanceClient } from '../mid/instance-client.js';
import { createEnrollmentKey } from '../mid-servers/enrollment.js';
import { getMid, setValidated, deleteMid } from '../mid-servers/registry.js';

/** `tokenrelay up` and `tokenrelay instance`: flags → config → start. */
function banner(instance: Instance, extra: string[] = []): void {
  const c = instance.services.config;
  const lines = [
    '',
    `  tokenrelay instance is up`,
    `  Console and API:  ${c.publicUrl}/   (REST API under ${c.publicUrl}/api/v1)`,
    `  Data dir:         ${c.dataDir}`,
  ];
  const t = instance.adminToken;
  if (t.generated) lines.push(`  Admin token:      ${t.token}`, `                    (generated once; kept in ${t.file}, mode 0600)`);
  else if (t.file) lines.push(`  Admin token:      in ${t.file}  (e.g. TOKEN=$(cat ${t.file}))`);
  else lines.push('  Admin token:      from TOKENRELAY_ADMIN_TOKEN');
  if (instance.masterKeyGenerated) lines.push(`  Master key:       generated into ${path.join(c.dataDir, 'master.key')} (0600): back it up; without it stored secrets are lost`);
  lines.push(
    ...extra,
    `  Log in:           open ${c.publicUrl}/console and paste the admin token;`,
    '                    API calls send "Authorization: Bearer <admin token>"',
    '',
  );
  process.stdout.write(lines.join('\n') + '\n');
}

export async function runInstance(flags: InstanceFlags): Promise<void> {
  let instance: Instance;
  try {
    const config = loadInstanceConfig(flags);
    instance = await createInstance(config);
    await instance.start();
  } catch (err) {
    fail(err);
  }
  onSignals(() => instance.stop());
  banner(instance);
}

export async function runUp(flags: InstanceFlags): Promise<void> {
  let instance: Instance;
  let mid: MidServer;
  try {
    const config = loadInstanceConfig(flags, process.env, { host: '127.0.0.1' });
    instance = await createInstance(config);
    await instance.start();
    const s = instance.services;
    const deps = { db: s.db, clock: s.clock, wakeups: s.wakeups, downAfterMs: config.midDownAfterMs };
    const midDir = path.join(config.dataDir, 'mid-local');
    const identity = readIdentity(midDir);
    const known = identity ? await getMid(s.db, identity.mid_id) : undefined;
    const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
    const bound = instance.app.server.address();
    const port = bound && typeof bound === 'object' ? bound.port : config.port;
    const instanceUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    if (!known) {
      // First start, or a data dir whose database was reset: (re-)enroll the embedded MID server,
      // over HTTP like any other, and validate it before it starts asking for work.
      if (identity) fs.rmSync(identityFile(midDir), { force: true });
      if (await getMid(s.db, 'local')) await deleteMid(deps, 'local');
      const { key } = await createEnrollmentKey(s, 60_000);
      await enroll(createInstanceClient({ instanceUrl }), { instanceUrl, name: 'local', key, dataDir: midDir, capabilities: ['REST'] });
    }
    const local = await getMid(s.db, 'local');
    if (local && local.validated !== 1) await setValidated(deps, 'local', true);
    mid = createMidServer({
      instanceUrl,
      name: 'local',
      enrollKey: null,
      dataDir: midDir,
      log: createLog({ level: config.logLevel, name: 'mid' }),
    });
    await mid.start();
    banner(instance, ['  MID server:       "local" (embedded, validated, REST)']);
  } catch (err) {
    fail(err);
  }
  onSignals(async () => {
    await mid.stop();
    await instance.stop();
  });
}

