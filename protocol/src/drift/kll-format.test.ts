import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError } from '../errors.ts';
import { KllSketch } from './kll.ts';
import { KLL_MAX_SERIALIZED_BYTES } from './kll-format.ts';
import { kllSerializedSizeBound, totalCapacity } from './kll-levels.ts';
import { createSeededRandom } from './random.ts';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';
import { sketchOf, stream } from './__fixtures__/streams.ts';

/** Field offsets of the format (kll-format.ts). */
const AT = { version: 4, numLevels: 5, k: 6, n: 8, retained: 16, min: 20, max: 28, boundaries: 36 };

interface Layout {
  magic?: string;
  version?: number;
  k?: number;
  n: number;
  min: number;
  max: number;
  boundaries: number[];
  items: number[];
  retained?: number;
}

/** An encoder written apart from the one under test, to craft inputs it would never produce. */
function craft(layout: Layout): Uint8Array {
  const numLevels = layout.boundaries.length - 1;
  const out = new Uint8Array(36 + 4 * layout.boundaries.length + 8 * layout.items.length);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(layout.magic ?? 'FKLL'), 0);
  view.setUint8(AT.version, layout.version ?? 1);
  view.setUint8(AT.numLevels, numLevels);
  view.setUint16(AT.k, layout.k ?? 8);
  view.setBigUint64(AT.n, BigInt(layout.n));
  view.setUint32(AT.retained, layout.retained ?? layout.items.length);
  view.setFloat64(AT.min, layout.min);
  view.setFloat64(AT.max, layout.max);
  layout.boundaries.forEach((b, i) => view.setUint32(AT.boundaries + 4 * i, b));
  const itemsAt = AT.boundaries + 4 * layout.boundaries.length;
  layout.items.forEach((x, i) => view.setFloat64(itemsAt + 8 * i, x));
  return out;
}

/** A valid two-level sketch by hand: level 0 = [5, 1], level 1 = [2, 3, 4] (n = 2 + 6). */
const VALID: Layout = { n: 8, min: 1, max: 5, boundaries: [0, 2, 5], items: [5, 1, 2, 3, 4] };

function edit(bytes: Uint8Array, change: (view: DataView) => void): Uint8Array {
  const copy = bytes.slice();
  change(new DataView(copy.buffer));
  return copy;
}

function multiLevel(): Uint8Array {
  return sketchOf(
    stream('normal', 10000, 4),
    new KllSketch({ random: createSeededRandom(4) }),
  ).serialize();
}

describe('KLL serialization', () => {
  it('round-trips a hand-built sketch, which proves the test encoder matches', () => {
    const bytes = craft(VALID);
    const sketch = KllSketch.deserialize(bytes);
    assert.equal(sketch.n, 8);
    assert.equal(sketch.numLevels, 2);
    assert.equal(sketch.rank(2), 3 / 8); // 1 (weight 1) and 2 (weight 2)
    assert.deepEqual(sketch.serialize(), bytes);
  });

  it('round-trips the empty sketch in 20 bytes, keeping k', () => {
    const bytes = new KllSketch({ k: 123 }).serialize();
    assert.equal(bytes.length, 20);
    assert.equal(kllSerializedSizeBound(123, 0), 20);
    const copy = KllSketch.deserialize(bytes);
    assert.equal(copy.isEmpty, true);
    assert.equal(copy.k, 123);
    assert.deepEqual(copy.serialize(), bytes);
  });

  it('round-trips a single value in 52 bytes', () => {
    const sketch = new KllSketch();
    sketch.update(-2.5);
    const bytes = sketch.serialize();
    assert.equal(bytes.length, 52);
    const copy = KllSketch.deserialize(bytes);
    assert.deepEqual([copy.n, copy.min, copy.max, copy.quantile(0.5)], [1, -2.5, -2.5, -2.5]);
    assert.deepEqual(copy.serialize(), bytes);
  });

  it('round-trips a compacted sketch bit-identically, which then goes on updating and merging', () => {
    const data = stream('exponential', 1000, 2);
    const sketch = sketchOf(data, new KllSketch({ random: createSeededRandom(2) }));
    const bytes = sketch.serialize();
    // k = 200 at n = 1e3: 2,644 bytes when written (324 items in 3 levels).
    assert.ok(bytes.length <= kllSerializedSizeBound(200, 1000), `${bytes.length} bytes`);
    assert.equal(kllSerializedSizeBound(200, 1000), 4824);
    const copy = KllSketch.deserialize(bytes, { random: createSeededRandom(3) });
    assert.deepEqual(copy.serialize(), bytes);
    for (let i = 0; i <= 100; i++)
      assert.ok(Object.is(copy.quantile(i / 100), sketch.quantile(i / 100)));
    for (const x of stream('uniform', 5000, 3)) copy.update(x);
    copy.merge(KllSketch.deserialize(bytes));
    assert.equal(copy.n, 7000);
    assert.ok(copy.numRetained <= totalCapacity(200, copy.numLevels));
  });

  it('caps every sketch at KLL_MAX_SERIALIZED_BYTES (about 1.6 MB)', () => {
    assert.ok(KLL_MAX_SERIALIZED_BYTES > 1.5e6 && KLL_MAX_SERIALIZED_BYTES < 1.7e6);
    refused(() => KllSketch.deserialize(new Uint8Array(KLL_MAX_SERIALIZED_BYTES + 1)), 'TOO_LARGE');
    refused(
      () => KllSketch.deserialize(multiLevel(), { maxBytes: 100 }),
      'TOO_LARGE',
      /the cap is 100/,
    );
  });
});

