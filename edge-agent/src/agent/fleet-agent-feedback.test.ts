/**
 * Feedback through a whole agent (createFleetAgent) on a fake MQTT session
 * and the ONNX host serving the real MNIST-shaped bundle: rows inferred
 * in process are labelled with `agent.feedback`, kept in the agent's
 * in-memory label store (the same one after a restart on the same stores),
 * read back for training, and the window's online accuracy rides in the
 * signed health report on telemetry as `feedback: { labelled, correct, stored }`
 * (`stored`: the labelled samples held now, sent whenever there are any).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { deviceTopic, keyIdOf, verifyDeviceMessage, type HealthMessage } from '@fleet/protocol';
import { generateKeyPairNative, nativeSigner } from '@fleet/protocol/node';
import { NOW_MS, testTrust } from '@fleet/protocol/testing';
import { MNIST_WIDTH, mnistShapedBundle } from '../__fixtures__/mnist-shaped-bundle.ts';
import {
  createMemoryDownloadStore,
  createMemorySlotStore,
  createMemoryStateStore,
} from '../adapters/memory/memory-stores.ts';
import type { AgentSession, AgentSessionOptions } from '../adapters/mqtt/agent-session.ts';
import { createOnnxModelHost } from '../adapters/onnx/onnx-model-host.ts';
import { initialAgentState } from '../core/update-state.ts';
import { createFleetAgent, type FleetAgent } from './fleet-agent.ts';
import { withStoredSamples, type HealthBody } from './reporter.ts';

const bundle = await mnistShapedBundle();
const trust = await testTrust();
const DEVICE = 'dev-feedback-01';
const pair = generateKeyPairNative();
const signer = nativeSigner({ keyId: await keyIdOf(pair.publicKey), secretKey: pair.secretKey });

const agents: FleetAgent[] = [];
const hosts: Array<ReturnType<typeof createOnnxModelHost>> = [];
after(async () => {
  await Promise.all(agents.map((a) => a.close()));
  for (const host of hosts) host.unload('a');
});

function fakeSession(published: Array<{ topic: string; payload: Uint8Array }>) {
  let up = false;
  return (options: AgentSessionOptions): AgentSession => ({
    start: () => {
      up = true;
      options.onConnect?.(true);
      return Promise.resolve();
    },
    connected: () => up,
    publish(topic, payload) {
      published.push({ topic, payload });
      return Promise.resolve();
    },
    subscribe: () => Promise.resolve(),
    unsubscribe: () => Promise.resolve(),
    dropConnection: () => void (up = false),
    kill: () => void (up = false),
    close: () => {
      up = false;
      return Promise.resolve();
    },
  });
}

async function deviceStores() {
  const stores = {
    state: createMemoryStateStore(),
    downloads: createMemoryDownloadStore(),
    slots: createMemorySlotStore(),
  };
  await stores.state.save({ ...initialAgentState(), committed: { ref: bundle.ref, slot: 'a' } });
  await stores.slots.write('a', {
    bundleId: bundle.bundleId,
    manifestEnvelope: bundle.envelopeBytes,
    parts: bundle.parts,
  });
  return stores;
}

async function startAgent(stores: Awaited<ReturnType<typeof deviceStores>>, healthIntervalMs = 0) {
  const published: Array<{ topic: string; payload: Uint8Array }> = [];
  const host = createOnnxModelHost({ nowMs: () => NOW_MS });
  const agent = createFleetAgent({
    deviceId: DEVICE,
    hardware: 'sim',
    signer,
    mqttUrl: 'mqtt://fake',
    trustRoot: () => trust.root,
    stores,
    host,
    nowMs: () => NOW_MS,
    tickIntervalMs: 3_600_000,
    healthIntervalMs,
    createSession: fakeSession(published),
  });
  agents.push(agent);
  hosts.push(host);
  await agent.start();
  return { agent, host, published };
}

/** Polls (bounded) for the first signed health message on telemetry. */
async function healthMessage(published: Array<{ topic: string; payload: Uint8Array }>) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    for (const p of published.filter((x) => x.topic === deviceTopic(DEVICE, 'telemetry'))) {
      const message = await verifyDeviceMessage(p.payload, {
        expectedDeviceId: DEVICE,
        publicKey: pair.publicKey,
      });
      if (message.type === 'health') return message;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('no health message within 10 s');
}

