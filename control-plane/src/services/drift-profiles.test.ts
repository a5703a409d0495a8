import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  bundleIdOf,
  encodeDriftProfile,
  isFleetError,
  packBundle,
  inspectBundle,
} from '@fleet/protocol';
import { manifestInput, sampleParts, testKeys } from '@fleet/protocol/testing';
import type { ModelVersionRow } from '../adapters/db/model-store.ts';
import { DRIFT_SPEC } from '../__fixtures__/drift-fleet.ts';
import { testProfile } from '../core/drift/__fixtures__/drift-fixtures.ts';
import { createDriftProfiles } from './drift-profiles.ts';

let withDrift: Uint8Array;
let plain: Uint8Array;
before(async () => {
  const signers = await testKeys(500, 1);
  const profile = encodeDriftProfile({ pca: null, baselines: new Map(testProfile().baselines) });
  withDrift = await packBundle({
    manifest: manifestInput({ drift: DRIFT_SPEC }),
    parts: [...sampleParts(), { name: DRIFT_SPEC.part, bytes: profile }],
    signers,
  });
  plain = await packBundle({ manifest: manifestInput(), parts: sampleParts(), signers });
});

/** Profiles over a registry of `bundles` (rows with their manifests) and a blob store that may lie. */
async function profilesOf(bundles: Uint8Array[], stored = new Map<string, Uint8Array>()) {
  const rows = new Map<string, ModelVersionRow>();
  for (const bytes of bundles) {
    const id = await bundleIdOf(bytes);
    rows.set(id, { bundleId: id, manifest: inspectBundle(bytes).manifest } as ModelVersionRow);
    if (!stored.has(id)) stored.set(id, bytes);
  }
  const reads: string[] = [];
  const profiles = createDriftProfiles({
    models: { getByBundleId: (id) => Promise.resolve(rows.get(id) ?? null) },
    blobs: {
      get: (id) => (reads.push(id), Promise.resolve(stored.get(id) ?? null)),
      put: () => Promise.reject(new Error('read only')),
      has: (id) => Promise.resolve(stored.has(id)),
    },
  });
  return { profiles, reads };
}

describe('drift profiles of registered bundles', () => {
  it('reads the signals, baselines and device k from the bundle, once per bundle', async () => {
    const { profiles, reads } = await profilesOf([withDrift]);
    const id = await bundleIdOf(withDrift);
    const profile = (await profiles.forBundle(id))!;
    assert.deepEqual(
      profile.signals.map((s) => `${s.name}:${s.kind}`),
      DRIFT_SPEC.signals.map((s) => `${s.name}:${s.kind}`),
    );
    assert.equal(profile.sketchK, DRIFT_SPEC.sketchK);
    const baseline = profile.baselines.get('input.0')!;
    assert.equal(baseline.kind === 'numeric' && baseline.kll.n, 20_000);
    await profiles.forBundle(id);
    assert.deepEqual(reads, [id]);
  });

  it('has none for an unregistered bundle or one without a drift field', async () => {
    const { profiles } = await profilesOf([plain]);
    assert.equal(await profiles.forBundle(await bundleIdOf(plain)), null);
    assert.equal(await profiles.forBundle('0'.repeat(64)), null);
  });

  it('refuses a stored bundle that no longer hashes to its id, and tries again next time', async () => {
    const id = await bundleIdOf(withDrift);
    const damaged = withDrift.slice();
    damaged[damaged.length - 1]! ^= 1;
    const { profiles, reads } = await profilesOf([withDrift], new Map([[id, damaged]]));
    for (let i = 0; i < 2; i++) {
      await assert.rejects(profiles.forBundle(id), (e: unknown) => isFleetError(e, 'PART_HASH'));
    }
    assert.equal(reads.length, 2);
  });
});
