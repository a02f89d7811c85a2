/**
 * Errors that reach a user carry a stable code, a message that says what happened and what
 * to do, and private detail that is logged but never sent. The registry maps each code to
 * its HTTP status; `docs/errors.md` lists them for operators.
 */
export const errorCodes = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  enrollment_key_invalid: 401,
  mid_server_unknown: 401,
  mid_server_not_validated: 403,
  ecc_lease_lost: 409,
  grant_not_supported: 400,
  token_not_available: 409,
  mid_server_unavailable: 503,
  mid_server_timeout: 504,
  /** Transports throw this; callers restate it in their own terms (token_endpoint_unreachable, rest_request_failed). */
  endpoint_unreachable: 502,
  token_endpoint_unreachable: 502,
  token_endpoint_error: 502,
  token_endpoint_invalid_response: 502,
  refresh_in_progress: 503,
  response_too_large: 502,
  rest_request_failed: 502,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof errorCodes;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, opts: { message: string; detail?: Record<string, unknown>; cause?: unknown }) {
    super(opts.message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = errorCodes[code];
    this.detail = opts.detail;
  }
}

export const isAppError = (e: unknown): e is AppError => e instanceof AppError;

export function notFound(kind: string, id: string): AppError {
  return new AppError('not_found', { message: `No ${kind} with id or name "${id}". List them with GET to find the right one.` });
}
