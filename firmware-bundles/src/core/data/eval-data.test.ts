import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError } from '@fleet/protocol';
import { decodeEvalData, encodeEvalData, type EvalData } from './eval-data.ts';

const labelled: EvalData = {
  sampleCount: 3,
  featureCount: 2,
  classCount: 4,
  features: Float32Array.from([0.5, -1, 2, 3.25, 0, 1e-3]),
  labels: Uint8Array.from([0, 3, 2]),
};

function refused(bytes: Uint8Array, pattern: RegExp) {
  assert.throws(
    () => decodeEvalData(bytes),
    (e) => isFleetError(e, 'EVAL_DATA_MALFORMED') && pattern.test(e.message),
  );
}

describe('evaluation-data files', () => {
  it('round-trips labelled and unlabelled data', () => {
    assert.deepEqual(decodeEvalData(encodeEvalData(labelled)), labelled);
    const unlabelled = { ...labelled, classCount: 0, labels: null };
    assert.deepEqual(decodeEvalData(encodeEvalData(unlabelled)), unlabelled);
  });

  it('refuses a file that is truncated or padded', () => {
    const bytes = encodeEvalData(labelled);
    refused(bytes.subarray(0, bytes.length - 1), /promises/);
    refused(new Uint8Array([...bytes, 0]), /promises/);
    refused(bytes.subarray(0, 10), /header/);
  });

  it('refuses another format, labels out of range, and non-finite features', () => {
    refused(new TextEncoder().encode('{"inputs": []}'.padEnd(40)), /header/);
    const bytes = encodeEvalData(labelled);
    bytes[bytes.length - 1] = 4;
    refused(bytes, /label 4/);
    const nan = encodeEvalData(labelled);
    new DataView(nan.buffer).setFloat32(20 + 4 * 3, NaN, true);
    refused(nan, /non-finite/);
  });
});
