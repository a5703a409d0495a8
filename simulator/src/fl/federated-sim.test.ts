/**
 * The federated simulation's round and its update intake: a FedAvg round on
 * IID partitions of real MNIST improves held-out accuracy; the intake accepts
 * honest updates, scales an over-bound one inside the int8 tolerance back to
 * clipNorm, refuses it in float32, refuses NaN bytes as non-finite and an
 * inflated sample count beyond maxSamples.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mnistSplit } from '@fleet/bundles';
import { createInThreadTrainer, type NamedTensor } from '@fleet/edge-agent';
import { decodeTensorSet, encodeTensorSet, globalL2Norm, isFleetError } from '@fleet/protocol';
import { encodeRawFloat32TensorSet, forgeUpdate } from './byzantine.ts';
import { runFederated, selectRound } from './federated-sim.ts';
import { glorotUniformWeights, MNIST_2NN, toTrainSamples } from './mnist-2nn.ts';
import { partitionSamples } from './partitions.ts';
import { encodeHonestUpdate, receiveUpdate } from './update-intake.ts';

const LIMITS = { architecture: MNIST_2NN, clipNorm: 5, maxSamples: 600 };

/** A 2NN-shaped delta: zeros, with `spike` at the first kernel value. */
function spikeDelta(spike: number): NamedTensor[] {
  const tensors = glorotUniformWeights(MNIST_2NN, 1).map((t) => ({
    ...t,
    values: new Float32Array(t.values.length),
  }));
  tensors[0]!.values[0] = spike;
  return tensors;
}

describe('federated round', () => {
  it('one FedAvg round on IID partitions improves held-out accuracy', async () => {
    const { train, test } = await mnistSplit();
    const labels = Array.from(train.labels!.subarray(0, 1000));
    const devices = partitionSamples(labels, { kind: 'iid', devices: 10, seed: 2 }).map((indices) =>
      toTrainSamples(train, indices),
    );
    const result = await runFederated({
      architecture: MNIST_2NN,
      initialWeights: glorotUniformWeights(MNIST_2NN, 1),
      devices,
      test: toTrainSamples(test),
      trainer: createInThreadTrainer(),
      config: { fraction: 0.5, epochs: 1, batchSize: 10, learningRate: 0.1 },
      maxRounds: 1,
      seed: 1,
    });
    const round = result.rounds[0]!;
    assert.equal(round.selected, 5);
    assert.equal(round.accepted, 5);
    assert.ok(
      round.bytesPerUpdate > 0 && round.bytesPerUpdate < 4 * 199_210,
      `${round.bytesPerUpdate} bytes`,
    );
    assert.ok(
      result.finalAccuracy > result.initialAccuracy + 0.2,
      `${result.initialAccuracy} -> ${result.finalAccuracy}`,
    );
  });

  it('selects max(minClients, C x K) devices, seeded per round', () => {
    const devices = Array.from({ length: 100 }, () => ({
      features: new Float32Array(0),
      labels: new Int32Array(0),
      count: 80,
      featureCount: 784,
    }));
    const first = selectRound(devices, { fraction: 0.1, minClients: 2, minSamples: 10 }, 1, 1);
    assert.equal(first.length, 10);
    assert.deepEqual(
      selectRound(devices, { fraction: 0.1, minClients: 2, minSamples: 10 }, 1, 1),
      first,
    );
    assert.notDeepEqual(
      selectRound(devices, { fraction: 0.1, minClients: 2, minSamples: 10 }, 1, 2),
      first,
    );
    assert.equal(
      selectRound(devices, { fraction: 0.01, minClients: 2, minSamples: 10 }, 1, 1).length,
      2,
    );
  });
});

describe('update intake', () => {
  it('accepts an honest clipped int8 update at its claimed count', () => {
    const sent = encodeHonestUpdate(spikeDelta(9), 5, 'int8');
    assert.equal(sent.clipped, true);
    const result = receiveUpdate({ bytes: sent.bytes, sampleCount: 80 }, LIMITS);
    assert.ok(result.ok);
    assert.ok(Math.abs(globalL2Norm(result.tensors) - 5) < 0.01);
  });

  it('scales an over-bound update inside the int8 tolerance back to clipNorm; float32 has none', () => {
    // One spike: per-tensor int8 tolerance sqrt(156,800) x scale / 2 is larger than the spike itself.
    const int8 = encodeTensorSet(spikeDelta(100), { encoding: 'int8' });
    const accepted = receiveUpdate({ bytes: int8, sampleCount: 80 }, LIMITS);
    assert.ok(accepted.ok);
    assert.ok(accepted.norm > 99 && accepted.scale < 0.06);
    assert.ok(globalL2Norm(accepted.tensors) <= 5 * (1 + 1e-6));
    const float32 = encodeTensorSet(spikeDelta(100), { encoding: 'float32' });
    const refused = receiveUpdate({ bytes: float32, sampleCount: 80 }, LIMITS);
    assert.equal(refused.ok ? 'accepted' : refused.reason, 'over-clip');
  });

  it('refuses NaN bytes as non-finite and a count over maxSamples as malformed', () => {
    const delta = spikeDelta(0.5);
    // The simulation-only writer makes valid FTNS: finite values round-trip through the real decoder.
    const finite = decodeTensorSet(encodeRawFloat32TensorSet(delta));
    assert.equal(finite.tensors[0]!.values[0], 0.5);
    const nan = forgeUpdate(
      { kind: 'nan' },
      { delta, sampleCount: 80, clipNorm: 5, maxSamples: 600, encoding: 'int8' },
    );
    assert.equal(nan.sampleCount, 600);
    assert.throws(
      () => decodeTensorSet(nan.bytes),
      (e) => isFleetError(e) && e.code === 'NON_FINITE',
    );
    const refused = receiveUpdate(nan, LIMITS);
    assert.equal(refused.ok ? 'accepted' : refused.reason, 'non-finite');
    const bytes = encodeHonestUpdate(delta, 5, 'int8').bytes;
    const inflated = receiveUpdate({ bytes, sampleCount: 601 }, LIMITS);
    assert.equal(inflated.ok ? 'accepted' : inflated.reason, 'malformed');
  });

  it('a sign-flipped update is clipped to the bound and passes every check', () => {
    const flipped = forgeUpdate(
      { kind: 'sign-flip' },
      { delta: spikeDelta(0.3), sampleCount: 80, clipNorm: 5, maxSamples: 600, encoding: 'int8' },
    );
    const result = receiveUpdate(flipped, LIMITS);
    assert.ok(result.ok);
    assert.equal(result.sampleCount, 600);
    assert.ok(result.tensors[0]!.values[0]! < -2.9);
  });
});
