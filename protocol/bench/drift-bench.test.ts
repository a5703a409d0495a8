// The drift bench's computations on tiny sizes, so the bench cannot rot
// unnoticed between runs: the exact KS it is judged by, each sketch's CDF
// reading, and one clean and one drifted detection run through the
// control plane's drift core.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { numericSignalBytesBound } from '../src/index.ts';
import { runDetection } from './drift-detection-runs.ts';
import { prepareDetection, type DetectionSetup } from './drift-detection-setup.ts';
import { runStream } from './drift-detection.ts';
import { measureKs, measureUpdateCost, summarizeKs } from './drift-sketch-figures.ts';
import { DISTRIBUTIONS, exactKs, makeStream, sortedCopy } from './drift-streams.ts';

describe('drift bench: sketch figures', () => {
  it('computes the exact two-sample KS statistic', () => {
    const of = (values: number[]) => Float64Array.from(values);
    assert.equal(exactKs(of([1, 2, 3]), of([1, 2, 3])), 0);
    assert.equal(exactKs(of([1, 2]), of([3, 4, 5])), 1);
    assert.ok(Math.abs(exactKs(of([1, 2, 3]), of([2, 3, 4])) - 1 / 3) < 1e-12);
    assert.ok(Math.abs(exactKs(of([1, 1, 2, 2]), of([1, 2])) - 0) < 1e-12); // ties step together
  });

  it('moves a stream by its standard deviation', () => {
    const base = sortedCopy(makeStream(DISTRIBUTIONS.normal, 20_000, 0, 1));
    const moved = sortedCopy(makeStream(DISTRIBUTIONS.normal, 20_000, 0.5, 2));
    const ks = exactKs(base, moved);
    assert.ok(ks > 0.17 && ks < 0.23, `KS of a 0.5 sigma shift is about 0.197, got ${ks}`);
  });

  it('reads every sketch within its error of the exact KS, and sizes KLL within its bound', () => {
    const { pairs, sizes } = measureKs({
      distributions: ['normal'],
      sizes: [2000],
      shifts: [0, 0.5],
      repetitions: 1,
      grid: 500,
      bytesSizes: [2000],
      seed: 11,
    });
    assert.equal(pairs.length, 2);
    const summary = summarizeKs(pairs);
    // Two KLL k = 200 sketches: at most 2 x 1.33% (99%), plus 2/grid for the grid.
    assert.ok(summary.kll!.maxAbsError <= 0.0266 + 2 / 500, JSON.stringify(summary.kll));
    assert.ok(summary.kllKsDistance!.maxAbsError <= 0.0266 + 1 / 1000);
    for (const peer of ['tdigest', 'ddsketch']) {
      assert.ok(summary[peer]!.maxAbsError < 0.02, `${peer}: ${JSON.stringify(summary[peer])}`);
    }
    const kllBytes = sizes[0]!.sizes.kll.signalBytes!;
    assert.ok(kllBytes > 0 && kllBytes <= numericSignalBytesBound(200, 2000), `${kllBytes}`);
    assert.ok(sizes[0]!.sizes.ddsketch.protoBytes! > 0);
    assert.ok(sizes[0]!.sizes.tdigest.compressedJsonBytes! <= sizes[0]!.sizes.tdigest.jsonBytes!);
  });

  it('times updates of every sketch', () => {
    const cost = measureUpdateCost({ values: 5000, repetitions: 1, warmup: 1000, seed: 1 });
    assert.deepEqual(Object.keys(cost).sort(), ['ddsketch', 'kll', 'kllSignal', 'tdigest']);
    for (const figure of Object.values(cost)) assert.ok(figure.nsPerValue > 0);
  });
});

describe('drift bench: detection', () => {
  let setup: DetectionSetup;
  before(async () => {
    setup = await prepareDetection({ baselineDigits: 1000, seed: 3 });
    setup.spec = { ...setup.spec, flush: { ...setup.spec.flush, maxSamples: 500 } };
  });

  it('flags a strongly shifted cohort in its first window and leaves a clean one alone', () => {
    const clean = runStream(setup, { sampleRate: 1, windows: 2, drift: null, seed: 5 });
    assert.equal(clean.falseAlarmWindows, 0);
    assert.deepEqual(clean.checkResults, { accepted: 2 });
    const drifted = runStream(setup, {
      sampleRate: 0.5,
      windows: 2,
      drift: { onsetSamples: 0, shift: { rotateDegrees: 30, noiseSigma: 0.2 } },
      seed: 6,
    });
    assert.equal(drifted.flaggedWindow, 1);
    assert.equal(drifted.delaySampled, 500);
    assert.ok(drifted.delayInferences! > 500, `${drifted.delayInferences} inferences at rate 0.5`);
    assert.ok(drifted.driftedSignals.includes('pca_error'), drifted.driftedSignals.join(','));
  });

  it('summarises runs into the figures the targets read', () => {
    const figures = runDetection(setup, {
      runs: 2,
      cleanWindows: 1,
      extraWindows: 1,
      sampleRate: 1,
      rotateDegrees: [25, 30],
      noiseSigma: 0.1,
      seed: 9,
    });
    assert.equal(figures.clean.windows, 2);
    assert.equal(figures.drifted.runs, 2);
    assert.equal(figures.drifted.detected, figures.drifted.withinTwoWindows);
    assert.ok(figures.flushSignalBytes.max <= numericSignalBytesBound(setup.spec.sketchK, 500));
  });
});
