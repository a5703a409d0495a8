/**
 * Fleet's own view of an ONNX model: the graph's nodes, its initializers
 * (weights) as typed arrays, and its inputs and outputs. Plain data, so the
 * quantizer and the builders work on it without protobuf types; the codec in
 * adapters/onnx turns it into ONNX bytes and back.
 */

export const TENSOR_DATA_TYPES = ['float32', 'uint8', 'int8', 'int32', 'int64'] as const;
export type TensorDataType = (typeof TENSOR_DATA_TYPES)[number];

export type TensorData = Float32Array | Uint8Array | Int8Array | Int32Array | BigInt64Array;

export interface Tensor {
  name: string;
  dataType: TensorDataType;
  dims: number[];
  data: TensorData;
}

/** A graph input or output: a name, an element type and a shape (strings are free dimensions). */
export interface ValueInfo {
  name: string;
  dataType: TensorDataType;
  shape: (number | string)[];
}

export type Attribute =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'ints'; value: number[] }
  | { type: 'floats'; value: number[] }
  | { type: 'string'; value: string };

export interface GraphNode {
  name: string;
  opType: string;
  /** Empty for the default ONNX domain. */
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, Attribute>;
}

export interface OnnxModel {
  irVersion: number;
  /** Version of the default ONNX operator set. */
  opsetVersion: number;
  producerName: string;
  graphName: string;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: Tensor[];
  nodes: GraphNode[];
}

/** Element count of a tensor with these dims. */
export function elementCount(dims: readonly number[]): number {
  return dims.reduce((n, d) => n * d, 1);
}
