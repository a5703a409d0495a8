/**
 * What the inference core needs from a model runtime: a loaded model that
 * runs a batch of float32 rows and says how wide its rows are. The
 * onnxruntime implementation is adapters/onnx/model-runtime.ts; tests may
 * pass any object of this shape.
 */
import type { Manifest } from '@fleet/protocol';

/** The manifest's `io` field: the tensors a bundle promises its model has. */
export type ManifestIo = NonNullable<Manifest['io']>;

export interface ModelRunResult {
  /** `batch * outputWidth` numbers, row-major. */
  outputs: Float32Array;
  outputWidth: number;
}

export interface LoadedModel {
  /** What the model was loaded under (the bundle id). */
  readonly key: string;
  /** The model input the rows feed (the manifest's only input). */
  readonly inputName: string;
  /** The model output that is returned (the manifest's first output). */
  readonly outputName: string;
  /** Numbers per input row: the product of the input's non-batch dimensions. */
  readonly inputWidth: number;
  /** Runs `batch` rows of `inputWidth` numbers (`input.length === batch * inputWidth`). */
  run(input: Float32Array, batch: number): Promise<ModelRunResult>;
}
