/**
 * Federated round eligibility from the labelled samples devices report (health
 * `feedback.stored`, kept in the devices table by the rollout service): a
 * device reporting fewer than the round's minSamples is not selected, one
 * reporting enough is, and one that never reported is (unknown counts as
 * enough). The count is written only when it changes, and shown in the device view.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { deviceTopic, signDeviceMessage, utf8, type HealthMessage } from '@fleet/protocol';
import { startFlFleet, type FlDevice, type FlFleet } from '../__fixtures__/fl-fleet.ts';

let f: FlFleet;
let few: FlDevice;
let many: FlDevice;
let unknown: FlDevice;
const TAGS = { site: 'eligibility' };

before(async () => {
  f = await startFlFleet();
  few = await f.device('fl-few', { tags: TAGS });
  many = await f.device('fl-many', { tags: TAGS });
  unknown = await f.device('fl-unknown', { tags: TAGS });
});
after(() => f.close());

let counter = 0;

/** Delivers a signed health report carrying `feedback` (through the MQTT path). */
async function reportHealth(device: FlDevice, feedback?: HealthMessage['feedback']): Promise<void> {
  const ts = new Date(f.clock.nowMs).toISOString();
  const message: HealthMessage = {
    type: 'health',
    id: `health-${device.id}-${++counter}`,
    schemaVersion: 1,
    ts,
    model: { name: f.model.name, version: f.model.version, release: f.model.release },
    windowStart: ts,
    windowEnd: ts,
    requests: 0,
    errors: 0,
    latencyMs: { p50: 0, p95: 0, p99: 0 },
    meanConfidence: null,
    probation: false,
    ...(feedback ? { feedback } : {}),
  };
  await f.cp.rollouts.onDeviceMessage(
    deviceTopic(device.id, 'telemetry'),
    utf8(
      JSON.stringify(signDeviceMessage({ deviceId: device.id, message, signer: device.signer })),
    ),
  );
}

async function startRound(minSamples: number) {
  const { round } = await f.cp.fl.startRound({
    model: { name: 'mnist-2nn' },
    config: {
      fraction: 1,
      minClients: 2,
      minSamples,
      maxSamples: 1000,
      clipNorm: 1,
      encoding: 'float32',
      deadlineMs: 600_000,
    },
    target: { tags: TAGS },
    evalSet: 'mnist-holdout',
    trigger: { kind: 'operator', detail: null },
    actor: 'token:test',
  });
  return round;
}

async function deviceView(id: string) {
  const res = await f.call('GET', `/v1/devices/${id}`);
  assert.equal(res.status, 200);
  return (await res.json()) as { labelledSamples: { count: number; at: string } | null };
}

describe('federated round eligibility from reported labelled samples', () => {
  it('skips a device reporting fewer than minSamples, selects one reporting enough and one never reporting', async () => {
    await reportHealth(few, { labelled: 0, correct: 0, stored: 5 });
    await reportHealth(many, { labelled: 2, correct: 1, stored: 50 });
    await reportHealth(unknown); // health without feedback: count still unknown
    const round = await startRound(10);
    assert.equal(round.status, 'collecting');
    assert.deepEqual([...round.snapshot.selected].sort(), ['fl-many', 'fl-unknown']);
    const sent = f.published.filter((p) => p.message['roundId'] === round.id);
    assert.deepEqual(sent.map((p) => p.topic).sort(), [
      deviceTopic('fl-many', 'cmd'),
      deviceTopic('fl-unknown', 'cmd'),
    ]);

    assert.equal((await deviceView('fl-few')).labelledSamples?.count, 5);
    assert.equal((await deviceView('fl-many')).labelledSamples?.count, 50);
    assert.equal((await deviceView('fl-unknown')).labelledSamples, null);
  });

  it('fails when the reported counts leave fewer than minClients, counting the devices under minSamples', async () => {
    const round = await startRound(60);
    assert.equal(round.status, 'failed');
    assert.match(round.snapshot.reason ?? '', /1 eligible device.*2 under 60 labelled samples/);
  });

  it('writes the count only when it changes, and a later report makes the device eligible', async () => {
    const at = (await deviceView('fl-few')).labelledSamples!.at;
    f.clock.nowMs += 60_000;
    await reportHealth(few, { labelled: 0, correct: 0, stored: 5 });
    assert.equal((await deviceView('fl-few')).labelledSamples!.at, at, 'unchanged: not written');
    await reportHealth(few, { labelled: 0, correct: 0, stored: 12 });
    const view = (await deviceView('fl-few')).labelledSamples!;
    assert.deepEqual(view, { count: 12, at: new Date(f.clock.nowMs).toISOString() });
    const round = await startRound(10);
    assert.ok(round.snapshot.selected.includes('fl-few'));
  });
});
