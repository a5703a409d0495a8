/**
 * golden.json: the strict schema with its caps, the refusals naming their
 * field, and the tolerance comparison the agent's self-test relies on.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { utf8 } from '../encoding/bytes.ts';
import { assertRefused } from '../__fixtures__/refusals.ts';
import {
  compareGolden,
  MAX_GOLDEN_BYTES,
  MAX_GOLDEN_CASES,
  MAX_GOLDEN_VECTOR_LENGTH,
  parseGoldenVectors,
  type GoldenVectors,
} from './golden.ts';

function golden(overrides: Partial<GoldenVectors> = {}): GoldenVectors {
  return {
    input: 'input',
    output: 'probabilities',
    tolerance: 1e-4,
    cases: [
      { input: [0, 0.5, 1], output: [0.25, 0.75] },
      { input: [1, 0.5, 0], output: [0.9, 0.1] },
    ],
    ...overrides,
  };
}

const bytesOf = (value: unknown) => utf8(JSON.stringify(value));

describe('parseGoldenVectors', () => {
  it('parses what the bundle factory writes', () => {
    assert.deepEqual(parseGoldenVectors(bytesOf(golden())), golden());
  });

  it('refuses bytes that are not JSON (MALFORMED)', () => {
    assertRefused(() => parseGoldenVectors(utf8('{"input":')), 'MALFORMED', /golden\.json/);
    assertRefused(() => parseGoldenVectors(new Uint8Array(0)), 'MALFORMED');
  });

  it('refuses unknown and missing fields, naming them', () => {
    assertRefused(
      () => parseGoldenVectors(bytesOf({ ...golden(), extra: 1 })),
      'MALFORMED',
      /golden\.json \(root\): .*extra/,
    );
    const noTolerance: Partial<GoldenVectors> = golden();
    delete noTolerance.tolerance;
    assertRefused(() => parseGoldenVectors(bytesOf(noTolerance)), 'MALFORMED', /tolerance/);
    assertRefused(
      () =>
        parseGoldenVectors(
          bytesOf(golden({ cases: [{ input: [1], output: [1], x: 1 }] as never })),
        ),
      'MALFORMED',
      /cases\.0/,
    );
  });

  it('refuses a negative or infinite tolerance', () => {
    assertRefused(
      () => parseGoldenVectors(bytesOf(golden({ tolerance: -1 }))),
      'MALFORMED',
      /tolerance/,
    );
    // JSON has no Infinity, but 1e999 parses to it.
    const text = JSON.stringify(golden()).replace('"tolerance":0.0001', '"tolerance":1e999');
    assert.match(text, /1e999/);
    assertRefused(() => parseGoldenVectors(utf8(text)), 'MALFORMED', /tolerance/);
  });

  it('refuses non-numbers and non-finite numbers in a vector, naming the position', () => {
    const text = JSON.stringify(golden()).replace('[0.9,0.1]', '[0.9,1e999]');
    assert.match(text, /1e999/);
    assertRefused(() => parseGoldenVectors(utf8(text)), 'MALFORMED', /cases\.1\.output\.1/);
    const withNull = JSON.stringify(golden()).replace('[0,0.5,1]', '[0,null,1]');
    assertRefused(() => parseGoldenVectors(utf8(withNull)), 'MALFORMED', /cases\.0\.input\.1/);
  });

  it('refuses no cases, empty vectors and cases of different widths', () => {
    assertRefused(() => parseGoldenVectors(bytesOf(golden({ cases: [] }))), 'MALFORMED', /cases/);
    assertRefused(
      () => parseGoldenVectors(bytesOf(golden({ cases: [{ input: [], output: [1] }] }))),
      'MALFORMED',
      /cases\.0\.input/,
    );
    const ragged = golden();
    ragged.cases[1]!.output.push(0);
    assertRefused(
      () => parseGoldenVectors(bytesOf(ragged)),
      'MALFORMED',
      /cases\.1\.output: has 3 numbers, case 0 has 2/,
    );
  });

  it('enforces the caps: cases, vector length, bytes', () => {
    const oneCase = { input: [1], output: [1] };
    const atCap = golden({ cases: Array.from({ length: MAX_GOLDEN_CASES }, () => oneCase) });
    assert.equal(parseGoldenVectors(bytesOf(atCap)).cases.length, MAX_GOLDEN_CASES);
    const overCases = golden({
      cases: Array.from({ length: MAX_GOLDEN_CASES + 1 }, () => oneCase),
    });
    assertRefused(() => parseGoldenVectors(bytesOf(overCases)), 'MALFORMED', /cases/);

    const wide = new Array<number>(MAX_GOLDEN_VECTOR_LENGTH).fill(0);
    assert.ok(parseGoldenVectors(bytesOf(golden({ cases: [{ input: wide, output: [1] }] }))));
    const tooWide = golden({ cases: [{ input: [...wide, 0], output: [1] }] });
    assertRefused(() => parseGoldenVectors(bytesOf(tooWide)), 'MALFORMED', /cases\.0\.input/);

    // Checked on the byte length, before JSON.parse reads anything.
    assertRefused(
      () => parseGoldenVectors(new Uint8Array(MAX_GOLDEN_BYTES + 1)),
      'TOO_LARGE',
      /golden\.json/,
    );
  });
});

describe('compareGolden', () => {
  it('passes outputs within tolerance and reports the worst difference', () => {
    const result = compareGolden(
      [new Float32Array([0.25, 0.75]), [0.90005, 0.1]],
      golden({ tolerance: 1e-4 }),
    );
    assert.equal(result.ok, true);
    assert.equal(result.failedCase, null);
    assert.ok(Math.abs(result.worstDiff - 5e-5) < 1e-9, String(result.worstDiff));
  });

  it('passes a difference exactly at the tolerance and fails just above it', () => {
    const g = golden({ tolerance: 0.5, cases: [{ input: [0], output: [1] }] });
    assert.equal(compareGolden([[1.5]], g).ok, true);
    const above = compareGolden([[1.5000001]], g);
    assert.deepEqual([above.ok, above.failedCase], [false, 0]);
  });

  it('names the first failing case', () => {
    const g = golden();
    const result = compareGolden(
      [
        [0.25, 0.75],
        [0.9, 0.2],
      ],
      g,
    );
    assert.deepEqual(result.ok, false);
    assert.equal(result.failedCase, 1);
    assert.ok(Math.abs(result.worstDiff - 0.1) < 1e-9);
  });

  it('fails NaN outputs, missing cases, wrong widths and extra outputs', () => {
    const g = golden();
    const nan = compareGolden(
      [
        [0.25, NaN],
        [0.9, 0.1],
      ],
      g,
    );
    assert.deepEqual(nan, { ok: false, worstDiff: Infinity, failedCase: 0 });
    assert.deepEqual(compareGolden([[0.25, 0.75]], g), {
      ok: false,
      worstDiff: Infinity,
      failedCase: 1,
    });
    assert.deepEqual(
      compareGolden(
        [
          [0.25, 0.75, 0],
          [0.9, 0.1],
        ],
        g,
      ).failedCase,
      0,
    );
    assert.deepEqual(
      compareGolden(
        [
          [0.25, 0.75],
          [0.9, 0.1],
          [0, 0],
        ],
        g,
      ),
      {
        ok: false,
        worstDiff: Infinity,
        failedCase: 2,
      },
    );
  });

  it('with tolerance 0 demands exact equality', () => {
    const g = golden({ tolerance: 0 });
    assert.equal(
      compareGolden(
        [
          [0.25, 0.75],
          [0.9, 0.1],
        ],
        g,
      ).ok,
      true,
    );
    assert.equal(
      compareGolden(
        [
          [0.25, 0.75],
          [0.9, 0.1 + 1e-12],
        ],
        g,
      ).ok,
      false,
    );
  });
});
