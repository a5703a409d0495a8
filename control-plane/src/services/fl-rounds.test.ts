/**
 * Federated rounds end to end in one process (in-memory control plane, fake
 * candidate pipeline, signed updates through the MQTT path): a round from
 * start to promoted with real encoded updates, an approval, stragglers at
 * the deadline, too few updates, the x100 update scaled to the clip bound
 * before aggregation, and a restart while evaluating that resumes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { globalL2Norm, subtractTensors, type NamedTensor } from '@fleet/protocol';
import { createFlStore } from '../adapters/db/fl-store.ts';
import {
  BASE,
  SHAPES,
  startFlFleet,
  tensorsOf,
  updateMessages,
  type FlDevice,
  type FlFleet,
} from '../__fixtures__/fl-fleet.ts';
import { createFlRounds } from './fl-rounds.ts';
import { pino } from 'pino';

let f: FlFleet;
const devices: FlDevice[] = [];

before(async () => {
  f = await startFlFleet();
  for (let i = 0; i < 4; i++)
    devices.push(await f.device(`fl-dev-${i}`, { tags: { site: 'lab' } }));
  await f.device('fl-other', {
    tags: { site: 'lab' },
    model: { ...f.model, bundleId: 'e'.repeat(64) },
  });
});
after(() => f.close());

const config = (over: Record<string, unknown> = {}) => ({
  fraction: 1,
  minClients: 2,
  clipNorm: 1,
  encoding: 'float32',
  deadlineMs: 600_000,
  ...over,
});

async function startRound(over: Record<string, unknown> = {}) {
  const { round } = await f.cp.fl.startRound({
    model: { name: 'mnist-2nn' },
    config: config(over),
    target: { tags: { site: 'lab' } },
    evalSet: 'mnist-holdout',
    rollout: { waves: '50%,all' },
    trigger: { kind: 'operator', detail: null },
    actor: 'token:test',
  });
  return round;
}

async function send(device: FlDevice, roundId: string, tensors: NamedTensor[], extra = {}) {
  const { header, parts } = updateMessages({
    deviceId: device.id,
    roundId,
    model: f.model,
    tensors,
    ...extra,
  });
  await f.deliver(device, header);
  for (const part of parts) await f.deliver(device, part);
}

const delta = (v: number) => tensorsOf((t, i) => (t === 1 && i === 0 ? v : 0));

describe('federated rounds', () => {
  it('runs a round from start to promoted: fl-train sent, updates aggregated, evaluated, built, rolled out', async () => {
    const round = await startRound();
    assert.equal(round.status, 'collecting');
    assert.deepEqual([...round.snapshot.selected].sort(), devices.map((d) => d.id).sort());
    const sent = f.published.filter((p) => p.message['roundId'] === round.id);
    assert.equal(sent.length, 4);
    assert.ok(
      sent.every(
        (p) => p.topic.endsWith('/cmd') && p.qos === 1 && p.message['type'] === 'fl-train',
      ),
    );
    assert.deepEqual(sent[0]!.message['model'], f.model);

    for (const [i, d] of devices.entries())
      await send(d, round.id, delta(0.1 * (i + 1)), { sampleCount: 100 });
    const { round: done, updates } = await f.cp.fl.get(round.id);
    assert.equal(done.status, 'promoted', done.snapshot.reason ?? '');
    assert.equal(updates.filter((u) => u.status === 'accepted').length, 4);
    assert.deepEqual(done.outcome.candidate?.version, '1.3.0');
    assert.equal(done.outcome.rolloutId, 'r-candidate-1');
    const evaluate = f.fake.calls.find((c) => c.method === 'evaluate')!.input as {
      weights: NamedTensor[];
      evalSet: string;
    };
    assert.equal(evaluate.evalSet, 'mnist-holdout');
    // fedavg of 0.1..0.4 at one coordinate of dense_0/bias, added to the base
    const bias = evaluate.weights.find((t) => t.name === 'dense_0/bias')!;
    assert.ok(Math.abs(bias.values[0]! - (BASE[1]!.values[0]! + 0.25)) < 1e-6);
    const rollout = f.fake.calls.find((c) => c.method === 'startRollout')!.input as {
      template: Record<string, unknown>;
    };
    assert.deepEqual(rollout.template, { target: { tags: { site: 'lab' } }, waves: '50%,all' });
    const actions = (await f.cp.audit.list())
      .filter((e) => e.subject === round.id)
      .map((e) => e.action);
    for (const a of [
      'fl.round-created',
      'fl.round-started',
      'fl.collection-closed',
      'fl.aggregated',
      'fl.evaluated',
      'fl.promoted',
      'fl.candidate-built',
      'fl.rollout-started',
    ]) {
      assert.ok(actions.includes(a), `${a} in ${actions.join(', ')}`);
    }
  });

  it('waits for an approver when the policy says so, then promotes', async () => {
    f.fake.state.policy = { riskTier: 'high', autoPromote: false };
    const round = await startRound();
    for (const d of devices) await send(d, round.id, delta(0.05));
    assert.equal((await f.cp.fl.get(round.id)).round.status, 'awaiting-approval');
    const approved = await f.cp.fl.approve(round.id, 'token:approver');
    assert.equal(approved.round.status, 'promoted');
    assert.equal(approved.round.outcome.rolloutId, 'r-candidate-1');
    f.fake.state.policy = { riskTier: 'low', autoPromote: true };
  });

  it('closes at the deadline with stragglers, and fails with too few updates', async () => {
    const round = await startRound();
    await send(devices[0]!, round.id, delta(0.1));
    await send(devices[1]!, round.id, delta(0.1));
    f.clock.nowMs += 600_000;
    await f.cp.fl.tick();
    const closed = (await f.cp.fl.get(round.id)).round;
    assert.equal(closed.status, 'promoted');
    assert.deepEqual([...closed.snapshot.stragglers].sort(), [devices[2]!.id, devices[3]!.id]);

    const few = await startRound({ minClients: 3 });
    await send(devices[0]!, few.id, delta(0.1));
    await send(devices[1]!, few.id, [], { status: 'failed' });
    f.clock.nowMs += 600_000;
    await f.cp.fl.tick();
    const failed = (await f.cp.fl.get(few.id)).round;
    assert.equal(failed.status, 'failed');
    assert.match(failed.snapshot.reason!, /1 accepted of 4 selected \(1 failed/);
  });

  it('scales an update sent x100 (passing the int8 allowance) down to the clip bound before aggregating', async () => {
    const round = await startRound({ encoding: 'int8' });
    // One int8 value: the rounding allowance of a 78,400-value tensor exceeds the value itself.
    const attack = tensorsOf((t, i) => (t === 0 && i === 0 ? 100 : 0));
    await send(devices[0]!, round.id, attack, { encoding: 'int8' });
    for (const d of devices.slice(1))
      await send(
        d,
        round.id,
        tensorsOf(() => 0),
        { encoding: 'int8' },
      );
    const { round: done, updates } = await f.cp.fl.get(round.id);
    const attacker = updates.find((u) => u.deviceId === devices[0]!.id)!;
    assert.equal(attacker.status, 'accepted');
    assert.ok(Math.abs(attacker.scale * attacker.norm! - 1) < 1e-9);
    assert.equal(done.status, 'promoted');
    const evals = f.fake.calls.filter((c) => c.method === 'evaluate');
    const weights = (evals.at(-1)!.input as { weights: NamedTensor[] }).weights;
    const moved = globalL2Norm(subtractTensors(weights, BASE));
    assert.ok(moved <= 1 / 4 + 1e-6, `aggregate moved by ${moved}`); // fedavg over 4 equal weights
  });

  it('resumes a round stopped while evaluating when the control plane starts again', async () => {
    f.fake.state.failEvaluations = 1;
    const round = await startRound();
    for (const d of devices) await send(d, round.id, delta(0.1));
    assert.equal((await f.cp.fl.get(round.id)).round.status, 'evaluating');
    // A new process over the same database and blobs.
    await f.cp.fl.close();
    const restarted = createFlRounds({
      store: createFlStore(f.cp.database.db),
      models: { getByBundleId: () => Promise.resolve(null) } as never,
      deviceStore: {} as never,
      candidates: f.fake.port,
      blobs: f.cp.blobs,
      publish: () => Promise.resolve(),
      nowMs: () => f.clock.nowMs,
      logger: pino({ level: 'silent' }),
      tickIntervalMs: 60_000,
    });
    await restarted.start();
    await restarted.close();
    const resumed = (await restarted.get(round.id)).round;
    assert.equal(resumed.status, 'promoted');
    assert.equal(resumed.outbox.length, 0);
    assert.equal(SHAPES.length, 4);
  });
});
