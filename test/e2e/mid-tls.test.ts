import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestInstance } from '../support/instance.js';
import { eventually, startMidProcess, tempDir } from '../support/cli.js';
import { formatOutputs, type Managed } from '../support/processes.js';

/**
 * A token endpoint on private PKI: an https server whose certificate comes from a CA of the
 * test's own (openssl). A MID server started with --ca-file trusts it; one without refuses it
 * with a TLS error — the check is real in both directions.
 */
describe('MID server with a custom CA bundle', () => {
  const dir = tempDir('pki');
  let server: https.Server;
  let tokenUrl = '';
  let t: Awaited<ReturnType<typeof startTestInstance>>;
  const procs: Managed[] = [];

  beforeAll(async () => {
    const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=tokenrelay test CA');
    ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1');
    fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
    ossl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2', '-extfile', 'ext.cnf');
    server = https.createServer({ key: fs.readFileSync(path.join(dir, 'srv.key')), cert: fs.readFileSync(path.join(dir, 'srv.pem')) }, (req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ access_token: 'pki-token', token_type: 'Bearer', expires_in: 600 }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    tokenUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
    t = await startTestInstance();
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await t?.stop();
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const midWith = async (name: string, args: string[]) => {
    const key = (await t.api('POST', '/api/v1/mid_enrollment_keys', {})).json.key;
    const m = startMidProcess({ instanceUrl: t.url, name, dataDir: path.join(t.dataDir, `mid-${name}`), enroll: key, args });
    procs.push(m);
    await eventually(async () => (await t.api('GET', `/api/v1/mid_servers/${name}`)).json.status === 'up', 30_000, `${name} up`);
    await t.api('POST', `/api/v1/mid_servers/${name}/validate`, {});
    const p = await t.api('POST', '/api/v1/oauth_providers', { name: `pki-${name}`, client_id: 'c', client_secret: 's', token_url: tokenUrl });
    const c = await t.api('POST', '/api/v1/credentials', { name: `pki-${name}`, profile_id: p.json.default_profile_id, use_mid_server: true, applies_to: 'specific', mid_servers: [name] });
    return c.json.id as string;
  };

  it('trusts the private CA only when given --ca-file', async () => {
    const without = await midWith('plain', []);
    const r1 = await t.api('POST', `/api/v1/credentials/${without}/get_token`, {});
    expect(r1.status).toBe(502);
    expect(r1.json.error.message).toMatch(/TLS with https:\/\/127\.0\.0\.1:\d+ failed/);
    const withCa = await midWith('pki', ['--ca-file', path.join(dir, 'ca.pem')]);
    const r2 = await t.api('POST', `/api/v1/credentials/${withCa}/get_token`, {});
    if (r2.status !== 200) console.error(formatOutputs(...procs));
    expect(r2.status, JSON.stringify(r2.json)).toBe(200);
    expect((await t.api('GET', `/api/v1/credentials/${withCa}/access_token`)).json.access_token).toBe('pki-token');
  });
});
