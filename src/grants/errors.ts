import * as oauth from 'oauth4webapi';
import { AppError } from '../core/errors.js';
import type { Transport } from '../transport/transport.js';

const hints: Record<string, string> = {
  invalid_client: 'Check the client ID, the client secret (or key) and the client authentication method of the provider.',
  invalid_scope: 'Check the scopes on the OAuth entity profile against what the provider allows this client.',
  unauthorized_client: 'The provider does not allow this grant type for this client; enable it there or change the grant type.',
  unsupported_grant_type: 'The provider does not support this grant type; change the default grant type or the profile.',
  invalid_grant: 'The grant (code, refresh token, password or assertion) was refused; click the \'Get OAuth Token\' link to request a new token.',
  invalid_request: 'The provider refused the request as malformed; check the token URL and extra request parameters.',
};

function where(t: Transport): string {
  const { midServer, eccOutputId, eccInputId } = t.trace;
  if (!midServer) return 'requested directly by the instance';
  return `via MID server ${midServer}, ECC output ${eccOutputId ?? '-'}, input ${eccInputId ?? '-'}`;
}

/**
 * Turns what oauth4webapi throws into errors that say what happened and what to do. The
 * provider's own error and error_description go into the message verbatim.
 */
export function explainGrantError(err: unknown, providerName: string, transport: Transport): AppError {
  if (err instanceof AppError && err.code === 'endpoint_unreachable') {
    return new AppError('token_endpoint_unreachable', { message: err.message, ...(err.detail ? { detail: err.detail } : {}), cause: err });
  }
  if (err instanceof AppError) return err;
  if (err instanceof oauth.ResponseBodyError) {
    const desc = err.error_description ? `: ${err.error_description}` : '';
    return new AppError('token_endpoint_error', {
      message: `The token endpoint of provider "${providerName}" refused the request with "${err.error}"${desc} (HTTP ${err.status}; ${where(transport)}). ${hints[err.error] ?? ''}`.trim(),
      detail: { oauthError: err.error, status: err.status },
      cause: err,
    });
  }
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    // RFC 6749 §5.2: a 401 carries WWW-Authenticate; its error and error_description are the provider's words.
    const params = err.cause[0]?.parameters ?? {};
    const code = params.error ?? 'invalid_client';
    const desc = params.error_description ? `: ${params.error_description}` : '';
    return new AppError('token_endpoint_error', {
      message: `The token endpoint of provider "${providerName}" refused the request with "${code}"${desc} (HTTP ${err.status}; ${where(transport)}). ${hints[code] ?? hints.invalid_client}`,
      detail: { oauthError: code, status: err.status },
      cause: err,
    });
  }
  if (err instanceof oauth.OperationProcessingError || err instanceof TypeError) {
    const status = (err as { cause?: unknown }).cause instanceof Response ? ` (HTTP ${((err as { cause: Response }).cause).status})` : '';
    return new AppError('token_endpoint_invalid_response', {
      message: `The token endpoint of provider "${providerName}" did not answer with a valid OAuth token response${status}: ${err.message} (${where(transport)}). Check that the token URL points at the token endpoint.`,
      cause: err,
    });
  }
  return new AppError('internal', { message: `Token request for provider "${providerName}" failed unexpectedly (${where(transport)}).`, cause: err });
}
