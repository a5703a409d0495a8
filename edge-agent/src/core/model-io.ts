/**
 * Checks a loaded model's tensors against its manifest's `io` before the
 * model may serve (THREATS 18, 40: a tensor count, name, type or shape that
 * differs from what the manifest promises is refused, the way a content
 * update must match the exact schema its consumer expects), and works out
 * how the runtime feeds it: one float32 input of rows, one float32 output.
 */
import { agentError } from './errors.ts';
import type { ManifestIo } from './loaded-model.ts';

/** A tensor as a runtime describes it (onnxruntime's `ValueMetadata`). */
export interface TensorMetadata {
  readonly name: string;
  readonly isTensor: boolean;
  readonly type?: string;
  /** Numbers are fixed sizes; strings (or negative numbers) are free dimensions. */
  readonly shape?: readonly (number | string)[];
}

export interface SessionIo {
  readonly inputMetadata: readonly TensorMetadata[];
  readonly outputMetadata: readonly TensorMetadata[];
}

/** How to feed the model and read its answer. */
export interface IoPlan {
  inputName: string;
  /** The input's dimensions after the batch one, all fixed. */
  inputDims: number[];
  inputWidth: number;
  /** The batch size when the model fixes it; null when the batch dimension is free. */
  fixedBatch: number | null;
  outputName: string;
  /** Numbers per output row when the manifest fixes them; null when some are free. */
  outputWidth: number | null;
}

type TensorSpec = ManifestIo['inputs'][number];

/** Throws MODEL_IO_MISMATCH naming the first difference; returns the feeding plan. */
export function checkModelIo(session: SessionIo, io: ManifestIo): IoPlan {
  checkSide('input', session.inputMetadata, io.inputs);
  checkSide('output', session.outputMetadata, io.outputs);
  if (io.inputs.length !== 1) {
    throw mismatch(`the manifest declares ${io.inputs.length} inputs; the agent feeds exactly one`);
  }
  const input = io.inputs[0]!;
  const output = io.outputs[0];
  if (output === undefined) throw mismatch('the manifest declares no output');
  for (const [side, spec] of [
    ['input', input],
    ['output', output],
  ] as const) {
    if (spec.dtype !== 'float32') {
      throw mismatch(`${side} ${spec.name} is ${spec.dtype}; the agent runs float32 tensors only`);
    }
    if (spec.shape.length < 2) {
      throw mismatch(
        `${side} ${spec.name} has shape ${shapeText(spec.shape)}; the agent needs [batch, ...]`,
      );
    }
  }
  const inputDims = input.shape.slice(1);
  if (!allFixed(inputDims) || inputDims.includes(0)) {
    throw mismatch(
      `input ${input.name} has shape ${shapeText(input.shape)}; every dimension after the batch must be a fixed size`,
    );
  }
  const outputDims = output.shape.slice(1);
  const batch = input.shape[0];
  return {
    inputName: input.name,
    inputDims,
    inputWidth: product(inputDims),
    fixedBatch: typeof batch === 'number' && batch > 0 ? batch : null,
    outputName: output.name,
    outputWidth: allFixed(outputDims) ? product(outputDims) : null,
  };
}

function checkSide(
  side: 'input' | 'output',
  actual: readonly TensorMetadata[],
  declared: readonly TensorSpec[],
): void {
  const actualNames = actual.map((t) => t.name);
  const declaredNames = declared.map((t) => t.name);
  if (actualNames.join('\u0000') !== declaredNames.join('\u0000')) {
    throw mismatch(
      `the model's ${side}s are [${actualNames.join(', ')}], the manifest declares [${declaredNames.join(', ')}]`,
    );
  }
  declared.forEach((spec, i) => checkTensor(side, actual[i]!, spec));
}

function checkTensor(side: string, actual: TensorMetadata, declared: TensorSpec): void {
  if (!actual.isTensor) throw mismatch(`${side} ${declared.name} is not a tensor`);
  if (actual.type !== declared.dtype) {
    throw mismatch(
      `${side} ${declared.name} is ${actual.type ?? 'untyped'}, the manifest declares ${declared.dtype}`,
    );
  }
  const shape = actual.shape ?? [];
  const same =
    shape.length === declared.shape.length &&
    declared.shape.every((d, i) => sameDimension(shape[i]!, d));
  if (!same) {
    throw mismatch(
      `${side} ${declared.name} has shape ${shapeText(shape)}, the manifest declares ${shapeText(declared.shape)}`,
    );
  }
}

/** Fixed sizes must be equal; a free dimension must be free on both sides (its name may differ). */
function sameDimension(actual: number | string, declared: number | string): boolean {
  const actualFree = typeof actual === 'string' || actual < 0;
  const declaredFree = typeof declared === 'string';
  return actualFree || declaredFree ? actualFree === declaredFree : actual === declared;
}

function allFixed(dims: readonly (number | string)[]): dims is number[] {
  return dims.every((d) => typeof d === 'number');
}

function shapeText(shape: readonly (number | string)[]): string {
  return `[${shape.join(', ')}]`;
}

function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function mismatch(message: string) {
  return agentError('MODEL_IO_MISMATCH', message);
}
