import type { Log } from '../core/log.js';
import { backoff } from '../core/loop.js';
import { InputsResponse, type InputRequest } from '../core/wire.js';
import { InstanceCallError, type InstanceClient } from './instance-client.js';

/**
 * Posts answers to the instance with natural batching: when no post is in flight an answer
 * goes at once (no added latency); answers that finish while one is in flight go together in
 * the next post, one call and one transaction for all of them. A network failure retries with
 * backoff while the record's lease lasts; a refusal (the lease was lost, the MID server was
 * invalidated) is logged and dropped — the instance has already ended that record.
 */
export interface InputSender {
  send(input: InputRequest, leaseExpiresAt: number): Promise<void>;
}

interface Pending {
  input: InputRequest;
  leaseExpiresAt: number;
  attempt: number;
  done: () => void;
}

export function createInputSender(client: InstanceClient, log: Log): InputSender {
  const queue: Pending[] = [];
  let inFlight = false;

  async function pump(): Promise<void> {
    if (inFlight || queue.length === 0) return;
    inFlight = true;
    const batch = queue.splice(0, 100);
    try {
      const res = InputsResponse.parse(await client.call('/agent/v1/inputs', { inputs: batch.map((b) => b.input) }, { timeoutMs: 30_000 }));
      const byId = new Map(res.results.map((r) => [r.response_to, r]));
      for (const b of batch) {
        const r = byId.get(b.input.response_to);
        if (r?.error) log.warn({ record: b.input.response_to, err: r.error.message }, 'mid:input-refused');
        else log.debug({ record: b.input.response_to, failed: b.input.error_string !== null }, 'mid:probe-done');
        b.done();
      }
    } catch (err) {
      const e = err as InstanceCallError;
      const refused = e instanceof InstanceCallError && e.status !== null && e.status >= 400 && e.status < 500;
      for (const b of batch) {
        if (refused) {
          log.warn({ record: b.input.response_to, err: e.message }, 'mid:input-refused');
          b.done();
        } else if (Date.now() > b.leaseExpiresAt || b.attempt >= 8) {
          log.error({ record: b.input.response_to, err: e.message }, 'mid:input-undeliverable');
          b.done();
        } else {
          b.attempt++;
          setTimeout(() => {
            queue.push(b);
            void pump();
          }, backoff(b.attempt - 1, 250, 5_000));
        }
      }
    } finally {
      inFlight = false;
      void pump();
    }
  }

  return {
    send(input, leaseExpiresAt) {
      return new Promise<void>((done) => {
        queue.push({ input, leaseExpiresAt, attempt: 0, done });
        void pump();
      });
    },
  };
}
