/**
 * @fleet/bundles: the bundle factory (ONNX in, quantize, evaluate, sign), the
 * reference MNIST data and model, trust-root key ceremonies, and the `fleet`
 * CLI's command tree.
 */
export * from './core/errors.ts';
export * from './core/key-ceremony.ts';
export * from './core/onnx/model.ts';
export * from './core/onnx/dense-builder.ts';
export * from './core/onnx/dense-tensors.ts';
export * from './core/onnx/dense-from-onnx.ts';
export * from './core/quantize/quantize-weights.ts';
export * from './core/data/eval-data.ts';
export * from './core/evaluation/classifier-accuracy.ts';
export * from './core/build/evaluate-pair.ts';
export * from './core/build/build-bundle.ts';
export * from './core/build/build-dense-bundle.ts';
export * from './core/build/training-part.ts';
export * from './core/build/drift-profile.ts';
export { decodeOnnx, encodeOnnx } from './adapters/onnx/onnx-codec.ts';
export { createOnnxRunner, type OnnxRunner } from './adapters/onnx/runtime.ts';
export { mnistSplit } from './adapters/mnist/mnist-split.ts';
export { trainReferenceModel, REFERENCE_HYPERPARAMETERS } from './adapters/tfjs/train-reference.ts';
export { createKeyDirectory, type KeyDirectory } from './adapters/fs/key-directory.ts';
export { writeFileAtomic } from './adapters/fs/atomic-write.ts';
export { createProgram, runCli } from './cli/program.ts';
export type { CliIo } from './cli/io.ts';
