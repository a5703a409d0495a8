/**
 * Fault: agents lose their link, or their power, in the middle of a download
 * of a bundle of several blocks (a 784-256-10 dense model, about 200 KB: four
 * 64 KiB blocks; the class-mean model of the other tests fits in one block).
 *
 * The test plays the first part of the broadcast itself (every block but the
 * last, on the bundle's topic), as a broadcast cut short would leave them,
 * before the control plane's own broadcast is due. Then:
 *
 *   - one agent's connection drops (`dropConnection`: no power loss, its
 *     download stays open in memory): after reconnecting it completes and has
 *     written each block exactly once;
 *   - one agent crashes (`crash`, a power cut) and boots again on the same
 *     stores: its download resumes from the persisted bitmap, it asks at once
 *     (a signed `blocks-request` seen on the broker) for exactly the blocks it
 *     lacks, is sent them on its own `blocks` topic, and writes only those.
 *
 * Every agent ends committed. Embedded broker and PGlite by default;
 * PostgreSQL and the external broker with DATABASE_URL / MQTT_URL.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  buildBundle,
  buildDenseModel,
  createOnnxRunner,
  decodeOnnx,
  encodeOnnx,
} from '@fleet/bundles';
import { runControlPlane, type ControlPlane } from '@fleet/control-plane';
import {
  bitmapFromBase64,
  bundleBlocksTopic,
  bundleIdOf,
  createBlockTree,
  deviceTopic,
  encodeBlockFrame,
  hasBit,
  splitBlocks,
  verifyDeviceMessage,
} from '@fleet/protocol';
import { createFleetBundleKit, type FleetBundleKit } from './fleet-bundles.ts';
import type { SimFleet } from './sim-fleet.ts';
import { startBackgroundTraffic } from './mnist-traffic.ts';
import {
  controlPlaneApi,
  fleetTestConfig,
  resetServiceDatabase,
  type RolloutView,
  startTestFleet,
  until,
} from './__fixtures__/fleet-test-kit.ts';

const FLEET_SIZE = 12;
const FEATURES = 784;
const HIDDEN = 256;
const CLASSES = 10;
/** The control plane's own broadcast waits this long: the test's partial one comes first. */
const BROADCAST_DELAY_MS = 5_000;
/** An agent's first repair timer fires 2 to 6 s (jittered) after its download starts. */
const FIRST_REPAIR_DELAY_MS = 4_000;
/** "At once": well before any repair timer of a download that did not resume could fire. */
const AT_ONCE_MS = 1_500;
let cp: ControlPlane;
let dir: string;
let admin: string;
let kit: FleetBundleKit;
let fleet: SimFleet;
let traffic: ReturnType<typeof startBackgroundTraffic>;
const { call } = controlPlaneApi(
  () => cp,
  () => admin,
);

/** Weights in [-scale, scale) from a fixed xorshift seed: the same bundle bytes every run. */
function seededWeights(length: number, scale: number, seed: number): Float32Array {
  let state = seed >>> 0 || 1;
  return Float32Array.from({ length }, () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return ((state >>> 0) / 2 ** 32 - 0.5) * 2 * scale;
  });
}

/**
 * A signed bundle of a 784-256-10 dense model with random weights: int8
 * weights that are uniform do not compress, so the bundle spans several
 * blocks. Its answers are near chance, so the rollout sets no confidence gate.
 */
async function buildLargeBundle(version: string, release: number): Promise<Uint8Array> {
  const model = buildDenseModel({
    inputSize: FEATURES,
    softmaxOutput: true,
    layers: [
      {
        units: HIDDEN,
        activation: 'relu',
        weights: seededWeights(FEATURES * HIDDEN, 0.05, 7),
        bias: new Float32Array(HIDDEN),
      },
      {
        units: CLASSES,
        activation: 'linear',
        weights: seededWeights(HIDDEN * CLASSES, 0.2, 11),
        bias: new Float32Array(CLASSES),
      },
    ],
  });
  const now = Date.now();
  const samples = 64;
  const { bundle } = await buildBundle(
    {
      floatModel: encodeOnnx(model),
      evalData: {
        sampleCount: samples,
        featureCount: FEATURES,
        classCount: CLASSES,
        features: kit.test.features.subarray(0, samples * FEATURES),
        labels: kit.test.labels!.subarray(0, samples),
      },
      signers: kit.signers,
      maxAccuracyDropPoints: 100,
      manifest: {
        name: 'mnist-wide',
        version,
        release,
        hardware: ['sim-cpu'],
        minAgentVersion: '0.1.0',
        issuedAt: new Date(now - 60_000).toISOString(),
        expires: new Date(now + 30 * 86_400_000).toISOString(),
        lineage: { producer: { kind: 'manual' } },
      },
    },
    { decode: decodeOnnx, encode: encodeOnnx, createRunner: createOnnxRunner },
  );
  return bundle;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-fault-dl-'));
  const databaseUrl = await resetServiceDatabase();
  [kit, cp] = await Promise.all([
    createFleetBundleKit(),
    runControlPlane({
      config: fleetTestConfig(dir, databaseUrl, {
        rollouts: { broadcastMinDelayMs: BROADCAST_DELAY_MS },
      }),
      announce: () => undefined,
    }),
  ]);
  admin = cp.firstAdminToken!;
  await call('PUT', '/v1/trust/root', kit.rootBytes, 'application/octet-stream');
  fleet = await startTestFleet(cp, admin, {
    count: FLEET_SIZE,
    idPrefix: `dlresume-${Date.now().toString(36)}`,
    agentOptions: {
      downloader: { firstRepairDelayMs: FIRST_REPAIR_DELAY_MS, maxRepairDelayMs: 8_000 },
      session: { minBackoffMs: 100, maxBackoffMs: 1_000 },
    },
  });
  traffic = startBackgroundTraffic(() => fleet.agents, kit.test, {
    perAgent: 2,
    batch: 2,
    intervalMs: 100,
  });
});

