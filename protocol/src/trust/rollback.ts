/**
 * Signed rollback instructions (ARCHITECTURE "Bundles and trust"): agents refuse
 * any release at or below the installed one (THREATS 9), and the one way back to
 * an older, known-good bundle is an instruction naming it, signed by a threshold
 * of the trust root's bundle keys, the keys that sign bundles. The payload's
 * schema is messages/rollback-instruction.ts; this module signs and verifies it.
 *
 * Verification runs as ordered, named steps; the first failure throws, and
 * nothing in the payload is read before step 4 holds:
 *
 *   1. size cap          envelope bytes within MAX_ROLLBACK_ENVELOPE_BYTES (TOO_LARGE; THREATS 14)
 *   2. envelope schema   strict DSSE envelope of the rollback payload type, payload
 *                        within the cap (MALFORMED, TOO_LARGE)
 *   3. root freshness    the trust root has not expired (EXPIRED; THREATS 10)
 *   4. signatures        a threshold of distinct bundle-role keys over the exact
 *                        payload bytes; root-role keys and repeats do not count
 *                        (SIGNATURE_THRESHOLD; THREATS 1, 3, 4, 6, 36)
 *   5. payload           strict instruction schema (MALFORMED; THREATS 40)
 *   6. expiry            (EXPIRED; THREATS 10, 13)
 *   7. model             the installed model's name (ROLLBACK_SCOPE)
 *   8. target            the bundle and release the command names (ROLLBACK_SCOPE)
 *   9. direction         below the installed release: a "rollback" forward is not
 *                        one (ROLLBACK_SCOPE)
 *  10. from release      the installed release is at most `fromReleaseAtMost`, so an
 *                        old instruction cannot undo a later fix (ROLLBACK_SCOPE)
 *  11. device            listed, when the instruction lists devices (WRONG_DEVICE; THREATS 8)
 *  12. hardware          listed, when it lists hardware classes (WRONG_HARDWARE; THREATS 8)
 *
 * What this does not do: remember instructions already acted on. Within its
 * expiry, an instruction replayed after the device moved forward again applies
 * again if the release it moved to is still within `fromReleaseAtMost`.
 */
import { FleetError } from '../errors.ts';
import { utf8 } from '../encoding/bytes.ts';
import { canonicalJson, parseJsonBytes } from '../encoding/json.ts';
import { assertNotExpired } from '../encoding/time.ts';
import {
  parseEnvelope,
  signEnvelope,
  verifyThreshold,
  type SignedEnvelope,
  type Signer,
} from '../crypto/envelope.ts';
import {
  ROLLBACK_PAYLOAD_TYPE,
  rollbackAuthorizationSchema,
  rollbackInstructionSchema,
  type RollbackInstruction,
} from '../messages/rollback-instruction.ts';
import { MAX_CONTROL_MESSAGE_BYTES, validateMessage } from '../messages/parse.ts';
import { assertRootFresh, roleRule, type TrustedRoot } from './root.ts';

/**
 * The largest rollback envelope, in JSON bytes: it travels inside a `rollback`
 * command, which is at most MAX_CONTROL_MESSAGE_BYTES.
 */
export const MAX_ROLLBACK_ENVELOPE_BYTES = MAX_CONTROL_MESSAGE_BYTES;

/**
 * Validates `instruction` and signs its canonical JSON with every signer (a
 * threshold of the root's bundle keys, for a device to accept it). Refuses
 * (TOO_LARGE) an instruction whose envelope would not fit in a command.
 *
 * @example
 *   const authorization = signRollbackInstruction(
 *     { type: 'fleet-rollback', schemaVersion: 1, modelName: 'mnist-2nn', toRelease: 4,
 *       toBundleId, fromReleaseAtMost: 5, issuedAt, expires },
 *     [bundleKeyA, bundleKeyB],
 *   );
 */
export function signRollbackInstruction(
  instruction: RollbackInstruction,
  signers: readonly Signer[],
): SignedEnvelope {
  const valid = validateMessage(rollbackInstructionSchema, instruction, 'rollback instruction');
  const envelope = signEnvelope(ROLLBACK_PAYLOAD_TYPE, canonicalJson(valid), signers);
  const size = utf8(JSON.stringify(envelope)).length;
  if (size > MAX_ROLLBACK_ENVELOPE_BYTES) {
    throw new FleetError(
      'TOO_LARGE',
      `signed rollback instruction is ${size} bytes, the cap is ${MAX_ROLLBACK_ENVELOPE_BYTES}`,
    );
  }
  return envelope;
}

export interface VerifyRollbackOptions {
  /** The trust root the device has pinned (after any rotations). */
  root: TrustedRoot;
  /** One reference time for the whole check, in epoch ms. */
  nowMs: number;
  deviceId: string;
  hardwareClass: string;
  /** Name of the installed model. */
  modelName: string;
  /** Release counter of the installed model. */
  installedRelease: number;
  /** The bundle and release the rollback command names (`target`). */
  target: { bundleId: string; release: number };
}

interface RollbackCheck {
  readonly input: unknown;
  readonly options: VerifyRollbackOptions;
  envelope?: SignedEnvelope;
  payload?: Uint8Array;
  instruction?: RollbackInstruction;
}

type RollbackStep = (check: RollbackCheck) => void | Promise<void>;

const WHAT = 'rollback authorization';

/** Refuses to run a step whose input an earlier step has not produced. */
function needs<T>(value: T | undefined, step: string): T {
  if (value === undefined) throw new Error(`rollback verification step ${step} ran out of order`);
  return value;
}

function outOfScope(message: string): FleetError {
  return new FleetError('ROLLBACK_SCOPE', message);
}

