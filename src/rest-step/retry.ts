import type { RetryPolicy } from './connections.js';

/**
 * The connection's retry policy, as the reference's IntegrationHub retry policies: none by
 * default; exponential (×2), fixed interval, or honouring Retry-After; bounded by a count and
 * an elapsed-time cap; only idempotent methods unless the connection opts in (RFC 9110 §9.2.2).
 */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
export const isIdempotent = (method: string): boolean => IDEMPOTENT.has(method.toUpperCase());

export function retryDelay(
  policy: RetryPolicy,
  attempt: number,
  outcome: { status?: number; retryAfter?: string | null; networkError?: boolean },
  method: string,
  elapsedMs: number,
  now: number = Date.now(),
): number | null {
  if (policy.strategy === 'none' || attempt >= policy.count) return null;
  if (!isIdempotent(method) && !policy.retry_non_idempotent) return null;
  const retryable = outcome.networkError || (outcome.status !== undefined && policy.on_status.includes(outcome.status));
  if (!retryable) return null;
  let delay: number;
  if (policy.strategy === 'fixed') delay = policy.interval_ms;
  else if (policy.strategy === 'exponential') delay = policy.interval_ms * 2 ** attempt;
  else delay = parseRetryAfter(outcome.retryAfter ?? null, now) ?? policy.interval_ms;
  return elapsedMs + delay > policy.max_elapsed_ms ? null : delay;
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date. */
export function parseRetryAfter(value: string | null, now: number): number | null {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
