/**
 * A federated round end to end on the fleet harness: a real control plane
 * (embedded, or PostgreSQL and Mosquitto when DATABASE_URL / MQTT_URL are
 * set) and 20 real agents serving v1, the class-mean model (about 80% on
 * held-out digits; it was never trained).
 *
 *   1. the agents' users label their answers (MNIST training digits through
 *      each agent's own inference service, then the true digit through its
 *      feedback API): the labelled samples stay on the devices;
 *   2. an operator starts a round (POST /v1/fl/rounds): every agent trains
 *      on its own samples with TensorFlow.js and sends a clipped, int8,
 *      signed update in parts over MQTT; the control plane aggregates them
 *      (FedAvg), evaluates the candidate on a held-out eval set against v1,
 *      builds and signs its bundle with the lineage of the round, and, the
 *      model being low risk with auto-promotion, rolls it out;
 *   3. the fleet ends serving the candidate, and its accuracy on held-out
 *      digits (never used for training or for the round's evaluation) is
 *      higher than v1's;
 *   4. a second round with a fifth of the fleet Byzantine (three send their
 *      update sign-flipped x10 and clipped to the bound, so it passes every
 *      check; one sends NaN, refused as non-finite) under the trimmed mean:
 *      the candidate is not worse than the champion by more than 2 points.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeEvalData, type EvalData } from '@fleet/bundles';
import { runControlPlane, type ControlPlane } from '@fleet/control-plane';
import { createFleetBundleKit, type FleetBundleKit } from './fleet-bundles.ts';
import { runTraffic } from './mnist-traffic.ts';
import { forgeUpdate, type ByzantineKind } from '../fl/byzantine.ts';
import type { SimFleet } from './sim-fleet.ts';
import {
  controlPlaneApi,
  fleetTestConfig,
  resetServiceDatabase,
  startTestFleet,
  until,
} from './__fixtures__/fleet-test-kit.ts';

const FLEET_SIZE = 20;
const MODEL = 'mnist-classmean';
/** Digits each agent's users label before the round (4,000 over the fleet). */
const LABELLED_PER_AGENT = 200;

interface RoundView {
  id: string;
  status: string;
  reason: string | null;
  counts: { selected: number; accepted: number; failed: number; rejected: number };
  rejections: Record<string, number>;
  evaluation: { candidateAccuracy: number; championAccuracy: number } | null;
  candidate: { version: string | null; release: number | null } | null;
  rolloutId: string | null;
  error: string | null;
}

let cp: ControlPlane;
let dir: string;
let admin: string;
let kit: FleetBundleKit;
let fleet: SimFleet;
/** Byzantine devices by fleet index, active once `byzantineOn` is set (round 2). */
const BYZANTINE: Record<number, ByzantineKind> = {
  16: 'sign-flip',
  17: 'sign-flip',
  18: 'sign-flip',
  19: 'nan',
};
let byzantineOn = false;
const api = controlPlaneApi(
  () => cp,
  () => admin,
);
const { call } = api;

/** Rows [from, to) of `data`. */
function slice(data: EvalData, from: number, to: number): EvalData {
  return {
    ...data,
    sampleCount: to - from,
    features: data.features.subarray(from * data.featureCount, to * data.featureCount),
    labels: data.labels!.subarray(from, to),
  };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-fl-'));
  const databaseUrl = await resetServiceDatabase();
  kit = await createFleetBundleKit();
  await kit.writeKeyDirectory(join(dir, 'keys'));
  cp = await runControlPlane({
    config: fleetTestConfig(dir, databaseUrl, {
      fl: { signingKeysDir: join(dir, 'keys'), tickIntervalMs: 200 },
    }),
    announce: () => undefined,
  });
  admin = cp.firstAdminToken!;
  await call('PUT', '/v1/trust/root', kit.rootBytes, 'application/octet-stream');
  fleet = await startTestFleet(cp, admin, {
    count: FLEET_SIZE,
    idPrefix: `fl-${Date.now().toString(36)}`,
    agentOverrides: (index) => ({
      flUpdateOverride: (delta, config) => {
        const kind = BYZANTINE[index];
        if (!byzantineOn || !kind) return null;
        return forgeUpdate(
          { kind, inflateSampleCount: false },
          {
            delta,
            sampleCount: 0,
            clipNorm: config.clipNorm,
            maxSamples: config.maxSamples,
            encoding: config.encoding,
          },
        ).bytes;
      },
    }),
  });
  await api.push(await kit.build({ version: '1.0.0', release: 1, drift: false }));
  const rollout = await call<{ id: string }>('POST', '/v1/rollouts', {
    model: `${MODEL}@1.0.0`,
    target: 'all',
    waves: '100%',
    bake: '200ms',
    probation: '1s',
    deviceTimeout: '60s',
    successRatio: '90%',
    maxFailure: '10%',
  });
  const done = await api.finished(rollout.id);
  assert.equal(done.status, 'completed', done.reason ?? '');
});

