/**
 * The device side of a federated round on a real signed bundle (fl-bundle
 * fixture: a `training` field and a `weights.ftns` part), the in-memory slot
 * and label stores, the in-thread TensorFlow.js trainer and a publish that
 * records what would go to the broker. Every message is checked the way the
 * control plane checks it: `verifyDeviceMessage` against the device key.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  decodeTensorSet,
  denseTensorShapes,
  deviceTopic,
  fromBase64,
  globalL2Norm,
  keyIdOf,
  MAX_FL_PART_BYTES,
  quantizationErrorBound,
  sha256Hex,
  verifyDeviceMessage,
  type DeviceMessage,
  type FlTrainMessage,
  type FlUpdateMessage,
  type FlUpdatePartMessage,
} from '@fleet/protocol';
import { generateKeyPairNative, nativeSigner } from '@fleet/protocol/node';
import { NOW_MS } from '@fleet/protocol/testing';
import {
  FL_HARDWARE,
  flBundle,
  flSamples,
  flTrainCommand,
  type FlBundle,
} from '../__fixtures__/fl-bundle.ts';
import { createMemoryLabelStore } from '../adapters/memory/memory-label-store.ts';
import { createMemorySlotStore } from '../adapters/memory/memory-stores.ts';
import { createInThreadTrainer } from '../adapters/tfjs/in-thread-trainer.ts';
import { agentError } from '../core/errors.ts';
import type { Trainer } from '../core/training/types.ts';
import { initialAgentState, type AgentState } from '../core/update-state.ts';
import { createFlTraining, type FlEvent, type FlUpdateOverride } from './fl-training.ts';

const DEVICE = 'dev-fl-01';
const pair = generateKeyPairNative();
const signer = nativeSigner({ keyId: await keyIdOf(pair.publicKey), secretKey: pair.secretKey });
const small = await flBundle();
const inThread = createInThreadTrainer();
const closers: Array<() => void> = [];
after(() => closers.forEach((close) => close()));

interface Setup {
  bundle?: FlBundle;
  samples?: number;
  trainer?: Trainer;
  clock?: { now: number };
  state?: AgentState;
  parts?: Map<string, Uint8Array>;
  override?: FlUpdateOverride;
}

async function setup(options: Setup = {}) {
  const bundle = options.bundle ?? small;
  const clock = options.clock ?? { now: NOW_MS };
  const slots = createMemorySlotStore();
  await slots.write('a', {
    bundleId: bundle.bundleId,
    manifestEnvelope: bundle.envelopeBytes,
    parts: options.parts ?? bundle.parts,
  });
  const labels = createMemoryLabelStore({ nowMs: () => NOW_MS });
  await labels.open();
  const { inputSize, layers } = bundle.architecture;
  await labels.append(
    flSamples(options.samples ?? 60, inputSize, layers.at(-1)!.units, bundle.ref),
  );
  const published: Array<{ topic: string; payload: Uint8Array; qos: number }> = [];
  const events: FlEvent[] = [];
  const state = options.state ?? {
    ...initialAgentState(),
    committed: { ref: bundle.ref, slot: 'a' },
  };
  const fl = createFlTraining({
    deviceId: DEVICE,
    hardware: FL_HARDWARE,
    agentVersion: '0.1.0',
    trustRoot: () => bundle.trust.root,
    signer,
    nowMs: () => clock.now,
    state: () => state,
    slots,
    samples: labels,
    trainer: () => options.trainer ?? inThread,
    publish: (topic, payload, { qos }) => {
      published.push({ topic, payload, qos });
      return Promise.resolve();
    },
    ...(options.override ? { flUpdateOverride: options.override } : {}),
    onEvent: (event) => events.push(event),
  });
  closers.push(() => fl.close());
  return { fl, published, events, bundle };
}

/** Every published message, verified against the device key; all on telemetry at QoS 1. */
async function verified(published: Array<{ topic: string; payload: Uint8Array; qos: number }>) {
  const out: DeviceMessage[] = [];
  for (const p of published) {
    assert.equal(p.topic, deviceTopic(DEVICE, 'telemetry'));
    assert.equal(p.qos, 1);
    out.push(
      await verifyDeviceMessage(p.payload, { expectedDeviceId: DEVICE, publicKey: pair.publicKey }),
    );
  }
  return out;
}

/** The header and parts of one update, the parts joined and checked against the header. */
async function update(messages: DeviceMessage[]) {
  const [header, ...parts] = messages as [FlUpdateMessage, ...FlUpdatePartMessage[]];
  assert.equal(header.type, 'fl-update');
  assert.equal(header.status, 'ok', header.reason);
  const payload = header.update!;
  assert.equal(parts.length, payload.partCount);
  parts.forEach((part, i) => {
    assert.equal(part.type, 'fl-update-part');
    assert.deepEqual(
      [part.updateId, part.roundId, part.index, part.count],
      [header.id, header.roundId, i, parts.length],
    );
  });
  const chunks = parts.map((part) => fromBase64(part.data));
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) bytes.set(chunk, (offset += chunk.length) - chunk.length);
  assert.equal(bytes.length, payload.sizeBytes);
  assert.equal(await sha256Hex(bytes), payload.sha256);
  return { header, parts, bytes, chunks };
}

