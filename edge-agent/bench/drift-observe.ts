/**
 * What drift monitoring adds to an inference: `observe` on the drift monitor
 * of the MNIST-shaped test bundle with its default profile (8 pixels,
 * confidence, predicted class, 5 PCA projections, PCA error; KLL k = 100),
 * in ns per row, at rate 1 (every row sampled: signals + 16 sketch updates),
 * at the manifest's 0.1, at 0.01 and at 0.0001 (about the cost of a row that
 * is not sampled), for batches of 1 and 64; beside it, one ONNX inference of
 * a row on the same model. Prints one JSON object. Figures vary by a factor
 * of up to 2 between runs (JIT).
 *
 *   node --import tsx edge-agent/bench/drift-observe.ts
 */
import { createSeededRandom, decodeDriftProfile } from '@fleet/protocol';
import { mnistDriftBundle, MNIST_WIDTH } from '../src/__fixtures__/mnist-shaped-bundle.ts';
import { createOnnxModelHost } from '../src/adapters/onnx/onnx-model-host.ts';
import { createDriftMonitor } from '../src/core/drift-monitor.ts';

const bundle = await mnistDriftBundle();
const spec = bundle.manifest.drift!;
const { pca } = decodeDriftProfile(bundle.parts.get(spec.part)!, spec);
const rows = bundle.digits.length / MNIST_WIDTH;

const host = createOnnxModelHost();
await host.load(
  'a',
  { bundleId: bundle.bundleId, manifestEnvelope: bundle.envelopeBytes, parts: bundle.parts },
  bundle.manifest,
);
host.serve('a', bundle.ref);
const one = bundle.digits.subarray(0, MNIST_WIDTH);
let outputs = new Float32Array(0);
host.inference.observe((_ref, _inputs, out) => (outputs = out.slice()));
await host.inference.infer(one, { batch: 1 });
host.inference.observe(null);
const inferRuns = 2000;
let t = performance.now();
for (let i = 0; i < inferRuns; i++) await host.inference.infer(one, { batch: 1 });
const inferUsPerRow = ((performance.now() - t) * 1000) / inferRuns;
host.unload('a');

function perRowNs(rate: number, batch: number, totalRows: number): number {
  const monitor = createDriftMonitor({
    nowMs: () => 0,
    random: createSeededRandom(1),
    newId: () => 'flush-bench-0',
    onFlush: () => undefined,
  });
  const big = {
    ...spec,
    flush: { maxSamples: 1_000_000, maxIntervalMs: spec.flush.maxIntervalMs },
  };
  monitor.setModel({ ref: bundle.ref, rolloutId: null, spec: big, pca, sampleRate: rate });
  const inputs = new Float32Array(batch * MNIST_WIDTH);
  const outs = new Float32Array(batch * outputs.length);
  for (let r = 0; r < batch; r++) {
    inputs.set(
      bundle.digits.subarray((r % rows) * MNIST_WIDTH, ((r % rows) + 1) * MNIST_WIDTH),
      r * MNIST_WIDTH,
    );
    outs.set(outputs, r * outputs.length);
  }
  const calls = Math.ceil(totalRows / batch);
  for (let i = 0; i < Math.min(calls, 1000); i++) monitor.observe(bundle.ref, inputs, outs, batch); // warm-up
  t = performance.now();
  for (let i = 0; i < calls; i++) monitor.observe(bundle.ref, inputs, outs, batch);
  return ((performance.now() - t) * 1e6) / (calls * batch);
}

const figures: Record<string, number> = {};
for (const rate of [1, 0.1, 0.01, 0.0001]) {
  for (const batch of [1, 64]) {
    figures[`rate ${rate}, batch ${batch}: ns per row`] = Math.round(
      perRowNs(rate, batch, rate === 1 ? 50_000 : 500_000),
    );
  }
}
console.log(
  JSON.stringify(
    { inferUsPerRowBatch1: Math.round(inferUsPerRow * 10) / 10, observe: figures },
    null,
    2,
  ),
);
