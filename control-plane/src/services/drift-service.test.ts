/**
 * Drift flushes received through the path MQTT messages take
 * (`rollouts.onDeviceMessage` on a device's telemetry topic): each refusal
 * stores nothing and is counted by reason in /metrics; refusals of the
 * envelope itself (unsigned, another key, oversized, not JSON) are thrown
 * by verification before the drift service sees them, as for every device
 * message. Late flushes are counted and still reach the cumulative view.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'drizzle-orm';
import {
  MAX_DEVICE_MESSAGE_BYTES,
  signEnvelope,
  toBase64,
  DEVICE_MESSAGE_PAYLOAD_TYPE,
  type DriftReportMessage,
  type Signer,
} from '@fleet/protocol';
import { canonicalJson } from '@fleet/protocol';
import { driftFlushes } from '../db/schema/index.ts';
import { startDriftFleet, metricValue, type DriftFleet } from '../__fixtures__/drift-fleet.ts';
import { CLEAN, driftMessage, sketchTraffic } from '../core/drift/__fixtures__/drift-fixtures.ts';

let f: DriftFleet;
let device: { id: string; signer: Signer };
let other: { id: string; signer: Signer };
before(async () => {
  f = await startDriftFleet();
  device = await f.t.enrolDevice({ id: 'drift-dev-1', tags: { cohort: 'a' } });
  other = await f.t.enrolDevice({ id: 'drift-dev-2' });
});
after(() => f.t.close());

const sketches = sketchTraffic(200, 5, CLEAN);
let seq = 0;
const WINDOW_END = '2026-11-26T11:59:45.000Z'; // NOW_MS is 12:00:00

function flush(fields: Partial<DriftReportMessage> = {}): DriftReportMessage {
  seq += 1;
  return {
    ...driftMessage({
      deviceId: device.id,
      seq,
      id: `flush-${seq}-0000`,
      end: WINDOW_END,
      sketches,
      sampled: 200,
      model: f.model,
    }),
    ...fields,
  };
}

const stored = async () =>
  (await f.t.cp.database.db.select({ n: sql<number>`count(*)::int` }).from(driftFlushes))[0]!.n;
const metrics = async () => (await f.t.call('GET', '/metrics', { token: null })).text();
const counted = async (result: string) =>
  metricValue(await metrics(), 'fleet_drift_flushes_total', { result });
const wire = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/** Sends `message`; checks that nothing was stored and `result` was counted once more. */
async function refusedAs(result: string, message: DriftReportMessage): Promise<void> {
  const before = [await stored(), await counted(result)];
  await f.send(device, message);
  assert.deepEqual([await stored(), await counted(result)], [before[0], before[1]! + 1], result);
}

describe('drift flushes received', () => {
  it('stores a verified flush and counts it accepted', async () => {
    await f.send(device, flush());
    assert.equal(await stored(), 1);
    assert.equal(await counted('accepted'), 1);
    const [row] = await f.t.cp.database.db.select().from(driftFlushes);
    assert.deepEqual(row!.labels, { cohort: 'a' });
    assert.equal(row!.windowEnd.toISOString(), '2026-11-26T12:00:00.000Z');
  });

  it('refuses a replayed flush id, and a reused seq under a new id', async () => {
    const first = flush();
    await f.send(device, first);
    await refusedAs('replayed', first);
    await refusedAs('seq_reused', { ...first, id: 'another-flush-id' });
  });

  it('refuses unknown bundles, a wrong name for a bundle, and a bundle without a profile', async () => {
    await refusedAs('unknown_bundle', flush({ model: { ...f.model, bundleId: 'f'.repeat(64) } }));
    await refusedAs('model_mismatch', flush({ model: { ...f.model, release: 6 } }));
    await refusedAs('no_profile', flush({ model: f.plainModel }));
  });

  it('refuses signals that do not match the profile, and corrupt sketches', async () => {
    const missing = flush();
    missing.signals = missing.signals.slice(1);
    await refusedAs('signal_mismatch', missing);
    const corrupt = flush();
    corrupt.signals[3]!.sketch = toBase64(new Uint8Array(64).fill(0xee));
    await refusedAs('malformed', corrupt);
    await refusedAs('malformed', flush({ sampled: 100 })); // 200 values per signal
  });

  it('refuses a window far in the future', async () => {
    const end = '2026-11-26T12:30:00.000Z';
    await refusedAs('bad_window', flush({ window: { start: end, end } }));
  });

  it('throws, storing and counting nothing, for unsigned, wrongly signed, oversized or junk envelopes', async () => {
    const driftLines = async () =>
      (await metrics()).split('\n').filter((l) => l.startsWith('fleet_drift_flushes_total'));
    const before = [await stored(), await driftLines()];
    const message = flush();
    const payload = canonicalJson({ deviceId: device.id, message });
    const unsigned = { ...signEnvelope(DEVICE_MESSAGE_PAYLOAD_TYPE, payload, [device.signer]) };
    unsigned.signatures = [];
    await assert.rejects(f.deliver(device.id, wire(unsigned)), /BAD_SIGNATURE/);
    const byOther = signEnvelope(DEVICE_MESSAGE_PAYLOAD_TYPE, payload, [other.signer]);
    await assert.rejects(f.deliver(device.id, wire(byOther)), /BAD_SIGNATURE/);
    const huge = flush();
    huge.signals[0]!.sketch = toBase64(new Uint8Array(17 * 1024));
    const hugeEnvelope = signEnvelope(
      DEVICE_MESSAGE_PAYLOAD_TYPE,
      canonicalJson({ deviceId: device.id, message: huge }),
      [device.signer],
    );
    await assert.rejects(
      f.deliver(device.id, wire(hugeEnvelope)),
      /MALFORMED.*at most 16384 bytes/,
    );
    const padded = new Uint8Array(MAX_DEVICE_MESSAGE_BYTES + 1).fill(0x20);
    await assert.rejects(f.deliver(device.id, padded), /TOO_LARGE/);
    await assert.rejects(f.deliver(device.id, wire({ not: 'an envelope' })), /MALFORMED/);
    assert.deepEqual([await stored(), await driftLines()], before);
  });

  it('ignores a revoked device', async () => {
    const revoked = await f.t.enrolDevice({ id: 'drift-dev-revoked' });
    await f.t.call('POST', `/v1/devices/${revoked.id}/revoke`, { json: { reason: 'lost' } });
    const before = await stored();
    await f.send(revoked, { ...flush(), deviceId: revoked.id });
    assert.equal(await stored(), before);
  });

  it('counts a flush for a scored window as late and still merges it into the cumulative view', async () => {
    const drift = f.t.cp.drift;
    f.t.clock.nowMs += 31_000; // past the window's grace
    await drift.tick();
    const cumulative = async () =>
      (await f.t
        .call('GET', '/v1/drift?model=mnist-2nn&cohort=cohort=a')
        .then((r) => r.json())) as {
        cohorts: Array<{ windows: unknown[]; cumulative: { flushes: number } }>;
      };
    const before = await cumulative();
    assert.equal(before.cohorts[0]!.windows.length, 1);
    const flushes = before.cohorts[0]!.cumulative.flushes;
    await f.send(device, flush());
    assert.equal(metricValue(await metrics(), 'fleet_drift_late_flushes_total'), 1);
    await drift.tick();
    const after = await cumulative();
    assert.equal(after.cohorts[0]!.windows.length, 1, 'the scored window is not scored again');
    assert.equal(after.cohorts[0]!.cumulative.flushes, flushes + 1);
  });
});