after(async () => {
  await traffic?.stop();
  await fleet?.close();
  await cp?.close();
  await rm(dir, { recursive: true, force: true });
});

describe(`downloads resume after a dropped link and after a crash (${process.env['MQTT_URL'] ? 'PostgreSQL + external broker' : 'embedded'})`, () => {
  it('each agent writes each block once; the rebooted one asks at once for what it lacks', async () => {
    const bundle = await buildLargeBundle('1.0.0', 1);
    await call('POST', '/v1/models', bundle, 'application/octet-stream');
    const bundleId = await bundleIdOf(bundle);
    const plan = await cp.distribution.plan(bundleId);
    assert.ok(plan.blockCount >= 3, `a bundle of several blocks (${plan.blockCount})`);
    const blocks = splitBlocks(bundle, plan.blockSizeBytes);
    const tree = await createBlockTree(blocks);
    assert.equal(tree.root, plan.blockRoot);
    const held = plan.blockCount - 1; // every block but the last
    const [dropped, crashed] = [fleet.agents[0]!, fleet.agents[1]!];

    // What the crashed agent asks for, as the control plane receives it (signed, verified).
    const asked: Array<{ atMs: number; missing: number[] }> = [];
    const device = (await cp.devices.lookup(crashed.id))!;
    await cp.broker!.subscribe(deviceTopic(crashed.id, 'blocks/req'), async (_topic, payload) => {
      const message = await verifyDeviceMessage(payload, {
        expectedDeviceId: crashed.id,
        publicKey: device.publicKey,
      });
      if (message.type !== 'blocks-request') return;
      const bitmap = bitmapFromBase64(message.missing, message.blockCount);
      const missing = blocks.map((_, i) => i).filter((i) => hasBit(bitmap, i));
      asked.push({ atMs: Date.now(), missing });
    });

    const created = await call<RolloutView>('POST', '/v1/rollouts', {
      model: 'mnist-wide@1.0.0',
      target: 'all',
      waves: '100%',
      bake: '500ms',
      probation: '1s',
      deviceTimeout: '40s',
      successRatio: '90%',
      maxFailure: '10%',
      minConfidence: 0,
    });

    // The first blocks arrive (again and again, until both victims hold them: they may
    // subscribe a moment after the deploy). The last block never comes this way.
    await until(
      async () => {
        if ([dropped, crashed].every((a) => a.agent.downloader().stats().blocksWritten >= held))
          return true;
        for (let index = 0; index < held; index++) {
          await cp.broker!.publish(
            bundleBlocksTopic(bundleId),
            encodeBlockFrame({
              bundleId,
              index,
              count: plan.blockCount,
              proof: tree.proof(index),
              data: blocks[index]!,
            }),
            { qos: 0 },
          );
        }
        return false;
      },
      'both victims to hold every block but the last',
      BROADCAST_DELAY_MS / 2,
    );
    for (const a of [dropped, crashed]) {
      assert.equal(a.agent.downloader().stats().blocksWritten, held, a.id);
      assert.equal(a.agent.state().job?.phase, 'downloading', a.id);
    }
    assert.deepEqual(asked, [], 'no repair request yet');

    dropped.agent.session().dropConnection();
    crashed.crash();
    await new Promise((r) => setTimeout(r, 200));
    const bootedAt = Date.now();
    await crashed.restart();
    const first = await until<{ atMs: number; missing: number[] }>(
      () => asked[0] ?? null,
      'the rebooted agent to ask for the blocks it lacks',
      AT_ONCE_MS,
    );
    assert.deepEqual(
      first.missing,
      blocks.map((_, i) => i).slice(held),
      'it asks for the blocks it lacks, and only those',
    );
    assert.ok(first.atMs - bootedAt < AT_ONCE_MS, `asked ${first.atMs - bootedAt} ms after boot`);

    const done = await until(
      async () => {
        const r = await call<RolloutView>('GET', `/v1/rollouts/${created.id}`);
        return r.status === 'completed' || r.status === 'aborted' ? r : null;
      },
      'the rollout to finish',
      40_000,
    );
    assert.equal(done.status, 'completed', done.reason ?? '');
    assert.equal(done.counts['succeeded'], FLEET_SIZE, JSON.stringify(done.counts));
    for (const a of fleet.agents) {
      assert.equal(a.agent.state().committed?.ref.bundleId, bundleId, a.id);
      assert.equal(a.agent.state().job, null, a.id);
    }
    // The dropped agent kept its download open across the reconnect: each block written once.
    assert.equal(dropped.agent.downloader().stats().blocksWritten, plan.blockCount);
    // The rebooted agent's new downloader resumed the persisted bitmap: it wrote only the rest.
    assert.equal(crashed.agent.downloader().stats().blocksWritten, plan.blockCount - held);
    // One device asked for them: the repair went to it alone, on its own topic.
    assert.ok(
      cp.distribution.stats().blocksSentDirect >= plan.blockCount - held,
      JSON.stringify(cp.distribution.stats()),
    );
    await until(
      () => [dropped, crashed].every((a) => a.host.inference.active()?.version === '1.0.0'),
      'both victims to serve the new model',
      10_000,
    );
  });
});
