/**
 * The manifest's `training` field: parsed strictly, and its weights part must
 * be a part of the bundle (like the drift profile part).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';
import { manifestInput } from '../__fixtures__/bundles.ts';
import { MANIFEST_SCHEMA_VERSION, parseManifest } from './manifest.ts';

const HASH = 'a'.repeat(64);
const part = (name: string) => ({
  name,
  mediaType: 'application/octet-stream',
  compression: 'none' as const,
  length: 10,
  sha256: HASH,
  uncompressedLength: 10,
  uncompressedSha256: HASH,
});

const training = () => ({
  architecture: {
    kind: 'dense',
    inputSize: 784,
    layers: [
      { units: 200, activation: 'relu' },
      { units: 200, activation: 'relu' },
      { units: 10, activation: 'linear' },
    ],
    softmaxOutput: true,
  },
  weightsPart: 'weights.ftns',
});

function manifestWith(value: unknown): Record<string, unknown> {
  return {
    type: 'fleet-bundle',
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    ...manifestInput(),
    parts: [part('model.onnx'), part('weights.ftns')],
    training: value,
  };
}

describe('manifest training field', () => {
  it('parses a training field, and a manifest without one', () => {
    assert.deepEqual(parseManifest(manifestWith(training())).training, training());
    const without = manifestWith(training());
    delete without.training;
    assert.equal(parseManifest(without).training, undefined);
  });

  it('refuses a weights part that is not in the bundle', () => {
    refused(
      () => parseManifest(manifestWith({ ...training(), weightsPart: 'float-weights.ftns' })),
      'MALFORMED',
      /training.weightsPart: "float-weights.ftns" is not a part of the bundle/,
    );
  });

  it('refuses a training field that breaks the schema, naming the field', () => {
    const arch = training().architecture;
    const cases: [unknown, RegExp][] = [
      [{ ...training(), optimizer: 'sgd' }, /manifest training:/],
      [{ architecture: arch }, /manifest training.weightsPart/],
      [
        { ...training(), architecture: { ...arch, layers: [] } },
        /manifest training.architecture.layers/,
      ],
      [
        { ...training(), architecture: { ...arch, inputSize: 0 } },
        /manifest training.architecture.inputSize/,
      ],
      [
        {
          ...training(),
          architecture: { ...arch, layers: [{ units: 65_537, activation: 'relu' }] },
        },
        /manifest training.architecture.layers.0.units/,
      ],
      [
        { ...training(), architecture: { ...arch, kind: 'cnn' } },
        /manifest training.architecture.kind/,
      ],
    ];
    for (const [value, message] of cases)
      refused(() => parseManifest(manifestWith(value)), 'MALFORMED', message);
  });
});
