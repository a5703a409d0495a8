import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromUtf8, utf8 } from '../encoding/bytes.ts';
import {
  DELETE,
  blocksRequest,
  health,
  patched,
  progress,
  state,
  wire,
} from './__fixtures__/examples.ts';
import { MAX_BLOCK_COUNT, UPDATE_STATES } from './common.ts';
import { MAX_BITMAP_BASE64_CHARS } from './device-messages.ts';
import {
  bitmapFromBase64,
  bitmapToBase64,
  createBitmap,
  missingIndices,
  setBit,
} from '../transfer/bitmap.ts';
import { parseDeviceMessage } from './parse.ts';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';

/** Parses `base` with `changes` applied, as the control plane would receive it. */
function parsePatched(base: unknown, changes: Record<string, unknown>) {
  return parseDeviceMessage(wire(patched(base, changes)));
}

/** Each row: changes to `base`, and the refusal message expected. */
function refusedAll(base: unknown, cases: [Record<string, unknown>, RegExp][]): void {
  for (const [changes, message] of cases) {
    refused(() => parsePatched(base, changes), 'MALFORMED', message);
  }
}

/** JSON bytes with one literal substring replaced: for numbers JSON.stringify cannot write. */
function rewritten(message: unknown, from: string, to: string): Uint8Array {
  const text = fromUtf8(wire(message));
  assert.ok(text.includes(from), `fixture holds ${from}`);
  return utf8(text.replace(from, to));
}

describe('state', () => {
  it('parses the last will (offline) and a device that never installed a model', () => {
    const parsed = parsePatched(state(), { online: false, model: null, update: { state: 'idle' } });
    assert.deepEqual(parsed.type === 'state' && [parsed.online, parsed.model], [false, null]);
  });

  it('parses every update state, with an error report', () => {
    const error = { code: 'PART_HASH', message: 'model.onnx does not match its SHA-256' };
    for (const updateState of UPDATE_STATES) {
      const parsed = parsePatched(state(), { 'update.state': updateState, 'update.error': error });
      assert.equal(parsed.type === 'state' && parsed.update.state, updateState);
    }
  });

  it('refuses bad fields, naming each', () => {
    refusedAll(state(), [
      [{ 'update.state': 'flashing' }, /field "update\.state"/],
      [{ 'update.progress': 0.5 }, /unknown field "update\.progress"/],
      [{ agentVersion: 'latest' }, /field "agentVersion": not a semantic version/],
      // semver.valid drops build metadata, so `valid(v) === v` refuses it: two
      // versions that differ only in build metadata would compare equal.
      [{ agentVersion: '0.3.1+build.7' }, /field "agentVersion": not a semantic version/],
      [{ hardware: 'RPi 4' }, /field "hardware"/],
      [{ deviceId: '-leading-dash' }, /field "deviceId"/],
      [{ deviceId: 'd'.repeat(65) }, /field "deviceId"/],
      [{ deviceId: '+' }, /field "deviceId"/],
      [{ online: 'yes' }, /field "online"/],
      [{ model: DELETE }, /field "model"/],
      [{ 'model.bundleId': 'x' }, /field "model\.bundleId"/],
      [
        { 'update.error': { code: 'X', message: 'm'.repeat(1001) } },
        /field "update\.error\.message"/,
      ],
    ]);
  });
});

describe('progress', () => {
  it('accepts blocksReceived equal to blockCount, and zero', () => {
    for (const blocksReceived of [0, 3]) {
      const parsed = parsePatched(progress(), { blocksReceived });
      assert.equal(parsed.type === 'progress' && parsed.blocksReceived, blocksReceived);
    }
  });

  it('refuses blocksReceived above blockCount', () => {
    refusedAll(progress(), [
      [{ blocksReceived: 4 }, /field "blocksReceived": blocksReceived must not exceed blockCount/],
    ]);
  });

  it('refuses out-of-range numbers, including 1e309 (valid JSON that parses to Infinity)', () => {
    refusedAll(progress(), [
      [{ blocksReceived: -1 }, /field "blocksReceived"/],
      [{ blocksReceived: 1.5 }, /field "blocksReceived"/],
      [{ blockCount: 0 }, /field "blockCount"/],
      [{ blockCount: 2 ** 53 }, /field "blockCount"/],
    ]);
    refused(
      () => parseDeviceMessage(rewritten(progress(), '"blockCount":3', '"blockCount":1e309')),
      'MALFORMED',
      /field "blockCount"/,
    );
  });

  it('bounds the error report', () => {
    const error = { code: 'c'.repeat(64), message: 'm'.repeat(1000) };
    const ok = parsePatched(progress(), { error });
    assert.equal(ok.type === 'progress' && ok.error?.code.length, 64);
    refusedAll(progress(), [
      [{ error: { code: 'c'.repeat(65), message: '' } }, /field "error\.code"/],
      [{ error: { code: 'two words', message: '' } }, /field "error\.code"/],
      [{ error: { code: '', message: '' } }, /field "error\.code"/],
      [{ error: { code: 'X', message: 'm'.repeat(1001) } }, /field "error\.message"/],
      [{ error: { code: 'X', message: '', stack: 'at' } }, /unknown field "error\.stack"/],
      [{ state: 'done' }, /field "state"/],
      [{ rolloutId: 'r' }, /field "rolloutId"/],
    ]);
  });
});

