import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProxy } from 'proxy';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestInstance } from '../support/instance.js';
import { startOidcPeer, introspect, type OidcPeer } from '../peers/oidc-peer.js';
import { startResourceServer, type ResourceServer } from '../peers/resource-server.js';
import { eventually, startMidProcess } from '../support/cli.js';
import { formatOutputs, type Managed } from '../support/processes.js';

/**
 * The MID server fleet with real `tokenrelay mid` processes: failover when one is killed under
 * a stream of REST steps, pause/resume, invalidation, rekey, the allowlist, and a forward proxy
 * with authentication.
 */
describe('MID server fleet', () => {
  let t: Awaited<ReturnType<typeof startTestInstance>>;
  let peer: OidcPeer;
  let rs: ResourceServer;
  const mids = new Map<string, Managed>();
  let credId = '';

  const startMid = async (name: string, opts: { args?: string[]; env?: Record<string, string | undefined>; instanceUrl?: string } = {}) => {
    const key = (await t.api('POST', '/api/v1/mid_enrollment_keys', {})).json.key;
    const m = startMidProcess({ instanceUrl: opts.instanceUrl ?? t.url, name, dataDir: path.join(t.dataDir, `mid-${name}`), enroll: key, ...opts });
    mids.set(name, m);
    await eventually(async () => (await t.api('GET', `/api/v1/mid_servers/${name}`)).json.status === 'up', 30_000, `${name} up`);
    await t.api('POST', `/api/v1/mid_servers/${name}/validate`, {});
    return m;
  };
  const step = (connection: string, p = '/items', extra: Record<string, unknown> = {}) => t.api('POST', '/api/v1/rest_step', { connection, path: p, ...extra });

  beforeAll(async () => {
    peer = await startOidcPeer({ accessTokenTtlS: 600 });
    rs = await startResourceServer({ verify: async (tok) => (await introspect(peer, tok)).active });
    t = await startTestInstance();
    await Promise.all([startMid('m1'), startMid('m2')]);
    const p = await t.api('POST', '/api/v1/oauth_providers', { name: 'as', client_id: peer.clients.basic.client_id, client_secret: peer.clients.basic.client_secret, token_url: peer.tokenUrl });
    credId = (await t.api('POST', '/api/v1/credentials', { name: 'fleet', profile_id: p.json.default_profile_id, use_mid_server: true, applies_to: 'specific', mid_servers: ['m1', 'm2'] })).json.id;
    await t.api('POST', '/api/v1/connections', { name: 'any', base_url: `${rs.url}/api`, credential_id: credId, use_mid_server: true });
    await t.api('POST', '/api/v1/connections', { name: 'only_m2', base_url: `${rs.url}/api`, credential_id: credId, use_mid_server: true, mid_servers: ['m2'] });
  }, 120_000);
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') console.error(formatOutputs(...mids.values()));
  });
  afterAll(async () => {
    await Promise.all([...mids.values()].map((m) => m.stop()));
    await t?.stop();
    await rs?.close();
    await peer?.close();
  });

  it('spreads work over every eligible MID server', async () => {
    const results = await Promise.all(Array.from({ length: 30 }, () => step('any')));
    expect(results.every((r) => r.json.status === 200)).toBe(true);
    const used = new Set(results.map((r) => r.json.mid_server));
    expect(used).toEqual(new Set(['m1', 'm2']));
  });

  it('pause takes effect at once: no new work; resume brings it back', async () => {
    expect((await t.api('POST', '/api/v1/mid_servers/m2/pause', {})).json).toMatchObject({ paused: true, status: 'up' });
    const r = await step('only_m2');
    expect(r.status).toBe(503);
    expect(r.json.error.message).toMatch(/m2 is paused/);
    const others = await Promise.all(Array.from({ length: 6 }, () => step('any')));
    expect(others.every((x) => x.json.mid_server === 'm1')).toBe(true);
    await t.api('POST', '/api/v1/mid_servers/m2/resume', {});
    expect((await step('only_m2')).json).toMatchObject({ status: 200, mid_server: 'm2' });
  });

  it('rekey: the MID server makes new keys, work keeps flowing', async () => {
    const before = JSON.parse(fs.readFileSync(path.join(t.dataDir, 'mid-m2', 'mid-identity.json'), 'utf8'));
    expect((await t.api('POST', '/api/v1/mid_servers/m2/rekey', {})).json.rekey_pending).toBe(true);
    await eventually(async () => (await t.api('GET', '/api/v1/mid_servers/m2')).json.rekey_pending === false, 20_000, 'rekey done');
    const after = JSON.parse(fs.readFileSync(path.join(t.dataDir, 'mid-m2', 'mid-identity.json'), 'utf8'));
    expect(after.enc_private_jwk.d).not.toBe(before.enc_private_jwk.d);
    expect(after.sign_private_jwk.d).not.toBe(before.sign_private_jwk.d);
    expect((await step('only_m2')).json).toMatchObject({ status: 200, mid_server: 'm2' });
  });

  it('a MID server killed under a stream of REST steps: every idempotent call completes, token requests in flight end in clear errors, nothing stays processing', async () => {
    // A token request that m1 holds when it dies: the token endpoint answers slowly.
    const p = await t.api('POST', '/api/v1/oauth_providers', { name: 'slow-as', client_id: peer.clients.post.client_id, client_secret: peer.clients.post.client_secret, client_auth_method: 'client_secret_post', token_url: peer.tokenUrl });
    const slowCred = (await t.api('POST', '/api/v1/credentials', { name: 'slow', profile_id: p.json.default_profile_id, use_mid_server: true, applies_to: 'specific', mid_servers: ['m1'] })).json.id;
    let stop = false;
    const results: Array<{ status: number; ms: number; started: number; mid: string | null }> = [];
    const streams = Array.from({ length: 4 }, async () => {
      while (!stop) {
        const started = Date.now();
        const r = await step('any');
        results.push({ status: r.json.status ?? r.status, ms: Date.now() - started, started, mid: r.json.mid_server ?? null });
      }
    });
    await new Promise((r) => setTimeout(r, 1_500));
    peer.setTokenDelay(4_000);
    const tokenReq = t.api('POST', `/api/v1/credentials/${slowCred}/get_token`, {});
    await eventually(
      async () => (await t.api('GET', '/api/v1/ecc_queue?queue=output&state=processing&agent=mid.server.m1')).json.items.some((x: { source: string }) => x.source === peer.tokenUrl),
      10_000,
      'm1 processing the token request',
    );
    const killedAt = Date.now();
    mids.get('m1')!.kill();
    const tok = await tokenReq;
    peer.setTokenDelay(0);
    expect(tok.status).toBe(504);
    expect(tok.json.error).toMatchObject({ code: 'mid_server_timeout', message: expect.stringMatching(/MID server m1 (went down|claimed this record but did not answer)/) });
    await eventually(async () => (await t.api('GET', '/api/v1/mid_servers/m1')).json.status === 'down', 20_000, 'm1 down');
    const downAfter = Date.now() - killedAt;
    await new Promise((r) => setTimeout(r, 1_500));
    stop = true;
    await Promise.all(streams);
    expect(results.length).toBeGreaterThan(20);
    expect(results.filter((r) => r.status !== 200)).toEqual([]);
    const during = results.filter((r) => r.started >= killedAt - 1_000);
    const slowest = Math.max(...during.map((r) => r.ms));
    const afterDown = results.filter((r) => r.started > killedAt + downAfter);
    expect(afterDown.every((r) => r.mid === 'm2')).toBe(true);
    console.log(`fleet: m1 shown down ${downAfter} ms after SIGKILL; slowest REST step in flight at the kill took ${slowest} ms; ${results.length} steps, all 200`);
    for (const state of ['processing', 'ready']) {
      expect((await t.api('GET', `/api/v1/ecc_queue?queue=output&state=${state}`)).json.items).toEqual([]);
    }
  });

  it('an invalidated MID server gets nothing more, and its in-flight result is refused', async () => {
    const pending = step('only_m2', '/slow', { query: { ms: '1500' } });
    await eventually(
      async () => (await t.api('GET', '/api/v1/ecc_queue?queue=output&state=processing&agent=mid.server.m2')).json.items.some((x: { source: string }) => x.source.includes('/api/slow')),
      10_000,
      'm2 processing the slow call',
    );
    await t.api('POST', '/api/v1/mid_servers/m2/invalidate', {});
    const r = await pending;
    expect(r.status).toBe(504);
    expect(r.json.error.message).toMatch(/MID server m2 was invalidated by an administrator/);
    await new Promise((res) => setTimeout(res, 2_000));
    expect(mids.get('m2')!.output()).toMatch(/mid:input-refused/);
    const after = await step('only_m2');
    expect(after.status).toBe(503);
    expect(after.json.error.message).toMatch(/m2 is not validated/);
    await t.api('POST', '/api/v1/mid_servers/m2/validate', {});
  });
});

