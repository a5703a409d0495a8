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
  /** A persisted file of the agent's (update state, drift outbox, labelled samples) failed its checks. */
  'AGENT_STATE_CORRUPT',
  /** Feedback names an inference id the agent does not remember (never given, or expired from the recent ring). */
  'UNKNOWN_INFERENCE',
  /** Feedback of the wrong shape: a missing field, a label that is not an integer class of the model, too many items. */
  'FEEDBACK_INPUT',
  /** A second label for an inference already labelled: the first one stands. */
  'ALREADY_LABELLED',
  /** A training request that does not fit its architecture (shapes, labels, non-finite numbers, no samples, bad hyperparameters). */
  'TRAIN_REQUEST',
  /** Local training produced a non-finite loss or weights (learning rate too high for the data). */
  'TRAIN_DIVERGED',
  /** Local training could not run or finish: the backend failed to load, a worker crashed, the pool was closed. */
  'TRAIN_FAILED',
] as const;

export type AgentErrorCode = (typeof AGENT_ERROR_CODES)[number];

export function agentError(
  code: AgentErrorCode,
  message: string,
  options?: { cause?: unknown },
): FleetError<AgentErrorCode> {
  return new FleetError(code, message, options);
}
