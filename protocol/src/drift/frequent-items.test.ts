import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError } from '../errors.ts';
import {
  FREQUENT_ITEM_MAX_BYTES,
  FREQUENT_ITEMS_MAX_SERIALIZED_BYTES,
  frequentItemsAprioriError,
  FrequentItemsSketch,
} from './frequent-items.ts';
import { createSeededRandom, type RandomSource } from './random.ts';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';

/** A zipf(s) draw over `distinct` items named "c0", "c1", ... (c0 the most frequent). */
function zipfSampler(distinct: number, s: number, random: RandomSource): () => string {
  const cumulative = new Float64Array(distinct);
  let total = 0;
  for (let i = 0; i < distinct; i++) cumulative[i] = total += 1 / (i + 1) ** s;
  return () => {
    const u = random() * total;
    let lo = 0;
    let hi = distinct - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid]! >= u) hi = mid;
      else lo = mid + 1;
    }
    return `c${lo}`;
  };
}

function zipfStream(n: number, seed: number, distinct = 10000): string[] {
  const next = zipfSampler(distinct, 1.1, createSeededRandom(seed));
  return Array.from({ length: n }, next);
}

function trueCounts(items: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return counts;
}

/** Every item's true count lies within its bounds, which are maximumError apart. */
function assertBounds(
  sketch: FrequentItemsSketch,
  truth: Map<string, number>,
  names: Iterable<string>,
): void {
  for (const item of names) {
    const count = truth.get(item) ?? 0;
    const [low, high] = [sketch.lowerBound(item), sketch.upperBound(item)];
    assert.ok(low <= count && count <= high, `${item}: ${count} outside [${low}, ${high}]`);
    assert.equal(high - low, sketch.maximumError);
    assert.ok(Math.abs(sketch.estimate(item) - count) <= sketch.maximumError, item);
  }
}

describe('frequent items', () => {
  it('counts exactly while the distinct items fit (3/4 of the map)', () => {
    const sketch = new FrequentItemsSketch({ maxMapSize: 64 });
    const truth = new Map<string, number>();
    const random = createSeededRandom(1);
    for (let i = 0; i < 5000; i++) {
      const item = `class-${Math.floor(random() * 48)}`;
      const weight = 1 + Math.floor(random() * 3);
      sketch.update(item, weight);
      truth.set(item, (truth.get(item) ?? 0) + weight);
    }
    assert.equal(sketch.numActiveItems, 48);
    assert.equal(sketch.maximumError, 0);
    for (const [item, count] of truth) {
      assert.deepEqual(
        [sketch.estimate(item), sketch.lowerBound(item), sketch.upperBound(item)],
        [count, count, count],
      );
    }
    assert.equal(
      sketch.n,
      [...truth.values()].reduce((a, b) => a + b, 0),
    );
    assert.equal(sketch.estimate('never seen'), 0);
  });

  it('keeps every count within maximumError on a zipf stream of 10,000 distinct items', (t) => {
    const stream = zipfStream(100000, 7);
    const sketch = new FrequentItemsSketch({ maxMapSize: 64 });
    for (const item of stream) sketch.update(item);
    const truth = trueCounts(stream);
    assert.ok(sketch.maximumError > 0, 'the sketch had to purge');
    assert.ok(sketch.numActiveItems <= 48);
    assert.ok(sketch.maximumError <= frequentItemsAprioriError(64, 100000));
    t.diagnostic(
      `maximumError ${sketch.maximumError}, a-priori bound ${frequentItemsAprioriError(64, 100000)}`,
    );
    assertBounds(sketch, truth, truth.keys());
    // The heaviest items are found, with no false positives above maximumError.
    const top = sketch.frequentItems('noFalsePositives');
    assert.deepEqual(
      top.slice(0, 3).map((row) => row.item),
      ['c0', 'c1', 'c2'],
    );
    for (const row of top) assert.ok(truth.get(row.item)! > sketch.maximumError);
    // No false negatives: every item above the threshold is listed.
    const listed = new Set(sketch.frequentItems('noFalseNegatives').map((row) => row.item));
    for (const [item, count] of truth)
      if (count > sketch.maximumError) assert.ok(listed.has(item), item);
  });

  it('lists by estimate descending, then by item, above a given threshold', () => {
    const sketch = new FrequentItemsSketch();
    for (const [item, weight] of [
      ['b', 5],
      ['a', 5],
      ['c', 9],
      ['d', 1],
    ] as const)
      sketch.update(item, weight);
    assert.deepEqual(
      sketch.frequentItems('noFalsePositives', 1).map((r) => r.item),
      ['c', 'a', 'b'],
    );
    assert.deepEqual(sketch.frequentItems(), [
      { item: 'c', estimate: 9, lowerBound: 9, upperBound: 9 },
      { item: 'a', estimate: 5, lowerBound: 5, upperBound: 5 },
      { item: 'b', estimate: 5, lowerBound: 5, upperBound: 5 },
      { item: 'd', estimate: 1, lowerBound: 1, upperBound: 1 },
    ]);
  });

  it('merges shards into bounds that hold for the union', () => {
    const stream = zipfStream(60000, 11);
    const merged = new FrequentItemsSketch({ maxMapSize: 128 });
    for (let shard = 0; shard < 10; shard++) {
      const part = new FrequentItemsSketch({ maxMapSize: shard % 2 ? 64 : 128 });
      for (const item of stream.slice(shard * 6000, (shard + 1) * 6000)) part.update(item);
      merged.merge(part);
    }
    assert.equal(merged.n, 60000);
    assert.ok(merged.maximumError <= frequentItemsAprioriError(64, 60000));
    const truth = trueCounts(stream);
    assertBounds(merged, truth, truth.keys());
    assert.equal(merged.frequentItems()[0]!.item, 'c0');

    const alone = new FrequentItemsSketch();
    alone.update('x', 3);
    alone.merge(alone);
    assert.deepEqual([alone.n, alone.estimate('x')], [6, 6]);
  });

  it('refuses bad weights, map sizes and items, changing nothing', () => {
    const sketch = new FrequentItemsSketch();
    for (const weight of [0, -1, 1.5, NaN])
      refused(() => sketch.update('a', weight), 'MALFORMED', /weight/);
    for (const maxMapSize of [4, 48, 8192, 64.5]) {
      refused(() => new FrequentItemsSketch({ maxMapSize }), 'MALFORMED', /maxMapSize/);
    }
    refused(() => sketch.update('é'.repeat(129)), 'TOO_LARGE', /256 bytes/);
    refused(() => sketch.update('a\uD800b'), 'MALFORMED', /lone surrogate/);
    assert.equal(sketch.n, 0);
    sketch.update('é'.repeat(128)); // 256 bytes: the longest item
    assert.equal(sketch.n, 1);
  });
});

