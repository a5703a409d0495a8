/**
 * Drift monitoring through a whole agent (createFleetAgent) on a fake MQTT
 * session: a real signed bundle with a drift profile (the factory's default
 * signals) is the committed model, installed by a rollout that set the
 * sampling rate to 1 (the manifest says 0.1). Inference through the ONNX host
 * closes a window of 8 samples, and a device-signed `drift` message appears
 * on `dev/{id}/telemetry` at QoS 1 that the control plane's
 * `verifyDeviceMessage` accepts, with sketches holding the 8 samples; an
 * outage and a crash lose nothing.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  deserializeSignal,
  deviceTopic,
  fromBase64,
  keyIdOf,
  verifyDeviceMessage,
  type DriftReportMessage,
} from '@fleet/protocol';
import { generateKeyPairNative, nativeSigner } from '@fleet/protocol/node';
import { NOW_MS, testTrust } from '@fleet/protocol/testing';
import { mnistDriftBundle } from '../__fixtures__/mnist-shaped-bundle.ts';
import {
  createMemoryDownloadStore,
  createMemorySlotStore,
  createMemoryStateStore,
} from '../adapters/memory/memory-stores.ts';
import type { AgentSession, AgentSessionOptions } from '../adapters/mqtt/agent-session.ts';
import { createOnnxModelHost } from '../adapters/onnx/onnx-model-host.ts';
import { initialAgentState } from '../core/update-state.ts';
import { createFleetAgent, type FleetAgent } from './fleet-agent.ts';

const DEVICE = 'dev-drift-01';
const ROLLOUT = 'rollout-drift-01';
const TELEMETRY = deviceTopic(DEVICE, 'telemetry');

const bundle = await mnistDriftBundle();
const trust = await testTrust();
const pair = generateKeyPairNative();
const signer = nativeSigner({ keyId: await keyIdOf(pair.publicKey), secretKey: pair.secretKey });

/** A session the test connects and disconnects; it records what is published. */
function fakeNetwork() {
  const net = {
    up: false,
    published: [] as Array<{ topic: string; payload: Uint8Array; qos: number | undefined }>,
    options: null as AgentSessionOptions | null,
    reconnect() {
      net.up = true;
      net.options!.onConnect?.(true);
    },
    create(options: AgentSessionOptions): AgentSession {
      net.options = options;
      return {
        start: () => {
          net.reconnect();
          return Promise.resolve();
        },
        connected: () => net.up,
        publish(topic, payload, publishOptions) {
          if (!net.up) return Promise.reject(new Error('not connected'));
          net.published.push({ topic, payload, qos: publishOptions?.qos });
          return Promise.resolve();
        },
        subscribe: () => Promise.resolve(),
        unsubscribe: () => Promise.resolve(),
        dropConnection: () => void (net.up = false),
        kill: () => void (net.up = false),
        close: () => {
          net.up = false;
          return Promise.resolve();
        },
      };
    },
  };
  return net;
}

/** The committed model in slot a, installed by ROLLOUT with drift.sampleRate 1. */
async function deviceStores() {
  const stores = {
    state: createMemoryStateStore(),
    downloads: createMemoryDownloadStore(),
    slots: createMemorySlotStore(),
  };
  await stores.state.save({
    ...initialAgentState(),
    committed: { ref: bundle.ref, slot: 'a', rolloutId: ROLLOUT, driftSampleRate: 1 },
    releaseFloor: { [bundle.ref.name]: bundle.ref.release },
  });
  await stores.slots.write('a', {
    bundleId: bundle.bundleId,
    manifestEnvelope: bundle.envelopeBytes,
    parts: bundle.parts,
  });
  return stores;
}

const agents: FleetAgent[] = [];
const hosts: Array<ReturnType<typeof createOnnxModelHost>> = [];
after(async () => {
  await Promise.all(agents.map((a) => a.close()));
  for (const host of hosts) host.unload('a');
});

