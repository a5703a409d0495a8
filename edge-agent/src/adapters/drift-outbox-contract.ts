/**
 * The drift outbox's part of the storage contract (storage-contract.ts runs
 * it for every store set): the outbox's rules (core/drift-outbox.ts) hold on
 * each `DriftOutboxStore`. `open()` returns a store over the same backing
 * data each time, so a new outbox on it is a restarted agent. The tests share
 * that data, so each starts by acknowledging what an earlier one left.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createNumericSignal,
  createSeededRandom,
  serializeSignal,
  toBase64,
  updateSignal,
} from '@fleet/protocol';
import type { DriftFlushDraft } from '../core/drift-flush.ts';
import { createDriftOutbox, type DriftOutboxBounds } from '../core/drift-outbox.ts';
import type { DriftOutboxStore } from '../core/storage.ts';

const T0 = Date.parse('2026-11-27T10:00:00Z');

/** A small valid draft, the same for the same `n` (a seeded sketch). */
export function sampleDraft(n: number): DriftFlushDraft {
  const sketch = createNumericSignal({ k: 8, random: createSeededRandom(n) });
  for (let i = 0; i <= n; i++) updateSignal(sketch, i / 10);
  return {
    id: `flush-${String(n).padStart(6, '0')}`,
    model: { name: 'mnist-2nn', version: '1.0.0', release: 1, bundleId: 'ab'.repeat(32) },
    rolloutId: n % 2 === 0 ? 'rollout-0001' : null,
    window: {
      start: new Date(T0 + n * 60_000).toISOString(),
      end: new Date(T0 + (n + 1) * 60_000).toISOString(),
    },
    inferences: 100 + n,
    sampled: n + 1,
    signals: [{ name: 'confidence', sketch: toBase64(serializeSignal(sketch)) }],
  };
}

async function restart(store: DriftOutboxStore, bounds?: Partial<DriftOutboxBounds>) {
  const outbox = createDriftOutbox({ store, nowMs: () => T0, ...(bounds ? { bounds } : {}) });
  assert.deepEqual(await outbox.open(), [], 'nothing corrupt');
  return outbox;
}

/** A restarted outbox with nothing pending. */
async function drained(store: DriftOutboxStore, bounds?: Partial<DriftOutboxBounds>) {
  const outbox = await restart(store, bounds);
  for (const flush of outbox.pending()) await outbox.ack(flush.seq);
  return outbox;
}

export function runDriftOutboxContract(name: string, open: () => DriftOutboxStore): void {
  test(`${name}: drift flushes are stored before append resolves, and a restart finds them in seq order`, async () => {
    const outbox = await drained(open());
    const first = outbox.stats().nextSeq;
    const flushes = [];
    for (let n = 0; n < 3; n++) flushes.push(await outbox.append(sampleDraft(n)));
    assert.deepEqual(
      flushes.map((f) => f.seq),
      [first, first + 1, first + 2],
    );
    assert.deepEqual(flushes[1], { ...sampleDraft(1), seq: first + 1 });
    const restarted = await restart(open());
    assert.deepEqual(restarted.pending(), flushes, 'same ids, same contents, in order');
    assert.equal(restarted.stats().nextSeq, first + 3);
  });

  test(`${name}: an acknowledged flush is gone, and its seq is never given out again`, async () => {
    const outbox = await drained(open());
    const a = await outbox.append(sampleDraft(10));
    const b = await outbox.append(sampleDraft(11));
    await outbox.ack(a.seq);
    await outbox.ack(a.seq); // a duplicate PUBACK changes nothing
    assert.deepEqual(
      (await restart(open())).pending().map((f) => f.id),
      [b.id],
    );
    await outbox.ack(b.seq);
    const after = await restart(open());
    assert.deepEqual(after.pending(), []);
    const c = await after.append(sampleDraft(12));
    assert.equal(c.seq, b.seq + 1, 'the seq survives a restart with nothing pending');
  });

  test(`${name}: past maxFlushes the oldest are dropped and counted, and the count survives a restart`, async () => {
    const bounds = { maxFlushes: 3 };
    const outbox = await drained(open(), bounds);
    const dropped = outbox.stats().dropped;
    const flushes = [];
    for (let n = 20; n < 25; n++) flushes.push(await outbox.append(sampleDraft(n)));
    assert.deepEqual(
      outbox.pending().map((f) => f.id),
      flushes.slice(2).map((f) => f.id),
    );
    assert.equal(outbox.stats().dropped, dropped + 2);
    const restarted = await restart(open(), bounds);
    assert.deepEqual(
      restarted.pending().map((f) => f.seq),
      flushes.slice(2).map((f) => f.seq),
    );
    assert.equal(restarted.stats().dropped, dropped + 2);
  });

  test(`${name}: past maxBytes the oldest are dropped; the newest is kept even alone`, async () => {
    const size = JSON.stringify({ ...sampleDraft(30), seq: 1000 }).length;
    const outbox = await drained(open(), { maxBytes: Math.floor(size * 2.5) });
    const dropped = outbox.stats().dropped;
    const flushes = [];
    for (let n = 30; n < 34; n++) flushes.push(await outbox.append(sampleDraft(n)));
    assert.deepEqual(
      outbox.pending().map((f) => f.id),
      flushes.slice(2).map((f) => f.id),
    );
    assert.equal(outbox.stats().dropped, dropped + 2);
    const tiny = await drained(open(), { maxBytes: 10 });
    await tiny.append(sampleDraft(40));
    const last = await tiny.append(sampleDraft(41));
    assert.deepEqual(
      tiny.pending().map((f) => f.id),
      [last.id],
    );
  });

  test(`${name}: a discarded (unsendable) flush is deleted and counted dropped`, async () => {
    const outbox = await drained(open());
    const dropped = outbox.stats().dropped;
    const flush = await outbox.append(sampleDraft(50));
    await outbox.discard(flush.seq);
    const restarted = await restart(open());
    assert.deepEqual(restarted.pending(), []);
    assert.equal(restarted.stats().dropped, dropped + 1);
  });

  test(`${name}: the store replaces a seq it holds and ignores removing one it does not`, async () => {
    const store = open();
    await drained(store);
    await store.put({ ...sampleDraft(60), seq: 900_000 });
    await store.put({ ...sampleDraft(61), seq: 900_000 });
    await store.remove(900_001);
    const { flushes } = await store.load();
    assert.deepEqual(flushes, [{ ...sampleDraft(61), seq: 900_000 }]);
    await store.remove(900_000);
    assert.deepEqual((await store.load()).flushes, []);
  });
}
