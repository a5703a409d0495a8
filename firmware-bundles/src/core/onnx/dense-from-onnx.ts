/**
 * Reads a dense architecture back out of a float ONNX graph, so a model
 * imported with `fleet bundle build --onnx` can carry training weights. Only
 * the plain chain `buildDenseModel` writes (and converters write for a stack
 * of dense layers) is accepted:
 *
 *   input [batch, N] -> ( MatMul(x, W[in, units]) -> Add(b[units]) -> Relu? )+
 *                    -> Softmax(last axis)? -> Identity? -> the one output
 *
 * W and b are float32 initializers; Add takes its operands in either order.
 * Anything else (another op, a branch, a weight that is computed, Gemm,
 * Conv) is refused with MODEL_UNSUPPORTED naming what did not fit: devices
 * rebuild exactly this architecture to train, so a guess would train a
 * different model from the one that serves.
 */
import { factoryError } from '../errors.ts';
import type { DenseArchitecture } from './dense-builder.ts';
import type { GraphNode, OnnxModel, Tensor } from './model.ts';

/** A dense graph read from ONNX. */
export interface DenseOnnxGraph {
  /** The float weights in the builder's layout (arrays shared with the model). */
  architecture: DenseArchitecture;
  /** Per layer, the names of its kernel and bias initializers in the graph. */
  initializers: { kernel: string; bias: string }[];
}

/** Reads the dense layers of `model`; throws MODEL_UNSUPPORTED for any other graph. */
export function denseArchitectureFromOnnx(model: OnnxModel): DenseOnnxGraph {
  const weights = new Map(model.initializers.map((t) => [t.name, t]));
  // IR < 4 lists initializers among the graph inputs too.
  const inputs = model.inputs.filter((v) => !weights.has(v.name));
  if (inputs.length !== 1 || model.outputs.length !== 1) {
    throw refuse(`it has ${inputs.length} inputs and ${model.outputs.length} outputs, not 1 and 1`);
  }
  const input = inputs[0]!;
  const width = input.shape[1];
  if (input.dataType !== 'float32' || input.shape.length !== 2 || typeof width !== 'number') {
    throw refuse(
      `input ${input.name} is ${input.dataType} [${input.shape.join(', ')}], not float32 [batch, N]`,
    );
  }
  const chain = new DenseChain(width, input.name, weights);
  for (const node of model.nodes) chain.accept(node);
  return chain.finish(model.outputs[0]!.name);
}

function refuse(why: string) {
  return factoryError(
    'MODEL_UNSUPPORTED',
    `not a plain dense MatMul/Add/Relu graph, so no dense architecture: ${why}`,
  );
}

type Stage = 'layer' | 'matmul' | 'add' | 'relu' | 'softmax' | 'identity';

/** Walks the nodes in graph order, one expected op after another. */
class DenseChain {
  private stage: Stage = 'layer';
  private readonly layers: DenseArchitecture['layers'] = [];
  private readonly names: DenseOnnxGraph['initializers'] = [];
  private pendingKernel: Tensor | undefined;
  private softmax = false;

  private readonly inputSize: number;
  private width: number;
  private current: string;
  private readonly weights: ReadonlyMap<string, Tensor>;

  constructor(inputSize: number, input: string, weights: ReadonlyMap<string, Tensor>) {
    this.inputSize = inputSize;
    this.width = inputSize;
    this.current = input;
    this.weights = weights;
  }

  accept(node: GraphNode): void {
    const at = `node ${node.name || '?'} (${node.domain ? `${node.domain}.` : ''}${node.opType})`;
    if (node.domain !== '' || node.outputs.length !== 1) throw refuse(`${at} is not a dense step`);
    const data = node.inputs.filter((name) => !this.weights.has(name));
    if (data.length !== 1 || data[0] !== this.current) {
      throw refuse(`${at} does not take exactly the previous value ${this.current}`);
    }
    const op = node.opType;
    if (op === 'MatMul' && ['layer', 'add', 'relu'].includes(this.stage)) {
      this.matmul(node, at);
    } else if (op === 'Add' && this.stage === 'matmul') {
      this.add(node, at);
    } else if (op === 'Relu' && this.stage === 'add') {
      this.layers.at(-1)!.activation = 'relu';
      this.stage = 'relu';
    } else if (op === 'Softmax' && (this.stage === 'add' || this.stage === 'relu')) {
      const axis = node.attributes['axis'];
      if (axis !== undefined && !(axis.type === 'int' && (axis.value === -1 || axis.value === 1))) {
        throw refuse(`${at} is not over the last axis`);
      }
      this.softmax = true;
      this.stage = 'softmax';
    } else if (op === 'Identity' && ['add', 'relu', 'softmax'].includes(this.stage)) {
      this.stage = 'identity';
    } else {
      throw refuse(`${at} does not fit after ${this.stage === 'layer' ? 'the input' : this.stage}`);
    }
    this.current = node.outputs[0]!;
  }

  private matmul(node: GraphNode, at: string): void {
    const w = this.weights.get(node.inputs[1] ?? '');
    if (node.inputs[0] !== this.current || !w || w.dataType !== 'float32' || w.dims.length !== 2) {
      throw refuse(`${at} does not multiply the previous value by a float32 [in, units] weight`);
    }
    if (w.dims[0] !== this.width) {
      throw refuse(`${at} has weight [${w.dims.join(', ')}] after a width of ${this.width}`);
    }
    this.pendingKernel = w;
    this.stage = 'matmul';
  }

  private add(node: GraphNode, at: string): void {
    const kernel = this.pendingKernel!;
    const units = kernel.dims[1]!;
    const b =
      node.inputs.length === 2
        ? this.weights.get(node.inputs.find((n) => n !== this.current) ?? '')
        : undefined;
    if (!b || b.dataType !== 'float32' || b.dims.length !== 1 || b.dims[0] !== units) {
      throw refuse(`${at} does not add a float32 [${units}] bias`);
    }
    this.layers.push({
      units,
      activation: 'linear',
      weights: kernel.data as Float32Array,
      bias: b.data as Float32Array,
    });
    this.names.push({ kernel: kernel.name, bias: b.name });
    this.width = units;
    this.stage = 'add';
  }

  finish(output: string): DenseOnnxGraph {
    if (this.layers.length === 0 || this.stage === 'matmul') {
      throw refuse(
        this.layers.length === 0 ? 'it has no dense layer' : 'it ends in a MatMul without its bias',
      );
    }
    if (this.current !== output) {
      throw refuse(`its output ${output} is not the end of the dense chain (${this.current})`);
    }
    return {
      architecture: {
        inputSize: this.inputSize,
        layers: this.layers,
        softmaxOutput: this.softmax,
      },
      initializers: this.names,
    };
  }
}