async function startAgent(stores: Awaited<ReturnType<typeof deviceStores>>) {
  const net = fakeNetwork();
  const host = createOnnxModelHost();
  const agent = createFleetAgent({
    deviceId: DEVICE,
    hardware: 'sim',
    signer,
    mqttUrl: 'mqtt://fake',
    trustRoot: () => trust.root,
    stores, // no driftOutbox: the agent keeps an in-memory one per stores object
    host,
    nowMs: () => NOW_MS,
    tickIntervalMs: 3_600_000,
    healthIntervalMs: 0,
    createSession: (options) => net.create(options),
  });
  agents.push(agent);
  hosts.push(host);
  await agent.start();
  return { agent, host, net };
}

async function driftMessages(net: ReturnType<typeof fakeNetwork>): Promise<DriftReportMessage[]> {
  const telemetry = net.published.filter((p) => p.topic === TELEMETRY);
  const messages: DriftReportMessage[] = [];
  for (const p of telemetry) {
    assert.equal(p.qos, 1);
    const message = await verifyDeviceMessage(p.payload, {
      expectedDeviceId: DEVICE,
      publicKey: pair.publicKey,
    });
    assert.ok(message.type === 'drift', `a ${message.type} message on telemetry`);
    messages.push(message);
  }
  return messages;
}

test('inference on the served model ends in a signed drift message on telemetry whose sketches hold the samples', async () => {
  const stores = await deviceStores();
  const { agent, host, net } = await startAgent(stores);
  const result = await host.inference.infer(bundle.digits, { batch: 8 });
  await agent.drift().idle();

  const [message, ...rest] = await driftMessages(net);
  assert.equal(rest.length, 0);
  assert.deepEqual(message!.model, bundle.ref);
  assert.equal(message!.rolloutId, ROLLOUT);
  assert.deepEqual([message!.seq, message!.inferences, message!.sampled], [0, 8, 8]);
  const spec = bundle.manifest.drift!;
  assert.deepEqual(
    message!.signals.map((s) => s.name),
    spec.signals.map((s) => s.name),
  );
  for (const entry of message!.signals) {
    const sketch = deserializeSignal(fromBase64(entry.sketch));
    if (sketch.kind === 'numeric') {
      assert.equal(sketch.counters.count, 8, `${entry.name} holds the 8 samples`);
    } else {
      assert.equal(sketch.items.n, 8);
      for (const c of new Set(result.predictions)) {
        const count = result.predictions.filter((p) => p === c).length;
        assert.equal(sketch.items.lowerBound(String(c)), count, `class ${c}`);
      }
    }
  }
  // The device's signal values are the inference's own confidences.
  const confidence = deserializeSignal(
    fromBase64(message!.signals.find((s) => s.name === 'confidence')!.sketch),
  );
  assert.ok(confidence.kind === 'numeric');
  assert.ok(Math.abs(confidence.counters.min - Math.min(...result.confidences)) < 1e-6);
  assert.ok(Math.abs(confidence.counters.max - Math.max(...result.confidences)) < 1e-6);
  const stats = agent.driftStats();
  assert.deepEqual([stats.written, stats.sent, stats.pending], [1, 1, 0]);
});

test('flushes written during an outage are sent on reconnection; after a crash the restarted agent sends them', async () => {
  const stores = await deviceStores();
  const first = await startAgent(stores);
  first.net.up = false;
  await first.host.inference.infer(bundle.digits, { batch: 8 });
  await first.agent.drift().idle();
  assert.equal(first.agent.driftStats().pending, 1, 'written, waiting for the broker');
  first.net.reconnect();
  await first.agent.drift().idle();
  assert.deepEqual(
    (await driftMessages(first.net)).map((m) => m.seq),
    [0],
  );

  first.net.up = false;
  await first.host.inference.infer(bundle.digits, { batch: 8 });
  await first.agent.drift().idle();
  first.agent.crash();
  first.host.unload('a');

  const second = await startAgent(stores);
  await second.agent.drift().idle();
  const [resent] = await driftMessages(second.net);
  assert.equal(resent?.seq, 1, 'the flush written before the crash, with the next seq');
  assert.equal(resent?.sampled, 8);
  assert.equal(second.agent.driftStats().resent, 1);
  await second.host.inference.infer(bundle.digits, { batch: 8 });
  await second.agent.drift().idle();
  assert.deepEqual(
    (await driftMessages(second.net)).map((m) => m.seq),
    [1, 2],
  );
});
