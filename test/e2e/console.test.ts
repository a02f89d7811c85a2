import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { loadInstanceConfig } from '../../src/config/load.js';
import { createInstance, type Instance } from '../../src/instance.js';
import { createLog } from '../../src/core/log.js';
import { NOT_AVAILABLE } from '../../src/credentials/status.js';
import { createMidServer, type MidServer } from '../../src/mid/mid-server.js';
import { silentLog } from '../../src/core/log.js';
import { startTestInstance } from '../support/instance.js';
import { browserSupport, hasCount, hasText, isDisabled, lacksText, launchBrowser, type TestBrowser } from '../support/browser.js';
import { startOidcPeer, type OidcPeer } from '../peers/oidc-peer.js';
import { startNodeOauthPeer, type NodeOauthPeer } from '../peers/node-oauth-peer.js';

/**
 * The web console. First its guards without a browser (login, session cookie, CSRF, no
 * secrets in pages or logs); then the seed's whole walkthrough in Debian's Chromium against
 * a real oidc-provider and a real MID server: provider → credential via MID → "not available"
 * → Get OAuth Token → "will expire soon"; the authorization-code redirect through the
 * provider's own login page and back; the password login screen; the ECC pair; the REST step.
 */
const ADMIN = 'console-admin-token-0123456789';
const SECRET = 'client-secret-never-shown-42';

async function consoleInstance(publicUrl: string): Promise<{ inst: Instance; logs: () => string; stop(): Promise<void> }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenrelay-console-'));
  let out = '';
  const sink = new Writable({ write: (chunk, _enc, cb) => ((out += String(chunk)), cb()) });
  const config = loadInstanceConfig({ port: 18080, host: '127.0.0.1', data: dataDir }, { TOKENRELAY_ADMIN_TOKEN: ADMIN, TOKENRELAY_PUBLIC_URL: publicUrl });
  const inst = await createInstance(config, { log: createLog({ level: 'debug', destination: sink }) });
  await inst.app.ready();
  return { inst, logs: () => out, stop: async () => (await inst.stop(), fs.rmSync(dataDir, { recursive: true, force: true })) };
}

const cookiesOf = (res: { headers: Record<string, unknown> }): string[] => {
  const h = res.headers['set-cookie'];
  return Array.isArray(h) ? h.map(String) : h ? [String(h)] : [];
};
const cookieValue = (res: { headers: Record<string, unknown> }, name: string) =>
  cookiesOf(res).find((c) => c.startsWith(`${name}=`))?.split(';')[0]!.slice(name.length + 1);
const csrfOf = (body: string) => /name="_csrf" value="([^"]+)"/.exec(body)?.[1];
const form = (o: Record<string, string>) => new URLSearchParams(o).toString();

