/**
 * @fleet/edge-agent: the device daemon fleet-agent: MQTT session, verified
 * A/B updates, inference, drift sketches, local training. See README.md.
 */
// Inference: error codes, the model runtime and its manifest-io check, the
// golden self-test, health windows and probation, the in-process and HTTP APIs.
export * from './core/errors.ts';
export * from './core/loaded-model.ts';
export * from './core/model-io.ts';
export * from './core/self-test.ts';
export * from './core/health-window.ts';
export * from './core/inference-service.ts';
export * from './adapters/onnx/model-runtime.ts';
export * from './adapters/http/infer-api.ts';
