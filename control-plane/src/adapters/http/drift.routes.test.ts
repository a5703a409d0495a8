/**
 * Drift end to end in one process, through `app.request()`: ten enrolled
 * devices send signed flushes built with the real sketches, eight (cohort
 * a) of clean traffic and two (cohort b) of shifted traffic; the scorer
 * runs on the test's clock. Cohort b is flagged with the signals that moved,
 * once, and cleared when its traffic is clean again; cohort a never is. The
 * alert is in the API, the audit log and /metrics. Then the query refusals.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Signer } from '@fleet/protocol';
import { startDriftFleet, metricValue, type DriftFleet } from '../../__fixtures__/drift-fleet.ts';
import {
  CLEAN,
  SHIFTED,
  driftMessage,
  sketchTraffic,
  type Traffic,
} from '../../core/drift/__fixtures__/drift-fixtures.ts';

let f: DriftFleet;
const devices: Array<{ id: string; signer: Signer; cohort: 'a' | 'b' }> = [];
const T0 = Date.parse('2026-11-26T12:00:00Z'); // the fixture's clock starts here
const MINUTE = 60_000;

before(async () => {
  f = await startDriftFleet();
  for (let i = 0; i < 10; i++) {
    const cohort = i < 8 ? 'a' : 'b';
    const d = await f.t.enrolDevice({ id: `cam-${i}`, tags: { cohort, site: 'x' } });
    devices.push({ ...d, cohort });
  }
});
after(() => f.t.close());

const json = async <T = Record<string, unknown>>(res: Response | Promise<Response>) =>
  (await (await res).json()) as T;
const get = (path: string, token = f.t.tokens.viewer) => f.t.call('GET', path, { token });

interface WindowView {
  end: string;
  verdict: string;
  devices: number;
  sampled: number;
  driftedSignals: string[];
  signals: Array<{ name: string; drifted: boolean; distances: Record<string, number> }>;
}
interface Status {
  model: { version: string };
  cohorts: Array<{
    cohort: string;
    windows: WindowView[];
    cumulative: { flushes: number } | null;
    alert: { cohort: string } | null;
  }>;
}

/** Every device flushes 300 samples of window `n` (ending T0 + n minutes), then the scorer runs past its grace. */
async function window(n: number, cohortB: Traffic): Promise<void> {
  const end = T0 + n * MINUTE;
  for (const [i, d] of devices.entries()) {
    const traffic = d.cohort === 'b' ? cohortB : CLEAN;
    const message = driftMessage({
      deviceId: d.id,
      seq: n,
      id: `w${n}-${d.id}-flush`,
      end: new Date(end - 15_000).toISOString(),
      sketches: sketchTraffic(300, n * 100 + i, traffic),
      sampled: 300,
      model: f.model,
    });
    await f.send(d, message);
  }
  f.t.clock.nowMs = end + 31_000;
  await f.t.cp.drift.tick();
}

const byCohort = (status: Status) => new Map(status.cohorts.map((c) => [c.cohort, c]));

