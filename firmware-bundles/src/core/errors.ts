/**
 * Error codes of the bundle factory, raised as `FleetError<FactoryErrorCode>`
 * (the protocol's one error type) and mapped to exit codes only in the CLI.
 */
import { FleetError } from '@fleet/protocol';

export type FactoryErrorCode =
  /** A file that is not a well-formed ONNX model (or uses features we refuse, e.g. external data). */
  | 'MODEL_MALFORMED'
  /** A model layout or architecture description that cannot be built or converted. */
  | 'MODEL_UNSUPPORTED'
  /** An evaluation-data file that is truncated, padded, or holds out-of-range values. */
  | 'EVAL_DATA_MALFORMED'
  /** Evaluation data whose shape does not fit the model's input. */
  | 'EVAL_DATA_MISMATCH'
  /** The quantized model loses more accuracy than the build allows. */
  | 'ACCURACY_BUDGET'
  /** Drift signals or settings that do not make a valid manifest `drift` field. */
  | 'DRIFT_SPEC'
  /**
   * A training architecture that is invalid or does not match the model's
   * graph, training weights that do not fit it, or a bundle without them.
   */
  | 'TRAINING_SPEC';

export function factoryError(
  code: FactoryErrorCode,
  message: string,
  cause?: unknown,
): FleetError<FactoryErrorCode> {
  return new FleetError(code, message, cause === undefined ? undefined : { cause });
}
