/**
 * Model health over one window, as the health message reports it and as
 * probation judges it: request and error counts, latency quantiles and the
 * mean confidence of successful inferences. Pure: the caller passes every
 * time, in epoch milliseconds.
 *
 * Latency goes into a fixed histogram of log-spaced buckets, so a window
 * costs the same few kilobytes however many requests it sees:
 *
 *   bucket 0              [0, 0.01) ms
 *   bucket k (1..184)     [0.01 * r^(k-1), 0.01 * r^k) ms, r = 2^(1/8)
 *   bucket 185            [0.01 * r^184, ∞) ms  (from about 84 s)
 *
 * A quantile reports the geometric middle of its bucket, clamped to the
 * smallest and largest latency seen. Inside the log-spaced range the
 * reported value is therefore within a factor r^(1/2) = 2^(1/16) of the
 * true sample quantile: at most 4.4% off, either way. Below
 * 0.01 ms it is off by at most 0.005 ms; above 84 s it is the largest latency
 * seen. Quantiles use the nearest-rank definition (the ceil(q * n)-th
 * smallest latency), so p50 <= p95 <= p99 always holds.
 */
import type { HealthMessage, ProbationPolicy } from '@fleet/protocol';

/** The window fields of a health message (it adds the header, model and probation). */
export type HealthSnapshot = Pick<
  HealthMessage,
  'windowStart' | 'windowEnd' | 'requests' | 'errors' | 'latencyMs' | 'meanConfidence'
>;

/** One request: a success carries the mean confidence of its rows, an error none. */
export type HealthRecord =
  | {
      ok: true;
      latencyMs: number;
      /** Mean of the per-row confidences (max probability), in [0, 1]. */
      confidence: number;
      /** Rows the request inferred (default 1); weights its confidence in the mean. */
      samples?: number;
    }
  | { ok: false; latencyMs: number };

export interface HealthWindow {
  /** Counts one request, failed or not; the latency of every request goes into the quantiles. */
  record(entry: HealthRecord): void;
  /** The window from its start to `endMs` (clamped to the start if earlier); changes nothing. */
  snapshot(endMs: number): HealthSnapshot;
  /** Empties the window and starts it again at `startMs`. */
  reset(startMs: number): void;
}

const MIN_BOUND_MS = 0.01;
const STEPS_PER_DOUBLING = 8;
const LOG_BUCKETS = 184; // 0.01 ms * 2^(184/8) = 0.01 * 2^23 ms ≈ 84 s
const BUCKETS = LOG_BUCKETS + 2;
const RATIO = 2 ** (1 / STEPS_PER_DOUBLING);

/** Lower bound of bucket `k` (1..LOG_BUCKETS+1), in ms. */
function lowerBound(k: number): number {
  return MIN_BOUND_MS * RATIO ** (k - 1);
}

function bucketOf(latencyMs: number): number {
  if (latencyMs < MIN_BOUND_MS) return 0;
  const k = Math.floor(Math.log2(latencyMs / MIN_BOUND_MS) * STEPS_PER_DOUBLING) + 1;
  // Floating-point log can land one bucket off at an exact bound; correct it.
  if (k <= LOG_BUCKETS && latencyMs >= lowerBound(k + 1)) return k + 1;
  if (k > 1 && latencyMs < lowerBound(k)) return k - 1;
  return Math.min(k, BUCKETS - 1);
}

/** The value a quantile landing in bucket `k` reports, before clamping to [min, max]. */
function representative(k: number): number {
  if (k === 0) return MIN_BOUND_MS / 2;
  if (k === BUCKETS - 1) return Infinity; // clamped to the largest latency seen
  return Math.sqrt(lowerBound(k) * lowerBound(k + 1));
}

