/**
 * Enrolment rules, as pure functions: when an enrolment token may be used, and
 * the tags the new device ends up with. The database adapter applies them
 * inside the transaction that consumes the token.
 */
import { FleetError } from '@fleet/protocol';
import type { ControlPlaneErrorCode } from '../errors.ts';

/** Enrolment tokens live one hour unless the operator says otherwise; at most 30 days. */
export const DEFAULT_ENROLMENT_TOKEN_TTL_MS = 60 * 60 * 1000;
export const MAX_ENROLMENT_TOKEN_TTL_MS = 30 * 24 * 60 * 60 * 1000;

export interface EnrolmentTokenState {
  expiresAt: Date;
  usedAt: Date | null;
  hardware: string | null;
}

/**
 * Throws ENROLMENT_REFUSED unless the token is unused, unexpired at `nowMs`
 * and (when it names one) for the device's hardware class. An unknown token is
 * refused with the same message, so a caller cannot probe which tokens exist.
 */
export function checkEnrolmentToken(
  token: EnrolmentTokenState | null,
  hardware: string,
  nowMs: number,
): void {
  const refuse = (why: string) =>
    new FleetError<ControlPlaneErrorCode>('ENROLMENT_REFUSED', `enrolment token ${why}`);
  if (!token) throw refuse('is unknown, used or expired');
  if (token.usedAt) throw refuse('is unknown, used or expired');
  if (token.expiresAt.getTime() <= nowMs) throw refuse('is unknown, used or expired');
  if (token.hardware !== null && token.hardware !== hardware) {
    throw refuse(`is for hardware class ${token.hardware}, not ${hardware}`);
  }
}

/** The device's own tags, overridden by the operator's pre-set ones where both name a key. */
export function enrolledTags(
  operatorTags: Record<string, string>,
  deviceTags: Record<string, string>,
): Record<string, string> {
  return { ...deviceTags, ...operatorTags };
}

/** Applies a tag edit: `set` wins over `remove` for the same key. */
export function editTags(
  current: Record<string, string>,
  edit: { set?: Record<string, string>; remove?: readonly string[] },
): Record<string, string> {
  const next = { ...current };
  for (const key of edit.remove ?? []) delete next[key];
  return { ...next, ...(edit.set ?? {}) };
}