describe('console guards (no browser)', () => {
  let c: Awaited<ReturnType<typeof consoleInstance>>;
  let session = '';
  let csrf = '';
  const get = (url: string, cookie = session) => c.inst.app.inject({ method: 'GET', url, headers: cookie ? { cookie: `tokenrelay_console=${cookie}` } : {} });
  const post = (url: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
    c.inst.app.inject({ method: 'POST', url, payload: form(body), headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `tokenrelay_console=${session}`, ...headers } });

  beforeAll(async () => {
    c = await consoleInstance('http://127.0.0.1:18080');
  });
  afterAll(async () => c?.stop());

  it('sends / to the console and the console to its login page; the login page is locked down', async () => {
    expect((await get('/', '')).headers.location).toBe('/console');
    const r = await get('/console/credentials', '');
    expect(r.statusCode).toBe(303);
    expect(r.headers.location).toBe('/console/login?next=%2Fconsole%2Fcredentials');
    const login = await get('/console/login', '');
    expect(login.statusCode).toBe(200);
    expect(login.headers['content-security-policy']).toContain("default-src 'none'");
    expect(login.headers['cache-control']).toBe('no-store');
    expect(login.body).toContain('<label for="f-token">Admin token</label>');
    expect(cookieValue(login, 'tokenrelay_login')).toBeTruthy();
  });

  it('refuses a wrong token and a login without its form token; the right one opens a strict, HttpOnly session', async () => {
    const page = await get('/console/login', '');
    const loginCookie = cookieValue(page, 'tokenrelay_login')!;
    const attempt = (token: string, withCookie = true, next = '/console') =>
      c.inst.app.inject({
        method: 'POST', url: '/console/login', payload: form({ token, _csrf: csrfOf(page.body)!, next }),
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...(withCookie ? { cookie: `tokenrelay_login=${loginCookie}` } : {}) },
      });
    const wrong = await attempt('not-the-token');
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain('That is not the admin token');
    expect(cookieValue(wrong, 'tokenrelay_console')).toBeUndefined();
    expect((await attempt(ADMIN, false)).statusCode).toBe(403);
    const evil = await attempt(ADMIN, true, '//evil.example/console');
    expect(evil.headers.location).toBe('/console');
    const ok = await attempt(ADMIN, true, '/console/mid-servers');
    expect(ok.statusCode).toBe(303);
    expect(ok.headers.location).toBe('/console/mid-servers');
    const set = cookiesOf(ok).find((x) => x.startsWith('tokenrelay_console='))!;
    expect(set).toMatch(/; Path=\/console; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    expect(set).not.toContain('Secure');
    session = cookieValue(ok, 'tokenrelay_console')!;
    const home = await get('/console');
    expect(home.statusCode).toBe(200);
    csrf = csrfOf(home.body)!;
    expect(csrf).toBeTruthy();
    expect(home.body).not.toContain(ADMIN);
  });

  it('refuses a POST without the CSRF token, with a wrong one, or from another origin (403)', async () => {
    const body = { name: 'p1', client_id: 'c', client_secret: SECRET, token_url: 'http://127.0.0.1:9/token' };
    expect((await post('/console/providers', body)).statusCode).toBe(403);
    expect((await post('/console/providers', { ...body, _csrf: 'x'.repeat(43) })).statusCode).toBe(403);
    expect((await post('/console/providers', { ...body, _csrf: csrf }, { origin: 'http://evil.example' })).statusCode).toBe(403);
    expect((await get('/console/providers')).body).toContain('No OAuth providers yet');
  });

  it('never puts a secret in a page or a log; a refused field is named beside it', async () => {
    const bad = await post('/console/providers', { _csrf: csrf, name: 'p1', client_id: 'c', client_secret: SECRET, token_url: 'not a url', default_grant_type: 'client_credentials', client_auth_method: 'client_secret_basic' });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toMatch(/id="f-token_url"[^>]*aria-invalid="true"/);
    expect(bad.body).toContain('<p class="field-error" id="f-token_url-error">Field &quot;token_url&quot;: must be an absolute http(s) URL.</p>');
    expect(bad.body).not.toContain(SECRET);
    const ok = await post('/console/providers', { _csrf: csrf, name: 'p1', client_id: 'c', client_secret: SECRET, token_url: 'http://127.0.0.1:9/token', default_grant_type: 'client_credentials', client_auth_method: 'client_secret_basic', pkce: 'on' }, { origin: 'http://127.0.0.1:18080' });
    expect(ok.statusCode).toBe(303);
    const page = await get(ok.headers.location as string);
    expect(page.body).toContain('OAuth provider &quot;p1&quot; created');
    expect(page.body).toContain('<span class="secret-state">Set</span>');
    expect(page.body).not.toContain(SECRET);
    expect(c.logs()).toContain('console:login');
    expect(c.logs()).not.toContain(SECRET);
    expect(c.logs()).not.toContain(ADMIN);
  });

  it('logs out: the session ends on the server', async () => {
    const out = await post('/console/logout', { _csrf: csrf });
    expect(out.headers.location).toBe('/console/login?out=1');
    expect(cookiesOf(out).some((x) => x.startsWith('tokenrelay_console=;') && x.includes('Max-Age=0'))).toBe(true);
    expect((await get('/console')).statusCode).toBe(303);
    expect((await post('/console/logout', { _csrf: csrf })).headers.location).toBe('/console/login?expired=1');
  });

  it('marks the session cookie Secure when the public URL is https', async () => {
    const s = await consoleInstance('https://tokenrelay.example');
    try {
      const page = await s.inst.app.inject({ method: 'GET', url: '/console/login' });
      const ok = await s.inst.app.inject({
        method: 'POST', url: '/console/login', payload: form({ token: ADMIN, _csrf: csrfOf(page.body)!, next: '/console' }),
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `tokenrelay_login=${cookieValue(page, 'tokenrelay_login')}`, origin: 'https://tokenrelay.example' },
      });
      expect(ok.statusCode).toBe(303);
      expect(cookiesOf(ok).find((x) => x.startsWith('tokenrelay_console='))).toMatch(/; Secure$/);
    } finally {
      await s.stop();
    }
  });
});

