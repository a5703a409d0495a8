/**
 * The drift step: how signals are chosen, and the profile a built bundle
 * ships (with the real codec and onnxruntime), checked as a device and the
 * control plane will read it.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  covarianceOf,
  createSignalExtractor,
  decodeDriftProfile,
  isFleetError,
  loadTrustedRoot,
  serializeSignal,
  verifyBundle,
  type Signer,
  type TrustedRoot,
} from '@fleet/protocol';
import { decodeOnnx, encodeOnnx } from '../../adapters/onnx/onnx-codec.ts';
import { createOnnxRunner } from '../../adapters/onnx/runtime.ts';
import type { EvalData } from '../data/eval-data.ts';
import { argmaxRow } from '../evaluation/classifier-accuracy.ts';
import { initTrust } from '../key-ceremony.ts';
import { buildDenseModel } from '../onnx/dense-builder.ts';
import { xorshift32 } from '../random.ts';
import { buildBundle, type BuildInput } from './build-bundle.ts';
import { DEFAULT_DRIFT_SETTINGS, inputsByVariance, planDrift } from './drift-profile.ts';

const FEATURES = 16;
const CLASSES = 4;
const next = xorshift32(11);
const uniform = () => next() / 2 ** 32 - 0.5;
const floats = (n: number, scale: number) =>
  Float32Array.from({ length: n }, () => uniform() * scale);

/** Rows whose features 0 and 1 move together, 15 is constant, and the rest vary by index. */
function data(samples: number): EvalData {
  const features = new Float32Array(samples * FEATURES);
  for (let r = 0; r < samples; r++) {
    const shared = uniform() * 8;
    for (let f = 0; f < FEATURES; f++) {
      features[r * FEATURES + f] =
        f < 2 ? shared + 0.1 * uniform() : f === 15 ? 0.5 : uniform() * (1 + f / 4);
    }
  }
  return { sampleCount: samples, featureCount: FEATURES, classCount: 0, features, labels: null };
}

const model = encodeOnnx(
  buildDenseModel({
    inputSize: FEATURES,
    softmaxOutput: true,
    layers: [
      { units: 24, activation: 'relu', weights: floats(FEATURES * 24, 1), bias: floats(24, 0.2) },
      {
        units: CLASSES,
        activation: 'linear',
        weights: floats(24 * CLASSES, 4),
        bias: floats(CLASSES, 0.2),
      },
    ],
  }),
);

let signers: Signer[];
let root: TrustedRoot;
before(async () => {
  const trust = await initTrust({
    root: { keys: 1, threshold: 1 },
    bundle: { keys: 1, threshold: 1 },
    expires: '2030-01-01T00:00:00Z',
  });
  signers = trust.newKeys
    .filter((k) => k.role === 'bundle')
    .map((k) => ({ keyId: k.keyId, secretKey: k.secretKey }));
  root = await loadTrustedRoot(trust.rootBytes);
});

function input(evalData: EvalData, extra: Partial<BuildInput> = {}): BuildInput {
  return {
    floatModel: model,
    evalData,
    signers,
    maxAccuracyDropPoints: 100,
    manifest: {
      name: 'unit',
      version: '1.0.0',
      release: 1,
      hardware: ['rpi4'],
      minAgentVersion: '0.1.0',
      issuedAt: '2026-11-26T00:00:00Z',
      expires: '2027-11-26T00:00:00Z',
      lineage: { producer: { kind: 'import' } },
    },
    ...extra,
  };
}

const ports = { decode: decodeOnnx, encode: encodeOnnx, createRunner: createOnnxRunner };

