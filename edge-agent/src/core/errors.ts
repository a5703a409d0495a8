/**
 * Edge-agent error codes. The agent throws `FleetError<AgentErrorCode>` (or a
 * protocol code, for bundles and messages that fail verification); adapters
 * map codes at their edge (the inference API maps them to HTTP statuses in
 * adapters/http/infer-api.ts). Codes travel in device error reports, so they
 * stay one token of `[A-Z_]`.
 */
import { FleetError } from '@fleet/protocol';

export const AGENT_ERROR_CODES = [
  /** onnxruntime cannot load the model bytes (corrupt file, unsupported op or opset). */
  'MODEL_LOAD',
  /** The model's input or output names, count, type or shape differ from its manifest's `io` (THREATS 18, 40). */
  'MODEL_IO_MISMATCH',
  /** A model handle used after its session was released. */
  'MODEL_RELEASED',
  /** An inference input of the wrong shape or type, or with a non-finite number. */
  'INFER_INPUT',
  /** The runtime failed, or the model answered with outputs of the wrong shape or non-finite numbers. */
  'INFER_FAILED',
  /** Inference was asked for while no model is active. */
  'NO_MODEL',
  /** A model's outputs on its bundle's golden vectors are outside tolerance. */
  'SELF_TEST_FAILED',
  /** A request body above its size cap. */
  'PAYLOAD_TOO_LARGE',
  /** A request body of a media type the route does not accept. */
  'UNSUPPORTED_MEDIA_TYPE',
  /** A bundle's drift profile part is missing, does not decode against its manifest's `drift` spec, or does not fit the model. */
  'DRIFT_PROFILE',
  /** A persisted file of the agent's (update state, drift outbox) failed its checks. */
  'AGENT_STATE_CORRUPT',
] as const;

export type AgentErrorCode = (typeof AGENT_ERROR_CODES)[number];

export function agentError(
  code: AgentErrorCode,
  message: string,
  options?: { cause?: unknown },
): FleetError<AgentErrorCode> {
  return new FleetError(code, message, options);
}
