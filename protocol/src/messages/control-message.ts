/**
 * Every control message of the protocol in one discriminated union, for code
 * that handles both directions (logs, the simulator, tools). Each end of the
 * wire should parse with its direction's union instead: an agent accepts only
 * commands, the control plane only device messages.
 */
import { z } from 'zod';
import { cancelMessageSchema, deployMessageSchema, rollbackMessageSchema } from './commands.ts';
import {
  blocksRequestMessageSchema,
  healthMessageSchema,
  progressMessageSchema,
  stateMessageSchema,
} from './device-messages.ts';
import { driftReportMessageSchema } from './drift-report.ts';
import { flTrainMessageSchema } from './fl-train.ts';
import { flUpdateMessageSchema, flUpdatePartMessageSchema } from './fl-update.ts';

/** Any control message, discriminated on `type`. */
export const controlMessageSchema = z.discriminatedUnion('type', [
  deployMessageSchema,
  rollbackMessageSchema,
  cancelMessageSchema,
  stateMessageSchema,
  progressMessageSchema,
  healthMessageSchema,
  blocksRequestMessageSchema,
  driftReportMessageSchema,
  flTrainMessageSchema,
  flUpdateMessageSchema,
  flUpdatePartMessageSchema,
]);
export type ControlMessage = z.infer<typeof controlMessageSchema>;
export type ControlMessageType = ControlMessage['type'];
