import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';
import type { ManifestDrift } from '../bundle/manifest.ts';
import {
  INPUT_SIZE,
  sampleSpec,
  specWithoutPca,
  syntheticSamples,
} from './__fixtures__/profile-fixtures.ts';
import { fitPca } from './pca.ts';
import { createSeededRandom } from './random.ts';
import { createNumericSignal, serializeSignal, updateSignal } from './signal-sketch.ts';
import {
  buildBaseline,
  createSignalExtractor,
  driftUsesPca,
  numericSignalBytesBound,
} from './signals.ts';

const samples = syntheticSamples(600, 1);
const basis = fitPca(
  samples.map((s) => s.input),
  INPUT_SIZE,
  { components: 2 },
).basis;

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

const only = (source: ManifestDrift['signals'][number]['source']): ManifestDrift =>
  sampleSpec({
    signals: [
      {
        name: 'x',
        kind: source.type === 'predicted-class' ? 'categorical' : 'numeric',
        source,
      },
    ],
  });

describe('signal extractor', () => {
  it('gives one value per signal in manifest order, computed as documented', () => {
    const extract = createSignalExtractor(sampleSpec(), basis);
    const { input, probabilities } = samples[0]!;
    const values = extract(input, probabilities);
    assert.equal(values.length, 7);
    assert.equal(values[0], input[3]);
    assert.equal(values[1], input[7]);
    const top = Math.max(...probabilities);
    assert.equal(values[2], top);
    assert.equal(values[3], String(probabilities.indexOf(top)));
    const centred = Array.from(input, (x, i) => x - basis.mean[i]!);
    const projections = basis.components.map((row) => dot(centred, row));
    assert.ok(Math.abs((values[4] as number) - projections[0]!) < 1e-12);
    assert.ok(Math.abs((values[5] as number) - projections[1]!) < 1e-12);
    // ‖r‖² = ‖x − mean‖² − Σ projections² for an orthonormal basis; the value is ‖r‖ / √inputSize
    const squared = dot(centred, centred) - projections.reduce((s, p) => s + p * p, 0);
    assert.ok(Math.abs((values[6] as number) - Math.sqrt(squared / INPUT_SIZE)) < 1e-6);
  });

  it("matches the agent's predictions and confidences: first index on a tie, clamped to [0, 1]", () => {
    const confidence = createSignalExtractor(only({ type: 'confidence' }), null);
    const predicted = createSignalExtractor(only({ type: 'predicted-class' }), null);
    const input = new Float32Array(4);
    const tie = Float32Array.of(0.1, 0.45, 0.45, 0);
    assert.deepEqual(predicted(input, tie), ['1']);
    assert.deepEqual(confidence(input, tie), [Math.fround(0.45)]);
    assert.deepEqual(confidence(input, Float32Array.of(-2, 1.5)), [1]);
    assert.deepEqual(confidence(input, Float32Array.of(-2, -3)), [0]);
    assert.deepEqual(predicted(input, Float32Array.of(-2, -3)), ['0']);
    refused(() => predicted(input, Float32Array.of(0.5, NaN)), 'MALFORMED', /output 1 is NaN/);
  });

  it('pca-error is 0 on the span of the basis and the distance to it elsewhere', () => {
    const extract = createSignalExtractor(
      sampleSpec({ signals: [sampleSpec().signals[6]!] }),
      basis,
    );
    const onPlane = Float32Array.from(basis.mean, (m, i) => m + 2 * basis.components[0]![i]!);
    assert.ok((extract(onPlane, Float32Array.of(1))[0] as number) < 1e-6);
    // a unit step orthogonal to both components: error 1 / √inputSize
    const normal = new Float32Array(INPUT_SIZE);
    normal[0] = 1;
    for (const row of basis.components) {
      const c = dot(normal, row);
      normal.forEach((_, i) => (normal[i]! -= c * row[i]!));
    }
    const length = Math.sqrt(dot(normal, normal));
    const off = Float32Array.from(basis.mean, (m, i) => m + normal[i]! / length);
    const error = extract(off, Float32Array.of(1))[0] as number;
    assert.ok(Math.abs(error - 1 / Math.sqrt(INPUT_SIZE)) < 1e-5, String(error));
  });

  it('refuses a basis that does not fit the spec, and rows that do not fit either', () => {
    refused(() => createSignalExtractor(sampleSpec(), null), 'MALFORMED', /no PCA basis/);
    refused(
      () => createSignalExtractor(specWithoutPca(), basis),
      'MALFORMED',
      /no drift signal uses PCA/,
    );
    refused(
      () => createSignalExtractor(only({ type: 'pca', component: 2 }), basis),
      'MALFORMED',
      /component 2, the basis has 2/,
    );
    const wide: ManifestDrift = sampleSpec({
      signals: [
        ...sampleSpec().signals,
        { name: 'input.12', kind: 'numeric', source: { type: 'input', index: 12 } },
      ],
    });
    refused(
      () => createSignalExtractor(wide, basis),
      'MALFORMED',
      /input 12, the PCA basis spans 12/,
    );
    const extract = createSignalExtractor(sampleSpec(), basis);
    refused(
      () => extract(new Float32Array(5), Float32Array.of(1)),
      'MALFORMED',
      /row of 5 features/,
    );
    const noPca = createSignalExtractor(specWithoutPca(), null);
    refused(
      () => noPca(new Float32Array(5), Float32Array.of(1)),
      'MALFORMED',
      /input 7 is outside/,
    );
    assert.equal(driftUsesPca(sampleSpec()), true);
    assert.equal(driftUsesPca(specWithoutPca()), false);
  });
});