after(async () => {
  await fleet?.close();
  await cp?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Starts a round on all agents from `version` and waits for it to end (and, promoted, for its rollout id). */
async function runRound(version: string, strategy: Record<string, unknown>): Promise<RoundView> {
  const started = await call<RoundView>('POST', '/v1/fl/rounds', {
    model: `${MODEL}@${version}`,
    target: 'all',
    evalSet: 'heldout',
    config: {
      fraction: 1,
      minClients: 10,
      epochs: 5,
      batchSize: 10,
      learningRate: 0.05,
      clipNorm: 20,
      strategy,
    },
    deadline: '60s',
    rollout: {
      waves: '100%',
      bake: '200ms',
      probation: '1s',
      deviceTimeout: '60s',
      successRatio: '90%',
      maxFailure: '10%',
    },
  });
  return until(
    async () => {
      const r = await call<RoundView>('GET', `/v1/fl/rounds/${started.id}`);
      const ended = ['promoted', 'rejected', 'failed', 'cancelled', 'awaiting-approval'];
      return ended.includes(r.status) && (r.status !== 'promoted' || r.rolloutId) ? r : null;
    },
    'the round to end',
    120_000,
    { pollMs: 250 },
  );
}

describe(`a federated round on ${FLEET_SIZE} agents (${process.env['MQTT_URL'] ? 'PostgreSQL + external broker' : 'embedded'})`, () => {
  it('trains on the devices, promotes a better candidate and rolls it out', async (t) => {
    // 1. Labels on the devices: each agent infers and labels its own training digits.
    await runTraffic(fleet.agents, kit.train, {
      perAgent: LABELLED_PER_AGENT,
      batch: 20,
      label: () => true,
    });
    const stored = fleet.agents.map((a) => a.agent.labelledSamples.count());
    assert.ok(
      stored.every((n) => n === LABELLED_PER_AGENT),
      `labelled samples per agent: ${stored.join(', ')}`,
    );

    // The round's held-out evaluation set, and the fleet's own held-out digits, are disjoint.
    const roundEval = slice(kit.test, 256, 1256);
    const fleetHeldOut = slice(kit.test, 1256, 2000);
    await call(
      'PUT',
      '/v1/eval-sets/heldout',
      encodeEvalData(roundEval),
      'application/octet-stream',
    );
    await call('PUT', `/v1/models/${MODEL}/policy`, { riskTier: 'low', autoPromote: true });
    const before = await runTraffic(fleet.agents, fleetHeldOut, { perAgent: 40, batch: 20 });
    const v1 = before['1.0.0']!;
    assert.ok(v1.total > 0, JSON.stringify(before));

    // 2. The round (FedAvg, the default strategy).
    const round = await runRound('1.0.0', { kind: 'fedavg' });
    assert.equal(round.status, 'promoted', `${round.reason ?? ''} ${round.error ?? ''}`);
    assert.equal(round.counts.selected, FLEET_SIZE);
    assert.equal(round.counts.accepted, FLEET_SIZE, JSON.stringify(round.rejections));
    assert.ok(round.evaluation, 'the candidate was evaluated');
    assert.ok(
      round.evaluation.candidateAccuracy > round.evaluation.championAccuracy,
      JSON.stringify(round.evaluation),
    );
    const version = round.candidate?.version;
    assert.ok(version, 'a candidate version was registered');

    // Its lineage names the round and its parent.
    const { lineage } = await call<{
      lineage: Array<{ version: string; lineage: { producer?: Record<string, unknown> } }>;
    }>('GET', `/v1/models/${MODEL}/versions/${round.candidate!.release}/lineage`);
    assert.deepEqual(
      lineage.map((v) => v.version),
      [version, '1.0.0'],
    );
    assert.equal(lineage[0]!.lineage.producer?.['roundId'], round.id, JSON.stringify(lineage[0]));

    // 3. The rollout of the candidate, and the fleet's accuracy on digits no one trained or evaluated on.
    const rollout = await api.finished(round.rolloutId!, 90_000);
    assert.equal(rollout.status, 'completed', rollout.reason ?? '');
    const afterTraffic = await runTraffic(fleet.agents, fleetHeldOut, { perAgent: 40, batch: 20 });
    const v2 = afterTraffic[version];
    assert.ok(v2 && v2.total === v1.total, JSON.stringify(afterTraffic));
    const accuracy = (r: { correct: number; total: number }) => r.correct / r.total;
    const percent = (x: number) => `${(x * 100).toFixed(1)}%`;
    t.diagnostic(
      `round eval: champion ${percent(round.evaluation.championAccuracy)}, candidate ${percent(round.evaluation.candidateAccuracy)}; fleet held-out: v1 ${percent(accuracy(v1))}, ${version} ${percent(accuracy(v2))}`,
    );
    assert.ok(
      accuracy(v2) > accuracy(v1) + 0.02,
      `held-out accuracy ${(accuracy(v1) * 100).toFixed(1)}% -> ${(accuracy(v2) * 100).toFixed(1)}%`,
    );
  });

  it('keeps a round with a fifth of the fleet Byzantine within 2 points under the trimmed mean', async (t) => {
    byzantineOn = true;
    const { versions } = await call<{ versions: Array<{ version: string; release: number }> }>(
      'GET',
      `/v1/models/${MODEL}/versions`,
    );
    const champion = versions.reduce((a, b) => (b.release > a.release ? b : a));
    const round = await runRound(champion.version, { kind: 'trimmed-mean', beta: 0.2 });
    assert.ok(
      ['promoted', 'rejected'].includes(round.status),
      `${round.status}: ${round.reason ?? ''} ${round.error ?? ''}`,
    );
    // The NaN update is refused and counted; the sign-flipped ones pass every check.
    assert.equal(round.rejections['non-finite'], 1, JSON.stringify(round.rejections));
    assert.equal(round.counts.accepted, FLEET_SIZE - 1);
    const { candidateAccuracy, championAccuracy } = round.evaluation!;
    t.diagnostic(
      `Byzantine round (trimmed mean 0.2): champion ${(championAccuracy * 100).toFixed(1)}%, candidate ${(candidateAccuracy * 100).toFixed(1)}%, ${round.status}`,
    );
    assert.ok(candidateAccuracy >= championAccuracy - 0.02, JSON.stringify(round.evaluation));
  });
});
