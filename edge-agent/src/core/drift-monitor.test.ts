import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createSeededRandom,
  deserializeSignal,
  fromBase64,
  type BundleModelRef,
  type PcaBasis,
} from '@fleet/protocol';
import {
  TINY_CLASSES,
  TINY_WIDTH,
  tinyBatch,
  tinyModel,
  tinyRef,
  tinySpec,
} from '../__fixtures__/tiny-drift-model.ts';
import type { DriftFlushDraft } from './drift-flush.ts';
import { createDriftMonitor } from './drift-monitor.ts';

const T0 = Date.parse('2026-11-27T10:00:00Z');
const WIDTH = TINY_WIDTH;
const CLASSES = TINY_CLASSES;
const ref = tinyRef;
const spec = tinySpec;
const monitored = tinyModel;
const batchOf = tinyBatch;

/** A monitor on a settable clock and a seeded random, collecting its flushes. */
function harness(seed = 1) {
  const clock = { now: T0 };
  const flushes: DriftFlushDraft[] = [];
  let ids = 0;
  const monitor = createDriftMonitor({
    nowMs: () => clock.now,
    random: createSeededRandom(seed),
    newId: () => `flush-${String(++ids).padStart(4, '0')}`,
    onFlush: (draft) => flushes.push(draft),
  });
  return { clock, flushes, monitor };
}

function feed(
  monitor: ReturnType<typeof harness>['monitor'],
  model: BundleModelRef,
  rows: number,
  batch: number,
) {
  const { inputs, outputs } = batchOf(batch);
  for (let done = 0; done < rows; done += batch) monitor.observe(model, inputs, outputs, batch);
}

function signal(draft: DriftFlushDraft, name: string) {
  const entry = draft.signals.find((s) => s.name === name);
  assert.ok(entry, `signal ${name} flushed`);
  return deserializeSignal(fromBase64(entry.sketch));
}

test('each row is sampled with the model rate: counts within 5 sigma, rows at every batch position alike', () => {
  for (const rate of [0.01, 0.1, 0.5]) {
    const { monitor, flushes } = harness(Math.round(rate * 1000));
    const s = spec({ flush: { maxSamples: 1_000_000, maxIntervalMs: 60_000 } });
    monitor.setModel(monitored(1, { spec: s, sampleRate: rate }));
    const rows = 200_000;
    feed(monitor, ref(1), rows, 50);
    monitor.setModel(null);
    assert.equal(flushes.length, 1);
    const [flush] = flushes;
    assert.equal(flush!.inferences, rows);
    const sigma = Math.sqrt(rows * rate * (1 - rate));
    assert.ok(
      Math.abs(flush!.sampled - rows * rate) < 5 * sigma,
      `rate ${rate}: ${flush!.sampled} sampled of ${rows}`,
    );
    // input 0 is the row's position in its batch of 50: sampled rows average 24.5.
    const position = signal(flush!, 'input.0');
    assert.ok(position.kind === 'numeric');
    assert.equal(position.counters.count, flush!.sampled, 'every sampled row fed the sketch');
    const sd = Math.sqrt((50 * 50 - 1) / 12 / flush!.sampled);
    assert.ok(
      Math.abs(position.counters.mean - 24.5) < 5 * sd,
      `rate ${rate}: mean position ${position.counters.mean}`,
    );
  }
});

test('rate 1 samples every row; the signals hold what the extractor computes', () => {
  const { monitor, flushes } = harness();
  monitor.setModel(monitored(1));
  feed(monitor, ref(1), 30, 30);
  monitor.setModel(null);
  const [flush] = flushes;
  assert.equal(flush!.sampled, 30);
  const classes = signal(flush!, 'predicted_class');
  assert.ok(classes.kind === 'categorical');
  assert.deepEqual(
    ['0', '1', '2'].map((c) => classes.items.lowerBound(c)),
    [10, 10, 10],
  );
  const confidence = signal(flush!, 'confidence');
  assert.ok(confidence.kind === 'numeric');
  assert.ok(
    Math.abs(confidence.counters.min - 0.8) < 1e-6 &&
      Math.abs(confidence.counters.max - 0.8) < 1e-6,
  );
});

test('a window closes at maxSamples, mid-batch; the rest of the batch opens the next', () => {
  const { monitor, flushes } = harness();
  monitor.setModel(
    monitored(1, { spec: spec({ flush: { maxSamples: 100, maxIntervalMs: 60_000 } }) }),
  );
  feed(monitor, ref(1), 240, 30);
  assert.deepEqual(
    flushes.map((f) => [f.sampled, f.inferences]),
    [
      [100, 100],
      [100, 100],
    ],
  );
  monitor.setModel(null);
  assert.deepEqual(
    flushes.map((f) => f.sampled),
    [100, 100, 40],
  );
  assert.equal(new Set(flushes.map((f) => f.id)).size, 3, 'each flush has its own id');
});