test('labels given in process are stored, read for training, and kept across a restart on the same stores', async () => {
  const stores = await deviceStores();
  const { agent, host } = await startAgent(stores);
  const rows = bundle.digits.length / MNIST_WIDTH;
  const result = await host.inference.infer(bundle.digits, { batch: rows });
  assert.equal(result.ids.length, rows);
  await agent.feedback(result.ids[0]!, result.predictions[0]!);
  const batch = await agent.feedbackMany([
    { id: result.ids[1]!, label: (result.predictions[1]! + 1) % 10 },
    { id: result.ids[0]!, label: 3 },
  ]);
  assert.deepEqual([batch.accepted, batch.duplicate], [1, 1]);
  const stats = agent.feedbackStats();
  assert.deepEqual(
    [stats.labelled, stats.correct, stats.accuracy, stats.storedSamples],
    [2, 1, 0.5, 2],
  );
  assert.deepEqual(stats.model, {
    name: bundle.ref.name,
    version: bundle.ref.version,
    release: bundle.ref.release,
  });

  const set = await agent.labelledSamples.read({ maxSamples: 10, seed: 1 });
  assert.equal(set.count, 2);
  assert.equal(set.featureCount, MNIST_WIDTH);
  assert.deepEqual(
    Array.from(set.features.subarray(0, MNIST_WIDTH)),
    Array.from(bundle.digits.subarray(0, MNIST_WIDTH)),
  );

  agent.crash();
  const { agent: restarted } = await startAgent(stores);
  assert.equal(
    restarted.labelledSamples.count(),
    2,
    'the in-memory store is kept per stores object',
  );
  await assert.rejects(
    restarted.feedback(result.ids[2]!, 1),
    /UNKNOWN_INFERENCE/,
    'recent rows are not',
  );
});

test('the health report carries the window’s online accuracy and the samples stored, signed; a later window only the stored count', async () => {
  const stores = await deviceStores();
  const { agent, host, published } = await startAgent(stores, 20);
  const rows = bundle.digits.length / MNIST_WIDTH;
  const result = await host.inference.infer(bundle.digits, { batch: rows });
  await agent.feedbackMany(
    result.ids.slice(0, 3).map((id, i) => ({
      id,
      label: i === 2 ? (result.predictions[i]! + 1) % 10 : result.predictions[i]!,
    })),
  );
  const message: HealthMessage = await healthMessage(published);
  assert.deepEqual(message.feedback, { labelled: 3, correct: 2, stored: 3 });
  published.length = 0;
  const next = await healthMessage(published);
  assert.deepEqual(
    next.feedback,
    { labelled: 0, correct: 0, stored: 3 },
    'a new window: nothing labelled in it, the 3 samples still held',
  );
});

test('withStoredSamples adds the count to feedback, stands in zero counts when only samples are held, and leaves an empty store out', () => {
  const body: HealthBody = {
    model: { name: bundle.ref.name, version: bundle.ref.version, release: bundle.ref.release },
    windowStart: '2026-11-26T12:00:00.000Z',
    windowEnd: '2026-11-26T12:01:00.000Z',
    requests: 0,
    errors: 0,
    latencyMs: { p50: 0, p95: 0, p99: 0 },
    meanConfidence: null,
    probation: false,
  };
  assert.deepEqual(
    withStoredSamples({ ...body, feedback: { labelled: 2, correct: 1 } }, 0).feedback,
    {
      labelled: 2,
      correct: 1,
      stored: 0,
    },
  );
  assert.deepEqual(withStoredSamples(body, 7).feedback, { labelled: 0, correct: 0, stored: 7 });
  assert.equal(withStoredSamples(body, 0), body);
});
