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
// Updates: the update state machine (pure) and its driver, storage (disk and
// memory), the MQTT session, enrolment, the assembled agent and the daemon.
export * from './core/update-state.ts';
export * from './core/update-machine.ts';
export * from './core/storage.ts';
export * from './core/model-host.ts';
export { createOnnxModelHost, type OnnxModelHost } from './adapters/onnx/onnx-model-host.ts';
export {
  createMemoryDownloadStore,
  createMemoryDriftOutboxStore,
  createMemorySlotStore,
  createMemoryStateStore,
} from './adapters/memory/memory-stores.ts';
export { createFsStateStore } from './adapters/fs/fs-state-store.ts';
export { createFsDownloadStore } from './adapters/fs/fs-download-store.ts';
export { createFsSlotStore } from './adapters/fs/fs-slot-store.ts';
export { createFsDriftOutboxStore } from './adapters/fs/fs-drift-outbox-store.ts';
export { createIdentityStore, type DeviceIdentity } from './adapters/fs/identity-store.ts';
export { createAgentSession, type AgentSession } from './adapters/mqtt/agent-session.ts';
export { enrol, type Enrolment } from './agent/enrol.ts';
export {
  AGENT_VERSION,
  createFleetAgent,
  type AgentEvent,
  type FleetAgent,
  type FleetAgentOptions,
} from './agent/fleet-agent.ts';
export { createUpdateDriver, type UpdateDriver } from './agent/update-driver.ts';
// Drift: the monitor of the serving model (pure), its outbox, and the reporting glue.
export * from './core/drift-flush.ts';
export * from './core/drift-monitor.ts';
export * from './core/drift-outbox.ts';
export * from './core/drift-profile-check.ts';
export {
  createDriftReporting,
  type DriftEvent,
  type DriftReporting,
  type DriftStats,
} from './agent/drift-reporting.ts';
// Feedback: delayed labels for recent inferences, labelled samples (disk and memory), online accuracy.
export * from './core/recent-inferences.ts';
export * from './core/labelled-samples.ts';
export * from './core/feedback.ts';
export { createFsLabelStore, type FsLabelStoreOptions } from './adapters/fs/fs-label-store.ts';
export {
  createMemoryLabelStore,
  type MemoryLabelStoreOptions,
} from './adapters/memory/memory-label-store.ts';
export { AGENT_RECENT_INFERENCE_BOUNDS } from './agent/fleet-agent.ts';
export { runAgent, type RunningAgent } from './run-agent.ts';
export { mergeConfig, defaultConfig, type AgentConfig } from './config.ts';
// Local training: the Trainer interface, its request checks, and the
// TensorFlow.js implementation (in-thread, or a worker pool that keeps the
// event loop free for inference).
export * from './core/training/types.ts';
export { checkTrainRequest } from './core/training/check-request.ts';
export { tensorDelta, l2Norm } from './core/training/delta.ts';
export { createInThreadTrainer } from './adapters/tfjs/in-thread-trainer.ts';
export {
  createTrainingPool,
  defaultTrainingPoolSize,
  sharedTrainingPool,
  type TrainingPool,
} from './adapters/tfjs/training-pool.ts';
export { evaluateDense } from './adapters/tfjs/evaluate-dense.ts';
// Federated rounds: taking part (pure decisions) and the round on the device
// (read the bundle's training weights, train, clip, encode, sign, send in parts).
export * from './core/fl-participation.ts';
export {
  createFlTraining,
  type FlEvent,
  type FlTraining,
  type FlTrainingOptions,
  type FlUpdateOverride,
} from './agent/fl-training.ts';
export {
  readTrainingBase,
  type ManifestCheck,
  type TrainingBase,
} from './agent/fl-training-base.ts';
