import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestInstance } from '../support/instance.js';
import { startOidcPeer, type OidcPeer } from '../peers/oidc-peer.js';
import { eventually } from '../support/cli.js';

/**
 * Proactive refresh, in-process against a real oidc-provider issuing 4-second client-credentials
 * tokens: the scheduler renews them ahead of expiry through the MID server, readers never see
 * an expired token, and a failing refresh backs off and says when it tries next.
 */
describe('refresh scheduler', () => {
  let t: Awaited<ReturnType<typeof startTestInstance>>;
  let peer: OidcPeer;

  beforeAll(async () => {
    peer = await startOidcPeer({ accessTokenTtlS: 4 });
    t = await startTestInstance({ schedulerIntervalMs: 100, tokenMinRemainingMs: 500 });
    await t.addMid('dc1');
  });
  afterAll(async () => {
    await t?.stop();
    await peer?.close();
  });

  const setup = async (name: string) => {
    const p = await t.api('POST', '/api/v1/oauth_providers', {
      name, client_id: peer.clients.basic.client_id, client_secret: peer.clients.basic.client_secret, token_url: peer.tokenUrl,
    });
    const c = await t.api('POST', '/api/v1/credentials', { name: `${name}-cred`, profile_id: p.json.default_profile_id, use_mid_server: true });
    expect((await t.api('POST', `/api/v1/credentials/${c.json.id}/get_token`, {})).status).toBe(200);
    return { providerId: p.json.id as string, credId: c.json.id as string };
  };

  it('renews a token ahead of expiry without any reader, and readers never get an expired one', async () => {
    const { credId } = await setup('sched');
    const row = async () => (await t.api('GET', `/api/v1/oauth_tokens?credential_id=${credId}`)).json.items[0];
    const original = await row();
    const before = peer.tokenRequests();
    // Nobody reads for longer than the token lives: only the scheduler can have renewed it.
    await new Promise((res) => setTimeout(res, 4_500));
    const renewed = await row();
    expect(renewed.created_at > original.created_at).toBe(true);
    expect(Date.parse(renewed.expires_at)).toBeGreaterThan(Date.now());
    expect(peer.tokenRequests() - before).toBeGreaterThanOrEqual(1);
    const first = (await t.api('GET', `/api/v1/credentials/${credId}/access_token`)).json;
    const seen = new Set<string>();
    const until = Date.now() + 9_000;
    while (Date.now() < until) {
      const r = await t.api('GET', `/api/v1/credentials/${credId}/access_token`);
      expect(r.status).toBe(200);
      expect(Date.parse(r.json.expires_at)).toBeGreaterThan(Date.now());
      seen.add(r.json.access_token);
      await new Promise((res) => setTimeout(res, 100));
    }
    // 9 s of 4 s tokens refreshed at ~75 % of their life: at least two renewals, all by the scheduler.
    expect(seen.size).toBeGreaterThanOrEqual(3);
    expect(seen.has(first.access_token)).toBe(true);
    expect(peer.tokenRequests() - before).toBeGreaterThanOrEqual(3);
    const outs = (await t.api('GET', '/api/v1/ecc_queue?queue=output&agent=mid.server.dc1&limit=1000')).json.items;
    expect(outs.length).toBeGreaterThanOrEqual(3);
  });

  it('a refresh that fails backs off and the credential says when it tries next', async () => {
    const { providerId, credId } = await setup('failing');
    expect((await t.api('PATCH', `/api/v1/oauth_providers/${providerId}`, { client_secret: 'rotated-away' })).status).toBe(200);
    const status = await eventually(async () => {
      const s = (await t.api('GET', `/api/v1/credentials/${credId}`)).json.status;
      return s.next_refresh_attempt_at && s;
    }, 10_000, 'a failed scheduled refresh');
    expect(status.last_error.code).toBe('token_endpoint_error');
    expect(status.message).toMatch(/The last automatic refresh failed: .*invalid_client.* Next attempt at \d{4}-/);
    expect(Date.parse(status.next_refresh_attempt_at)).toBeGreaterThan(Date.now());
    // fixed: the next attempt succeeds and clears the failure
    await t.api('PATCH', `/api/v1/oauth_providers/${providerId}`, { client_secret: peer.clients.basic.client_secret });
    const r = await t.api('POST', `/api/v1/credentials/${credId}/get_token`, {});
    expect(r.json.status).toMatchObject({ last_error: null, next_refresh_attempt_at: null, tokens_available: true });
  });
});
