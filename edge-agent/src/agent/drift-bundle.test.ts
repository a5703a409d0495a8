/**
 * Drift monitoring through the agent on a real signed bundle with a drift
 * profile (the factory's default signals; built once for the file).
 *
 * The update effects, with a stand-in model host: the profile is checked
 * before a new model is loaded, and a bundle whose profile does not decode
 * fails activation with DRIFT_PROFILE (THREATS 40); the model already
 * committed keeps serving after a restart even if its profile no longer
 * checks out, unmonitored and with the reason given; a good profile reaches
 * `onServe` with its spec and PCA basis.
 *
 * A whole agent (createFleetAgent) on a fake MQTT session, the bundle
 * committed by a rollout that set the sampling rate to 1 (the manifest says
 * 0.1): inference through the ONNX host closes a window of 8 samples, and a
 * device-signed `drift` message appears on `dev/{id}/telemetry` at QoS 1
 * that the control plane's `verifyDeviceMessage` accepts, with sketches
 * holding the 8 samples; an outage and a crash lose nothing.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  deserializeSignal,
  deviceTopic,
  fromBase64,
  keyIdOf,
  verifyDeviceMessage,
  type BundleModelRef,
  type DriftReportMessage,
} from '@fleet/protocol';
import { generateKeyPairNative, nativeSigner } from '@fleet/protocol/node';
import { NOW_MS, testTrust } from '@fleet/protocol/testing';
import { mnistDriftBundle, MNIST_WIDTH } from '../__fixtures__/mnist-shaped-bundle.ts';
import {
  createMemoryDownloadStore,
  createMemorySlotStore,
  createMemoryStateStore,
} from '../adapters/memory/memory-stores.ts';
import type { AgentSession, AgentSessionOptions } from '../adapters/mqtt/agent-session.ts';
import { createOnnxModelHost } from '../adapters/onnx/onnx-model-host.ts';
import { checkDriftProfile, type CheckedDrift } from '../core/drift-profile-check.ts';
import type { ModelHost } from '../core/model-host.ts';
import { DEFAULT_PROBATION, type UpdateInput } from '../core/update-machine.ts';
import { initialAgentState, type Slot, type UpdateJob } from '../core/update-state.ts';
import type { BlockDownloader } from './block-downloader.ts';
import { createFleetAgent, type FleetAgent } from './fleet-agent.ts';
import type { Reporter } from './reporter.ts';
import { createUpdateEffects } from './update-effects.ts';

const bundle = await mnistDriftBundle();
const trust = await testTrust();

// ---- the update effects and the drift profile

const driftPart = bundle.manifest.drift!.part;

function stubHost(calls: string[]): ModelHost {
  const loaded = new Set<Slot>();
  return {
    load: (slot) => {
      calls.push(`load ${slot}`);
      loaded.add(slot);
      return Promise.resolve();
    },
    selfTest: () => Promise.resolve({ ok: true, message: 'ok' }),
    serve: (slot) => void calls.push(`serve ${slot}`),
    unload: (slot) => {
      calls.push(`unload ${slot}`);
      loaded.delete(slot);
    },
    judgeProbation: () => ({ pass: true, reason: 'ok', health: null }),
    takeHealth: () => null,
    loaded: (slot) => loaded.has(slot),
    observeInferences: () => undefined,
  };
}

/** Effects over slot b holding the bundle, its drift part replaced by `driftBytes` when given. */
async function effectsWith(driftBytes?: Uint8Array) {
  const slots = createMemorySlotStore();
  const parts = new Map(bundle.parts);
  if (driftBytes) parts.set(driftPart, driftBytes);
  await slots.write('b', {
    bundleId: bundle.bundleId,
    manifestEnvelope: bundle.envelopeBytes,
    parts,
  });
  const calls: string[] = [];
  const served: Array<{ model: BundleModelRef; drift: CheckedDrift | null; error: unknown }> = [];
  const run = createUpdateEffects({
    deviceId: 'dev-effects-01',
    hardware: 'sim',
    agentVersion: '0.1.0',
    trustRoot: () => trust.root,
    nowMs: () => NOW_MS,
    downloads: createMemoryDownloadStore(),
    slots,
    downloader: {} as BlockDownloader,
    host: stubHost(calls),
    reporter: {} as Reporter,
    state: initialAgentState,
    onServe: (model, drift, error) => served.push({ model, drift, error }),
  });
  return { run, calls, served };
}