describe('MID server network controls', () => {
  let t: Awaited<ReturnType<typeof startTestInstance>>;
  let peer: OidcPeer;
  let rs: ResourceServer;
  let proxy: http.Server;
  let proxied: string[] = [];
  const procs: Managed[] = [];

  beforeAll(async () => {
    peer = await startOidcPeer();
    rs = await startResourceServer({ verify: async (tok) => (await introspect(peer, tok)).active });
    t = await startTestInstance();
    proxy = createProxy(http.createServer());
    (proxy as unknown as { authenticate: (req: http.IncomingMessage) => boolean }).authenticate = (req) => {
      const ok = req.headers['proxy-authorization'] === `Basic ${Buffer.from('relay:s3cret').toString('base64')}`;
      proxied.push(`${ok ? 'ok' : 'refused'} ${req.method} ${req.url}`);
      return ok;
    };
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') console.error(formatOutputs(...procs));
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await t?.stop();
    await new Promise((r) => proxy.close(r));
    await rs?.close();
    await peer?.close();
  });

  const mid = async (name: string, args: string[], env: Record<string, string | undefined> = {}) => {
    const key = (await t.api('POST', '/api/v1/mid_enrollment_keys', {})).json.key;
    const instanceUrl = t.url.replace('127.0.0.1', 'localhost');
    const m = startMidProcess({ instanceUrl, name, dataDir: path.join(t.dataDir, `mid-${name}`), enroll: key, args, env });
    procs.push(m);
    await eventually(async () => (await t.api('GET', `/api/v1/mid_servers/${name}`)).json.status === 'up', 30_000, `${name} up`);
    await t.api('POST', '/api/v1/mid_servers/${name}/validate'.replace('${name}', name), {});
    const p = await t.api('POST', '/api/v1/oauth_providers', { name: `as-${name}`, client_id: peer.clients.basic.client_id, client_secret: peer.clients.basic.client_secret, token_url: peer.tokenUrl });
    const c = await t.api('POST', '/api/v1/credentials', { name: `cred-${name}`, profile_id: p.json.default_profile_id, use_mid_server: true, applies_to: 'specific', mid_servers: [name] });
    await t.api('POST', '/api/v1/connections', { name: `conn_${name}`, base_url: `${rs.url}/api`, credential_id: c.json.id, use_mid_server: true, mid_servers: [name] });
    return { m, credId: c.json.id as string };
  };

  it('the allowlist is enforced by the MID server itself; the default allows all and says so', async () => {
    const open = await mid('open', []);
    await open.m.waitForOutput(/requests to any host are allowed/, 10_000);
    const { credId } = await mid('strict', ['--allow-hosts', 'tokens.corp.example,10.99.0.0/16']);
    await procs.at(-1)!.waitForOutput(/only these targets are allowed/, 10_000);
    const r = await t.api('POST', `/api/v1/credentials/${credId}/get_token`, {});
    expect(r.status).toBe(502);
    expect(r.json.error.message).toMatch(/Refused by the MID server's allowlist: 127\.0\.0\.1:\d+ is not in --allow-hosts/);
    expect(peer.tokenRequests()).toBe(0);
    const ok = await mid('loopback', ['--allow-hosts', '127.0.0.0/8']);
    expect((await t.api('POST', `/api/v1/credentials/${ok.credId}/get_token`, {})).status).toBe(200);
  });

  it('HTTPS_PROXY with credentials carries the MID server\'s target calls; NO_PROXY keeps the instance direct; wrong credentials fail clearly', async () => {
    proxied = [];
    const proxyUrl = `http://relay:s3cret@127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const { credId } = await mid('proxied', [], { HTTPS_PROXY: proxyUrl, HTTP_PROXY: proxyUrl, NO_PROXY: 'localhost' });
    expect((await t.api('POST', `/api/v1/credentials/${credId}/get_token`, {})).status).toBe(200);
    const r = await t.api('POST', '/api/v1/rest_step', { connection: 'conn_proxied', path: '/items' });
    expect(r.json).toMatchObject({ status: 200, mid_server: 'proxied' });
    const tokenHost = new URL(peer.tokenUrl).host;
    const rsHost = new URL(rs.url).host;
    expect(proxied.some((l) => l.startsWith('ok') && l.includes(tokenHost))).toBe(true);
    expect(proxied.some((l) => l.startsWith('ok') && l.includes(rsHost))).toBe(true);
    expect(proxied.some((l) => l.includes('localhost'))).toBe(false);

    const bad = `http://relay:wrong@127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const b = await mid('badproxy', [], { HTTPS_PROXY: bad, HTTP_PROXY: bad, NO_PROXY: 'localhost' });
    const failed = await t.api('POST', `/api/v1/credentials/${b.credId}/get_token`, {});
    expect(failed.status).toBe(502);
    expect(failed.json.error.code).toBe('token_endpoint_unreachable');
    expect(proxied.some((l) => l.startsWith('refused'))).toBe(true);
  });
});