describe('health', () => {
  it('parses an idle window (no requests, null confidence) and an all-failed one', () => {
    for (const [requests, errors] of [
      [0, 0],
      [7, 7],
    ]) {
      const parsed = parsePatched(health(), { requests, errors, meanConfidence: null });
      assert.equal(parsed.type === 'health' && parsed.meanConfidence, null);
    }
  });

  it('refuses more errors than requests', () => {
    refusedAll(health(), [[{ errors: 121 }, /field "errors": errors must not exceed requests/]]);
  });

  it('refuses a confidence where no inference succeeded, and null where some did', () => {
    refusedAll(health(), [
      [{ requests: 0, errors: 0 }, /field "meanConfidence"/],
      [{ meanConfidence: null }, /field "meanConfidence": meanConfidence is null exactly/],
      [{ meanConfidence: 1.0001 }, /field "meanConfidence"/],
      [{ meanConfidence: -0.5 }, /field "meanConfidence"/],
    ]);
  });

  it('refuses negative, unordered or infinite latencies', () => {
    refusedAll(health(), [
      [{ 'latencyMs.p50': -1 }, /field "latencyMs\.p50"/],
      [{ 'latencyMs.p95': 3 }, /field "latencyMs": latency quantiles must satisfy/],
      [{ 'latencyMs.p999': 30 }, /unknown field "latencyMs\.p999"/],
      [{ 'latencyMs.p99': DELETE }, /field "latencyMs\.p99"/],
    ]);
    refused(
      () => parseDeviceMessage(rewritten(health(), '"p99":19', '"p99":1e309')),
      'MALFORMED',
      /field "latencyMs\.p99"/,
    );
  });

  it('refuses a window that ends before it starts, and counts that are not integers', () => {
    refusedAll(health(), [
      [{ windowEnd: '2026-11-26T11:00:00Z' }, /field "windowEnd": windowEnd must not be before/],
      [{ windowStart: '11:55' }, /field "windowStart"/],
      [{ requests: -1 }, /field "requests"/],
      [{ requests: 120.5 }, /field "requests"/],
      [{ 'model.bundleId': 'a'.repeat(64) }, /unknown field "model\.bundleId"/],
      [{ 'model.version': '1.2.0-' }, /field "model\.version"/],
      [{ probation: 1 }, /field "probation"/],
    ]);
  });

  it('accepts the optional online accuracy (feedback), and a report without it', () => {
    const parsed = parsePatched(health(), { feedback: { labelled: 40, correct: 37 } });
    assert.deepEqual(parsed.type === 'health' && parsed.feedback, { labelled: 40, correct: 37 });
    const none = parsePatched(health(), { feedback: { labelled: 0, correct: 0 } });
    assert.deepEqual(none.type === 'health' && none.feedback, { labelled: 0, correct: 0 });
    assert.equal(parseDeviceMessage(wire(health())).type === 'health', true);
  });

  it('accepts the optional stored labelled-sample count, zero included', () => {
    const parsed = parsePatched(health(), { feedback: { labelled: 0, correct: 0, stored: 250 } });
    assert.deepEqual(parsed.type === 'health' && parsed.feedback, {
      labelled: 0,
      correct: 0,
      stored: 250,
    });
    const empty = parsePatched(health(), { feedback: { labelled: 2, correct: 1, stored: 0 } });
    assert.equal(empty.type === 'health' && empty.feedback?.stored, 0);
  });

  it('refuses more correct than labelled, and feedback counts that are not integers', () => {
    refusedAll(health(), [
      [{ feedback: { labelled: 3, correct: 4 } }, /field "feedback\.correct": correct must not/],
      [{ feedback: { labelled: 3.5, correct: 1 } }, /field "feedback\.labelled"/],
      [{ feedback: { labelled: -1, correct: 0 } }, /field "feedback\.labelled"/],
      [{ feedback: { labelled: 3 } }, /field "feedback\.correct"/],
      [{ feedback: { labelled: 3, correct: 1, stored: -1 } }, /field "feedback\.stored"/],
      [{ feedback: { labelled: 3, correct: 1, stored: 2.5 } }, /field "feedback\.stored"/],
      [{ feedback: { labelled: 3, correct: 1, stored: '9' } }, /field "feedback\.stored"/],
      [
        { feedback: { labelled: 3, correct: 1, accuracy: 0.3 } },
        /unknown field "feedback\.accuracy"/,
      ],
    ]);
  });
});

