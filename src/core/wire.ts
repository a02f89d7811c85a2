import { z } from 'zod';

/**
 * What travels between the instance and a MID server (version 1). The instance never sends a
 * plain secret here: `RestProbeRequest` and `RestProbeResult` travel inside the JWE payload of
 * an ECC record; everything else is metadata.
 */
export const WIRE_VERSION = 1;
export const AGENT_AUDIENCE = 'tokenrelay:agent';

const header = z.tuple([z.string(), z.string()]);

export const RestProbeRequest = z.object({
  v: z.literal(WIRE_VERSION),
  method: z.string(),
  url: z.string(),
  headers: z.array(header),
  body_b64: z.string().nullable(),
  timeout_ms: z.number().int().positive(),
  max_response_bytes: z.number().int().positive(),
});
export type RestProbeRequest = z.infer<typeof RestProbeRequest>;

export const RestProbeResult = z.union([
  z.object({
    v: z.literal(WIRE_VERSION),
    status: z.number().int(),
    headers: z.array(header),
    body_b64: z.string(),
    duration_ms: z.number(),
  }),
  z.object({
    v: z.literal(WIRE_VERSION),
    error: z.object({ code: z.string(), message: z.string() }),
    duration_ms: z.number(),
  }),
]);
export type RestProbeResult = z.infer<typeof RestProbeResult>;

export const EnrollRequest = z.object({
  enrollment_key: z.string().min(1),
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'letters, digits, "_", "." and "-", starting with a letter or digit, at most 63'),
  sign_jwk: z.record(z.string(), z.unknown()),
  enc_jwk: z.record(z.string(), z.unknown()),
  host: z.string().max(255).optional(),
  version: z.string().max(64).optional(),
  capabilities: z.array(z.string().max(64)).max(64).optional(),
});

export const EnrollResponse = z.object({ mid_id: z.string(), name: z.string(), instance_enc_jwk: z.record(z.string(), z.unknown()) });

export const Heartbeat = z.object({
  host: z.string().max(255).optional(),
  version: z.string().max(64).optional(),
  capabilities: z.array(z.string().max(64)).max(64).optional(),
});
export const HeartbeatResponse = z.object({
  validated: z.boolean(),
  paused: z.boolean().default(false),
  /** An administrator asked for new key pairs: make them and call /agent/v1/rekey. */
  rekey: z.boolean().default(false),
  instance_enc_jwk: z.record(z.string(), z.unknown()),
});

export const RekeyRequest = z.object({ sign_jwk: z.record(z.string(), z.unknown()), enc_jwk: z.record(z.string(), z.unknown()) });

export const PollRequest = z.object({ max: z.number().int().min(0).max(100), wait_ms: z.number().int().min(0).max(60_000) });
export const ClaimedRecord = z.object({
  id: z.string(),
  topic: z.string(),
  name: z.string(),
  source: z.string(),
  payload: z.string(),
  lease_expires_at: z.number(),
});
export type ClaimedRecord = z.infer<typeof ClaimedRecord>;
export const PollResponse = z.object({ records: z.array(ClaimedRecord) });

export const InputRequest = z.object({
  response_to: z.string(),
  payload: z.string(),
  /** A short, secret-free summary when the probe failed (shown as the records' error string). */
  error_string: z.string().max(2000).nullable(),
});
export type InputRequest = z.infer<typeof InputRequest>;

/** Several answers in one call (one transaction on the instance). */
export const InputsRequest = z.object({ inputs: z.array(InputRequest).min(1).max(100) });
export const InputsResponse = z.object({
  results: z.array(z.object({ response_to: z.string(), id: z.string().optional(), error: z.object({ code: z.string(), message: z.string() }).optional() })),
});
