import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError } from '@fleet/protocol';
import { buildRoundConfig, checkRoundConfig, defaultRoundConfig } from './round-config.ts';

describe('round config', () => {
  it('defaults to the FedAvg paper 2NN settings', () => {
    const c = buildRoundConfig({});
    assert.equal(c.fraction, 0.1);
    assert.equal(c.epochs, 1);
    assert.equal(c.batchSize, 10);
    assert.equal(c.learningRate, 0.1);
    assert.equal(c.proxMu, 0);
    assert.deepEqual(c.strategy, { kind: 'fedavg' });
    assert.deepEqual(c, { ...defaultRoundConfig, strategy: { kind: 'fedavg' } });
  });

  it('merges overrides and keeps only the strategy fields that apply', () => {
    const c = buildRoundConfig({
      fraction: 1,
      strategy: { kind: 'trimmed-mean', beta: 0.1 },
      proxMu: 0.01,
    });
    assert.equal(c.fraction, 1);
    assert.deepEqual(c.strategy, { kind: 'trimmed-mean', beta: 0.1 });
    assert.deepEqual(buildRoundConfig({ strategy: { kind: 'median', beta: 3 } }).strategy, {
      kind: 'median',
    });
  });

  it('names every wrong field', () => {
    const r = checkRoundConfig({
      fraction: 0,
      minClients: 0,
      minSamples: 1.5,
      epochs: -1,
      batchSize: 0,
      learningRate: 0,
      proxMu: -1,
      clipNorm: NaN,
      encoding: 'fp16',
      deadlineMs: 0,
      evaluationMargin: 1,
      strategy: { kind: 'trimmed-mean', beta: 0.5 },
      learningrate: 0.1,
    });
    assert.equal(r.ok, false);
    const fields = r.ok ? [] : r.errors.map((e) => e.field).sort();
    assert.deepEqual(fields, [
      'batchSize',
      'clipNorm',
      'deadlineMs',
      'encoding',
      'epochs',
      'evaluationMargin',
      'fraction',
      'learningRate',
      'learningrate',
      'minClients',
      'minSamples',
      'proxMu',
      'strategy.beta',
    ]);
  });

  it('checks fraction bounds, maxSamples against minSamples, and the strategy kind', () => {
    assert.equal(checkRoundConfig({ fraction: 1 }).ok, true);
    assert.equal(checkRoundConfig({ fraction: 1.01 }).ok, false);
    const r = checkRoundConfig({ minSamples: 50, maxSamples: 20, strategy: { kind: 'krum' } });
    assert.deepEqual(r.ok ? [] : r.errors.map((e) => e.field).sort(), [
      'maxSamples',
      'strategy.kind',
    ]);
  });

  it('buildRoundConfig throws INVALID_REQUEST listing the fields', () => {
    assert.throws(
      () => buildRoundConfig({ fraction: 2, batchSize: 0 }),
      (e: unknown) =>
        isFleetError(e, 'INVALID_REQUEST') &&
        /fraction: must be in \(0, 1\]; batchSize/.test(e.message),
    );
  });
});
