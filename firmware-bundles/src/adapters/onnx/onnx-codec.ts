/**
 * ONNX protobuf bytes <-> Fleet's `OnnxModel`, through the compiled ONNX
 * schema of `onnx-proto` (protobufjs). Tensor data is always written as
 * little-endian `raw_data`; on reading, the typed repeated fields are accepted
 * too. External data, sparse initializers and subgraphs are refused: a bundle
 * must carry its whole model in one file.
 */
import onnxProto, { type onnx as Proto } from 'onnx-proto';
import { factoryError } from '../../core/errors.ts';
import {
  elementCount,
  type Attribute,
  type GraphNode,
  type OnnxModel,
  type Tensor,
  type TensorData,
  type TensorDataType,
  type ValueInfo,
} from '../../core/onnx/model.ts';

const { onnx } = onnxProto;
const DataType = onnx.TensorProto.DataType;
const AttributeType = onnx.AttributeProto.AttributeType;

const TO_ONNX: Record<TensorDataType, number> = {
  float32: DataType.FLOAT,
  uint8: DataType.UINT8,
  int8: DataType.INT8,
  int32: DataType.INT32,
  int64: DataType.INT64,
};
const FROM_ONNX = new Map<number, TensorDataType>(
  Object.entries(TO_ONNX).map(([k, v]) => [v, k as TensorDataType]),
);
const BYTES_PER_ELEMENT: Record<TensorDataType, number> = {
  float32: 4,
  uint8: 1,
  int8: 1,
  int32: 4,
  int64: 8,
};

/** protobufjs gives 64-bit ints as number or Long (whose typings this package lacks). */
function toNumber(value: unknown): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'number') return value;
  if (typeof value === 'object' && 'toNumber' in value && typeof value.toNumber === 'function') {
    return Number((value as { toNumber(): number }).toNumber());
  }
  throw factoryError('MODEL_MALFORMED', `expected an integer, got ${typeof value}`);
}

function dataTypeOf(code: number | null | undefined, where: string): TensorDataType {
  const type = FROM_ONNX.get(code ?? 0);
  if (type === undefined) {
    throw factoryError(
      'MODEL_UNSUPPORTED',
      `${where} has ONNX element type ${code}, not one of ${[...FROM_ONNX.values()].join(', ')}`,
    );
  }
  return type;
}

function typedArray(type: TensorDataType, bytes: Uint8Array): TensorData {
  const copy = new Uint8Array(bytes); // aligned, owned
  switch (type) {
    case 'float32':
      return new Float32Array(copy.buffer);
    case 'uint8':
      return copy;
    case 'int8':
      return new Int8Array(copy.buffer);
    case 'int32':
      return new Int32Array(copy.buffer);
    case 'int64':
      return new BigInt64Array(copy.buffer);
  }
}

function decodeTensor(t: Proto.ITensorProto): Tensor {
  const name = t.name ?? '';
  if (
    t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL ||
    (t.externalData?.length ?? 0) > 0
  ) {
    throw factoryError(
      'MODEL_UNSUPPORTED',
      `initializer ${name} keeps its data in an external file`,
    );
  }
  const dataType = dataTypeOf(t.dataType, `initializer ${name}`);
  const dims = (t.dims ?? []).map(toNumber);
  const count = elementCount(dims);
  let data: TensorData;
  if (t.rawData && t.rawData.length > 0) {
    if (t.rawData.length !== count * BYTES_PER_ELEMENT[dataType]) {
      throw factoryError(
        'MODEL_MALFORMED',
        `initializer ${name} holds ${t.rawData.length} bytes for ${count} ${dataType} values`,
      );
    }
    data = typedArray(dataType, t.rawData);
  } else if (dataType === 'float32') {
    data = Float32Array.from(t.floatData ?? []);
  } else if (dataType === 'int64') {
    data = BigInt64Array.from((t.int64Data ?? []).map((v) => BigInt(toNumber(v))));
  } else {
    const values = t.int32Data ?? [];
    data =
      dataType === 'int32'
        ? Int32Array.from(values)
        : dataType === 'int8'
          ? Int8Array.from(values)
          : Uint8Array.from(values);
  }
  if (data.length !== count) {
    throw factoryError(
      'MODEL_MALFORMED',
      `initializer ${name} has ${data.length} values, its shape needs ${count}`,
    );
  }
  return { name, dataType, dims, data };
}

function decodeValueInfo(v: Proto.IValueInfoProto): ValueInfo {
  const name = v.name ?? '';
  const tensorType = v.type?.tensorType;
  if (!tensorType) throw factoryError('MODEL_UNSUPPORTED', `graph value ${name} is not a tensor`);
  const shape = (tensorType.shape?.dim ?? []).map((d) =>
    d.dimParam
      ? d.dimParam
      : d.dimValue !== null && d.dimValue !== undefined
        ? toNumber(d.dimValue)
        : '?',
  );
  return { name, dataType: dataTypeOf(tensorType.elemType, `graph value ${name}`), shape };
}