describe('drift end to end', () => {
  it('flags the shifted cohort in its first window, not the clean one, and alerts once', async () => {
    await window(1, SHIFTED);
    const status = byCohort(await json<Status>(get('/v1/drift?model=mnist-2nn')));
    assert.deepEqual([...status.keys()], ['*', 'cohort=a', 'cohort=b']);
    const b = status.get('cohort=b')!.windows[0]!;
    assert.equal(b.verdict, 'drifted');
    assert.equal(b.devices, 2);
    assert.equal(b.sampled, 600);
    for (const name of ['input.0', 'input.5', 'confidence'])
      assert.ok(b.driftedSignals.includes(name));
    const input = b.signals.find((s) => s.name === 'input.0')!;
    assert.ok(input.distances.ks! > 0.25, `ks ${input.distances.ks}`);
    assert.equal(status.get('cohort=a')!.windows[0]!.verdict, 'clean');
    assert.deepEqual(status.get('cohort=a')!.windows[0]!.driftedSignals, []);
    assert.equal(status.get('cohort=b')!.alert?.cohort, 'cohort=b');
    assert.equal(status.get('cohort=a')!.alert, null);

    const alerts = await json<{
      alerts: Array<{ cohort: string; signals: Array<{ name: string }> }>;
    }>(get('/v1/drift/alerts?model=mnist-2nn&open=true'));
    // The whole fleet (*) moved too (a fifth of it is shifted): it may be flagged on its own.
    const alerted = alerts.alerts.map((a) => a.cohort);
    assert.ok(alerted.includes('cohort=b') && !alerted.includes('cohort=a'), String(alerted));
    assert.equal(alerted.includes('*'), status.get('*')!.windows[0]!.verdict === 'drifted');
    const audit = await json<{
      entries: Array<{ action: string; subject: string; after: Record<string, unknown> }>;
    }>(get('/v1/audit?limit=500'));
    const raised = audit.entries.filter(
      (e) => e.action === 'drift.alert' && e.after.cohort === 'cohort=b',
    );
    assert.equal(raised.length, 1);
    assert.equal(raised[0]!.subject, 'model:mnist-2nn@1.2.0');
    assert.equal(raised[0]!.after.cohort, 'cohort=b');
    const named = raised[0]!.after.signals as Array<{ name: string; distances: { ks?: number } }>;
    assert.ok(named.some((s) => s.name === 'input.0' && s.distances.ks! > 0.25));

    const metrics = await (await f.t.call('GET', '/metrics', { token: null })).text();
    const labels = { model: 'mnist-2nn', version: '1.2.0' };
    assert.equal(
      metricValue(metrics, 'fleet_drift_cohort_drifted', { ...labels, cohort: 'cohort=b' }),
      1,
    );
    assert.equal(
      metricValue(metrics, 'fleet_drift_cohort_drifted', { ...labels, cohort: 'cohort=a' }),
      0,
    );
    assert.ok(
      metricValue(metrics, 'fleet_drift_signal_distance', {
        ...labels,
        cohort: 'cohort=b',
        signal: 'input.0',
        metric: 'ks',
      }) > 0.25,
    );
    assert.equal(
      metricValue(metrics, 'fleet_drift_alerts_total', { event: 'opened' }),
      alerted.length,
    );
    assert.equal(metricValue(metrics, 'fleet_drift_flushes_total', { result: 'accepted' }), 10);
  });

  it('does not raise it again while the cohort stays drifted, and clears it when it is clean', async () => {
    const alertsOfB = async (query = '') =>
      (
        await json<{ alerts: Array<{ cohort: string; cleared: { windowEnd: string } | null }> }>(
          get(`/v1/drift/alerts?model=mnist-2nn${query}`),
        )
      ).alerts.filter((a) => a.cohort === 'cohort=b');
    await window(2, SHIFTED);
    assert.equal((await alertsOfB()).length, 1);
    await window(3, CLEAN);
    const status = byCohort(await json<Status>(get('/v1/drift?model=mnist-2nn@1.2.0')));
    assert.deepEqual(
      status.get('cohort=b')!.windows.map((w) => w.verdict),
      ['drifted', 'drifted', 'clean'],
    );
    assert.deepEqual(
      status.get('cohort=a')!.windows.map((w) => w.verdict),
      ['clean', 'clean', 'clean'],
    );
    assert.equal(status.get('cohort=b')!.alert, null);
    assert.equal(status.get('cohort=b')!.cumulative!.flushes, 6);
    const cleared = await alertsOfB('&open=false');
    assert.equal(cleared.length, 1);
    assert.equal(cleared[0]!.cleared!.windowEnd, new Date(T0 + 3 * MINUTE).toISOString());
    assert.deepEqual(await alertsOfB('&open=true'), []);
    const audit = await json<{
      entries: Array<{ action: string; after: { cohort?: string } }>;
    }>(get('/v1/audit?limit=500'));
    assert.deepEqual(
      audit.entries
        .filter((e) => e.action.startsWith('drift.') && e.after.cohort === 'cohort=b')
        .map((e) => e.action),
      ['drift.alert', 'drift.cleared'],
    );
    const metrics = await (await f.t.call('GET', '/metrics', { token: null })).text();
    assert.equal(
      metricValue(metrics, 'fleet_drift_cohort_drifted', { cohort: 'cohort=b', version: '1.2.0' }),
      0,
    );
  });

  it('filters by cohort and time, newest windows last', async () => {
    const since = new Date(T0 + 2 * MINUTE).toISOString();
    const status = await json<Status>(
      get(`/v1/drift?model=mnist-2nn&cohort=cohort=b&since=${since}`),
    );
    assert.deepEqual(
      status.cohorts.map((c) => [c.cohort, c.windows.map((w) => w.end)]),
      [['cohort=b', [new Date(T0 + 3 * MINUTE).toISOString()]]],
    );
    const limited = await json<Status>(get('/v1/drift?model=mnist-2nn&cohort=*&limit=2'));
    assert.equal(limited.cohorts[0]!.windows.length, 2);
    assert.equal(limited.cohorts[0]!.windows[1]!.end, new Date(T0 + 3 * MINUTE).toISOString());
    const empty = await json<Status>(get('/v1/drift?model=mnist-2nn&cohort=site=y'));
    assert.deepEqual(empty.cohorts, [
      { cohort: 'site=y', windows: [], cumulative: null, alert: null },
    ]);
  });
});

describe('drift routes refuse', () => {
  const refused = async (path: string, status: number, code: string, message?: RegExp) => {
    const res = await get(path);
    assert.equal(res.status, status, path);
    const error = (await json<{ error: { code: string; message: string } }>(res)).error;
    assert.equal(error.code, code);
    if (message) assert.match(error.message, message);
  };

  it('bad query parameters with 400 naming the field', async () => {
    await refused('/v1/drift', 400, 'INVALID_REQUEST', /^model: /);
    await refused(
      '/v1/drift?model=Not%20A%20Model',
      400,
      'INVALID_REQUEST',
      /^model: expected NAME or NAME@VERSION/,
    );
    await refused(
      '/v1/drift?model=m&cohort=nokey',
      400,
      'INVALID_REQUEST',
      /^cohort: expected KEY=VALUE/,
    );
    await refused('/v1/drift?model=m&since=yesterday', 400, 'INVALID_REQUEST', /^since: /);
    await refused('/v1/drift?model=m&limit=0', 400, 'INVALID_REQUEST', /^limit: /);
    await refused('/v1/drift/alerts?open=yes', 400, 'INVALID_REQUEST', /^open: /);
  });

  it('unknown models and versions with 404', async () => {
    await refused('/v1/drift?model=nope', 404, 'NOT_FOUND', /no model nope/);
    await refused('/v1/drift?model=mnist-2nn@9.9.9', 404, 'NOT_FOUND', /no version 9\.9\.9/);
    await refused('/v1/drift/alerts?model=nope', 404, 'NOT_FOUND');
  });

  it('requests without a token with 401', async () => {
    for (const path of ['/v1/drift?model=mnist-2nn', '/v1/drift/alerts']) {
      const res = await f.t.call('GET', path, { token: null });
      assert.equal(res.status, 401);
    }
  });

  it('nothing for a model version without drift data: it has no cohorts', async () => {
    const status = await json<Status>(get('/v1/drift?model=plain'));
    assert.deepEqual(status.cohorts, []);
  });
});