export function createHealthWindow(startMs: number): HealthWindow {
  let windowStartMs = startMs;
  let requests = 0;
  let errors = 0;
  let confidenceSum = 0;
  let confidenceSamples = 0;
  let minLatency = Infinity;
  let maxLatency = 0;
  const counts = new Uint32Array(BUCKETS);

  function quantile(q: number): number {
    if (requests === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * requests));
    let seen = 0;
    for (let k = 0; k < BUCKETS; k++) {
      seen += counts[k]!;
      if (seen >= rank) return Math.min(maxLatency, Math.max(minLatency, representative(k)));
    }
    return maxLatency;
  }

  return {
    record(entry) {
      checkRecord(entry);
      requests++;
      counts[bucketOf(entry.latencyMs)]!++;
      minLatency = Math.min(minLatency, entry.latencyMs);
      maxLatency = Math.max(maxLatency, entry.latencyMs);
      if (entry.ok) {
        const samples = entry.samples ?? 1;
        confidenceSum += entry.confidence * samples;
        confidenceSamples += samples;
      } else {
        errors++;
      }
    },
    snapshot(endMs) {
      const successes = requests - errors;
      return {
        windowStart: new Date(windowStartMs).toISOString(),
        windowEnd: new Date(Math.max(windowStartMs, endMs)).toISOString(),
        requests,
        errors,
        latencyMs: { p50: quantile(0.5), p95: quantile(0.95), p99: quantile(0.99) },
        meanConfidence:
          successes === 0 ? null : Math.min(1, Math.max(0, confidenceSum / confidenceSamples)),
      };
    },
    reset(newStartMs) {
      windowStartMs = newStartMs;
      requests = errors = confidenceSum = confidenceSamples = maxLatency = 0;
      minLatency = Infinity;
      counts.fill(0);
    },
  };
}

/** Records come from the agent's own code: a bad one is a bug, refused loudly. */
function checkRecord(entry: HealthRecord): void {
  if (!(entry.latencyMs >= 0) || !Number.isFinite(entry.latencyMs)) {
    throw new RangeError(`latencyMs must be a finite number >= 0, got ${entry.latencyMs}`);
  }
  if (!entry.ok) return;
  if (!(entry.confidence >= 0 && entry.confidence <= 1)) {
    throw new RangeError(`confidence must be in [0, 1], got ${entry.confidence}`);
  }
  const samples = entry.samples ?? 1;
  if (!Number.isInteger(samples) || samples < 1) {
    throw new RangeError(`samples must be a positive integer, got ${samples}`);
  }
}

export type ProbationJudgement = {
  verdict: 'pass' | 'fail' | 'insufficient';
  reason: string;
};

/**
 * Judges a probation window against the rollout's health gates: error rate
 * at most `maxErrorRate`, p95 latency at most `maxLatencyP95Ms`, mean
 * confidence at least `minMeanConfidence` (bounds inclusive). Fewer than
 * `minRequests` requests is `insufficient`: too little traffic to judge.
 * Every failing gate is named in `reason`.
 *
 * p95 comes from the histogram above, so it can be up to 4.4% off: a window
 * whose true p95 is within that of the limit may be judged either way.
 *
 * @example
 *   judgeProbation(window.snapshot(nowMs), deploy.probation, 20)
 *   // { verdict: 'fail', reason: 'error rate 0.12 is above 0.05' }
 */
export function judgeProbation(
  snapshot: HealthSnapshot,
  policy: ProbationPolicy,
  minRequests: number,
): ProbationJudgement {
  if (!Number.isInteger(minRequests) || minRequests < 0) {
    throw new RangeError(`minRequests must be an integer >= 0, got ${minRequests}`);
  }
  const { requests, errors, latencyMs, meanConfidence } = snapshot;
  if (requests < minRequests) {
    return {
      verdict: 'insufficient',
      reason: `${requests} requests in the window, at least ${minRequests} are needed to judge`,
    };
  }
  if (requests === 0) {
    return { verdict: 'pass', reason: 'no requests in the window, and none are required' };
  }
  const failures: string[] = [];
  const errorRate = errors / requests;
  if (errorRate > policy.maxErrorRate) {
    failures.push(
      `error rate ${round(errorRate)} (${errors}/${requests}) is above ${policy.maxErrorRate}`,
    );
  }
  if (latencyMs.p95 > policy.maxLatencyP95Ms) {
    failures.push(`p95 latency ${round(latencyMs.p95)} ms is above ${policy.maxLatencyP95Ms} ms`);
  }
  if (meanConfidence === null) {
    failures.push('no inference succeeded, so confidence cannot be judged');
  } else if (meanConfidence < policy.minMeanConfidence) {
    failures.push(`mean confidence ${round(meanConfidence)} is below ${policy.minMeanConfidence}`);
  }
  if (failures.length > 0) return { verdict: 'fail', reason: failures.join('; ') };
  return {
    verdict: 'pass',
    reason: `${requests} requests: error rate ${round(errorRate)}, p95 ${round(latencyMs.p95)} ms, mean confidence ${round(meanConfidence!)}`,
  };
}

function round(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}