const rollbackSteps: readonly RollbackStep[] = [
  // 1. size cap: bytes are capped before JSON.parse (THREATS 14).
  function checkSize({ input }) {
    if (input instanceof Uint8Array && input.length > MAX_ROLLBACK_ENVELOPE_BYTES) {
      throw new FleetError(
        'TOO_LARGE',
        `${WHAT} is ${input.length} bytes, the cap is ${MAX_ROLLBACK_ENVELOPE_BYTES}`,
      );
    }
  },
  // 2. envelope schema. An object was parsed by someone else (the command's
  // parser), so its payload is capped here instead.
  function parseRollbackEnvelope(check) {
    const { input } = check;
    const candidate =
      input instanceof Uint8Array ? parseEnvelope(input, MAX_ROLLBACK_ENVELOPE_BYTES, WHAT) : input;
    const envelope = validateMessage(rollbackAuthorizationSchema, candidate, WHAT);
    if (envelope.payload.length > MAX_ROLLBACK_ENVELOPE_BYTES) {
      throw new FleetError(
        'TOO_LARGE',
        `${WHAT}: payload is ${envelope.payload.length} base64 characters, the cap is ${MAX_ROLLBACK_ENVELOPE_BYTES}`,
      );
    }
    check.envelope = envelope;
  },
  // 3. root freshness (THREATS 10).
  function checkRootFreshness({ options }) {
    assertRootFresh(options.root, options.nowMs);
  },
  // 4. signatures: distinct bundle-role keys only (THREATS 3, 4); the payload
  // type is signed, so no other signed document can pose as an instruction.
  async function checkSignatures(check) {
    const envelope = needs(check.envelope, 'checkSignatures');
    const rule = roleRule(check.options.root, 'bundle', ROLLBACK_PAYLOAD_TYPE);
    check.payload = (await verifyThreshold(envelope, rule)).payload;
  },
  // 5. payload: only authenticated bytes are parsed.
  function parseInstruction(check) {
    const payload = needs(check.payload, 'parseInstruction');
    const json = parseJsonBytes(payload, MAX_ROLLBACK_ENVELOPE_BYTES, 'rollback instruction');
    check.instruction = validateMessage(rollbackInstructionSchema, json, 'rollback instruction');
  },
  // 6. expiry (THREATS 10, 13).
  function checkExpiry({ instruction, options }) {
    const r = needs(instruction, 'checkExpiry');
    assertNotExpired(
      r.expires,
      options.nowMs,
      `rollback of ${r.modelName} to release ${r.toRelease}`,
    );
  },
  // 7. model: an instruction for one model never moves another.
  function checkModel({ instruction, options }) {
    const r = needs(instruction, 'checkModel');
    if (r.modelName !== options.modelName) {
      throw outOfScope(
        `rollback is for model ${r.modelName}, the installed model is ${options.modelName}`,
      );
    }
  },
  // 8. target: the signed instruction, not the unsigned command, says where to go.
  function checkTarget({ instruction, options }) {
    const r = needs(instruction, 'checkTarget');
    const { bundleId, release } = options.target;
    if (r.toBundleId !== bundleId || r.toRelease !== release) {
      throw outOfScope(
        `rollback is signed for release ${r.toRelease} (bundle ${r.toBundleId}), the command names release ${release} (bundle ${bundleId})`,
      );
    }
  },
  // 9. direction: forward moves go through a signed bundle and its release check.
  function checkGoesBack({ instruction, options }) {
    const r = needs(instruction, 'checkGoesBack');
    if (r.toRelease >= options.installedRelease) {
      throw outOfScope(
        `rollback to release ${r.toRelease} is not below the installed release ${options.installedRelease}`,
      );
    }
  },
  // 10. from release: an old instruction cannot undo a later fix.
  function checkFromRelease({ instruction, options }) {
    const r = needs(instruction, 'checkFromRelease');
    if (r.fromReleaseAtMost !== undefined && options.installedRelease > r.fromReleaseAtMost) {
      throw outOfScope(
        `rollback applies to releases up to ${r.fromReleaseAtMost}, the installed release is ${options.installedRelease}`,
      );
    }
  },
  // 11. device scope (THREATS 8).
  function checkDevice({ instruction, options }) {
    const r = needs(instruction, 'checkDevice');
    if (r.devices !== undefined && !r.devices.includes(options.deviceId)) {
      throw new FleetError(
        'WRONG_DEVICE',
        `rollback is not addressed to device ${options.deviceId}`,
      );
    }
  },
  // 12. hardware scope (THREATS 8).
  function checkHardware({ instruction, options }) {
    const r = needs(instruction, 'checkHardware');
    if (r.hardware !== undefined && !r.hardware.includes(options.hardwareClass)) {
      throw new FleetError(
        'WRONG_HARDWARE',
        `rollback is for ${r.hardware.join(', ')}, not ${options.hardwareClass}`,
      );
    }
  },
];

/**
 * Verifies a signed rollback instruction for this device (steps 1-12 above)
 * and returns it. `envelope` is the authorization as received: JSON bytes or
 * an already parsed object (a `rollback` command's `authorization`).
 *
 * @example
 *   await verifyRollbackAuthorization(command.authorization, {
 *     root, nowMs, deviceId, hardwareClass, modelName: 'mnist-2nn', installedRelease: 5,
 *     target: { bundleId: command.target.bundleId, release: command.target.release },
 *   });
 */
export async function verifyRollbackAuthorization(
  envelope: unknown,
  options: VerifyRollbackOptions,
): Promise<RollbackInstruction> {
  const check: RollbackCheck = { input: envelope, options };
  for (const step of rollbackSteps) await step(check);
  return needs(check.instruction, 'verifyRollbackAuthorization');
}