const support = browserSupport();
if (!support.ok) console.warn(`console browser tests: skipped: ${support.reason}`);

describe('the seed walkthrough in a real browser (Chromium)', () => {
  let t: Awaited<ReturnType<typeof startTestInstance>>;
  let peer: OidcPeer;
  let partner: NodeOauthPeer;
  let b: TestBrowser;
  let page: Page;
  const extraMids: MidServer[] = [];
  const secrets: string[] = [];

  beforeAll(async () => {
    if (!support.ok) return;
    peer = await startOidcPeer({ accessTokenTtlS: 600 });
    partner = await startNodeOauthPeer();
    t = await startTestInstance();
    await peer.setRedirectUris([`${t.url}/oauth/callback`]);
    await t.addMid('dc1');
    b = await launchBrowser();
    page = b.page;
    secrets.push(t.token, peer.clients.basic.client_secret, peer.clients.code.client_secret, partner.clients.basic.client_secret, partner.users.alice.password, peer.user.password);
  }, 90_000);
  afterAll(async () => {
    await b?.close();
    await Promise.all(extraMids.map((m) => m.stop()));
    await t?.stop();
    await peer?.close();
    await partner?.close();
  });

  /** Skips with the reason when Chromium is missing; never pretends. */
  const step = (name: string, fn: () => Promise<void>, timeout = 60_000) =>
    it(name, async (ctx) => {
      if (!support.ok) return ctx.skip(support.reason);
      await fn();
      const html = await page.content();
      for (const s of secrets) expect(html, `a secret reached the page at ${page.url()}`).not.toContain(s);
    }, timeout);
  const go = (p: string) => page.goto(`${t.url}${p}`);
  const banner = () => page.locator('#credential-status');
  const flash = () => page.locator('.flash');
  const nav = (name: string) => page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name, exact: true }).click();
  const clickNew = () => page.locator('.head').getByRole('link', { name: 'New', exact: true }).click();

  step('logs in with the admin token (a wrong one is refused beside the field)', async () => {
    await go('/');
    await page.waitForURL(/\/console\/login$/);
    await page.getByLabel('Admin token').fill('wrong-token');
    await page.getByRole('button', { name: 'Log in' }).click();
    await hasText(page.locator('#f-token-error'), /not the admin token/, true);
    await b.shot('login');
    await page.getByLabel('Admin token').fill(t.token);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(/\/console$/);
    await hasText(page.getByRole('heading', { level: 1 }), 'Overview', true);
  });

  step('MID servers: status, validation, an enrollment key whose command really enrolls, validate/pause/resume/rekey', async () => {
    await nav('Servers');
    const dc1 = page.getByRole('row', { name: /dc1/ });
    await hasText(dc1, 'up');
    await hasText(dc1, 'validated');
    await lacksText(dc1, 'not validated');
    await hasText(dc1, 'REST');
    await page.getByLabel('MID server name').fill('dc2');
    await page.getByRole('button', { name: 'Create enrollment key' }).click();
    const command = (await page.locator('#enroll-command').textContent())!;
    expect(command).toMatch(new RegExp(`^npx tokenrelay mid --instance ${t.url} --name dc2 --enroll tre_[A-Za-z0-9_-]+ --data \\./mid-dc2$`));
    await b.shot('mid-enrollment');
    const key = /--enroll (\S+)/.exec(command)![1]!;
    const mid = createMidServer({ instanceUrl: t.url, name: 'dc2', enrollKey: key, dataDir: path.join(t.dataDir, 'mid-dc2'), heartbeatMs: 200, log: silentLog() });
    await mid.start();
    extraMids.push(mid);
    await page.getByRole('link', { name: 'Refresh' }).click();
    const dc2 = page.getByRole('row', { name: /dc2/ });
    await hasText(dc2, 'not validated');
    await page.getByRole('button', { name: 'Validate dc2', exact: true }).click();
    await hasText(flash(), 'MID server dc2 is validated: it gets work now.', true);
    await lacksText(page.getByRole('row', { name: /dc2/ }), 'not validated');
    await page.getByRole('button', { name: 'Pause dc2', exact: true }).click();
    await hasText(page.getByRole('row', { name: /dc2/ }), 'paused');
    await page.getByRole('button', { name: 'Resume dc2', exact: true }).click();
    await hasText(flash(), 'MID server dc2 is resumed.', true);
    await page.getByRole('button', { name: 'Rekey dc2', exact: true }).click();
    await hasText(flash(), 'will make new key pairs at its next heartbeat');
    await b.shot('mid-servers');
  });

  step('a refused field is shown next to it, and the secret typed is not sent back', async () => {
    await nav('Application Registry');
    await hasText(page.locator('.empty'), 'No OAuth providers yet');
    await clickNew();
    await page.getByLabel('Name', { exact: true }).fill('corp-oidc');
    await page.getByLabel('Client ID').fill(peer.clients.basic.client_id);
    await page.getByLabel('Client Secret').fill(peer.clients.basic.client_secret);
    await page.getByLabel('Token URL').fill('token endpoint');
    await page.getByRole('button', { name: 'Submit' }).click();
    await hasText(page.locator('#f-token_url-error'), 'Field "token_url": must be an absolute http(s) URL.', true);
    expect(await page.getByLabel('Token URL').getAttribute('aria-invalid')).toBe('true');
    await hasText(page.getByRole('alert'), 'check the highlighted field');
    expect(await page.getByLabel('Client Secret').inputValue()).toBe('');
    await b.shot('validation-error');
  });

  step('Application Registry: "Connect to a third-party OAuth Provider" with the Default Grant type; its default profile', async () => {
    await page.getByLabel('Client Secret').fill(peer.clients.basic.client_secret);
    await page.getByLabel('Token URL').fill(peer.tokenUrl);
    await page.getByLabel('Token Revocation URL').fill(peer.revocationUrl);
    await page.getByLabel('Default Grant type').selectOption({ label: 'Client Credentials' });
    await page.getByLabel('Default scopes').fill('api:read');
    await page.getByRole('button', { name: 'Submit' }).click();
    await hasText(flash(), 'OAuth provider "corp-oidc" created, with its default profile "corp-oidc default_profile"');
    await hasText(page.getByRole('row', { name: /corp-oidc default_profile/ }), 'default');
    await hasText(page.locator('#f-client_secret-hint'), 'Set');
    await page.getByText('Add a profile').click();
    await page.getByLabel('Profile name').fill('corp-oidc read-only');
    await page.getByRole('button', { name: 'Add profile' }).click();
    await hasText(page.getByRole('row', { name: /corp-oidc read-only/ }), 'api:read');
    await b.shot('provider');
    await nav('Application Registry');
    await hasText(page.getByRole('row', { name: /corp-oidc/ }), 'Client Credentials');
    await b.shot('application-registry');
  });

  step('Credentials: via MID server dc1 → "not available" → Get OAuth Token (with progress) → "will expire soon"', async () => {
    await nav('Credentials');
    await clickNew();
    await page.getByLabel('Name', { exact: true }).fill('corp-cc');
    await page.getByLabel('OAuth Entity Profile').selectOption({ label: 'corp-oidc default_profile (Client Credentials)' });
    expect(await page.getByLabel('Connect to Auth Server via MID Server').isChecked()).toBe(true);
    await page.getByLabel('Specific MID Servers').check();
    await page.getByLabel(/^dc1/).check();
    await b.shot('credential-form');
    await page.getByRole('button', { name: 'Submit' }).click();
    await hasText(banner(), NOT_AVAILABLE, true);
    peer.setTokenDelay(1500);
    const clicking = page.getByRole('button', { name: 'Get OAuth Token' }).click();
    await page.locator('.progress').waitFor();
    await hasText(page.locator('.progress'), 'through MID server dc1');
    await isDisabled(page.getByRole('button', { name: 'Requesting…' }));
    await clicking;
    await hasText(banner(), /^OAuth Access token is available but will expire soon at \d{4}-\d\d-\d\dT/, true);
    peer.setTokenDelay(0);
    const tokens = page.getByRole('row', { name: /Access token/ });
    await hasText(tokens, 'api:read');
    await hasText(tokens, /in 1\d min|in 9 min|in 10 min/);
    await hasText(tokens, 'UTC');
    await b.shot('credential');
    const token = (await t.api('GET', '/api/v1/credentials/corp-cc/access_token')).json.access_token as string;
    secrets.push(token);
  });

  step('ECC Queue: the RESTProbe output (source = token endpoint, agent mid.server.dc1) and its input, linked both ways', async () => {
    await nav('ECC Queue');
    await page.getByLabel('Topic').fill('RESTProbe');
    await page.getByLabel('Queue', { exact: true }).selectOption('output');
    await page.getByRole('button', { name: 'Filter' }).click();
    const out = page.getByRole('row', { name: new RegExp(peer.tokenUrl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) }).first();
    await hasText(out, 'mid.server.dc1');
    await hasText(out, 'processed');
    await hasCount(page.getByRole('row', { name: /^.*\binput\b/ }), 0);
    await page.getByRole('link', { name: 'Clear' }).click();
    await page.getByRole('row', { name: /\binput\b.*RESTProbe/ }).first().waitFor();
    await b.shot('ecc-queue');
    await page.getByRole('link', { name: /^output record/ }).first().click();
    await hasText(page.locator('.facts'), /encrypted, \d+ bytes/);
    await hasText(page.locator('.facts'), peer.tokenUrl);
    await b.shot('ecc-record');
    await page.getByRole('link', { name: /^input record/ }).click();
    await hasText(page.getByRole('heading', { level: 1 }), 'ECC input record', true);
    await page.getByText(/^Answers output record/).waitFor();
    await page.getByRole('link', { name: /^output record/ }).click();
    await hasText(page.getByRole('heading', { level: 1 }), 'ECC output record', true);
  });

  step('Authorization Code: Get OAuth Token goes to the provider\'s own login page, and comes back to the credential', async () => {
    await go('/console/providers/new');
    await page.getByLabel('Name', { exact: true }).fill('corp-sso');
    await page.getByLabel('Client ID').fill(peer.clients.code.client_id);
    await page.getByLabel('Client Secret').fill(peer.clients.code.client_secret);
    await page.getByLabel('Token URL').fill(peer.tokenUrl);
    await page.getByLabel('Authorization URL').fill(peer.authorizationUrl);
    await page.getByLabel('Default Grant type').selectOption({ label: 'Authorization Code' });
    await page.getByLabel('Default scopes').fill('api:read');
    await page.getByRole('button', { name: 'Submit' }).click();
    await hasText(flash(), '"corp-sso" created');
    await go('/console/credentials/new');
    await page.getByLabel('Name', { exact: true }).fill('corp-sso-user');
    await page.getByLabel('OAuth Entity Profile').selectOption({ label: 'corp-sso default_profile (Authorization Code)' });
    await page.getByLabel('All MID Servers').check();
    await page.getByRole('button', { name: 'Submit' }).click();
    await hasText(banner(), NOT_AVAILABLE, true);
    await page.getByRole('button', { name: 'Get OAuth Token' }).click();
    await page.waitForURL((u) => u.origin === new URL(peer.issuer).origin);
    await page.locator('#username').fill(peer.user.username);
    await page.locator('#password').fill(peer.user.password);
    await page.locator('#submit').click();
    await page.locator('#consent-form #submit').click();
    await page.waitForURL(/\/oauth\/callback\?/);
    await hasText(page.getByRole('heading', { level: 1 }), 'Token stored for "corp-sso-user"', true);
    await b.shot('oauth-callback');
    await page.getByRole('link', { name: 'Back to the credential in the console' }).click();
    await hasText(page.getByRole('heading', { level: 1 }), 'corp-sso-user', true);
    await hasText(banner(), /^OAuth Refresh token is available/, true);
    await page.getByRole('row', { name: /Refresh token/ }).waitFor();
  });

  step('Resource Owner Password Credentials: the login screen (a wrong password is said, the right one stores the token)', async () => {
    await go('/console/providers/new');
    await page.getByLabel('Name', { exact: true }).fill('partner-as');
    await page.getByLabel('Client ID').fill(partner.clients.basic.client_id);
    await page.getByLabel('Client Secret').fill(partner.clients.basic.client_secret);
    await page.getByLabel('Token URL').fill(partner.tokenUrl);
    await page.getByLabel('Default Grant type').selectOption({ label: 'Resource Owner Password Credentials' });
    await page.getByLabel('Default scopes').fill('api:read');
    await page.getByRole('button', { name: 'Submit' }).click();
    await go('/console/credentials/new');
    await page.getByLabel('Name', { exact: true }).fill('partner-alice');
    await page.getByLabel('OAuth Entity Profile').selectOption({ label: 'partner-as default_profile (Resource Owner Password Credentials)' });
    await page.getByLabel(/^dc1/).check();
    await page.getByRole('button', { name: 'Submit' }).click();
    await page.getByRole('button', { name: 'Get OAuth Token' }).click();
    await hasText(page.getByRole('heading', { level: 1 }), 'Log in to get an OAuth token', true);
    await page.getByLabel('Username').fill('alice');
    await page.getByLabel('Password').fill('not-her-password');
    await page.getByRole('button', { name: 'Get OAuth Token' }).click();
    await hasText(page.getByRole('alert'), 'invalid_grant');
    expect(await page.getByLabel('Username').inputValue()).toBe('alice');
    expect(await page.getByLabel('Password').inputValue()).toBe('');
    await b.shot('password-login');
    await page.getByLabel('Password').fill(partner.users.alice.password);
    await page.getByRole('button', { name: 'Get OAuth Token' }).click();
    await hasText(flash(), 'The password was not kept.');
    await hasText(banner(), /^OAuth Refresh token is available/, true);
  });

  step('JWT Bearer: the assertion fields and the write-only private key; Get OAuth Token runs at once', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    await partner.registerAssertionKey(partner.clients.basic.client_id, await exportSPKI(publicKey), 'ES256');
    const pem = await exportPKCS8(privateKey);
    secrets.push(pem, pem.split('\n')[2]!);
    await go('/console/providers/new');
    await page.getByLabel('Name', { exact: true }).fill('partner-jwt');
    await page.getByLabel('Client ID').fill(partner.clients.basic.client_id);
    await page.getByLabel('Client Secret').fill(partner.clients.basic.client_secret);
    await page.getByLabel('Token URL').fill(partner.tokenUrl);
    await page.getByLabel('Default Grant type').selectOption({ label: 'JWT Bearer' });
    await page.getByLabel('Assertion subject').fill('svc-console');
    await page.getByLabel('Signing algorithm').selectOption('ES256');
    await page.getByLabel('Private key (PEM)').fill(pem);
    await page.getByRole('button', { name: 'Submit' }).click();
    await hasText(flash(), '"partner-jwt" created');
    await hasText(page.locator('#f-assertion-private_key_pem-hint'), 'Set');
    await go('/console/credentials/new');
    await page.getByLabel('Name', { exact: true }).fill('partner-svc');
    await page.getByLabel('OAuth Entity Profile').selectOption({ label: 'partner-jwt default_profile (JWT Bearer)' });
    await page.getByLabel(/^dc1/).check();
    await page.getByRole('button', { name: 'Submit' }).click();
    await hasText(banner(), NOT_AVAILABLE, true);
    await page.getByRole('button', { name: 'Get OAuth Token' }).click();
    await hasText(banner(), /^OAuth Access token is available but will expire soon at /, true);
    const at = (await t.api('GET', '/api/v1/credentials/partner-svc/access_token')).json.access_token as string;
    expect(partner.introspect(at)).toMatchObject({ active: true, sub: 'svc-console' });
    secrets.push(at);
  });

  step('Connections and the REST step "Test" panel: status, headers and body, through dc1', async () => {
    await nav('Connections');
    await hasText(page.locator('.empty'), 'No connections yet');
    await clickNew();
    await page.getByLabel('Name', { exact: true }).fill('partner-api');
    await page.getByLabel('Base URL').fill(partner.issuer);
    await page.getByLabel('Credential', { exact: true }).selectOption({ label: 'partner-alice' });
    await page.getByLabel('dc1').check();
    await page.getByRole('button', { name: 'Submit' }).click();
    await hasText(flash(), 'Connection "partner-api" created');
    await page.getByLabel('Path').fill('/resource');
    await page.getByRole('button', { name: 'Test' }).click();
    const result = page.locator('#test-result');
    await hasText(result.getByRole('heading'), '200');
    await hasText(result, 'MID server dc1');
    await hasText(result.getByRole('row', { name: /content-type/ }), 'application/json');
    await hasText(page.locator('#test-body'), '"alice"');
    await hasText(page.getByRole('row', { name: /\/resource/ }).first(), 'dc1');
    await b.shot('rest-step-test');
    await page.getByLabel('Headers').fill('Authorization: Bearer mine');
    await page.getByRole('button', { name: 'Test' }).click();
    await hasText(page.locator('#f-headers-error'), 'the connection\'s credential supplies it');
  });

  step('Revoke tokens: at the provider through dc1, then deleted; the banner says so', async () => {
    await go('/console/credentials/corp-cc');
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Revoke tokens' }).click();
    await hasText(flash(), 'Tokens revoked at the provider and deleted.', true);
    await hasText(banner(), NOT_AVAILABLE, true);
    await hasText(page.locator('#tokens + .empty'), 'No tokens are stored for this credential.');
  });

  step('the overview and the lists read the live state', async () => {
    await nav('Overview');
    await hasCount(page.locator('.steps .badge.ok'), 5);
    await b.shot('overview');
    await nav('Credentials');
    await hasText(page.getByRole('row', { name: /partner-svc/ }), 'available');
    await hasText(page.getByRole('row', { name: /corp-cc/ }), 'not available');
    await b.shot('credentials');
  });

  step('logs out', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await hasText(page.getByRole('status'), 'You are logged out.', true);
    await go('/console/credentials');
    await page.waitForURL(/\/console\/login\?next=/);
  });
});
