/**
 * Golden vectors: the `golden.json` part of a bundle. The bundle factory runs
 * the int8 model on a few evaluation samples and records inputs and outputs;
 * the agent runs the same inputs through the model it just loaded and refuses
 * to activate it unless every output is within `tolerance` (the self-test of
 * ARCHITECTURE "Over-the-air delivery").
 *
 * The format is parsed strictly and capped (THREATS 14, 40): the agent checks
 * the exact shape it will consume before it trusts any number in it.
 *
 * @example
 *   { "input": "input", "output": "probabilities", "tolerance": 0.0001,
 *     "cases": [{ "input": [0, 0.5, ...784], "output": [0.01, ...10] }] }
 */
import { z } from 'zod';
import { FleetError } from '../errors.ts';
import { parseJsonBytes } from '../encoding/json.ts';

/** Most cases one golden file may hold (they run as one batch on the device). */
export const MAX_GOLDEN_CASES = 256;
/** Most numbers in one input or output vector. */
export const MAX_GOLDEN_VECTOR_LENGTH = 65_536;
/**
 * Largest golden.json in bytes. The per-vector caps alone would allow
 * hundreds of MB of JSON; a reference MNIST file (32 cases of 784 inputs) is
 * about 0.5 MB.
 */
export const MAX_GOLDEN_BYTES = 64 * 1024 * 1024;

// zod 4's z.number() refuses NaN and ±Infinity; JSON can still spell
// Infinity as 1e999, which this refuses too.
const vectorSchema = z.array(z.number()).min(1).max(MAX_GOLDEN_VECTOR_LENGTH);

export const goldenCaseSchema = z.strictObject({
  input: vectorSchema,
  output: vectorSchema,
});

export const goldenVectorsSchema = z
  .strictObject({
    /** Name of the model input the case inputs feed (the manifest's io input). */
    input: z.string().min(1).max(128),
    /** Name of the model output the case outputs are compared with. */
    output: z.string().min(1).max(128),
    /** Largest absolute difference allowed per output number. */
    tolerance: z.number().nonnegative(),
    cases: z.array(goldenCaseSchema).min(1).max(MAX_GOLDEN_CASES),
  })
  .superRefine((golden, ctx) => {
    // The cases run as one batch, so every case has the width of the first.
    const first = golden.cases[0];
    if (first === undefined) return;
    golden.cases.forEach((c, i) => {
      for (const side of ['input', 'output'] as const) {
        if (c[side].length !== first[side].length) {
          ctx.addIssue({
            code: 'custom',
            path: ['cases', i, side],
            message: `has ${c[side].length} numbers, case 0 has ${first[side].length}`,
          });
        }
      }
    });
  });
export type GoldenVectors = z.infer<typeof goldenVectorsSchema>;
export type GoldenCase = z.infer<typeof goldenCaseSchema>;

/**
 * Parses golden.json bytes strictly (unknown fields refused). Throws
 * FleetError TOO_LARGE above MAX_GOLDEN_BYTES, MALFORMED for anything else,
 * naming the field (`golden.json cases.3.output.7: ...`).
 */
export function parseGoldenVectors(bytes: Uint8Array): GoldenVectors {
  const json = parseJsonBytes(bytes, MAX_GOLDEN_BYTES, 'golden.json');
  const parsed = goldenVectorsSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join('.') || '(root)';
    throw new FleetError('MALFORMED', `golden.json ${where}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

export interface GoldenComparison {
  /** Every case has its output, of the right width, within tolerance. */
  ok: boolean;
  /**
   * Largest absolute difference seen over all cases; Infinity when an output
   * is missing, of the wrong width, or not a number (NaN never passes).
   */
  worstDiff: number;
  /**
   * Index of the first case outside tolerance, or null when ok; the number of
   * cases when every case passed but there were more outputs than cases.
   */
  failedCase: number | null;
}

/**
 * Compares a model's outputs, one vector per case in case order, with the
 * golden outputs: `|actual - expected| <= tolerance` for every number.
 *
 * @example
 *   const { ok, worstDiff, failedCase } = compareGolden(perCaseOutputs, golden);
 */
export function compareGolden(
  outputs: readonly (Float32Array | readonly number[])[],
  golden: GoldenVectors,
): GoldenComparison {
  let worstDiff = 0;
  let failedCase: number | null = null;
  golden.cases.forEach((c, i) => {
    const diff = caseDiff(outputs[i], c.output);
    // `!(diff <= tolerance)` so that NaN fails as well.
    if (!(diff <= golden.tolerance) && failedCase === null) failedCase = i;
    worstDiff = Math.max(worstDiff, diff);
  });
  if (outputs.length !== golden.cases.length && failedCase === null) {
    failedCase = golden.cases.length; // more outputs than cases: the batch is not what was asked
    worstDiff = Infinity;
  }
  return { ok: failedCase === null, worstDiff, failedCase };
}

/** Largest |actual - expected| of one case; Infinity for a missing or misfit vector or a NaN. */
function caseDiff(
  actual: Float32Array | readonly number[] | undefined,
  expected: readonly number[],
): number {
  if (actual === undefined || actual.length !== expected.length) return Infinity;
  let worst = 0;
  for (let j = 0; j < expected.length; j++) {
    const diff = Math.abs(actual[j]! - expected[j]!);
    if (!(diff <= worst)) worst = Number.isNaN(diff) ? Infinity : diff;
  }
  return worst;
}
