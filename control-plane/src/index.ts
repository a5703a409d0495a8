/**
 * @fleet/control-plane: the Hono control plane (API, database, MQTT broker,
 * registries, audit log) and the `fleet` CLI's operator commands. Other
 * packages (the simulator, the demo) start it and drive it through these.
 */
export * from './core/audit/audit-chain.ts';
export * from './core/auth/operator-tokens.ts';
export * from './core/errors.ts';
export { defaultConfig, mergeConfig, type Config, type ConfigOverrides } from './config.ts';
export {
  createControlPlane,
  type ControlPlane,
  type ControlPlaneOptions,
} from './control-plane.ts';
export { runControlPlane, stopOnSignals } from './run-control-plane.ts';
export { registryCommands } from './cli/registry-commands.ts';
export type { CliEnv } from './cli/api-client.ts';
export { openDatabase, type OpenDatabase } from './adapters/db/database.ts';
export type { RolloutService } from './services/rollout-service.ts';
export type { BundleDistribution, TransferPlan } from './services/bundle-distribution.ts';
export { formatRollout, progressBar, type RolloutView } from './cli/rollout-commands.ts';
export { formatDriftStatus, type DriftStatusView } from './cli/drift-commands.ts';
// Federated learning's pure core (the simulator and benches run rounds with it).
export { createStrategy, fedAvg, trimmedMean, coordinateMedian } from './core/fl/aggregation.ts';
export {
  decodeUpdateContent,
  scaleTensors,
  type DecodedUpdate,
  type UpdateContent,
} from './core/fl/update-content.ts';
export {
  withinClipBound,
  int8RoundingBound,
  CLIP_RELATIVE_TOLERANCE,
} from './core/fl/clip-check.ts';
export {
  defaultRoundConfig,
  checkRoundConfig,
  buildRoundConfig,
  type RoundConfig,
} from './core/fl/round-config.ts';
export {
  selectDevices,
  selectionSize,
  type CandidateDevice,
  type SelectionResult,
} from './core/fl/round-selection.ts';
export type {
  AggregateResult,
  ClientUpdate,
  Strategy,
  StrategyConfig,
  StrategyKind,
} from './core/fl/types.ts';