test('a window closes when maxIntervalMs has passed, on a tick or on the next inference', () => {
  const { monitor, flushes, clock } = harness();
  monitor.setModel(monitored(1));
  feed(monitor, ref(1), 10, 10);
  clock.now = T0 + 59_999;
  monitor.tick();
  assert.equal(flushes.length, 0);
  clock.now = T0 + 60_000;
  monitor.tick();
  assert.equal(flushes.length, 1);
  assert.deepEqual(flushes[0]!.window, {
    start: new Date(T0).toISOString(),
    end: new Date(T0 + 60_000).toISOString(),
  });
  assert.equal(flushes[0]!.inferences, 10);
  // The next window: rows, then an inference after its bound closes it first.
  feed(monitor, ref(1), 5, 5);
  clock.now = T0 + 130_000;
  feed(monitor, ref(1), 7, 7);
  assert.equal(flushes.length, 2);
  assert.equal(flushes[1]!.inferences, 5, 'the late rows are not in the closed window');
  assert.equal(flushes[1]!.window.end, new Date(T0 + 130_000).toISOString());
  monitor.setModel(null);
  assert.equal(flushes[2]!.inferences, 7);
});

test('a window without inferences is not flushed; it starts again', () => {
  const { monitor, flushes, clock } = harness();
  monitor.setModel(monitored(1));
  clock.now = T0 + 600_000;
  monitor.tick();
  assert.equal(flushes.length, 0);
  feed(monitor, ref(1), 3, 3);
  clock.now = T0 + 630_000;
  monitor.setModel(null);
  assert.equal(flushes[0]!.window.start, new Date(T0 + 600_000).toISOString());
});

test('a model change closes the window for the old model; the old model rows are ignored after', () => {
  const { monitor, flushes, clock } = harness();
  monitor.setModel(monitored(1));
  feed(monitor, ref(1), 20, 10);
  clock.now = T0 + 5_000;
  monitor.setModel(monitored(2, { rolloutId: null }));
  assert.equal(flushes.length, 1);
  assert.deepEqual(flushes[0]!.model, ref(1));
  assert.equal(flushes[0]!.rolloutId, 'rollout-0001');
  assert.equal(flushes[0]!.window.end, new Date(T0 + 5_000).toISOString());
  feed(monitor, ref(1), 10, 10); // a request that started on model 1
  feed(monitor, ref(2), 4, 4);
  assert.deepEqual(monitor.model(), ref(2));
  // Serving model 2 again (same rollout, same rate) keeps its window.
  monitor.setModel(monitored(2, { rolloutId: null }));
  assert.equal(flushes.length, 1);
  monitor.setModel(null); // a model without a drift spec: not monitored
  assert.deepEqual(
    flushes.map((f) => [f.model.release, f.rolloutId, f.inferences]),
    [
      [1, 'rollout-0001', 20],
      [2, null, 4],
    ],
  );
  feed(monitor, ref(2), 10, 10);
  clock.now = T0 + 10_000_000;
  monitor.tick();
  assert.equal(flushes.length, 2, 'nothing is monitored without a model');
});

test('PCA signals use the profile basis; rows that do not fit it are counted, not sampled', () => {
  const pca: PcaBasis = {
    inputSize: WIDTH,
    mean: new Float32Array(WIDTH).fill(0.5),
    components: [Float32Array.from([1, 0, 0, 0])],
  };
  const withPca = spec({
    signals: [
      { name: 'pca.0', kind: 'numeric', source: { type: 'pca', component: 0 } },
      { name: 'pca_error', kind: 'numeric', source: { type: 'pca-error' } },
    ],
  });
  const { monitor, flushes } = harness();
  monitor.setModel(monitored(1, { spec: withPca, pca }));
  feed(monitor, ref(1), 4, 4); // input 0 = 0..3, the rest 0.5: projections -0.5..2.5, error 0
  const wide = new Float32Array(2 * (WIDTH + 1));
  monitor.observe(ref(1), wide, new Float32Array(2 * CLASSES).fill(0.3), 2);
  assert.equal(monitor.stats().extractErrors, 2);
  monitor.setModel(null);
  assert.equal(flushes[0]!.sampled, 4);
  assert.equal(flushes[0]!.inferences, 6);
  const projection = signal(flushes[0]!, 'pca.0');
  assert.ok(projection.kind === 'numeric');
  assert.deepEqual([projection.counters.min, projection.counters.max], [-0.5, 2.5]);
  const error = signal(flushes[0]!, 'pca_error');
  assert.ok(error.kind === 'numeric' && error.counters.max === 0);
});

test('a wall clock stepped back does not end a window before its start', () => {
  const { monitor, flushes, clock } = harness();
  monitor.setModel(monitored(1));
  clock.now = T0 - 10_000;
  feed(monitor, ref(1), 3, 3);
  monitor.setModel(null);
  assert.deepEqual(flushes[0]!.window, {
    start: new Date(T0).toISOString(),
    end: new Date(T0).toISOString(),
  });
});
