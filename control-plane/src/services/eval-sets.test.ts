/** Eval sets: a good file is stored and decodes back; a bad or unlabelled one stores nothing. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { encodeEvalData } from '@fleet/bundles';
import { isFleetError, sha256Hex } from '@fleet/protocol';
import { startTestControlPlane, type TestControlPlane } from '../__fixtures__/control-plane.ts';
import { tinyEvalData } from '../__fixtures__/fl-candidate-fixture.ts';
import { createEvalSets } from './eval-sets.ts';
import { createGovernanceStore } from '../adapters/db/governance-store.ts';

let t: TestControlPlane;
before(async () => (t = await startTestControlPlane()));
after(() => t.close());

const code = (c: string) => (e: unknown) => isFleetError(e) && e.code === c;

describe('eval sets', () => {
  it('stores a good file and loads it back, audited', async () => {
    const { data, bytes } = tinyEvalData(30);
    const row = await t.cp.evalSets.put('holdout', bytes, 'token:op');
    assert.deepEqual(
      [row.sampleCount, row.featureCount, row.classCount, row.sizeBytes],
      [30, 3, 3, bytes.length],
    );
    assert.deepEqual((await t.cp.evalSets.load('holdout')).data.labels, data.labels);
    assert.ok(await t.cp.blobs.has(row.blobId));
    const audit = (await t.cp.audit.list()).filter((e) => e.subject === 'eval-set:holdout');
    assert.deepEqual(
      audit.map((e) => e.action),
      ['eval-set.uploaded'],
    );
  });

  it('refuses a truncated, unlabelled or oversized file, or a bad name, storing nothing', async () => {
    const store = createGovernanceStore(t.cp.database.db);
    const small = createEvalSets({ store, blobs: t.cp.blobs, nowMs: () => 0, maxBytes: 100 });
    const { bytes } = tinyEvalData(30);
    const unlabelled = encodeEvalData({ ...tinyEvalData(5).data, classCount: 0, labels: null });
    await assert.rejects(
      t.cp.evalSets.put('bad', bytes.subarray(0, 50), 'x'),
      code('INVALID_REQUEST'),
    );
    await assert.rejects(t.cp.evalSets.put('bad', unlabelled, 'x'), /no labels/);
    await assert.rejects(small.put('bad', bytes, 'x'), code('PAYLOAD_TOO_LARGE'));
    await assert.rejects(t.cp.evalSets.put('Bad Name', bytes, 'x'), code('INVALID_REQUEST'));
    assert.deepEqual(
      (await t.cp.evalSets.list()).map((r) => r.name),
      ['holdout'],
    );
    for (const refused of [bytes.subarray(0, 50), unlabelled]) {
      assert.equal(await t.cp.blobs.has(await sha256Hex(refused)), false, 'no blob stored');
    }
    await assert.rejects(t.cp.evalSets.load('bad'), code('NOT_FOUND'));
  });
});
