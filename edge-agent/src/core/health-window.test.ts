/**
 * Health windows: counts, histogram quantiles within their documented error,
 * the meanConfidence-null rule, snapshots the protocol's health message
 * accepts, and the probation verdicts on each gate.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { healthMessageSchema, type ProbationPolicy } from '@fleet/protocol';
import { createHealthWindow, judgeProbation, type HealthSnapshot } from './health-window.ts';

const T0 = Date.parse('2026-11-26T12:00:00Z');
/** The documented bound: a reported quantile is within a factor 2^(1/16) of the true one. */
const FACTOR = 2 ** (1 / 16);

/** The snapshot as a full health message, checked by the protocol's schema. */
function asMessage(snapshot: HealthSnapshot) {
  return healthMessageSchema.parse({
    type: 'health',
    id: 'msg-00000001',
    schemaVersion: 1,
    ts: snapshot.windowEnd,
    model: { name: 'mnist-2nn', version: '1.0.0', release: 1 },
    probation: false,
    ...snapshot,
  });
}

/** Nearest-rank quantile: the ceil(q * n)-th smallest. */
function trueQuantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
}

describe('createHealthWindow', () => {
  it('reports an empty window: zero counts, zero latencies, no confidence', () => {
    const window = createHealthWindow(T0);
    const snapshot = window.snapshot(T0 + 60_000);
    assert.deepEqual(snapshot, {
      windowStart: '2026-11-26T12:00:00.000Z',
      windowEnd: '2026-11-26T12:01:00.000Z',
      requests: 0,
      errors: 0,
      latencyMs: { p50: 0, p95: 0, p99: 0 },
      meanConfidence: null,
    });
    asMessage(snapshot);
  });

  it('counts successes and errors; the latency of every request counts', () => {
    const window = createHealthWindow(T0);
    window.record({ ok: true, latencyMs: 2, confidence: 0.9 });
    window.record({ ok: false, latencyMs: 500 });
    window.record({ ok: true, latencyMs: 2, confidence: 0.7 });
    const snapshot = window.snapshot(T0 + 1000);
    assert.equal(snapshot.requests, 3);
    assert.equal(snapshot.errors, 1);
    assert.ok(Math.abs(snapshot.meanConfidence! - 0.8) < 1e-12);
    const { p50, p99 } = snapshot.latencyMs;
    assert.ok(p50 >= 2 && p50 <= 2 * FACTOR, String(p50));
    assert.ok(p99 <= 500 && p99 >= 500 / FACTOR, String(p99)); // the error's latency counts
    asMessage(snapshot);
  });

  it('reports meanConfidence null exactly when no request succeeded', () => {
    const window = createHealthWindow(T0);
    window.record({ ok: false, latencyMs: 1 });
    window.record({ ok: false, latencyMs: 3 });
    const failed = window.snapshot(T0 + 10);
    assert.deepEqual([failed.requests, failed.errors, failed.meanConfidence], [2, 2, null]);
    asMessage(failed);
    window.record({ ok: true, latencyMs: 1, confidence: 0 });
    assert.equal(window.snapshot(T0 + 10).meanConfidence, 0);
  });

  it('weights each request’s confidence by its rows', () => {
    const window = createHealthWindow(T0);
    window.record({ ok: true, latencyMs: 1, confidence: 1, samples: 3 });
    window.record({ ok: true, latencyMs: 1, confidence: 0.2 });
    assert.ok(Math.abs(window.snapshot(T0).meanConfidence! - 0.8) < 1e-12);
  });

  it('gives a single latency exactly, and 1..1000 ms within the documented bound', () => {
    const one = createHealthWindow(T0);
    one.record({ ok: true, latencyMs: 3.3, confidence: 1 });
    assert.deepEqual(one.snapshot(T0).latencyMs, { p50: 3.3, p95: 3.3, p99: 3.3 });

    const many = createHealthWindow(T0);
    const latencies = Array.from({ length: 1000 }, (_, i) => i + 1);
    for (const latencyMs of latencies) many.record({ ok: true, latencyMs, confidence: 1 });
    const { p50, p95, p99 } = many.snapshot(T0).latencyMs;
    for (const [reported, expected] of [
      [p50, 500],
      [p95, 950],
      [p99, 990],
    ] as const) {
      assert.ok(
        reported / expected <= FACTOR && expected / reported <= FACTOR,
        `${reported} vs ${expected}`,
      );
    }
    // and the histogram is not a no-op: the reported values are bucket middles, not samples
    assert.notEqual(p95, 950);
  });

  it('stays within the bound for any latencies, with p50 <= p95 <= p99', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.01, max: 80_000, noNaN: true }), {
          minLength: 1,
          maxLength: 300,
        }),
        (latencies) => {
          const window = createHealthWindow(T0);
          for (const latencyMs of latencies)
            window.record({ ok: true, latencyMs, confidence: 0.5 });
          const { latencyMs } = window.snapshot(T0);
          assert.ok(latencyMs.p50 <= latencyMs.p95 && latencyMs.p95 <= latencyMs.p99);
          for (const [q, reported] of [
            [0.5, latencyMs.p50],
            [0.95, latencyMs.p95],
            [0.99, latencyMs.p99],
          ] as const) {
            const expected = trueQuantile(latencies, q);
            assert.ok(
              reported / expected <= FACTOR * (1 + 1e-12) &&
                expected / reported <= FACTOR * (1 + 1e-12),
              `q${q}: ${reported} vs ${expected}`,
            );
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('handles latencies at bucket bounds, below 0.01 ms and above the last bucket', () => {
    const window = createHealthWindow(T0);
    for (const latencyMs of [0, 0.004, 0.01, 0.02, 1, 1024]) {
      window.reset(T0);
      window.record({ ok: true, latencyMs, confidence: 1 });
      assert.equal(window.snapshot(T0).latencyMs.p50, latencyMs); // one sample: exact
    }
    window.reset(T0);
    for (const latencyMs of [0, 0.008]) window.record({ ok: true, latencyMs, confidence: 1 });
    const tiny = window.snapshot(T0).latencyMs;
    assert.ok(Math.abs(tiny.p50 - 0) <= 0.01 && Math.abs(tiny.p99 - 0.008) <= 0.01);
    window.reset(T0);
    for (const latencyMs of [100_000, 200_000])
      window.record({ ok: true, latencyMs, confidence: 1 });
    assert.equal(window.snapshot(T0).latencyMs.p99, 200_000);
  });

  it('resets to an empty window from the new start', () => {
    const window = createHealthWindow(T0);
    window.record({ ok: false, latencyMs: 9 });
    window.reset(T0 + 5000);
    const snapshot = window.snapshot(T0 + 6000);
    assert.equal(snapshot.windowStart, '2026-11-26T12:00:05.000Z');
    assert.deepEqual([snapshot.requests, snapshot.errors, snapshot.meanConfidence], [0, 0, null]);
    assert.deepEqual(snapshot.latencyMs, { p50: 0, p95: 0, p99: 0 });
  });

  it('clamps an end before the start (a wall clock stepped back) to the start', () => {
    const snapshot = createHealthWindow(T0).snapshot(T0 - 1000);
    assert.equal(snapshot.windowEnd, snapshot.windowStart);
    asMessage(snapshot);
  });

  it('refuses records that would corrupt the window', () => {
    const window = createHealthWindow(T0);
    assert.throws(() => window.record({ ok: true, latencyMs: -1, confidence: 1 }), RangeError);
    assert.throws(() => window.record({ ok: false, latencyMs: NaN }), RangeError);
    assert.throws(() => window.record({ ok: false, latencyMs: Infinity }), RangeError);
    assert.throws(() => window.record({ ok: true, latencyMs: 1, confidence: 1.5 }), RangeError);
    assert.throws(() => window.record({ ok: true, latencyMs: 1, confidence: NaN }), RangeError);
    assert.throws(
      () => window.record({ ok: true, latencyMs: 1, confidence: 1, samples: 0 }),
      RangeError,
    );
    assert.equal(window.snapshot(T0).requests, 0);
  });
});