async function run(command: FlTrainMessage, s: Awaited<ReturnType<typeof setup>>) {
  s.fl.handle(command);
  await s.fl.idle();
  return verified(s.published);
}

/** The single failed header sent. */
async function failure(command: FlTrainMessage, s: Awaited<ReturnType<typeof setup>>) {
  const messages = await run(command, s);
  assert.equal(messages.length, 1, 'a header, no parts');
  const header = messages[0] as FlUpdateMessage;
  assert.equal(header.status, 'failed');
  assert.equal(header.update, undefined);
  return header;
}

describe('an fl-train round', () => {
  it('trains, clips, encodes int8 and sends a signed header and parts that join to the update', async () => {
    const s = await setup();
    const command = flTrainCommand(small.ref, { config: { clipNorm: 0.05 } });
    const { header, bytes } = await update(await run(command, s));
    assert.deepEqual(
      [header.deviceId, header.roundId, header.model],
      [DEVICE, 'round-0001', small.ref],
    );
    assert.equal(header.sampleCount, 60);
    assert.equal(header.update!.encoding, 'int8');
    assert.equal(header.update!.clipped, true);
    assert.ok(header.update!.normBeforeClip > 0.05, `${header.update!.normBeforeClip}`);
    assert.ok(header.metrics.lossAfter! < header.metrics.lossBefore!, 'it learned');
    const decoded = decodeTensorSet(bytes);
    assert.deepEqual(
      decoded.tensors.map((t) => ({ name: t.name, dims: t.dims })),
      denseTensorShapes(small.architecture),
    );
    assert.ok(decoded.quantization.every((q) => q.dtype === 'int8' && q.scales.length === 1));
    const bound = 0.05 * (1 + 1e-3) + quantizationErrorBound(decoded); // the control plane's re-check
    assert.ok(
      globalL2Norm(decoded.tensors) <= bound,
      `${globalL2Norm(decoded.tensors)} > ${bound}`,
    );
    assert.deepEqual(
      s.events.map((e) => e.type),
      ['fl-trained', 'fl-update-sent'],
    );
    assert.equal(s.fl.active(), null);
  });

  it('sends an update under the bound unclipped, float32 exact', async () => {
    const s = await setup();
    const command = flTrainCommand(small.ref, { config: { clipNorm: 1000, encoding: 'float32' } });
    const { header, bytes } = await update(await run(command, s));
    assert.equal(header.update!.clipped, false);
    const decoded = decodeTensorSet(bytes);
    assert.equal(decoded.encoding, 'float32');
    const norm = globalL2Norm(decoded.tensors);
    assert.ok(Math.abs(norm - header.update!.normBeforeClip) <= 1e-9 * norm + 1e-12);
  });

  it('cuts a large update into parts of 64 KiB, the last one shorter', async () => {
    const bundle = await flBundle({ inputSize: 96, hidden: 256, classes: 4, floatWeights: true });
    const s = await setup({ bundle, samples: 24 });
    const command = flTrainCommand(bundle.ref, {
      config: { encoding: 'float32', clipNorm: 1000, minSamples: 8, epochs: 1 },
    });
    const { header, chunks } = await update(await run(command, s));
    assert.ok(header.update!.partCount >= 2, `${header.update!.partCount} parts`);
    for (const chunk of chunks.slice(0, -1)) assert.equal(chunk.length, MAX_FL_PART_BYTES);
    assert.ok(chunks.at(-1)!.length <= MAX_FL_PART_BYTES);
  });

  it('reports too few samples as failed with the reason, and trains nothing', async () => {
    let trained = 0;
    const s = await setup({
      samples: 5,
      trainer: { train: (r) => (trained++, inThread.train(r)) },
    });
    const header = await failure(flTrainCommand(small.ref), s);
    assert.match(
      header.reason!,
      /^not-enough-samples: 5 labelled samples of width 8; the round needs 10/,
    );
    assert.equal(header.sampleCount, 5);
    assert.equal(trained, 0);
    const declined = s.events.find((e) => e.type === 'fl-declined');
    assert.deepEqual(declined && [declined.code, declined.reported], ['not-enough-samples', true]);
  });

  it('sends nothing new for a duplicate command or another command for the same round', async () => {
    const s = await setup();
    const command = flTrainCommand(small.ref);
    s.fl.handle(command);
    s.fl.handle(command); // QoS 1 redelivery while training
    await s.fl.idle();
    s.fl.handle(command); // and after
    s.fl.handle({ ...command, id: 'cmd-fl-0002' });
    await s.fl.idle();
    const messages = await verified(s.published);
    assert.equal(messages.filter((m) => m.type === 'fl-update').length, 1);
    await update(messages);
    const duplicates = s.events.filter((e) => e.type === 'fl-declined');
    assert.equal(duplicates.length, 3);
    assert.ok(
      duplicates.every((e) => e.type === 'fl-declined' && e.code === 'duplicate' && !e.reported),
    );
  });

  it('refuses a round for a model that is not the serving one', async () => {
    const s = await setup();
    const header = await failure(flTrainCommand({ ...small.ref, version: '1.9.0', release: 9 }), s);
    assert.match(header.reason!, /^base-not-serving: /);
    assert.equal(header.sampleCount, 0);
  });

  it('refuses while an update is on probation (another model serves)', async () => {
    const committedState = {
      ...initialAgentState(),
      committed: { ref: small.ref, slot: 'a' as const },
    };
    const probation = {
      ...committedState,
      job: { phase: 'probation', model: small.ref },
    } as unknown as AgentState;
    const header = await failure(flTrainCommand(small.ref), await setup({ state: probation }));
    assert.match(header.reason!, /^base-not-serving: .*on probation/);
  });

  it('fails with deadline when the deadline passes during training', async () => {
    const clock = { now: NOW_MS };
    const slow: Trainer = {
      async train(request) {
        const result = await inThread.train(request);
        clock.now = NOW_MS + 10 * 60_000; // past the 5-minute deadline
        return result;
      },
    };
    const s = await setup({ trainer: slow, clock });
    const header = await failure(flTrainCommand(small.ref), s);
    assert.match(header.reason!, /^deadline: /);
    assert.equal(header.sampleCount, 60);
    assert.ok(header.metrics.lossBefore !== null, 'the metrics of the training done');
    assert.deepEqual(
      s.events.map((e) => e.type),
      ['fl-trained', 'fl-declined'],
    );
  });

  it('fails with deadline on arrival after it, before any training', async () => {
    const s = await setup({ clock: { now: NOW_MS + 6 * 60_000 } });
    assert.match((await failure(flTrainCommand(small.ref), s)).reason!, /^deadline: /);
  });

  it('sends flUpdateOverride bytes as given, signed, with their size and hash', async () => {
    const forged = Uint8Array.from({ length: MAX_FL_PART_BYTES + 100 }, (_, i) => (i * 7) & 0xff);
    let seen = 0;
    const s = await setup({
      override: (delta, config) => {
        seen = delta.length;
        assert.equal(config.clipNorm, 5);
        return forged;
      },
    });
    const { bytes, header } = await update(await run(flTrainCommand(small.ref), s));
    assert.deepEqual(bytes, forged);
    assert.equal(header.update!.partCount, 2);
    assert.equal(seen, 4, 'the override saw the delta');
    const sent = s.events.find((e) => e.type === 'fl-update-sent');
    assert.equal(sent?.type === 'fl-update-sent' && sent.overridden, true);
  });

  it('refuses a second round while one trains (busy), then finishes the first', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const held: Trainer = { train: async (r) => (await gate, inThread.train(r)) };
    const s = await setup({ trainer: held });
    s.fl.handle(flTrainCommand(small.ref));
    s.fl.handle(flTrainCommand(small.ref, { id: 'cmd-fl-0002', roundId: 'round-0002' }));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(s.fl.active(), 'round-0001');
    release();
    await s.fl.idle();
    const messages = await verified(s.published);
    const headers = messages.filter((m): m is FlUpdateMessage => m.type === 'fl-update');
    const busy = headers.find((h) => h.roundId === 'round-0002')!;
    assert.equal(busy.status, 'failed');
    assert.match(busy.reason!, /^busy: round round-0001 is training/);
    assert.equal(headers.find((h) => h.roundId === 'round-0001')!.status, 'ok');
  });

  it('fails a bundle without a training field, and a weights part that does not match its signed hash', async () => {
    const plain = await flBundle({ noTraining: true, release: 4 });
    const none = await failure(flTrainCommand(plain.ref), await setup({ bundle: plain }));
    assert.match(none.reason!, /^no-training: /);
    const parts = new Map(small.parts);
    const tampered = parts.get('weights.ftns')!.slice();
    tampered[tampered.length - 1]! ^= 1;
    parts.set('weights.ftns', tampered);
    const bad = await failure(flTrainCommand(small.ref), await setup({ parts }));
    assert.match(bad.reason!, /^training-part: part weights.ftns does not match its signed/);
  });

  it('reports a diverged run as failed, with no update', async () => {
    const diverging: Trainer = {
      train: () => Promise.reject(agentError('TRAIN_DIVERGED', 'loss became NaN at step 3')),
    };
    const header = await failure(flTrainCommand(small.ref), await setup({ trainer: diverging }));
    assert.match(header.reason!, /^diverged: TRAIN_DIVERGED: loss became NaN/);
    assert.equal(header.sampleCount, 60);
  });
});