describe('drift signal choice', () => {
  it('takes inputs by variance, skipping one strongly correlated with a chosen one and constant ones', () => {
    const rows = data(400);
    const cov = covarianceOf(
      Array.from({ length: 400 }, (_, r) =>
        rows.features.subarray(r * FEATURES, (r + 1) * FEATURES),
      ),
      FEATURES,
    );
    // 0 and 1 have the largest variance and move together: only one of them is taken
    const three = inputsByVariance(cov, 3);
    assert.equal(three.filter((i) => i < 2).length, 1);
    assert.ok(three.includes(14) && three.includes(13), String(three));
    // asked for more than pass the correlation test: topped up, still never the constant feature
    const all = inputsByVariance(cov, 15);
    assert.equal(all.length, 15);
    assert.ok(!all.includes(15));
    assert.ok(!inputsByVariance(cov, 3, new Set([14])).includes(14));
  });

  it('resolves the default signals and refuses ones that cannot be monitored (DRIFT_SPEC)', () => {
    const plan = planDrift(data(300));
    const names = plan.spec.signals.map((s) => s.name);
    assert.equal(names.filter((n) => n.startsWith('input.')).length, 8);
    assert.deepEqual(names.slice(8), [
      'confidence',
      'predicted_class',
      'pca.0',
      'pca.1',
      'pca.2',
      'pca.3',
      'pca.4',
      'pca_error',
    ]);
    assert.equal(plan.pca?.basis.components.length, 5);
    assert.equal(plan.spec.sketchK, DEFAULT_DRIFT_SETTINGS.sketchK);
    assert.equal(plan.spec.sampleRate, 0.1);
    // no PCA asked for: none fitted
    const simple = planDrift(data(50), {
      signals: [{ type: 'input', index: 3 }, { type: 'confidence' }, { type: 'input', index: 3 }],
    });
    assert.equal(simple.pca, null);
    assert.deepEqual(
      simple.spec.signals.map((s) => s.name),
      ['input.3', 'confidence'],
    );
    for (const options of [
      { signals: [{ type: 'input' as const, index: FEATURES }] },
      { sampleRate: 0 },
    ]) {
      assert.throws(
        () => planDrift(data(50), options),
        (e) => isFleetError(e, 'DRIFT_SPEC'),
      );
    }
  });
});

describe('buildBundle with drift', () => {
  it('ships a profile of the int8 model that verifies, decodes against the manifest and matches its outputs', async () => {
    const evalData = data(200);
    const driftData = data(600);
    const result = await buildBundle(input(evalData, { drift: { data: driftData } }), ports);
    const verified = await verifyBundle(result.bundle, {
      root,
      nowMs: Date.parse('2027-01-01T00:00:00Z'),
      installedRelease: 0,
      hardwareClass: 'rpi4',
    });
    const spec = verified.manifest.drift!;
    assert.equal(spec.part, 'drift-profile.bin');
    assert.deepEqual(
      result.drift?.signals,
      spec.signals.map((s) => s.name),
    );
    assert.equal(result.drift?.samples, 600);
    const profile = decodeDriftProfile(verified.parts.get(spec.part)!, spec);

    // The baselines hold what the extractor gives on the int8 model's outputs.
    const runner = await createOnnxRunner(verified.parts.get('model.onnx')!);
    const outputs = await runner.run(driftData.features, driftData.sampleCount);
    await runner.close();
    const classes = new Map<string, number>();
    for (let r = 0; r < driftData.sampleCount; r++) {
      const c = String(argmaxRow(outputs, r, CLASSES));
      classes.set(c, (classes.get(c) ?? 0) + 1);
    }
    const predicted = profile.baselines.get('predicted_class')!;
    assert.equal(predicted.kind, 'categorical');
    for (const [c, count] of classes) {
      assert.equal(predicted.kind === 'categorical' && predicted.items.lowerBound(c), count);
    }
    const extract = createSignalExtractor(spec, profile.pca);
    const first = extract(driftData.features.subarray(0, FEATURES), outputs.subarray(0, CLASSES));
    const confidence = profile.baselines.get('confidence')!;
    assert.ok(confidence.kind === 'numeric' && confidence.kll.n === 600);
    assert.ok(
      confidence.kind === 'numeric' &&
        confidence.kll.min <=
          (first[spec.signals.findIndex((s) => s.name === 'confidence')] as number),
    );

    // deterministic: the same inputs give the same part
    const again = await buildBundle(input(evalData, { drift: { data: driftData } }), ports);
    assert.equal(again.drift?.profileBytes, result.drift?.profileBytes);
    const againParts = await verifyBundle(again.bundle, {
      root,
      nowMs: Date.parse('2027-01-01T00:00:00Z'),
      installedRelease: 0,
      hardwareClass: 'rpi4',
    });
    assert.deepEqual(againParts.parts.get(spec.part), verified.parts.get(spec.part));
    assert.deepEqual(
      [...decodeDriftProfile(againParts.parts.get(spec.part)!, spec).baselines.values()].map(
        serializeSignal,
      ),
      [...profile.baselines.values()].map(serializeSignal),
    );
  });

  it('refuses drift data that does not fit the model (EVAL_DATA_MISMATCH), and adds nothing without drift', async () => {
    const narrow: EvalData = { ...data(20), featureCount: 8, features: new Float32Array(160) };
    await assert.rejects(buildBundle(input(data(50), { drift: { data: narrow } }), ports), (e) =>
      isFleetError(e, 'EVAL_DATA_MISMATCH'),
    );
    const plain = await buildBundle(input(data(50)), ports);
    assert.equal(plain.drift, null);
  });
});