describe('judgeProbation', () => {
  const policy: ProbationPolicy = {
    durationMs: 60_000,
    maxErrorRate: 0.1,
    maxLatencyP95Ms: 50,
    minMeanConfidence: 0.6,
  };

  function snapshot(overrides: Partial<HealthSnapshot> = {}): HealthSnapshot {
    return {
      windowStart: '2026-11-26T12:00:00.000Z',
      windowEnd: '2026-11-26T12:01:00.000Z',
      requests: 100,
      errors: 5,
      latencyMs: { p50: 10, p95: 40, p99: 45 },
      meanConfidence: 0.9,
      ...overrides,
    };
  }

  it('passes a healthy window, with its numbers in the reason', () => {
    const judgement = judgeProbation(snapshot(), policy, 20);
    assert.equal(judgement.verdict, 'pass');
    assert.match(
      judgement.reason,
      /100 requests: error rate 0\.05, p95 40 ms, mean confidence 0\.9/,
    );
  });

  it('is insufficient below minRequests, whatever the numbers', () => {
    const judgement = judgeProbation(
      snapshot({ requests: 19, errors: 19, meanConfidence: null }),
      policy,
      20,
    );
    assert.deepEqual(judgement, {
      verdict: 'insufficient',
      reason: '19 requests in the window, at least 20 are needed to judge',
    });
  });

  it('fails each gate on its own, and names every failing gate', () => {
    const errors = judgeProbation(snapshot({ errors: 11 }), policy, 20);
    assert.deepEqual(errors.verdict, 'fail');
    assert.match(errors.reason, /^error rate 0\.11 \(11\/100\) is above 0\.1$/);
    const slow = judgeProbation(
      snapshot({ latencyMs: { p50: 10, p95: 50.5, p99: 60 } }),
      policy,
      20,
    );
    assert.match(slow.reason, /^p95 latency 50\.5 ms is above 50 ms$/);
    const unsure = judgeProbation(snapshot({ meanConfidence: 0.59 }), policy, 20);
    assert.match(unsure.reason, /^mean confidence 0\.59 is below 0\.6$/);
    const all = judgeProbation(
      snapshot({ errors: 50, latencyMs: { p50: 99, p95: 99, p99: 99 }, meanConfidence: 0.1 }),
      policy,
      20,
    );
    assert.equal(all.verdict, 'fail');
    assert.equal(all.reason.split('; ').length, 3);
  });

  it('passes values exactly at each limit', () => {
    const edge = snapshot({
      errors: 10,
      latencyMs: { p50: 50, p95: 50, p99: 50 },
      meanConfidence: 0.6,
    });
    assert.equal(judgeProbation(edge, policy, 100).verdict, 'pass');
  });

  it('fails a window where every request failed, even when the error gate allows it', () => {
    const judgement = judgeProbation(
      snapshot({ errors: 100, meanConfidence: null }),
      { ...policy, maxErrorRate: 1 },
      20,
    );
    assert.deepEqual(judgement, {
      verdict: 'fail',
      reason: 'no inference succeeded, so confidence cannot be judged',
    });
  });

  it('passes a window without traffic only when no requests are required', () => {
    const idle = snapshot({
      requests: 0,
      errors: 0,
      meanConfidence: null,
      latencyMs: { p50: 0, p95: 0, p99: 0 },
    });
    assert.equal(judgeProbation(idle, policy, 0).verdict, 'pass');
    assert.equal(judgeProbation(idle, policy, 1).verdict, 'insufficient');
    assert.throws(() => judgeProbation(idle, policy, -1), RangeError);
    assert.throws(() => judgeProbation(idle, policy, 1.5), RangeError);
  });

  it('judges what a real window measured', () => {
    const window = createHealthWindow(T0);
    for (let i = 0; i < 30; i++) window.record({ ok: true, latencyMs: 5 + i, confidence: 0.95 });
    for (let i = 0; i < 2; i++) window.record({ ok: false, latencyMs: 1 });
    assert.equal(judgeProbation(window.snapshot(T0 + 60_000), policy, 20).verdict, 'pass');
    for (let i = 0; i < 5; i++) window.record({ ok: false, latencyMs: 1 });
    const verdict = judgeProbation(window.snapshot(T0 + 60_000), policy, 20);
    assert.equal(verdict.verdict, 'fail');
    assert.match(verdict.reason, /error rate 0\.1892 \(7\/37\)/);
  });
});
