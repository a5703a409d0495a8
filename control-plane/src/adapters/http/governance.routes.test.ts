/**
 * Governance routes through `app.request()`: eval-set upload and listing with
 * roles and refusals (a refused file stores nothing), policies (admin sets,
 * viewer reads), and approval (approver only; an approval whose round cannot
 * move on is put back to pending).
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestControlPlane, type TestControlPlane } from '../../__fixtures__/control-plane.ts';
import {
  tinyBaseBundle,
  tinyEvalData,
  tinyKeyDirectory,
  tinyWeights,
} from '../../__fixtures__/fl-candidate-fixture.ts';
import { createGovernanceStore } from '../db/governance-store.ts';
import { createModelStore } from '../db/model-store.ts';
import { defaultRoundConfig } from '../../core/fl/round-config.ts';
import { createFlCandidates } from '../../services/fl-candidates.ts';

let t: TestControlPlane;
let keysDir: string;
before(async () => (t = await startTestControlPlane()));
after(async () => {
  await t.close();
  if (keysDir) await rm(dirname(keysDir), { recursive: true, force: true });
});

const body = async (r: Response) => (await r.json()) as Record<string, unknown>;

describe('eval-set routes', () => {
  it('operator uploads, viewer lists; a viewer cannot upload', async () => {
    const { bytes } = tinyEvalData(30);
    const put = await t.call('PUT', '/v1/eval-sets/holdout', {
      body: bytes,
      token: t.tokens.operator,
    });
    assert.equal(put.status, 200);
    assert.equal((await body(put))['sampleCount'], 30);
    const denied = await t.call('PUT', '/v1/eval-sets/other', {
      body: bytes,
      token: t.tokens.viewer,
    });
    assert.equal(denied.status, 403);
    const list = await t.call('GET', '/v1/eval-sets', { token: t.tokens.viewer });
    const sets = (await body(list))['evalSets'] as Array<{ name: string }>;
    assert.deepEqual(
      sets.map((s) => s.name),
      ['holdout'],
    );
  });

  it('a bad file is 400 and stores nothing; above the cap is 413', async () => {
    const bad = await t.call('PUT', '/v1/eval-sets/broken', {
      body: new TextEncoder().encode('FLEVAL01 but not really'),
      token: t.tokens.operator,
    });
    assert.equal(bad.status, 400);
    const error = (await body(bad))['error'] as { code: string; message: string };
    assert.equal(error.code, 'INVALID_REQUEST');
    assert.match(error.message, /eval set: .*the header promises/);
    const huge = await t.call('PUT', '/v1/eval-sets/huge', {
      body: new Uint8Array(64 * 1024 * 1024 + 1),
      token: t.tokens.operator,
    });
    assert.equal(huge.status, 413);
    const list = await body(await t.call('GET', '/v1/eval-sets'));
    assert.deepEqual(
      (list['evalSets'] as Array<{ name: string }>).map((s) => s.name),
      ['holdout'],
    );
  });
});

describe('policy routes', () => {
  it('admin sets, operator cannot, viewer reads', async () => {
    const denied = await t.call('PUT', '/v1/models/tiny/policy', {
      json: { riskTier: 'low' },
      token: t.tokens.operator,
    });
    assert.equal(denied.status, 403);
    const set = await t.call('PUT', '/v1/models/tiny/policy', {
      json: { riskTier: 'low', autoPromote: true, promotionMargin: 0.02 },
    });
    assert.equal(set.status, 200);
    const read = await body(
      await t.call('GET', '/v1/models/tiny/policy', { token: t.tokens.viewer }),
    );
    assert.deepEqual(
      [read['riskTier'], read['autoPromote'], read['promotionMargin'], read['explicit']],
      ['low', true, 0.02, true],
    );
    const bad = await t.call('PUT', '/v1/models/tiny/policy', { json: { riskTier: 'medium' } });
    assert.equal(bad.status, 400);
  });
});

describe('approve route', () => {
  it('approver only; an approval its round refuses goes back to pending', async () => {
    const keys = await tinyKeyDirectory();
    keysDir = keys.dir;
    await t.cp.models.installRoot(keys.rootBytes, 'system');
    const base = await t.cp.models.upload(await tinyBaseBundle(keys.dir), 'system');
    await t.cp.evalSets.put('tiny-holdout', tinyEvalData(60).bytes, 'system');
    const store = createGovernanceStore(t.cp.database.db);
    const port = createFlCandidates({
      models: createModelStore(t.cp.database.db),
      registry: t.cp.models,
      blobs: t.cp.blobs,
      store,
      evalSets: t.cp.evalSets,
      policies: t.cp.modelPolicies,
      rollouts: t.cp.rollouts,
      signingKeysDir: keys.dir,
      approveRound: () => Promise.resolve(),
      nowMs: () => t.clock.nowMs,
    });
    const candidateId = 'r-1-candidate';
    await port.evaluate({
      roundId: 'r-1',
      candidateId,
      baseBundleId: base.bundleId,
      weights: tinyWeights('good'),
      evalSet: 'tiny-holdout',
    });
    const built = await port.build({
      roundId: 'r-1',
      candidateId,
      actor: 'system',
      lineage: {
        roundId: 'r-1',
        baseBundleId: base.bundleId,
        strategy: { kind: 'fedavg' },
        config: defaultRoundConfig,
        participants: [{ deviceId: 'd-1', sampleCount: 10 }],
        evaluation: { candidateAccuracy: 1, championAccuracy: 0.3 },
      },
    });
    const path = `/v1/models/tiny/versions/${built.release}/approve`;
    assert.equal((await t.call('POST', path, { token: t.tokens.operator })).status, 403);
    // The control plane's own pipeline asks the rounds service, which knows no round r-1.
    const refused = await t.call('POST', path, { token: t.tokens.approver });
    assert.equal(refused.status, 404);
    assert.equal((await store.getApproval(built.bundleId))?.status, 'pending');
    const actions = (await t.cp.audit.list()).map((e) => e.action);
    assert.deepEqual(actions.slice(-2), ['model.approved', 'model.approval-reverted']);
    const notCandidate = await t.call('POST', `/v1/models/tiny/versions/${base.release}/approve`, {
      token: t.tokens.approver,
    });
    assert.equal(notCandidate.status, 404);
  });
});
