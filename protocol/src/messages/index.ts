/**
 * Control messages: zod schemas of the JSON commands (control plane -> agent)
 * and device messages (agent -> control plane), parsing with size caps, and the
 * device-signed envelope that carries device messages.
 */
export {
  MESSAGE_SCHEMA_VERSION,
  MAX_BLOCK_BYTES,
  MAX_BLOCK_COUNT,
  UPDATE_STATES,
  type UpdateState,
  type ModelRef,
  type BundleModelRef,
  type ErrorReport,
  messageIdSchema,
  rolloutIdSchema,
  bundleIdSchema,
  semverSchema,
  releaseSchema,
  fractionSchema,
  textSchema,
  modelRefSchema,
  bundleModelRefSchema,
  updateStateSchema,
  errorReportSchema,
  messageHeader,
} from './common.ts';
export {
  ROLLBACK_PAYLOAD_TYPE,
  MAX_ROLLBACK_DEVICES,
  rollbackInstructionSchema,
  rollbackAuthorizationSchema,
  type RollbackInstruction,
} from './rollback-instruction.ts';
export {
  MAX_REASON_LENGTH,
  blockRootSchema,
  deployBundleSchema,
  probationPolicySchema,
  deployMessageSchema,
  rollbackMessageSchema,
  cancelMessageSchema,
  commandMessageSchema,
  type DeployBundle,
  type ProbationPolicy,
  type DeployMessage,
  type RollbackMessage,
  type CancelMessage,
  type CommandMessage,
  type CommandType,
} from './commands.ts';
export {
  updateStatusSchema,
  stateMessageSchema,
  progressMessageSchema,
  latencyQuantilesSchema,
  healthMessageSchema,
  MAX_BITMAP_BASE64_CHARS,
  blocksRequestMessageSchema,
  deviceMessageSchema,
  type UpdateStatus,
  type StateMessage,
  type ProgressMessage,
  type HealthMessage,
  type BlocksRequestMessage,
  type DeviceMessage,
  type DeviceMessageType,
} from './device-messages.ts';
export {
  MAX_DRIFT_SIGNALS,
  MAX_DRIFT_SIGNAL_BYTES,
  MAX_DRIFT_SKETCH_TOTAL_BYTES,
  MAX_DRIFT_MESSAGE_BYTES,
  driftSignalNameSchema,
  driftSignalEntrySchema,
  driftReportMessageSchema,
  type DriftSignalEntry,
  type DriftReportMessage,
} from './drift-report.ts';
export {
  flRoundIdSchema,
  flEncodingSchema,
  MAX_FL_SAMPLES,
  flTrainConfigSchema,
  flTrainMessageSchema,
  type FlEncoding,
  type FlTrainConfig,
  type FlTrainMessage,
} from './fl-train.ts';
export {
  MAX_FL_PART_BYTES,
  MAX_FL_PART_COUNT,
  MAX_FL_UPDATE_BYTES,
  MAX_FL_PART_MESSAGE_BYTES,
  MAX_FL_REASON_LENGTH,
  flPartCount,
  flMetricsSchema,
  flUpdatePayloadSchema,
  flUpdateMessageSchema,
  flUpdatePartMessageSchema,
  type FlMetrics,
  type FlUpdatePayload,
  type FlUpdateMessage,
  type FlUpdatePartMessage,
} from './fl-update.ts';
export {
  controlMessageSchema,
  type ControlMessage,
  type ControlMessageType,
} from './control-message.ts';
export {
  MAX_CONTROL_MESSAGE_BYTES,
  MAX_DEVICE_MESSAGE_BYTES,
  maxDeviceMessageBytes,
  validateMessage,
  encodeCommand,
  parseCommand,
  parseDeviceMessage,
  parseControlMessage,
  encodeControlMessage,
} from './parse.ts';
export {
  DEVICE_MESSAGE_PAYLOAD_TYPE,
  signDeviceMessage,
  verifyDeviceMessage,
  type SignDeviceMessageOptions,
  type VerifyDeviceMessageOptions,
} from './device-envelope.ts';
export * from './mqtt-credential.ts';
export * from './enrolment.ts';
