/**
 * The one error type of the Fleet packages: a stable string `code` a program can
 * switch on, named again in the message a person reads. Wire error codes (those
 * a device reports to the control plane) live here so both ends agree on them.
 *
 * @example
 *   try { await verifyBundle(bytes, options) }
 *   catch (e) { if (isFleetError(e, 'ROLLBACK')) ... }
 */

/** Failures of bundle, trust-root, message and topic handling. */
export const PROTOCOL_ERROR_CODES = [
  /** Bytes that do not parse as what they claim to be (bad magic, bad JSON, schema violation). */
  'MALFORMED',
  /** A whole input (bundle, manifest, metadata, message) is larger than its cap. */
  'TOO_LARGE',
  /** Input ends before the lengths it declares. */
  'TRUNCATED',
  /** Bytes after the last declared part. */
  'TRAILING_DATA',
  /** Fewer valid signatures from distinct keys of the right role than the threshold. */
  'SIGNATURE_THRESHOLD',
  /** A signature that does not verify against the key it names. */
  'BAD_SIGNATURE',
  /** Metadata past its expiry time. */
  'EXPIRED',
  /** A release at or below the installed one, or a root version that does not advance. */
  'ROLLBACK',
  /** A bundle built for other hardware classes. */
  'WRONG_HARDWARE',
  /** A bundle addressed to other devices. */
  'WRONG_DEVICE',
  /** A part whose bytes do not hash to the manifest's SHA-256. */
  'PART_HASH',
  /** A part whose length differs from the manifest's. */
  'PART_LENGTH',
  /** A part that inflates past its signed uncompressed length, or above the cap. */
  'PART_TOO_LARGE',
  /** A part name that could escape a directory (`../x`, `/etc/x`, `a\\b`). */
  'PART_NAME',
  /** A message or envelope signed for another device than the one it came from. */
  'DEVICE_MISMATCH',
  /** A topic or filter a client may not use. */
  'TOPIC_DENIED',
  /** A root rotation that skips versions or is not signed by both key sets. */
  'ROOT_ROTATION',
  /** A bundle that needs a newer agent than the one verifying it. */
  'AGENT_TOO_OLD',
  /**
   * A validly signed rollback instruction that does not apply here: another model,
   * another target bundle or release than the command names, a release not below
   * the installed one, or an installed release above its `fromReleaseAtMost`.
   */
  'ROLLBACK_SCOPE',
  /** A NaN or infinite number where only finite ones are allowed (tensor values, scales). */
  'NON_FINITE',
] as const;

export type ProtocolErrorCode = (typeof PROTOCOL_ERROR_CODES)[number];

/**
 * Base error for all Fleet packages. `Code` is the string-literal union of the
 * codes a package family may raise; the message always starts with the code.
 */
export class FleetError<Code extends string = ProtocolErrorCode> extends Error {
  readonly code: Code;

  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.code = code;
    this.name = 'FleetError';
  }
}

/** True when `error` is a FleetError, and of `code` when one is given. */
export function isFleetError<Code extends string>(
  error: unknown,
  code?: Code,
): error is FleetError<Code> {
  return error instanceof FleetError && (code === undefined || error.code === code);
}
