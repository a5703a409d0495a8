/**
 * The update effects and a bundle's drift profile, on a real signed bundle
 * with a profile part (the factory's) and a stand-in model host: the profile
 * is checked before a new model is loaded, and a bundle whose profile does
 * not decode fails activation with DRIFT_PROFILE (THREATS 40); the model
 * already committed keeps serving after a restart even if its profile no
 * longer checks out, unmonitored and with the reason given; a good profile
 * reaches `onServe` with its spec and PCA basis.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BundleModelRef } from '@fleet/protocol';
import { NOW_MS, testTrust } from '@fleet/protocol/testing';
import { mnistDriftBundle, MNIST_WIDTH } from '../__fixtures__/mnist-shaped-bundle.ts';
import {
  createMemoryDownloadStore,
  createMemorySlotStore,
} from '../adapters/memory/memory-stores.ts';
import { checkDriftProfile, type CheckedDrift } from '../core/drift-profile-check.ts';
import type { ModelHost } from '../core/model-host.ts';
import { DEFAULT_PROBATION, type UpdateInput } from '../core/update-machine.ts';
import { initialAgentState, type Slot, type UpdateJob } from '../core/update-state.ts';
import type { BlockDownloader } from './block-downloader.ts';
import type { Reporter } from './reporter.ts';
import { createUpdateEffects } from './update-effects.ts';

const bundle = await mnistDriftBundle();
const trust = await testTrust();
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
