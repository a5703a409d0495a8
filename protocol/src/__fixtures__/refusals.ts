/**
 * Test helpers shared by the protocol's suites: asserting a refusal by its
 * FleetError code, and producing a non-canonical (malleated) signature.
 */
import assert from 'node:assert/strict';
import { isFleetError } from '../errors.ts';
import { fromHex } from '../encoding/bytes.ts';

function checkRefusal(e: unknown, code: string, message?: RegExp): true {
  assert.ok(isFleetError(e), `expected a FleetError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  assert.ok(e.message.startsWith(`${code}: `), 'the message names the code');
  if (message) assert.match(e.message, message);
  return true;
}

/** Asserts `fn` throws a FleetError of `code` (and a message matching `message`). */
export function assertRefused(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => checkRefusal(e, code, message));
}

/** Asserts `promise` rejects with a FleetError of `code` (and a message matching `message`). */
export async function assertRejected(
  promise: Promise<unknown>,
  code: string,
  message?: RegExp,
): Promise<void> {
  await assert.rejects(promise, (e: unknown) => checkRefusal(e, code, message));
}

/** Adds the group order L to S: the same signature, encoded non-canonically (THREATS 7). */
export function malleate(signature: Uint8Array): Uint8Array {
  const L = fromHex('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010');
  const out = signature.slice();
  let carry = 0;
  for (let i = 0; i < 32; i++) {
    const v = out[32 + i]! + L[i]! + carry;
    out[32 + i] = v & 0xff;
    carry = v >> 8;
  }
  return out;
}
