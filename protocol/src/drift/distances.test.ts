import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';
import {
  DEFAULT_DRIFT_THRESHOLDS,
  DEFAULT_GRID,
  DEFAULT_PSI_EPSILON,
  baselineSplitPoints,
  categoricalPmfs,
  hellinger,
  jensenShannonDistance,
  jsTerm,
  ksDistance,
  numericPmfs,
  pmfFromCdf,
  psi,
  scoreCategoricalSignal,
  scoreNumericSignal,
  wasserstein1,
  wassersteinNormalized,
  wassersteinScale,
  type QuantileView,
} from './distances.ts';
import { createSeededRandom } from './random.ts';
import { createSampleDistribution, type SampleDistribution } from './sample-distribution.ts';

// --- data -------------------------------------------------------------------

function normals(n: number, seed: number, mean = 0, sd = 1): number[] {
  const random = createSeededRandom(seed); // seeded: every run draws the same samples
  return Array.from({ length: n }, () => {
    const u = 1 - random();
    return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  });
}

function uniforms(n: number, seed: number, low: number, high: number): number[] {
  const random = createSeededRandom(seed); // seeded: every run draws the same samples
  return Array.from({ length: n }, () => low + (high - low) * random());
}

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 erf, error below 1.5e-7). */
function phi(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const poly =
    t * (0.2548296 + t * (-0.28449674 + t * (1.4214137 + t * (-1.4531521 + t * 1.0614054))));
  const erf = 1 - poly * Math.exp(-z * z);
  return x >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

const view = (samples: number[]): SampleDistribution => createSampleDistribution(samples);
/** Rounds away float noise such as 0.30000000000000004 before exact comparisons. */
const rounded = (values: readonly number[]): number[] => values.map((v) => Number(v.toFixed(12)));

// --- approximate views: the exact view with injected rank error ----------------

/**
 * A rank warp G: [0, 1] → [0, 1], piecewise linear through `knots`, with
 * G(0) = 0, G(1) = 1, non-decreasing. The warped view reports cdf G(F(x)) and
 * quantile Q(G⁻(r)) with G⁻(r) = min{u : G(u) >= r}: a consistent view whose
 * rank error is max |G(u) − u|, as a sketch's is at most ε.
 */
type Knots = readonly (readonly [number, number])[];

function warpInverse(knots: Knots, r: number): number {
  if (r <= 0) return 0;
  for (let i = 1; i < knots.length; i++) {
    const [u0, g0] = knots[i - 1]!;
    const [u1, g1] = knots[i]!;
    if (g1 >= r) return g0 >= r ? u0 : u0 + ((r - g0) / (g1 - g0)) * (u1 - u0);
  }
  return 1;
}

function warpAt(knots: Knots, u: number): number {
  for (let i = 1; i < knots.length; i++) {
    const [u0, g0] = knots[i - 1]!;
    const [u1, g1] = knots[i]!;
    if (u <= u1) return u <= u0 ? g0 : g0 + ((u - u0) / (u1 - u0)) * (g1 - g0);
  }
  return 1;
}

function warped(exact: QuantileView, knots: Knots): QuantileView {
  return {
    n: exact.n,
    min: exact.min,
    max: exact.max,
    cdf: (splitPoints) => exact.cdf(splitPoints).map((f) => (f >= 1 ? 1 : warpAt(knots, f))),
    quantile: (rank) => exact.quantile(Math.min(1, Math.max(0, warpInverse(knots, rank)))),
  };
}

const TINY = 1e-9;
/** Every rank read ε too high (cdf + ε) or too low, clamped at 0 and 1. */
const shiftUp = (e: number): Knots => [
  [0, 0],
  [TINY, e + TINY],
  [1 - e, 1],
  [1, 1],
];
const shiftDown = (e: number): Knots => [
  [0, 0],
  [e, 0],
  [1 - TINY, 1 - e - TINY],
  [1, 1],
];
/** ±ε alternating at every 1/bins: the worst case for binned distances. */
function alternating(e: number, bins: number, sign: 1 | -1): Knots {
  return Array.from({ length: bins + 1 }, (_, k) => {
    const u = k / bins;
    return [u, k === 0 || k === bins ? u : u + sign * (k % 2 === 0 ? e : -e)] as const;
  });
}
/** u + a·sin(2πmu), monotone while a·2πm <= 1. */
function sine(e: number, cycles: number, sign: 1 | -1): Knots {
  return Array.from({ length: 401 }, (_, k) => {
    const u = k / 400;
    return [u, u + sign * e * Math.sin(2 * Math.PI * cycles * u)] as const;
  });
}

// --- the documented bounds (distances.ts header) ------------------------------

/** Per-bin worst case of Hellinger between p and any pmf within ±eta of it, bin by bin. */
function hellingerSlack(p: readonly number[], eta: number): number {
  let sum = 0;
  for (const v of p) sum += (Math.sqrt(v) - Math.sqrt(Math.max(0, v - eta))) ** 2;
  return Math.sqrt(sum / 2);
}

function jsSlack(p: readonly number[], eta: number): number {
  let sum = 0;
  for (const v of p) sum += Math.max(jsTerm(v, Math.max(0, v - eta)), jsTerm(v, v + eta));
  return Math.sqrt(sum);
}

/** Largest change of Σ (q−p)ln(q/p) when each p_i moves by ±etaA and q_i by ±etaB (terms are convex). */
function psiSlack(p: readonly number[], q: readonly number[], etaA: number, etaB: number): number {
  const e = DEFAULT_PSI_EPSILON;
  const smooth = (v: number): number => (Math.min(1, Math.max(0, v)) + e) / (1 + p.length * e);
  const term = (a: number, b: number): number =>
    (smooth(b) - smooth(a)) * Math.log(smooth(b) / smooth(a));
  let slack = 0;
  for (let i = 0; i < p.length; i++) {
    const exact = term(p[i]!, q[i]!);
    const corners = [-1, 1].flatMap((sa) =>
      [-1, 1].map((sb) => term(p[i]! + sa * etaA, q[i]! + sb * etaB)),
    );
    const crossesDiagonal = Math.abs(p[i]! - q[i]!) <= etaA + etaB;
    const low = crossesDiagonal ? 0 : Math.min(...corners);
    slack += Math.max(Math.max(...corners) - exact, exact - low);
  }
  return slack;
}

/** (1/M) Σ_j (Q(r_j + ε) − Q(r_j − ε)) on the midpoints W1 uses: how far Q̂ can move the sum. */
function wassersteinSlack(exact: QuantileView, e: number, grid = DEFAULT_GRID): number {
  let sum = 0;
  for (let j = 0; j < grid; j++) {
    const r = (j + 0.5) / grid;
    sum += exact.quantile(Math.min(1, r + e)) - exact.quantile(Math.max(0, r - e));
  }
  return sum / grid;
}

interface Rank {
  readonly epsilon: number; // cdf error at a point
  readonly eta: number; // bin-mass error (<= 2ε; KLL quotes it as its PMF error)
}

/**
 * Each distance from the approximate views against the same distance from the
 * exact ones (binned metrics on the approximate baseline's split points), with
 * the bound the header of distances.ts derives from the rank errors.
 */
function agreement(
  exact: readonly [QuantileView, QuantileView],
  approx: readonly [QuantileView, QuantileView],
  rank: readonly [Rank, Rank],
): Record<string, { approx: number; exact: number; bound: number }> {
  const [a, b] = exact;
  const [ra, rb] = rank;
  const sketch = numericPmfs(approx[0], approx[1]);
  const p = pmfFromCdf(a.cdf(sketch.splitPoints));
  const q = pmfFromCdf(b.cdf(sketch.splitPoints));
  const w = wasserstein1(a, b);
  const wSlack = wassersteinSlack(a, ra.epsilon) + wassersteinSlack(b, rb.epsilon);
  const q25 = (r: number): number => a.quantile(Math.min(1, Math.max(0, r)));
  const scaleLow = q25(0.75 - ra.epsilon) - q25(0.25 + ra.epsilon);
  const scaleHigh = q25(0.75 + ra.epsilon) - q25(0.25 - ra.epsilon);
  const wn = w / wassersteinScale(a);
  return {
    ks: {
      approx: ksDistance(approx[0], approx[1]),
      exact: ksDistance(a, b),
      bound: ra.epsilon + rb.epsilon + 1 / DEFAULT_GRID,
    },
    wasserstein1: { approx: wasserstein1(approx[0], approx[1]), exact: w, bound: wSlack },
    wassersteinNormalized: {
      approx: wassersteinNormalized(approx[0], approx[1]),
      exact: wn,
      // the interval [(W − slack)/scaleHigh, (W + slack)/scaleLow] around W/scale
      bound: Math.max((w + wSlack) / scaleLow - wn, wn - (w - wSlack) / scaleHigh),
    },
    hellinger: {
      approx: hellinger(sketch.baseline, sketch.current),
      exact: hellinger(p, q),
      bound: hellingerSlack(p, ra.eta) + hellingerSlack(q, rb.eta),
    },
    jensenShannon: {
      approx: jensenShannonDistance(sketch.baseline, sketch.current),
      exact: jensenShannonDistance(p, q),
      bound: jsSlack(p, ra.eta) + jsSlack(q, rb.eta),
    },
    psi: {
      approx: psi(sketch.baseline, sketch.current),
      exact: psi(p, q),
      bound: psiSlack(p, q, ra.eta, rb.eta),
    },
  };
}

function violations(result: ReturnType<typeof agreement>): string[] {
  return Object.entries(result)
    .filter(([, r]) => !(Math.abs(r.approx - r.exact) <= r.bound + 1e-12))
    .map(([name, r]) => `${name}: |${r.approx} - ${r.exact}| > ${r.bound}`);
}

// --- tests --------------------------------------------------------------------

const baseline = view(normals(50_000, 1));
const sameLaw = view(normals(50_000, 2));

describe('pmf distances', () => {
  it('match closed forms', () => {
    // PSI of [0.4, 0.6] vs [0.6, 0.4] is 2·0.2·ln 1.5 = 0.4·ln 1.5
    assert.ok(
      Math.abs(psi([0.4, 0.6], [0.6, 0.4], { epsilon: 1e-12 }) - 0.4 * Math.log(1.5)) < 1e-9,
    );
    // JSD of [1/2, 1/2] vs [1, 0] is 3/2 − (3/4)·log2 3 bits
    const js = jensenShannonDistance([0.5, 0.5], [1, 0]);
    assert.ok(Math.abs(js - Math.sqrt(1.5 - 0.75 * Math.log2(3))) < 1e-12);
    assert.ok(Math.abs(hellinger([0.5, 0.5], [1, 0]) - Math.sqrt(1 - Math.SQRT1_2)) < 1e-12);
  });

  it('are 0 for equal pmfs and 1 (JS distance, Hellinger) for disjoint ones', () => {
    const p = [0.1, 0.2, 0.3, 0.4];
    for (const f of [psi, jensenShannonDistance, hellinger]) assert.ok(f(p, p) < 1e-7, f.name);
    assert.equal(jensenShannonDistance([0.5, 0.5, 0, 0], [0, 0, 0.3, 0.7]), 1);
    assert.equal(hellinger([0.5, 0.5, 0, 0], [0, 0, 0.3, 0.7]), 1);
    // nearly disjoint, with a subnormal mass (a fast-check counterexample once gave 0 here)
    assert.ok(jensenShannonDistance([0, 1, 0], [1.4e-43, 0, 1]) > 1 - 1e-12);
    // nearly equal: no cancellation to 0 (H = δ/√2; JS = δ/√(2 ln 2) for δ moved between halves)
    const [near, d] = [[0.5 + 1e-9, 0.5 - 1e-9], 1e-9];
    assert.ok(Math.abs(hellinger([0.5, 0.5], near) / (d / Math.SQRT2) - 1) < 1e-6);
    assert.ok(
      Math.abs(jensenShannonDistance([0.5, 0.5], near) / (d / Math.sqrt(2 * Math.LN2)) - 1) < 1e-6,
    );
    // an empty bin against one of mass 0.1 adds about 0.1·ln(0.1/ε), as documented
    assert.ok(Math.abs(psi([0.9, 0.1, 0], [0.9, 0, 0.1]) - 2 * 0.1 * Math.log(0.1 / 1e-4)) < 0.01);
  });

  const pmf = fc
    .array(fc.float({ min: 0, max: 1, noNaN: true }), { minLength: 6, maxLength: 6 })
    .filter((w) => w.reduce((s, v) => s + v, 0) > 0.01)
    .map((w) => {
      const sum = w.reduce((s, v) => s + v, 0);
      return w.map((v) => v / sum);
    });

  it('PSI, JS and Hellinger are symmetric; JS and Hellinger in [0, 1] and obey the triangle inequality', () => {
    fc.assert(
      fc.property(pmf, pmf, pmf, (p, q, r) => {
        assert.ok(Math.abs(psi(p, q) - psi(q, p)) <= 1e-12 * Math.max(1, psi(p, q)));
        for (const d of [jensenShannonDistance, hellinger]) {
          assert.ok(Math.abs(d(p, q) - d(q, p)) < 1e-12);
          assert.ok(d(p, q) >= 0 && d(p, q) <= 1);
          assert.ok(d(p, r) <= d(p, q) + d(q, r) + 1e-9, `${d.name} triangle`);
        }
      }),
    );
  });
});

describe('numeric distances against exact computation and closed forms', () => {
  it('KS and W1 match the two-sample values computed from all the samples, within the grid error', () => {
    for (const current of [sameLaw, view(normals(50_000, 40, 0.3, 1.2))]) {
      const [a, b] = [baseline.sorted, current.sorted];
      let w1 = 0;
      for (let i = 0; i < a.length; i++) w1 += Math.abs(a[i]! - b[i]!); // equal sizes: pair by rank
      w1 /= a.length;
      let ks = 0;
      for (let i = 0, j = 0; i < a.length || j < b.length;) {
        const x = Math.min(a[i] ?? Infinity, b[j] ?? Infinity);
        while (i < a.length && a[i]! <= x) i++;
        while (j < b.length && b[j]! <= x) j++;
        ks = Math.max(ks, Math.abs(i / a.length - j / b.length));
      }
      const gridKs = ksDistance(baseline, current);
      assert.ok(gridKs <= ks && ks - gridKs < 1 / DEFAULT_GRID, `KS ${gridKs} vs ${ks}`);
      assert.ok(Math.abs(wasserstein1(baseline, current) - w1) < 1e-3, `W1 vs ${w1}`);
    }
  });

  it('are 0 between a view and itself', () => {
    const pmfs = numericPmfs(baseline, baseline);
    assert.equal(psi(pmfs.baseline, pmfs.current), 0);
    assert.equal(jensenShannonDistance(pmfs.baseline, pmfs.current), 0);
    assert.ok(hellinger(pmfs.baseline, pmfs.current) < 1e-7);
    assert.equal(ksDistance(baseline, baseline), 0);
    assert.equal(wassersteinNormalized(baseline, baseline), 0);
  });

  it('bin by baseline deciles, plus a bin below and one above its range', () => {
    const points = baselineSplitPoints(view([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
    assert.deepEqual(points.slice(1), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.ok(points[0]! < 1 && points[0]! > 1 - 1e-15);
    // discrete data: equal quantiles merge
    const repeat = (value: number, count: number): number[] => Array<number>(count).fill(value);
    const discrete = view([...repeat(0, 50), ...repeat(1, 30), ...repeat(2, 20)]);
    const pmfs = numericPmfs(discrete, view([-1, 0, 1, 2, 3]));
    assert.deepEqual(rounded(pmfs.baseline), [0, 0.5, 0.3, 0.2, 0]);
    assert.deepEqual(rounded(pmfs.current), [0.2, 0.2, 0.2, 0.2, 0.2]);
  });

  it('reach 1 (KS, JS distance, Hellinger) for disjoint supports, above or below', () => {
    const low = view(uniforms(5000, 3, 0, 1));
    for (const [seed, from] of [
      [4, 2],
      [5, -3],
    ] as const) {
      const far = view(uniforms(5000, seed, from, from + 1));
      const pmfs = numericPmfs(low, far);
      assert.equal(ksDistance(low, far), 1);
      assert.equal(jensenShannonDistance(pmfs.baseline, pmfs.current), 1);
      assert.equal(hellinger(pmfs.baseline, pmfs.current), 1);
      assert.ok(psi(pmfs.baseline, pmfs.current) > 10);
    }
  });

  for (const d of [0.25, 0.5, 1]) {
    it(`N(0,1) vs N(${d},1): KS ≈ 2Φ(d/2) − 1, W1 ≈ d, PSI ≈ binned theory`, () => {
      const shifted = view(normals(50_000, 10 + d * 4, d));
      // DKW: each empirical CDF is within 0.01 of its law with probability 1 − 2e^-10
      assert.ok(
        Math.abs(ksDistance(baseline, shifted) - (2 * phi(d / 2) - 1)) < 0.02 + 1 / DEFAULT_GRID,
      );
      assert.ok(Math.abs(wasserstein1(baseline, shifted) - d) < 0.03);
      const scale = wassersteinScale(baseline);
      assert.ok(Math.abs(scale - 1.349) < 0.03, `IQR ${scale}`);
      assert.ok(Math.abs(wassersteinNormalized(baseline, shifted) - d / scale) < 0.03);
      const pmfs = numericPmfs(baseline, shifted);
      const cdf = (x: number): number[] => [...pmfs.splitPoints.map((s) => phi(s - x)), 1];
      const theory = psi(pmfFromCdf(cdf(0)), pmfFromCdf(cdf(d)));
      assert.ok(Math.abs(psi(pmfs.baseline, pmfs.current) - theory) < 0.02 + theory * 0.1);
    });
  }

  it('stay small between two samples of one law', () => {
    const pmfs = numericPmfs(baseline, sameLaw);
    assert.ok(ksDistance(baseline, sameLaw) < 0.02);
    assert.ok(wassersteinNormalized(baseline, sameLaw) < 0.03);
    assert.ok(psi(pmfs.baseline, pmfs.current) < 0.005);
  });
});

describe('sketch-based distances stay within the bound derived from the rank error', () => {
  const pairs: [string, QuantileView][] = [
    ['same law', sameLaw],
    ['mean shift 0.5', view(normals(50_000, 20, 0.5))],
    ['sd 1.5', view(normals(50_000, 21, 0, 1.5))],
    ['5% far out', view([...normals(47_500, 22), ...normals(2500, 23, 6)])],
  ];
  interface Profile {
    readonly name: string;
    readonly rank: Rank;
    readonly warps: readonly (readonly [string, Knots, Knots])[];
  }
  // The brief's figure, 1.65%, taken as the error at every point; a bin, the
  // difference of two points, then moves by up to 3.3%.
  const e = 0.0165;
  const brief: Profile = {
    name: '1.65% at every point',
    rank: { epsilon: e, eta: 2 * e },
    warps: [
      ['opposite rank shifts', shiftUp(e), shiftDown(e)],
      ['alternating per decile', alternating(e, 10, 1), alternating(e, 10, -1)],
      ['sine waves', sine(e, 3, 1), sine(e, 5, -1)],
    ],
  };
  // What DataSketches quotes for KLL at k = 200 (99th percentile of the maximum
  // error): 1.33% for a rank or CDF value, 1.65% for a PMF bin.
  const kll: Profile = {
    name: 'KLL k = 200 (1.33% per point, 1.65% per bin)',
    rank: { epsilon: 0.0133, eta: 0.0165 },
    warps: [
      ['opposite rank shifts', shiftUp(0.0133), shiftDown(0.0133)],
      ['alternating per decile', alternating(0.00825, 10, 1), alternating(0.00825, 10, -1)],
      ['sine waves', sine(0.00825, 3, 1), sine(0.00825, 5, -1)],
    ],
  };

  it('the injected warps have the rank error they claim', () => {
    for (const { rank, warps } of [brief, kll]) {
      for (const [name, ka, kb] of warps) {
        for (const knots of [ka, kb]) {
          const point = Math.max(...knots.map(([u, g]) => Math.abs(g - u)));
          assert.ok(point <= rank.epsilon + 1e-6, `${name}: rank error ${point}`);
          // a bin's error is the difference of two points' errors
          assert.ok(name === 'opposite rank shifts' || 2 * point <= rank.eta + 1e-6, name);
        }
      }
    }
  });

  for (const profile of [brief, kll]) {
    for (const [pairName, current] of pairs) {
      it(`${profile.name}, ${pairName}: KS, W1, Hellinger, JS and PSI within bounds`, () => {
        for (const [warpName, ka, kb] of profile.warps) {
          const result = agreement(
            [baseline, current],
            [warped(baseline, ka), warped(current, kb)],
            [profile.rank, profile.rank],
          );
          assert.deepEqual(violations(result), [], warpName);
        }
      });
    }
  }

  it('at the KLL k = 200 error, sketch error alone does not trip the default thresholds', () => {
    for (const [warpName, ka, kb] of kll.warps) {
      const score = scoreNumericSignal(warped(baseline, ka), warped(sameLaw, kb));
      assert.ok(!score.insufficient && !score.drifted, `${warpName}: ${JSON.stringify(score)}`);
    }
  });

  it('the KS bound ε_a + ε_b is nearly reached by opposite rank shifts', () => {
    const current = pairs[1]![1];
    const r = agreement(
      [baseline, current],
      [warped(baseline, shiftUp(e)), warped(current, shiftDown(e))],
      [brief.rank, brief.rank],
    ).ks!;
    assert.ok(Math.abs(r.approx - r.exact) > 1.8 * e, `${r.approx} vs ${r.exact}`);
  });

  it('a view with twice the declared rank error breaks the bounds (the check can fail)', () => {
    const current = pairs[1]![1];
    const result = agreement(
      [baseline, current],
      [warped(baseline, shiftUp(2 * e)), warped(current, shiftDown(2 * e))],
      [brief.rank, brief.rank],
    );
    assert.ok(
      violations(result).some((v) => v.startsWith('ks:')),
      violations(result).join(),
    );
  });
});

describe('drift scores', () => {
  it('do not flag a second sample of the baseline law', () => {
    const score = scoreNumericSignal(baseline, view(normals(2000, 30)));
    assert.equal(score.insufficient, false);
    assert.equal(score.drifted, false);
    assert.ok(!score.insufficient && score.tripped.length === 0);
  });

  it('flag a one-sigma mean shift on every metric', () => {
    const score = scoreNumericSignal(baseline, view(normals(2000, 31, 1)));
    assert.ok(!score.insufficient);
    assert.equal(score.drifted, true);
    assert.deepEqual(score.tripped, ['psi', 'jensenShannon', 'hellinger', 'ks', 'wasserstein']);
  });

  it('flag 4% of values past the baseline range by PSI alone', () => {
    const current = view([...normals(9600, 32), ...Array<number>(400).fill(baseline.max + 0.1)]);
    const score = scoreNumericSignal(baseline, current);
    assert.ok(!score.insufficient);
    assert.deepEqual(score.tripped, ['psi']);
    assert.ok(score.ks < DEFAULT_DRIFT_THRESHOLDS.ks);
  });

  it('take overridden thresholds', () => {
    const current = view(normals(5000, 33, 0.3));
    const strict = scoreNumericSignal(baseline, current);
    assert.deepEqual(strict.drifted && !strict.insufficient && strict.tripped, [
      'ks',
      'wasserstein',
    ]);
    assert.equal(
      scoreNumericSignal(baseline, current, { ks: 0.5, wasserstein: 0.5 }).drifted,
      false,
    );
    const kept = scoreNumericSignal(baseline, current, { ks: undefined }); // undefined keeps the default
    assert.deepEqual(!kept.insufficient && kept.tripped, ['ks', 'wasserstein']);
  });

  it('say "insufficient" below the minimum count, an empty window included', () => {
    const few = view(normals(DEFAULT_DRIFT_THRESHOLDS.minCount - 1, 34, 3));
    assert.deepEqual(scoreNumericSignal(baseline, few), {
      insufficient: true,
      drifted: false,
      n: 499,
      minCount: 500,
    });
    assert.equal(scoreNumericSignal(baseline, view([])).insufficient, true);
    assert.equal(scoreNumericSignal(baseline, few, { minCount: 100 }).drifted, true);
  });

  it('score categories with an "other" bucket that catches new ones', () => {
    const counts = (n: number, entries: [string, number][]) => ({ n, counts: new Map(entries) });
    const base = counts(1000, [
      ['a', 500],
      ['b', 300],
      ['c', 200],
    ]);
    const pmfs = categoricalPmfs(
      base,
      counts(800, [
        ['a', 400],
        ['b', 240],
        ['d', 80],
      ]),
      2,
    );
    assert.deepEqual(pmfs.categories, ['a', 'b']);
    assert.deepEqual(rounded(pmfs.baseline), [0.5, 0.3, 0.2]);
    assert.deepEqual(rounded(pmfs.current), [0.5, 0.3, 0.2]);
    const same = scoreCategoricalSignal(
      base,
      counts(2000, [
        ['a', 1000],
        ['b', 600],
        ['c', 400],
      ]),
    );
    assert.ok(!same.insufficient && same.psi < 1e-12 && !same.drifted);
    const novel = scoreCategoricalSignal(
      base,
      counts(1000, [
        ['a', 350],
        ['b', 210],
        ['c', 140],
        ['d', 300],
      ]),
    );
    assert.ok(!novel.insufficient);
    assert.deepEqual(novel.tripped, ['psi', 'jensenShannon', 'hellinger']);
    // a frequent-items sketch lists only some categories: the rest of n is "other"
    const partial = categoricalPmfs(
      counts(1000, [['a', 600]]),
      counts(1000, [
        ['a', 600],
        ['z', 10],
      ]),
    );
    assert.deepEqual(rounded(partial.baseline), [0.6, 0.4]);
    assert.deepEqual(rounded(partial.current), [0.6, 0.4]);
    const disjoint = scoreCategoricalSignal(base, counts(600, [['x', 600]]));
    assert.ok(!disjoint.insufficient && disjoint.jensenShannon === 1 && disjoint.hellinger === 1);
  });
});

describe('bad input', () => {
  const broken = (changes: Partial<QuantileView>): QuantileView => ({
    n: 10,
    min: 0,
    max: 1,
    cdf: (s) => [...s.map(() => 0.5), 1],
    quantile: (r) => r,
    ...changes,
  });

  it('refuses empty views and views with non-finite or inconsistent answers', () => {
    refused(() => ksDistance(view([]), baseline), 'MALFORMED', /baseline is empty \(n = 0\)/);
    refused(() => wasserstein1(baseline, view([])), 'MALFORMED', /current is empty/);
    refused(() => baselineSplitPoints(broken({ min: NaN })), 'MALFORMED', /min NaN/);
    refused(() => baselineSplitPoints(broken({ min: 2 })), 'MALFORMED', /min <= max/);
    refused(
      () => ksDistance(baseline, broken({ quantile: () => NaN })),
      'MALFORMED',
      /current quantile at rank 0 is NaN/,
    );
    refused(
      () => ksDistance(baseline, broken({ cdf: (s) => s.map(() => 0) })),
      'MALFORMED',
      /current cdf has/,
    );
    refused(
      () => numericPmfs(baseline, broken({ cdf: (s) => [...s.map(() => NaN), 1] })),
      'MALFORMED',
      /current cdf entry 0 is NaN/,
    );
    refused(
      () => numericPmfs(baseline, broken({ cdf: (s) => [...s.map((_, i) => 1 - i / 100), 1] })),
      'MALFORMED',
      /cdf entry 1/,
    );
    refused(
      () => numericPmfs(baseline, broken({ cdf: (s) => [...s.map(() => 0), 0.9] })),
      'MALFORMED',
      /cdf ends at 0.9/,
    );
  });

  it('refuses pmfs of different lengths, negative or NaN bins, or sums other than 1', () => {
    refused(() => psi([0.5, 0.5], [1]), 'MALFORMED', /pmfs of 2 and 1 bins/);
    refused(() => hellinger([], []), 'MALFORMED', /pmfs of 0 and 0 bins/);
    refused(
      () => jensenShannonDistance([0.5, 0.6], [0.5, 0.5]),
      'MALFORMED',
      /baseline pmf sums to 1.1/,
    );
    refused(() => psi([0.5, 0.5], [1.5, -0.5]), 'MALFORMED', /current pmf bin 1 is -0.5/);
    refused(() => hellinger([0.5, 0.5], [NaN, 1]), 'MALFORMED', /current pmf bin 0 is NaN/);
    refused(() => psi([0.5, 0.5], [0.5, 0.5], { epsilon: 0 }), 'MALFORMED', /epsilon is 0/);
  });

  it('refuses bad bin counts, grids, counts and thresholds', () => {
    refused(() => baselineSplitPoints(baseline, 1), 'MALFORMED', /bin count is 1/);
    refused(() => baselineSplitPoints(baseline, 2.5), 'MALFORMED', /bin count is 2.5/);
    refused(() => ksDistance(baseline, baseline, { grid: 0 }), 'MALFORMED', /grid size is 0/);
    const ok = { n: 10, counts: new Map([['a', 10]]) };
    refused(
      () => categoricalPmfs({ n: 0, counts: new Map() }, ok),
      'MALFORMED',
      /baseline is empty/,
    );
    refused(
      () => categoricalPmfs(ok, { n: 10, counts: new Map([['a', -1]]) }),
      'MALFORMED',
      /count of "a" is -1/,
    );
    refused(
      () => categoricalPmfs(ok, { n: 10, counts: new Map([['a', 11]]) }),
      'MALFORMED',
      /add up to 11, more than its n = 10/,
    );
    refused(
      () => scoreNumericSignal(baseline, baseline, { ks: NaN }),
      'MALFORMED',
      /threshold ks is NaN/,
    );
    refused(() => scoreCategoricalSignal(ok, ok, { psi: -1 }), 'MALFORMED', /threshold psi is -1/);
  });
});