describe('KLL deserialization refuses', () => {
  it('every truncation of a real sketch (TRUNCATED)', () => {
    for (const bytes of [multiLevel(), new KllSketch().serialize(), craft(VALID)]) {
      for (let length = 0; length < bytes.length; length++) {
        refused(() => KllSketch.deserialize(bytes.subarray(0, length)), 'TRUNCATED');
      }
    }
  });

  it('bytes after the sketch (TRAILING_DATA)', () => {
    for (const bytes of [multiLevel(), new KllSketch().serialize()]) {
      const longer = new Uint8Array(bytes.length + 1);
      longer.set(bytes);
      refused(() => KllSketch.deserialize(longer), 'TRAILING_DATA');
    }
  });

  it('bad magic and other versions (MALFORMED)', () => {
    const bytes = multiLevel();
    refused(
      () => KllSketch.deserialize(edit(bytes, (v) => v.setUint8(0, 0x66))),
      'MALFORMED',
      /magic/,
    );
    refused(() => KllSketch.deserialize(craft({ ...VALID, magic: 'FCNT' })), 'MALFORMED', /magic/);
    for (const version of [0, 2, 0x81]) {
      refused(
        () => KllSketch.deserialize(edit(bytes, (v) => v.setUint8(AT.version, version))),
        'MALFORMED',
        /version/,
      );
    }
  });

  it('k below 8, no levels (MALFORMED) and too many levels (TOO_LARGE)', () => {
    refused(() => KllSketch.deserialize(craft({ ...VALID, k: 7 })), 'MALFORMED', /k = 7/);
    refused(
      () => KllSketch.deserialize(edit(craft(VALID), (v) => v.setUint8(AT.numLevels, 0))),
      'MALFORMED',
      /no levels/,
    );
    refused(
      () => KllSketch.deserialize(edit(craft(VALID), (v) => v.setUint8(AT.numLevels, 62))),
      'TOO_LARGE',
      /levels/,
    );
  });

  it('inconsistent level boundaries (MALFORMED)', () => {
    const cases: [number[], RegExp][] = [
      [[1, 2, 5], /first level boundary/],
      [[0, 4, 3], /decrease/],
      [[0, 2, 4], /last level boundary/],
      [[0, 5, 5], /top level .* is empty/],
    ];
    for (const [boundaries, message] of cases) {
      refused(() => KllSketch.deserialize(craft({ ...VALID, boundaries })), 'MALFORMED', message);
    }
  });

  it('an n that differs from the levels weighted count (MALFORMED)', () => {
    for (const n of [7, 9, 1e15]) {
      refused(() => KllSketch.deserialize(craft({ ...VALID, n })), 'MALFORMED', /weigh/);
    }
    const bytes = multiLevel();
    const n = new DataView(bytes.buffer).getBigUint64(AT.n);
    refused(
      () => KllSketch.deserialize(edit(bytes, (v) => v.setBigUint64(AT.n, n + 1n))),
      'MALFORMED',
      /weigh/,
    );
  });

  it('NaN, infinite and out-of-range items, unsorted levels, and min above max (MALFORMED)', () => {
    const items = (at: number, x: number) => VALID.items.map((y, i) => (i === at ? x : y));
    refused(
      () => KllSketch.deserialize(craft({ ...VALID, items: items(0, NaN) })),
      'MALFORMED',
      /item NaN/,
    );
    refused(
      () => KllSketch.deserialize(craft({ ...VALID, items: items(3, Infinity) })),
      'MALFORMED',
      /outside/,
    );
    refused(
      () => KllSketch.deserialize(craft({ ...VALID, items: items(1, 0.5) })),
      'MALFORMED',
      /outside/,
    );
    refused(
      () => KllSketch.deserialize(craft({ ...VALID, items: [5, 1, 3, 2, 4] })),
      'MALFORMED',
      /not sorted/,
    );
    refused(() => KllSketch.deserialize(craft({ ...VALID, min: 6 })), 'MALFORMED', /min 6/);
    refused(() => KllSketch.deserialize(craft({ ...VALID, max: NaN })), 'MALFORMED', /max NaN/);
    // Level 0 may be in any order.
    assert.equal(KllSketch.deserialize(craft({ ...VALID, items: [1, 5, 2, 3, 4] })).n, 8);
  });

  it('empty sketches that carry levels or items, and sketches of n > 0 with none (MALFORMED)', () => {
    const empty = new KllSketch().serialize();
    refused(
      () => KllSketch.deserialize(edit(empty, (v) => v.setUint8(AT.numLevels, 2))),
      'MALFORMED',
      /empty/,
    );
    refused(
      () => KllSketch.deserialize(edit(empty, (v) => v.setUint32(AT.retained, 1))),
      'MALFORMED',
      /empty/,
    );
    refused(
      () => KllSketch.deserialize(edit(empty, (v) => v.setBigUint64(AT.n, 1n))),
      'MALFORMED',
      /retains no item/,
    );
  });

  it('declared sizes beyond the caps (TOO_LARGE)', () => {
    const bytes = craft(VALID);
    refused(
      () => KllSketch.deserialize(edit(bytes, (v) => v.setUint32(AT.retained, 0xffffffff))),
      'TOO_LARGE',
      /holds at most/,
    );
    // k = 8 with 2 levels holds 16 items.
    refused(
      () => KllSketch.deserialize(craft({ ...VALID, retained: 17 })),
      'TOO_LARGE',
      /at most 16/,
    );
    refused(
      () => KllSketch.deserialize(edit(bytes, (v) => v.setBigUint64(AT.n, 2n ** 53n))),
      'TOO_LARGE',
      /2\^53/,
    );
  });

  it('random corruption with a FleetError only, or else returns a sound sketch (seeded fuzz)', (t) => {
    const random = createSeededRandom(2024);
    const originals = [
      multiLevel(),
      craft(VALID),
      sketchOf(
        stream('duplicates', 3000, 1),
        new KllSketch({ k: 8, random: createSeededRandom(1) }),
      ).serialize(),
    ];
    const codes = new Set(['MALFORMED', 'TRUNCATED', 'TRAILING_DATA', 'TOO_LARGE']);
    let accepted = 0;
    for (let round = 0; round < 3000; round++) {
      const original = originals[round % originals.length]!;
      let bytes = original.slice();
      const flips = 1 + Math.floor(random() * 3);
      for (let f = 0; f < flips; f++) {
        const at = Math.floor(random() * bytes.length);
        bytes[at]! ^= 1 << Math.floor(random() * 8);
      }
      if (random() < 0.1) bytes = bytes.subarray(0, Math.floor(random() * bytes.length));
      let sketch: KllSketch;
      try {
        sketch = KllSketch.deserialize(bytes, { random: createSeededRandom(round) });
      } catch (e) {
        assert.ok(isFleetError(e) && codes.has(e.code), `round ${round}: ${String(e)}`);
        continue;
      }
      accepted++;
      checkSound(sketch, bytes);
    }
    t.diagnostic(`${accepted} of 3000 corrupted inputs were still valid sketches (all sound)`);
    assert.ok(accepted > 0, 'the fuzz exercises the accepting path too');
  });
});

/** What any sketch deserialize returns must satisfy. */
function checkSound(sketch: KllSketch, bytes: Uint8Array): void {
  assert.deepEqual(sketch.serialize(), bytes, 'one encoding per sketch');
  assert.ok(sketch.numRetained <= totalCapacity(sketch.k, sketch.numLevels));
  let previous = -Infinity;
  for (let i = 0; i <= 50; i++) {
    const q = sketch.quantile(i / 50);
    assert.ok(q >= previous && q >= sketch.min && q <= sketch.max);
    previous = q;
    const r = sketch.rank(q);
    assert.ok(r >= 0 && r <= 1);
  }
  assert.equal(sketch.cdf([sketch.min, sketch.max + 1]).at(-1), 1);
  sketch.update(0.5);
  sketch.merge(KllSketch.deserialize(bytes));
}
