import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { exportJWK, exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { netnsSupport, createCorpNetwork, type CorpNetwork } from '../support/netns.js';
import { startOidcPeerProcess, type OidcPeerProcess } from '../peers/oidc-peer-process.js';
import { startNodeOauthPeerProcess, type NodeOauthPeerProcess } from '../peers/node-oauth-peer.js';
import { makeSelfSignedCert } from '../peers/saml-fixtures.js';
import { formatOutputs, type Managed } from '../support/processes.js';
import { apiClient, eventually, startInstanceProcess, startMidProcess, tempDir } from '../support/cli.js';

/**
 * Every grant through a MID server inside a network namespace that the instance cannot open
 * connections into, with both authorization servers (oidc-provider and @node-oauth/oauth2-server)
 * running inside it. Real processes throughout: `tokenrelay instance`, `tokenrelay mid`, peers.
 */
const support = await netnsSupport();
if (!support.ok) console.warn(`grants-via-mid-netns: skipped: ${support.reason}`);

describe.skipIf(!support.ok)('every grant through a MID server in an unreachable network', () => {
  let net: CorpNetwork;
  let oidc: OidcPeerProcess;
  let node: NodeOauthPeerProcess;
  let instance: { proc: Managed; url: string };
  let mid: Managed;
  let api: ReturnType<typeof apiClient>;
  const instData = tempDir('inst');
  const midData = tempDir('mid');
  let n = 0;

  beforeAll(async () => {
    net = await createCorpNetwork();
    // The test backdates rows in the instance's database, so the in-memory read cache is off.
    instance = await startInstanceProcess({ host: net.hostIp, dataDir: instData, adminToken: 'grants-admin', env: { TOKENRELAY_READ_CACHE_MS: '0' } });
    api = apiClient(instance.url, 'grants-admin');
    [oidc, node] = await Promise.all([
      startOidcPeerProcess({ netns: net, redirectUris: [`${instance.url}/oauth/callback`] }),
      startNodeOauthPeerProcess({ netns: net }),
    ]);
    const key = (await api('POST', '/api/v1/mid_enrollment_keys', {})).json.key;
    mid = startMidProcess({ instanceUrl: instance.url, name: 'corp', dataDir: midData, enroll: key, netns: net });
    await eventually(async () => (await api('GET', '/api/v1/mid_servers/corp')).json.status === 'up', 60_000, 'corp up');
    await api('POST', '/api/v1/mid_servers/corp/validate', {});
  }, 120_000);
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') console.error(formatOutputs(...([instance?.proc, mid, oidc?.managed, node?.managed].filter(Boolean) as Managed[])));
  });
  afterAll(async () => {
    await mid?.stop();
    await instance?.proc.stop();
    await oidc?.stop();
    await node?.stop();
    await net?.destroy();
    fs.rmSync(instData, { recursive: true, force: true });
    fs.rmSync(midData, { recursive: true, force: true });
  });

  const credential = async (provider: Record<string, unknown>) => {
    n++;
    const p = await api('POST', '/api/v1/oauth_providers', { name: `p${n}`, ...provider });
    expect(p.status, JSON.stringify(p.json)).toBe(201);
    const c = await api('POST', '/api/v1/credentials', { name: `c${n}`, profile_id: p.json.default_profile_id, use_mid_server: true, applies_to: 'specific', mid_servers: ['corp'] });
    expect(c.status, JSON.stringify(c.json)).toBe(201);
    return c.json.id as string;
  };
  const accessToken = async (credId: string) => (await api('GET', `/api/v1/credentials/${credId}/access_token`)).json.access_token as string;
  const viaCorp = async (source: string) =>
    (await api('GET', '/api/v1/ecc_queue?queue=output&agent=mid.server.corp&limit=1000')).json.items.filter((o: { source: string; state: string }) => o.source === source && o.state === 'processed').length;

  it('authorization code + PKCE: the login happens inside the network, the code is exchanged by the MID server', async () => {
    const credId = await credential({
      client_id: oidc.clients.code.client_id, client_secret: oidc.clients.code.client_secret, authorization_url: oidc.authorizationUrl,
      token_url: oidc.tokenUrl, default_grant_type: 'authorization_code', scopes: ['api:read'],
    });
    const r = await api('POST', `/api/v1/credentials/${credId}/get_token`, {});
    expect(r.json.authorize_url).toContain(oidc.authorizationUrl);
    const location = await oidc.login(r.json.authorize_url);
    const page = await fetch(location);
    expect(page.status, await page.clone().text()).toBe(200);
    expect(await page.text()).toMatch(/Token stored for/);
    expect(await oidc.introspect(await accessToken(credId))).toMatchObject({ active: true, sub: oidc.user.username });
    expect(await viaCorp(oidc.tokenUrl)).toBeGreaterThanOrEqual(1);
  });

  it('client credentials with client_secret_post and private_key_jwt', async () => {
    const post = await credential({ client_id: oidc.clients.post.client_id, client_secret: oidc.clients.post.client_secret, client_auth_method: 'client_secret_post', token_url: oidc.tokenUrl });
    expect((await api('POST', `/api/v1/credentials/${post}/get_token`, {})).status).toBe(200);
    expect((await oidc.introspect(await accessToken(post))).active).toBe(true);
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    await oidc.setPrivateKeyJwtJwks({ keys: [{ ...(await exportJWK(publicKey)), alg: 'ES256', use: 'sig' }] }, 'ES256');
    const pk = await credential({
      client_id: oidc.clients.pkjwt.client_id, client_auth_method: 'private_key_jwt', token_url: oidc.tokenUrl,
      assertion: { private_key_pem: await exportPKCS8(privateKey), signing_alg: 'ES256' },
    });
    const r = await api('POST', `/api/v1/credentials/${pk}/get_token`, {});
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect((await oidc.introspect(await accessToken(pk))).active).toBe(true);
  });

  it('password, then refresh with rotation', async () => {
    const credId = await credential({ client_id: node.clients.basic.client_id, client_secret: node.clients.basic.client_secret, token_url: node.tokenUrl, default_grant_type: 'password' });
    expect((await api('POST', `/api/v1/credentials/${credId}/get_token`, { username: 'alice', password: node.users.alice.password })).status).toBe(200);
    const first = await accessToken(credId);
    expect(await node.introspect(first)).toMatchObject({ active: true, username: 'alice' });
    // Backdate the stored access token in the instance's database: the next read must refresh.
    const db = new SQLite(path.join(instData, 'tokenrelay.sqlite'));
    try {
      db.prepare("update oauth_tokens set expires_at = ? where credential_id = ? and token_type = 'access'").run(Date.now() - 1000, credId);
    } finally {
      db.close();
    }
    const second = await accessToken(credId);
    expect(second).not.toBe(first);
    expect((await node.stats()).issued_by_grant_type.refresh_token).toBe(1);
    expect((await node.introspect(second)).active).toBe(true);
  });

  it('the REST step reaches a protected API inside the network through the MID server, with the credential\'s token', async () => {
    const credId = await credential({ client_id: node.clients.post.client_id, client_secret: node.clients.post.client_secret, client_auth_method: 'client_secret_post', token_url: node.tokenUrl });
    const resource = new URL(node.info.resource_url);
    const conn = await api('POST', '/api/v1/connections', { name: 'corp_api', base_url: resource.origin, credential_id: credId, use_mid_server: true, mid_servers: ['corp'] });
    expect(conn.status, JSON.stringify(conn.json)).toBe(201);
    const r = await api('POST', '/api/v1/rest_step', { connection: 'corp_api', method: 'GET', path: resource.pathname });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json).toMatchObject({ status: 200, mid_server: 'corp', body: { ok: true, client_id: node.clients.post.client_id, grant_type: 'client_credentials' } });
    // the same call made directly by the instance cannot get there
    await api('POST', '/api/v1/connections', { name: 'corp_api_direct', base_url: resource.origin, credential_id: credId, use_mid_server: false });
    const direct = await api('POST', '/api/v1/rest_step', { connection: 'corp_api_direct', path: resource.pathname });
    expect(direct.status).toBe(502);
    expect(direct.json.error.code).toBe('rest_request_failed');
  });

  it('JWT bearer and SAML2 bearer', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    await node.registerAssertionKey(node.clients.basic.client_id, await exportSPKI(publicKey), 'RS256');
    const jwt = await credential({
      client_id: node.clients.basic.client_id, client_secret: node.clients.basic.client_secret, token_url: node.tokenUrl,
      default_grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: { subject: 'svc-corp', private_key_pem: await exportPKCS8(privateKey) },
    });
    expect((await api('POST', `/api/v1/credentials/${jwt}/get_token`, {})).status).toBe(200);
    expect(await node.introspect(await accessToken(jwt))).toMatchObject({ active: true, sub: 'svc-corp' });

    const { keyPem, certPem } = await makeSelfSignedCert();
    await node.registerSamlCertificate(node.clients.basic.client_id, certPem);
    const saml = await credential({
      client_id: node.clients.basic.client_id, client_secret: node.clients.basic.client_secret, token_url: node.tokenUrl,
      default_grant_type: 'urn:ietf:params:oauth:grant-type:saml2-bearer', assertion: { subject: 'bob@corp', private_key_pem: keyPem, certificate_pem: certPem },
    });
    const r = await api('POST', `/api/v1/credentials/${saml}/get_token`, {});
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(await node.introspect(await accessToken(saml))).toMatchObject({ active: true, sub: 'bob@corp' });
    expect(await viaCorp(node.tokenUrl)).toBeGreaterThanOrEqual(3);
  });
});