describe('frequent items serialization', () => {
  function sample(): FrequentItemsSketch {
    const sketch = new FrequentItemsSketch({ maxMapSize: 16 });
    for (const item of zipfStream(3000, 5, 40)) sketch.update(item);
    sketch.update('\uFEFFbom', 2);
    sketch.update('ünïcødé ✓ 😀', 3);
    sketch.update('', 1);
    return sketch;
  }

  it('round-trips bit-identically, empty or not', () => {
    for (const sketch of [new FrequentItemsSketch(), sample()]) {
      const bytes = sketch.serialize();
      const copy = FrequentItemsSketch.deserialize(bytes);
      assert.deepEqual(copy.serialize(), bytes);
      assert.deepEqual(
        copy.frequentItems('noFalseNegatives', -1),
        sketch.frequentItems('noFalseNegatives', -1),
      );
      assert.deepEqual(
        [copy.n, copy.maximumError, copy.maxMapSize],
        [sketch.n, sketch.maximumError, sketch.maxMapSize],
      );
    }
    const fresh = FrequentItemsSketch.deserialize(new FrequentItemsSketch().serialize());
    assert.equal(fresh.serialize().length, 28);
    // A leading U+FEFF is part of the item, not a byte-order mark to drop.
    const bom = new FrequentItemsSketch();
    bom.update('\uFEFFbom', 2);
    const kept = FrequentItemsSketch.deserialize(bom.serialize());
    assert.deepEqual([kept.lowerBound('\uFEFFbom'), kept.lowerBound('bom')], [2, 0]);
    assert.ok(FREQUENT_ITEMS_MAX_SERIALIZED_BYTES < 1e6);
  });

  /** Offsets of the format. */
  const AT = { version: 4, lgMapSize: 5, reserved: 6, n: 8, offset: 16, itemCount: 24, items: 28 };

  function one(
    item: Uint8Array,
    count: number,
    header: Partial<Record<'n' | 'offset' | 'itemCount' | 'lgMapSize', number>> = {},
  ): Uint8Array {
    const out = new Uint8Array(28 + 2 + item.length + 8);
    const view = new DataView(out.buffer);
    out.set(new TextEncoder().encode('FFQI'));
    view.setUint8(AT.version, 1);
    view.setUint8(AT.lgMapSize, header.lgMapSize ?? 6);
    view.setBigUint64(AT.n, BigInt(header.n ?? 10));
    view.setBigUint64(AT.offset, BigInt(header.offset ?? 0));
    view.setUint32(AT.itemCount, header.itemCount ?? 1);
    view.setUint16(AT.items, item.length);
    out.set(item, AT.items + 2);
    view.setBigUint64(AT.items + 2 + item.length, BigInt(count));
    return out;
  }
  const A = new TextEncoder().encode('a');

  it('accepts the hand-built reference record', () => {
    assert.equal(FrequentItemsSketch.deserialize(one(A, 4)).lowerBound('a'), 4);
  });

  it('refuses every truncation (TRUNCATED) and trailing bytes (TRAILING_DATA)', () => {
    const bytes = sample().serialize();
    for (let length = 0; length < bytes.length; length++) {
      refused(() => FrequentItemsSketch.deserialize(bytes.subarray(0, length)), 'TRUNCATED');
    }
    refused(() => FrequentItemsSketch.deserialize(Uint8Array.from([...bytes, 0])), 'TRAILING_DATA');
  });

  it('refuses bad headers', () => {
    const bytes = one(A, 4);
    const edit = (at: number, value: number) => {
      const copy = bytes.slice();
      copy[at] = value;
      return copy;
    };
    refused(() => FrequentItemsSketch.deserialize(edit(0, 0)), 'MALFORMED', /magic/);
    refused(() => FrequentItemsSketch.deserialize(edit(AT.version, 2)), 'MALFORMED', /version/);
    refused(() => FrequentItemsSketch.deserialize(edit(AT.reserved, 1)), 'MALFORMED', /reserved/);
    for (const lgMapSize of [2, 13]) {
      refused(
        () => FrequentItemsSketch.deserialize(one(A, 4, { lgMapSize })),
        'MALFORMED',
        /map size/,
      );
    }
    refused(
      () => FrequentItemsSketch.deserialize(one(A, 4, { offset: 11 })),
      'MALFORMED',
      /offset/,
    );
    refused(
      () => FrequentItemsSketch.deserialize(one(A, 4, { itemCount: 49 })),
      'TOO_LARGE',
      /at most 48/,
    );
    refused(
      () =>
        FrequentItemsSketch.deserialize(new Uint8Array(FREQUENT_ITEMS_MAX_SERIALIZED_BYTES + 1)),
      'TOO_LARGE',
    );
  });

  it('refuses bad items', () => {
    refused(
      () => FrequentItemsSketch.deserialize(one(Uint8Array.of(0xc3, 0x28), 4)),
      'MALFORMED',
      /UTF-8/,
    );
    refused(
      () =>
        FrequentItemsSketch.deserialize(
          one(new Uint8Array(FREQUENT_ITEM_MAX_BYTES + 1).fill(97), 4),
        ),
      'TOO_LARGE',
      /257 bytes/,
    );
    refused(() => FrequentItemsSketch.deserialize(one(A, 0)), 'MALFORMED', /count of 0/);
    refused(() => FrequentItemsSketch.deserialize(one(A, 11)), 'MALFORMED', /count of 11/);
    refused(
      () => FrequentItemsSketch.deserialize(one(A, 8, { offset: 3 })),
      'MALFORMED',
      /exceed its n/,
    );
    const twice = new FrequentItemsSketch();
    twice.update('a', 2);
    twice.update('b', 2);
    const bytes = twice.serialize();
    bytes[bytes.length - 9] = 0x61; // "b" (before its u64 count) becomes "a"
    refused(() => FrequentItemsSketch.deserialize(bytes), 'MALFORMED', /twice/);
  });

  it('fails only with FleetErrors under random corruption, or returns a sound sketch (seeded fuzz)', (t) => {
    const random = createSeededRandom(99);
    const original = sample().serialize();
    let accepted = 0;
    for (let round = 0; round < 2000; round++) {
      const bytes = original.slice();
      for (let f = 0; f < 1 + Math.floor(random() * 3); f++) {
        bytes[Math.floor(random() * bytes.length)]! ^= 1 << Math.floor(random() * 8);
      }
      let sketch: FrequentItemsSketch;
      try {
        sketch = FrequentItemsSketch.deserialize(bytes);
      } catch (e) {
        assert.ok(
          isFleetError(e) &&
            ['MALFORMED', 'TRUNCATED', 'TRAILING_DATA', 'TOO_LARGE'].includes(e.code),
          String(e),
        );
        continue;
      }
      accepted++;
      assert.deepEqual(sketch.serialize(), bytes);
      const rows = sketch.frequentItems('noFalseNegatives', -1);
      assert.ok(
        rows.reduce((sum, row) => sum + row.lowerBound, 0) + sketch.maximumError <= sketch.n,
      );
      // A corrupted n may sit near 2^53, where adding more is refused (TOO_LARGE).
      const small = new FrequentItemsSketch({ maxMapSize: 8 });
      small.merge(sketch);
      if (sketch.n < Number.MAX_SAFE_INTEGER) sketch.update('new');
    }
    t.diagnostic(`${accepted} of 2000 corrupted inputs were still valid sketches (all sound)`);
    assert.ok(accepted > 0);
  });
});