describe('buildBaseline', () => {
  it('sketches every signal by name, of its kind, from the extracted values', () => {
    const spec = sampleSpec();
    const baselines = buildBaseline(spec, basis, samples, { random: createSeededRandom(3) });
    assert.deepEqual(
      [...baselines.keys()],
      spec.signals.map((s) => s.name),
    );
    const extract = createSignalExtractor(spec, basis);
    const values = samples.map((s) => extract(s.input, s.probabilities));
    for (const [i, signal] of spec.signals.entries()) {
      const sketch = baselines.get(signal.name)!;
      assert.equal(sketch.kind, signal.kind);
      if (sketch.kind === 'numeric') {
        assert.equal(sketch.kll.n, samples.length);
        const column = values.map((v) => v[i] as number);
        assert.equal(sketch.kll.min, Math.min(...column));
        assert.equal(sketch.kll.max, Math.max(...column));
        assert.ok(
          Math.abs(sketch.counters.mean - column.reduce((a, b) => a + b, 0) / column.length) < 1e-9,
        );
      } else {
        const counts = new Map<string, number>();
        for (const v of values) counts.set(v[i] as string, (counts.get(v[i] as string) ?? 0) + 1);
        for (const [item, count] of counts) assert.equal(sketch.items.lowerBound(item), count);
      }
    }
  });

  it('is deterministic with a seeded random source', () => {
    const spec = sampleSpec();
    const bytes = () =>
      [
        ...buildBaseline(spec, basis, samples, { random: createSeededRandom(5), k: 16 }).values(),
      ].map(serializeSignal);
    assert.deepEqual(bytes(), bytes());
  });
});

describe('numericSignalBytesBound', () => {
  it('bounds a flush-sized numeric sketch: k = 100 and 1,000 values fit in 3 KB', () => {
    assert.equal(numericSignalBytesBound(100, 1000), 2624);
    for (const n of [1, 500, 1000]) {
      const random = createSeededRandom(n);
      const signal = createNumericSignal({ k: 100, random: createSeededRandom(7) });
      for (let i = 0; i < n; i++) updateSignal(signal, random());
      const size = serializeSignal(signal).length;
      assert.ok(size <= numericSignalBytesBound(100, n), `${size} bytes at n = ${n}`);
    }
  });
});
