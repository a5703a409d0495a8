/**
 * The `fl-train` command: accepted at the edges of every bound, refused past
 * them (naming the field), and encoded for the `cmd` topic by `encodeCommand`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';
import { DELETE, patched, wire } from './__fixtures__/examples.ts';
import { flTrain } from './__fixtures__/fl-examples.ts';
import { encodeCommand, parseCommand, parseDeviceMessage } from './parse.ts';
import type { FlTrainMessage } from './fl-train.ts';

const parse = (changes: Record<string, unknown>) => parseCommand(wire(patched(flTrain(), changes)));

describe('fl-train command', () => {
  it('parses a valid command unchanged, and encodes it canonically', () => {
    assert.deepEqual(parseCommand(wire(flTrain())), flTrain());
    assert.deepEqual(parseCommand(encodeCommand(flTrain())), flTrain());
  });

  it('is a command, not a device message', () => {
    refused(() => parseDeviceMessage(wire(flTrain())), 'MALFORMED');
  });

  it('accepts every bound at its edge', () => {
    const edges: Record<string, unknown>[] = [
      { 'config.epochs': 1 },
      { 'config.epochs': 100 },
      { 'config.batchSize': 100_000 },
      { 'config.learningRate': 10 },
      { 'config.learningRate': 1e-9 },
      { 'config.proxMu': 100 },
      { 'config.clipNorm': 1e6 },
      { 'config.minSamples': 1, 'config.maxSamples': 1 },
      { 'config.minSamples': 1_000_000, 'config.maxSamples': 1_000_000 },
      { 'config.encoding': 'float32' },
      { 'config.seed': 0 },
      { 'config.seed': 2 ** 32 - 1 },
    ];
    for (const changes of edges)
      assert.equal(parse(changes).type, 'fl-train', JSON.stringify(changes));
  });

  it('refuses bad fields, naming each', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ 'config.epochs': 0 }, /field "config\.epochs"/],
      [{ 'config.epochs': 101 }, /field "config\.epochs"/],
      [{ 'config.epochs': 1.5 }, /field "config\.epochs"/],
      [{ 'config.batchSize': 0 }, /field "config\.batchSize"/],
      [{ 'config.batchSize': 100_001 }, /field "config\.batchSize"/],
      [{ 'config.learningRate': 0 }, /field "config\.learningRate"/],
      [{ 'config.learningRate': 10.5 }, /field "config\.learningRate"/],
      [{ 'config.proxMu': -0.1 }, /field "config\.proxMu"/],
      [{ 'config.proxMu': 100.5 }, /field "config\.proxMu"/],
      [{ 'config.clipNorm': 0 }, /field "config\.clipNorm"/],
      [{ 'config.clipNorm': 1e6 + 1 }, /field "config\.clipNorm"/],
      [{ 'config.minSamples': 0 }, /field "config\.minSamples"/],
      [
        { 'config.minSamples': 601 },
        /field "config\.maxSamples": maxSamples must not be below minSamples/,
      ],
      [{ 'config.maxSamples': 1_000_001 }, /field "config\.maxSamples"/],
      [{ 'config.encoding': 'int4' }, /field "config\.encoding"/],
      [{ 'config.seed': -1 }, /field "config\.seed"/],
      [{ 'config.seed': 2 ** 32 }, /field "config\.seed"/],
      [{ 'config.seed': 0.5 }, /field "config\.seed"/],
      [{ 'config.momentum': 0.9 }, /unknown field "config\.momentum"/],
      [{ 'config.seed': DELETE }, /field "config\.seed"/],
      [{ roundId: 'r' }, /field "roundId"/],
      [{ 'model.bundleId': 'x' }, /field "model\.bundleId"/],
      [{ deadline: 'soon' }, /field "deadline"/],
      [{ deadline: DELETE }, /field "deadline"/],
    ];
    for (const [changes, message] of cases) refused(() => parse(changes), 'MALFORMED', message);
    refused(
      () => encodeCommand(patched(flTrain(), { 'config.epochs': 0 }) as FlTrainMessage),
      'MALFORMED',
      /field "config\.epochs"/,
    );
  });
});