function decodeAttribute(a: Proto.IAttributeProto, node: string): Attribute {
  switch (a.type) {
    case AttributeType.INT:
      return { type: 'int', value: toNumber(a.i) };
    case AttributeType.FLOAT:
      return { type: 'float', value: a.f ?? 0 };
    case AttributeType.INTS:
      return { type: 'ints', value: (a.ints ?? []).map(toNumber) };
    case AttributeType.FLOATS:
      return { type: 'floats', value: [...(a.floats ?? [])] };
    case AttributeType.STRING:
      return { type: 'string', value: new TextDecoder().decode(a.s ?? new Uint8Array()) };
    default:
      throw factoryError(
        'MODEL_UNSUPPORTED',
        `attribute ${a.name} of node ${node} has a type Fleet does not read (${a.type})`,
      );
  }
}

function decodeNode(n: Proto.INodeProto, index: number): GraphNode {
  const name = n.name || `node_${index}`;
  const attributes: Record<string, Attribute> = {};
  for (const a of n.attribute ?? []) attributes[a.name ?? ''] = decodeAttribute(a, name);
  return {
    name,
    opType: n.opType ?? '',
    domain: n.domain ?? '',
    inputs: [...(n.input ?? [])],
    outputs: [...(n.output ?? [])],
    attributes,
  };
}

/** Reads ONNX model bytes. Throws MODEL_MALFORMED for anything that is not a usable model. */
export function decodeOnnx(bytes: Uint8Array): OnnxModel {
  let proto: Proto.IModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (cause) {
    throw factoryError(
      'MODEL_MALFORMED',
      'the file is not an ONNX model (protobuf decoding failed)',
      cause,
    );
  }
  const graph = proto.graph;
  if (!graph || (graph.node?.length ?? 0) === 0 || (graph.output?.length ?? 0) === 0) {
    throw factoryError(
      'MODEL_MALFORMED',
      'the file is not an ONNX model (no graph, nodes or outputs)',
    );
  }
  if ((graph.sparseInitializer?.length ?? 0) > 0) {
    throw factoryError('MODEL_UNSUPPORTED', 'sparse initializers are not supported');
  }
  const defaultOpset = (proto.opsetImport ?? []).find((o) => !o.domain);
  const initializers = (graph.initializer ?? []).map(decodeTensor);
  const weightNames = new Set(initializers.map((t) => t.name));
  return {
    irVersion: toNumber(proto.irVersion),
    opsetVersion: toNumber(defaultOpset?.version),
    producerName: proto.producerName ?? '',
    graphName: graph.name ?? '',
    // Older exporters list initializers among the inputs too; they are not real inputs.
    inputs: (graph.input ?? []).filter((v) => !weightNames.has(v.name ?? '')).map(decodeValueInfo),
    outputs: (graph.output ?? []).map(decodeValueInfo),
    initializers,
    nodes: (graph.node ?? []).map(decodeNode),
  };
}

function encodeAttribute(name: string, a: Attribute): Proto.IAttributeProto {
  switch (a.type) {
    case 'int':
      return { name, type: AttributeType.INT, i: a.value };
    case 'float':
      return { name, type: AttributeType.FLOAT, f: a.value };
    case 'ints':
      return { name, type: AttributeType.INTS, ints: a.value };
    case 'floats':
      return { name, type: AttributeType.FLOATS, floats: a.value };
    case 'string':
      return { name, type: AttributeType.STRING, s: new TextEncoder().encode(a.value) };
  }
}

function encodeValueInfo(v: ValueInfo): Proto.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: TO_ONNX[v.dataType],
        shape: {
          dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  };
}

/** Writes a model as ONNX bytes (tensor data as little-endian raw_data). */
export function encodeOnnx(model: OnnxModel): Uint8Array {
  const proto = onnx.ModelProto.create({
    irVersion: model.irVersion,
    producerName: model.producerName,
    opsetImport: [{ domain: '', version: model.opsetVersion }],
    graph: {
      name: model.graphName,
      input: model.inputs.map(encodeValueInfo),
      output: model.outputs.map(encodeValueInfo),
      initializer: model.initializers.map((t) => ({
        name: t.name,
        dataType: TO_ONNX[t.dataType],
        dims: t.dims,
        rawData: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
      })),
      node: model.nodes.map((n) => ({
        name: n.name,
        opType: n.opType,
        domain: n.domain,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attributes).map(([name, a]) => encodeAttribute(name, a)),
      })),
    },
  });
  return onnx.ModelProto.encode(proto).finish();
}
