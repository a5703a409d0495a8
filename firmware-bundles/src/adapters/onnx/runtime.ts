/**
 * Runs ONNX models with onnxruntime-node (CPU): the factory uses it to
 * evaluate float and quantized models on the same inputs.
 */
import ort from 'onnxruntime-node';
import { factoryError } from '../../core/errors.ts';

export interface OnnxRunner {
  readonly inputName: string;
  readonly outputNames: readonly string[];
  /**
   * Runs a batch of `batchSize` samples and returns the first output. Each
   * sample is `sampleShape` (default: a flat row of features.length / batchSize).
   */
  run(
    features: Float32Array,
    batchSize: number,
    sampleShape?: readonly number[],
  ): Promise<Float32Array>;
  close(): Promise<void>;
}

export async function createOnnxRunner(modelBytes: Uint8Array): Promise<OnnxRunner> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(modelBytes, { executionProviders: ['cpu'] });
  } catch (cause) {
    throw factoryError(
      'MODEL_MALFORMED',
      `onnxruntime cannot load the model: ${String(cause)}`,
      cause,
    );
  }
  const inputName = session.inputNames[0]!;
  const outputName = session.outputNames[0]!;
  return {
    inputName,
    outputNames: session.outputNames,
    async run(features, batchSize, sampleShape) {
      const featureCount = features.length / batchSize;
      if (!Number.isInteger(featureCount)) {
        throw factoryError(
          'MODEL_UNSUPPORTED',
          `${features.length} values do not split into ${batchSize} rows`,
        );
      }
      const dims = [batchSize, ...(sampleShape ?? [featureCount])];
      const feeds = { [inputName]: new ort.Tensor('float32', features, dims) };
      const results = await session.run(feeds);
      return results[outputName]!.data as Float32Array;
    },
    close: () => session.release(),
  };
}
