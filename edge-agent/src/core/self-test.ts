/**
 * The activation self-test: runs a bundle's golden inputs through the model
 * just loaded, as one batch, and compares the outputs with the golden ones
 * within the bundle's tolerance. A model that fails is never served
 * (ARCHITECTURE "Over-the-air delivery"; THREATS 20).
 *
 *   checkNames -> checkWidth -> runBatch -> compare
 */
import { compareGolden, isFleetError, type GoldenVectors } from '@fleet/protocol';
import type { LoadedModel } from './loaded-model.ts';

export interface SelfTestReport {
  ok: boolean;
  /** Largest absolute output difference; Infinity when the model could not be compared at all. */
  worstDiff: number;
  /** First case outside tolerance; null when ok or when no case could be compared. */
  failedCase: number | null;
  /** One line for logs and device error reports. */
  message: string;
}

/**
 * Never throws: a model that cannot run its golden vectors fails the test,
 * with the reason in `message`.
 *
 * @example
 *   const report = await runSelfTest(model, parseGoldenVectors(goldenBytes));
 *   if (!report.ok) throw agentError('SELF_TEST_FAILED', report.message);
 */
export async function runSelfTest(
  model: LoadedModel,
  golden: GoldenVectors,
): Promise<SelfTestReport> {
  const refusal = checkNames(model, golden) ?? checkWidth(model, golden);
  if (refusal !== null) return failed(refusal);
  const batch = golden.cases.length;
  const input = goldenBatch(golden, model.inputWidth);
  let outputs: Float32Array;
  let outputWidth: number;
  try {
    ({ outputs, outputWidth } = await model.run(input, batch));
  } catch (error) {
    const reason = isFleetError(error) ? error.message : String(error);
    return failed(`the model cannot run its golden inputs: ${reason}`);
  }
  const perCase = golden.cases.map((_, i) =>
    outputs.subarray(i * outputWidth, (i + 1) * outputWidth),
  );
  const { ok, worstDiff, failedCase } = compareGolden(perCase, golden);
  const summary = `${batch} golden cases, worst difference ${worstDiff} (tolerance ${golden.tolerance})`;
  return {
    ok,
    worstDiff,
    failedCase,
    message: ok ? `passed: ${summary}` : `case ${failedCase} is outside tolerance: ${summary}`,
  };
}

/**
 * The golden inputs as one float32 batch. The conversion out of the JSON
 * number arrays is made once per parsed golden file: the simulator's agents
 * share the parsed file of a bundle, and the conversion was 0.35-0.49 ms of
 * each one's CPU in a profile of `bench:rollout` (32 cases of 784). Each
 * self-test gets its own copy of the batch, so a model that writes into its
 * input cannot change another's golden inputs: a copy took a third of the
 * time of a conversion in a micro-benchmark (44 against 131 us).
 */
const goldenBatches = new WeakMap<GoldenVectors, Float32Array>();

function goldenBatch(golden: GoldenVectors, width: number): Float32Array {
  const cached = goldenBatches.get(golden);
  if (cached && cached.length === golden.cases.length * width) return cached.slice();
  const input = new Float32Array(golden.cases.length * width);
  golden.cases.forEach((c, i) => input.set(c.input, i * width));
  goldenBatches.set(golden, input);
  return input.slice();
}

/** The golden file must be about the tensors the model actually has. */
function checkNames(model: LoadedModel, golden: GoldenVectors): string | null {
  if (golden.input !== model.inputName) {
    return `the golden vectors feed input ${golden.input}, the model's input is ${model.inputName}`;
  }
  if (golden.output !== model.outputName) {
    return `the golden vectors check output ${golden.output}, the model's output is ${model.outputName}`;
  }
  return null;
}

function checkWidth(model: LoadedModel, golden: GoldenVectors): string | null {
  const width = golden.cases[0]?.input.length;
  return width === model.inputWidth
    ? null
    : `the golden inputs have ${width} numbers, the model takes ${model.inputWidth}`;
}

function failed(reason: string): SelfTestReport {
  return { ok: false, worstDiff: Infinity, failedCase: null, message: reason };
}