describe('blocks-request', () => {
  /** The base64 bitmap of `count` blocks with `missing` set. */
  function bitmap(count: number, missing: number[]): string {
    const bits = createBitmap(count);
    for (const i of missing) setBit(bits, i);
    return bitmapToBase64(bits);
  }

  it('parses a request whose bitmap names the missing blocks, with or without a rollout', () => {
    const parsed = parsePatched(blocksRequest(), {});
    assert.ok(parsed.type === 'blocks-request');
    const { missing, blockCount } = parsed;
    const held = bitmapFromBase64(missing, blockCount).map((b) => ~b & 0xff);
    assert.deepEqual(missingIndices(held, blockCount), [1, 9]);
    assert.equal(parsePatched(blocksRequest(), { rolloutId: DELETE }).type, 'blocks-request');
  });

  it('parses the largest request: MAX_BLOCK_COUNT blocks, every one missing', () => {
    const all = Array.from({ length: MAX_BLOCK_COUNT }, (_, i) => i);
    const missing = bitmap(MAX_BLOCK_COUNT, all);
    assert.equal(missing.length, MAX_BITMAP_BASE64_CHARS);
    const parsed = parsePatched(blocksRequest(), { blockCount: MAX_BLOCK_COUNT, missing });
    assert.equal(parsed.type === 'blocks-request' && parsed.missing, missing);
  });

  it('refuses a bitmap of another length than ceil(blockCount / 8) bytes', () => {
    const message =
      /field "missing": missing must be the canonical base64 of ceil\(blockCount \/ 8\) bytes/;
    refusedAll(blocksRequest(), [
      [{ blockCount: 8 }, message], // 10 blocks' bitmap is 2 bytes, 8 blocks' is 1
      [{ blockCount: 17 }, message],
      [{ missing: bitmap(24, [1]) }, message],
      [{ missing: '' }, message],
    ]);
    assert.equal(parsePatched(blocksRequest(), { blockCount: 16 }).type, 'blocks-request');
  });

  it('refuses bits set past blockCount, and base64 that is not canonical', () => {
    const message = /field "missing": missing must be/;
    refusedAll(blocksRequest(), [
      [{ missing: bitmap(16, [10]) }, message], // block 10 of a 10-block transfer
      [{ missing: bitmap(16, [15]) }, message],
      [{ missing: 'AgJ=' }, message], // the same bytes with a padding bit set
      [{ missing: 'AgI' }, message],
      [{ missing: 'Ag I=' }, message],
    ]);
  });

  it('refuses out-of-range counts, oversize bitmaps and bad ids, naming the field', () => {
    refusedAll(blocksRequest(), [
      [{ blockCount: 0, missing: '' }, /field "blockCount"/],
      [{ blockCount: 9.5 }, /field "blockCount"/],
      [{ blockCount: MAX_BLOCK_COUNT + 1 }, /field "blockCount": Too big/],
      [{ missing: 'A'.repeat(MAX_BITMAP_BASE64_CHARS + 4) }, /field "missing": Too big/],
      [{ missing: 42 }, /field "missing"/],
      [{ missing: DELETE }, /field "missing"/],
      [{ bundleId: 'A'.repeat(64) }, /field "bundleId"/],
      [{ rolloutId: 'r' }, /field "rolloutId"/],
      [{ blocks: [1, 9] }, /unknown field "blocks"/],
    ]);
  });
});
