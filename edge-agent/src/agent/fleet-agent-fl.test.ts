/**
 * A federated round through a whole agent (createFleetAgent) on a fake MQTT
 * session, a stand-in model host and the small training bundle committed in
 * slot a: an `fl-train` command on `dev/{id}/cmd` becomes a signed
 * `fl-update` header and its parts on telemetry, with the agent's events
 * (`fl-trained`, `fl-update-sent`); the injected trainer is used; a
 * redelivery sends nothing; an invalid command is refused and changes nothing.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  deviceTopic,
  keyIdOf,
  utf8,
  verifyDeviceMessage,
  type FlUpdateMessage,
} from '@fleet/protocol';
import { generateKeyPairNative, nativeSigner } from '@fleet/protocol/node';
import { NOW_MS } from '@fleet/protocol/testing';
import { FL_HARDWARE, flBundle, flSamples, flTrainCommand } from '../__fixtures__/fl-bundle.ts';
import { createMemoryLabelStore } from '../adapters/memory/memory-label-store.ts';
import {
  createMemoryDownloadStore,
  createMemorySlotStore,
  createMemoryStateStore,
} from '../adapters/memory/memory-stores.ts';
import type { AgentSession, AgentSessionOptions } from '../adapters/mqtt/agent-session.ts';
import { createInThreadTrainer } from '../adapters/tfjs/in-thread-trainer.ts';
import type { ModelHost } from '../core/model-host.ts';
import type { Trainer } from '../core/training/types.ts';
import { initialAgentState } from '../core/update-state.ts';
import { createFleetAgent, type AgentEvent, type FleetAgent } from './fleet-agent.ts';

const DEVICE = 'dev-fl-agent-01';
const bundle = await flBundle();
const pair = generateKeyPairNative();
const signer = nativeSigner({ keyId: await keyIdOf(pair.publicKey), secretKey: pair.secretKey });
const agents: FleetAgent[] = [];
after(async () => Promise.all(agents.map((a) => a.close())));

const stubHost: ModelHost = {
  load: () => Promise.resolve(),
  selfTest: () => Promise.resolve({ ok: true, message: 'ok' }),
  serve: () => undefined,
  unload: () => undefined,
  judgeProbation: () => ({ pass: true, reason: 'ok', health: null }),
  takeHealth: () => null,
  loaded: () => true,
  observeInferences: () => undefined,
};

async function startAgent() {
  const published: Array<{ topic: string; payload: Uint8Array }> = [];
  const events: AgentEvent[] = [];
  let deliver!: (topic: string, payload: Uint8Array) => void;
  const stores = {
    state: createMemoryStateStore(),
    downloads: createMemoryDownloadStore(),
    slots: createMemorySlotStore(),
    labels: createMemoryLabelStore({ nowMs: () => NOW_MS }),
  };
  await stores.state.save({ ...initialAgentState(), committed: { ref: bundle.ref, slot: 'a' } });
  await stores.slots.write('a', {
    bundleId: bundle.bundleId,
    manifestEnvelope: bundle.envelopeBytes,
    parts: bundle.parts,
  });
  await stores.labels.open();
  await stores.labels.append(flSamples(40, 8, 3, bundle.ref));
  const inThread = createInThreadTrainer();
  let trained = 0;
  const trainer: Trainer = { train: (request) => (trained++, inThread.train(request)) };
  const agent = createFleetAgent({
    deviceId: DEVICE,
    hardware: FL_HARDWARE,
    signer,
    mqttUrl: 'mqtt://fake',
    trustRoot: () => bundle.trust.root,
    stores,
    host: stubHost,
    nowMs: () => NOW_MS,
    tickIntervalMs: 3_600_000,
    healthIntervalMs: 0,
    trainer,
    onEvent: (event) => events.push(event),
    createSession: (options: AgentSessionOptions): AgentSession => {
      deliver = options.onMessage;
      return {
        start: () => (options.onConnect?.(true), Promise.resolve()),
        connected: () => true,
        publish: (topic, payload) => (published.push({ topic, payload }), Promise.resolve()),
        subscribe: () => Promise.resolve(),
        unsubscribe: () => Promise.resolve(),
        dropConnection: () => undefined,
        kill: () => undefined,
        close: () => Promise.resolve(),
      };
    },
  });
  agents.push(agent);
  await agent.start();
  const command = (message: unknown) =>
    deliver(deviceTopic(DEVICE, 'cmd'), utf8(JSON.stringify(message)));
  const telemetry = async () => {
    const out = [];
    for (const p of published.filter((x) => x.topic === deviceTopic(DEVICE, 'telemetry'))) {
      out.push(
        await verifyDeviceMessage(p.payload, {
          expectedDeviceId: DEVICE,
          publicKey: pair.publicKey,
        }),
      );
    }
    return out;
  };
  return { agent, events, command, telemetry, trained: () => trained };
}

/** Lets the command's parse and dispatch run, then waits for the round. */
async function settled(agent: FleetAgent) {
  await new Promise((resolve) => setImmediate(resolve));
  await agent.flTraining().idle();
}

test('an fl-train command on cmd becomes a signed update on telemetry, once', async () => {
  const { agent, events, command, telemetry, trained } = await startAgent();
  const round = flTrainCommand(bundle.ref, { config: { clipNorm: 0.05 } });
  command(round);
  command(round); // QoS 1 redelivery
  await settled(agent);
  const messages = await telemetry();
  const header = messages.find((m): m is FlUpdateMessage => m.type === 'fl-update')!;
  assert.equal(header.status, 'ok', header.reason);
  assert.equal(header.sampleCount, 40);
  assert.equal(messages.filter((m) => m.type === 'fl-update').length, 1);
  assert.equal(
    messages.filter((m) => m.type === 'fl-update-part').length,
    header.update!.partCount,
  );
  assert.equal(trained(), 1, 'the injected trainer, once');
  const fl = events.filter((e) => e.type.startsWith('fl-')).map((e) => e.type);
  assert.deepEqual(fl.sort(), ['fl-declined', 'fl-trained', 'fl-update-sent']);
});

test('an fl-train command that breaks its schema is refused and starts nothing', async () => {
  const { agent, events, command, telemetry } = await startAgent();
  const round = flTrainCommand(bundle.ref);
  command({ ...round, config: { ...round.config, clipNorm: -1 } });
  await settled(agent);
  assert.equal(agent.flTraining().active(), null);
  assert.ok(events.some((e) => e.type === 'command-refused'));
  assert.equal((await telemetry()).filter((m) => m.type.startsWith('fl-')).length, 0);
});