const job: UpdateJob = {
  rolloutId: 'rollout-0001',
  commandId: 'cmd-deploy-2',
  model: bundle.ref,
  sizeBytes: 1,
  blockSizeBytes: 1,
  blockCount: 1,
  blockRoot: 'ab'.repeat(32),
  manifestEnvelope: '',
  phase: 'activating',
  slot: 'b',
  startedAtMs: NOW_MS,
  deadlineMs: NOW_MS + 60_000,
  probation: DEFAULT_PROBATION,
  probationStartedAtMs: null,
  authorizedRollback: false,
};

/** A profile cut short: it no longer decodes. */
const truncated = () => bundle.parts.get(driftPart)!.slice(0, 100);

test('a bundle whose drift profile does not decode fails activation before its model is loaded', async () => {
  const { run, calls } = await effectsWith(truncated());
  const inputs: UpdateInput[] = [];
  await run({ type: 'activate', job }, (input) => inputs.push(input));
  assert.equal(inputs.length, 1);
  const [failed] = inputs;
  assert.ok(failed?.type === 'activation-failed', `got ${failed?.type}`);
  assert.equal(failed.error.code, 'DRIFT_PROFILE');
  assert.deepEqual(calls, ['unload b'], 'never loaded');
});

test('a good profile activates, and serving hands its spec and PCA basis to onServe', async () => {
  const { run, calls, served } = await effectsWith();
  const inputs: UpdateInput[] = [];
  await run({ type: 'activate', job }, (input) => inputs.push(input));
  assert.deepEqual(
    inputs.map((i) => i.type),
    ['activated'],
  );
  await run({ type: 'serve', slot: 'b', model: bundle.ref }, () => undefined);
  assert.deepEqual(calls, ['load b', 'serve b']);
  assert.equal(served.length, 1);
  assert.deepEqual(served[0]!.drift?.spec, bundle.manifest.drift);
  assert.equal(served[0]!.drift?.pca?.inputSize, MNIST_WIDTH);
  assert.equal(served[0]!.error, null);
});

test('after a restart the committed model serves even if its profile no longer checks out, unmonitored', async () => {
  const { run, calls, served } = await effectsWith(truncated());
  await run({ type: 'serve', slot: 'b', model: bundle.ref }, () => undefined);
  assert.deepEqual(calls, ['load b', 'serve b']);
  assert.equal(served[0]!.drift, null);
  assert.match(String(served[0]!.error), /DRIFT_PROFILE/);
});

test('checkDriftProfile: null without a drift field; a PCA basis of another width than the model rows is refused', () => {
  const undrifted = { ...bundle.manifest };
  delete undrifted.drift;
  assert.equal(checkDriftProfile(undrifted, bundle.parts), null);
  const input = bundle.manifest.io!.inputs[0]!;
  const narrower = {
    ...bundle.manifest,
    io: { ...bundle.manifest.io!, inputs: [{ ...input, shape: ['batch', 700] }] },
  };
  assert.throws(
    () => checkDriftProfile(narrower, bundle.parts),
    /DRIFT_PROFILE: .*PCA basis over 784 inputs for a model whose rows hold 700/,
  );
  assert.throws(
    () => checkDriftProfile(bundle.manifest, new Map()),
    /DRIFT_PROFILE: the bundle has no drift profile part/,
  );
});

// ---- a whole agent on a fake session

const DEVICE = 'dev-drift-01';
const ROLLOUT = 'rollout-drift-01';
const TELEMETRY = deviceTopic(DEVICE, 'telemetry');

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
