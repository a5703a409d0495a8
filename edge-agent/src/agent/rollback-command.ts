/**
 * A `rollback` command, checked before the update machine sees it: its signed
 * authorization must hold against the pinned trust root (a threshold of
 * bundle keys, unexpired, for this device, hardware and model, naming a
 * release below the installed one; protocol `verifyRollbackAuthorization`),
 * and must name the bundle the command names. The agent goes back only to a
 * model it still holds, in its previous slot; anything else is refused and
 * reported, and changes nothing.
 */
import {
  verifyRollbackAuthorization,
  type ErrorReport,
  type RollbackMessage,
  type TrustedRoot,
} from '@fleet/protocol';
import type { UpdateInput } from '../core/update-machine.ts';
import type { AgentState } from '../core/update-state.ts';
import { errorReport } from './update-effects.ts';

export interface RollbackCheck {
  deviceId: string;
  hardware: string;
  nowMs: () => number;
  trustRoot: () => TrustedRoot;
}

export type RollbackOutcome = { ok: true; input: UpdateInput } | { ok: false; error: ErrorReport };

export async function handleRollback(
  command: RollbackMessage,
  state: AgentState,
  check: RollbackCheck,
): Promise<RollbackOutcome> {
  const { committed, previous } = state;
  if (!committed)
    return refuse('NOTHING_INSTALLED', 'no model is installed, so there is nothing to roll back');
  try {
    await verifyRollbackAuthorization(command.authorization, {
      root: check.trustRoot(),
      nowMs: check.nowMs(),
      deviceId: check.deviceId,
      hardwareClass: check.hardware,
      modelName: committed.ref.name,
      installedRelease: committed.ref.release,
      target: { bundleId: command.target.bundleId, release: command.target.release },
    });
  } catch (error) {
    return { ok: false, error: errorReport(error) };
  }
  if (previous?.ref.bundleId !== command.target.bundleId) {
    return refuse(
      'ROLLBACK_TARGET_MISSING',
      `the device no longer holds ${command.target.name}@${command.target.version} (bundle ${command.target.bundleId.slice(0, 12)}…) in its previous slot`,
    );
  }
  return {
    ok: true,
    input: {
      type: 'rollback-to-previous',
      commandId: command.id,
      rolloutId: command.rolloutId ?? null,
      reason: command.reason,
    },
  };
}

function refuse(code: string, message: string): RollbackOutcome {
  return { ok: false, error: { code, message } };
}
