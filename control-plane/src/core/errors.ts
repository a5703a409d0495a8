/**
 * Control-plane error codes. Services throw `FleetError<ControlPlaneErrorCode>`
 * (or a protocol code, for bundles and device messages that fail
 * verification); the HTTP edge maps codes to statuses (adapters/http/errors.ts).
 */
import { FleetError } from '@fleet/protocol';

export const CONTROL_PLANE_ERROR_CODES = [
  /** The request body, query or path is not what the route accepts. */
  'INVALID_REQUEST',
  /** No or unknown API token. */
  'UNAUTHENTICATED',
  /** The token's role is below what the route needs. */
  'FORBIDDEN',
  /** No such device, model, version, token. */
  'NOT_FOUND',
  /** It exists already (device id, model version) or the change conflicts with current state. */
  'CONFLICT',
  /** An enrolment token that is unknown, used, expired or for other hardware. */
  'ENROLMENT_REFUSED',
  /** The device is revoked. */
  'REVOKED',
  /** No trust root is installed yet, so bundles cannot be verified. */
  'NO_TRUST_ROOT',
  /** A request body above its size cap. */
  'PAYLOAD_TOO_LARGE',
] as const;

export type ControlPlaneErrorCode = (typeof CONTROL_PLANE_ERROR_CODES)[number];

export function controlPlaneError(
  code: ControlPlaneErrorCode,
  message: string,
  options?: { cause?: unknown },
): FleetError<ControlPlaneErrorCode> {
  return new FleetError(code, message, options);
}
