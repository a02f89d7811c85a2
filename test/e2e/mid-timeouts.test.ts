import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestInstance } from '../support/instance.js';
import { startOidcPeer, type OidcPeer } from '../peers/oidc-peer.js';
import { createInstanceClient, InstanceCallError } from '../../src/mid/instance-client.js';
import { enroll } from '../../src/mid/identity.js';

/**
 * Story 5, the MID server's side of failure: one that never picks work up, and one that claims
 * a token request and never answers. Driven through the real agent API with a hand-held MID
 * identity (enrolled, signing its calls), so the instance cannot tell it from a real one.
 */
describe('a MID server that does not answer in time', () => {
  let t: Awaited<ReturnType<typeof startTestInstance>>;
  let peer: OidcPeer;
  let ghost: ReturnType<typeof createInstanceClient>;
  let credId = '';
  let beating: NodeJS.Timeout;

  beforeAll(async () => {
    peer = await startOidcPeer();
    t = await startTestInstance({ claimTimeoutMs: 1_000, tokenRequestTimeoutMs: 1_000, leaseGraceMs: 500, reaperIntervalMs: 100 });
    ghost = createInstanceClient({ instanceUrl: t.url });
    const key = (await t.api('POST', '/api/v1/mid_enrollment_keys', {})).json.key;
    const id = await enroll(ghost, { instanceUrl: t.url, name: 'ghost', key, dataDir: path.join(t.dataDir, 'ghost'), capabilities: ['REST'] });
    ghost.setIdentity({ midId: id.mid_id, signPrivateJwk: id.sign_private_jwk });
    const beat = () => ghost.call('/agent/v1/heartbeat', {}).catch(() => undefined);
    await beat();
    beating = setInterval(beat, 200);
    await t.api('POST', '/api/v1/mid_servers/ghost/validate', {});
    const p = await t.api('POST', '/api/v1/oauth_providers', {
      name: 'p', client_id: peer.clients.basic.client_id, client_secret: peer.clients.basic.client_secret, token_url: peer.tokenUrl,
    });
    credId = (await t.api('POST', '/api/v1/credentials', { name: 'c', profile_id: p.json.default_profile_id, use_mid_server: true, applies_to: 'specific', mid_servers: ['ghost'] })).json.id;
  });
  afterAll(async () => {
    clearInterval(beating);
    await t?.stop();
    await peer?.close();
  });

  it('never claimed: the request ends with the MID server named and the ECC id, and cannot run later', async () => {
    const r = await t.api('POST', `/api/v1/credentials/${credId}/get_token`, {});
    expect(r.status).toBe(504);
    expect(r.json.error.code).toBe('mid_server_timeout');
    expect(r.json.error.message).toMatch(/MID server ghost did not pick up the request within 1 s/);
    const outputId = r.json.error.message.match(/ECC output ([0-9a-f-]{36})/)?.[1];
    expect(outputId).toBeDefined();
    const rec = (await t.api('GET', `/api/v1/ecc_queue/${outputId}`)).json;
    expect(rec).toMatchObject({ state: 'error', error_string: expect.stringMatching(/No MID server claimed this record/) });
    // a late poll gets nothing: the token request will not run after its caller gave up
    const late = (await ghost.call('/agent/v1/poll', { max: 10, wait_ms: 0 })) as { records: unknown[] };
    expect(late.records).toEqual([]);
  });

  it('claimed but never answered: the lease runs out, the record ends in error, a late answer is refused', async () => {
    const pending = t.api('POST', `/api/v1/credentials/${credId}/get_token`, {});
    const polled = (await ghost.call('/agent/v1/poll', { max: 1, wait_ms: 5_000 })) as { records: Array<{ id: string; source: string }> };
    expect(polled.records).toHaveLength(1);
    expect(polled.records[0]!.source).toBe(peer.tokenUrl);
    const r = await pending;
    expect(r.status).toBe(504);
    expect(r.json.error).toMatchObject({ code: 'mid_server_timeout', message: expect.stringMatching(/MID server ghost claimed this record but did not answer before its lease ran out.*ECC output [0-9a-f-]{36}/) });
    const rec = (await t.api('GET', `/api/v1/ecc_queue/${polled.records[0]!.id}`)).json;
    expect(rec).toMatchObject({ state: 'error', attempts: 1 });
    await expect(ghost.call('/agent/v1/input', { response_to: polled.records[0]!.id, payload: 'x', error_string: null })).rejects.toMatchObject({
      status: 409,
      code: 'ecc_lease_lost',
    } satisfies Partial<InstanceCallError>);
    expect(peer.tokenRequests()).toBe(0);
  });
});
