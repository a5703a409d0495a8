/**
 * The uncompressed body of a tensor set (layout in tensor-set.ts): writing
 * it from checked tensors, and reading it back with every field validated
 * before anything is returned. Integers are big-endian (ByteReader); float32
 * scales and values are little-endian, the layout of ONNX raw_data and of a
 * Float32Array on every platform Fleet runs on.
 */
import { FleetError } from '../errors.ts';
import { fromUtf8, utf8 } from '../encoding/bytes.ts';
import { ByteReader } from '../drift/byte-reader.ts';
import { checkInt8Groups, dequantizeInt8 } from './quantize.ts';

/** Most bytes of one tensor name (ASCII, so also characters). */
export const MAX_TENSOR_NAME_BYTES = 128;
/** Most dimensions of one tensor. */
export const MAX_TENSOR_RANK = 4;
/** Tensor names: 1-128 of `[A-Za-z0-9_./:-]` (`dense_0/kernel`). */
export const TENSOR_NAME = /^[A-Za-z0-9_./:-]{1,128}$/;

/** Body bytes of one tensor besides its scales and values, at most. */
export const TENSOR_OVERHEAD_BYTES = 1 + MAX_TENSOR_NAME_BYTES + 1 + 1 + 4 * MAX_TENSOR_RANK + 4;

export const DTYPE_CODES = { float32: 1, int8: 2 } as const;
export type TensorDtype = keyof typeof DTYPE_CODES;

/** One tensor as stored: float32 values, or int8 values with their scales. */
export type StoredTensor =
  | { name: string; dims: number[]; dtype: 'float32'; values: Float32Array }
  | { name: string; dims: number[]; dtype: 'int8'; values: Int8Array; scales: Float32Array };

/** A decoded tensor: the stored form and its float32 values. */
export interface ReadTensor {
  name: string;
  dims: number[];
  dtype: TensorDtype;
  values: Float32Array;
  scales: Float32Array;
}

/** Elements of `dims`, or `limit + 1` as soon as the product passes `limit`. */
export function elementsOf(dims: readonly number[], limit: number): number {
  let n = 1;
  for (const d of dims) {
    n *= d;
    if (n > limit) return limit + 1;
  }
  return n;
}

function storedSize(t: StoredTensor): number {
  const scales = t.dtype === 'int8' ? t.scales.length : 0;
  return 1 + t.name.length + 1 + 1 + 4 * t.dims.length + 4 + 4 * scales + t.values.byteLength;
}

/** Writes checked tensors (names ASCII, dims and lengths consistent) into one body. */
export function writeBody(tensors: readonly StoredTensor[]): Uint8Array {
  const out = new Uint8Array(tensors.reduce((sum, t) => sum + storedSize(t), 0));
  const view = new DataView(out.buffer);
  let o = 0;
  for (const t of tensors) {
    view.setUint8(o++, t.name.length);
    out.set(utf8(t.name), o);
    o += t.name.length;
    view.setUint8(o++, DTYPE_CODES[t.dtype]);
    view.setUint8(o++, t.dims.length);
    for (const d of t.dims) view.setUint32((o += 4) - 4, d);
    const scales = t.dtype === 'int8' ? t.scales : new Float32Array(0);
    view.setUint32(o, scales.length);
    o += 4;
    for (const s of scales) view.setFloat32((o += 4) - 4, s, true);
    if (t.dtype === 'int8') {
      out.set(new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.length), o);
      o += t.values.length;
    } else {
      for (const v of t.values) view.setFloat32((o += 4) - 4, v, true);
    }
  }
  return out;
}

/**
 * Reads `count` tensors and requires the body to end there. Throws MALFORMED,
 * TRUNCATED or TRAILING_DATA (the caller folds these into MALFORMED),
 * TOO_LARGE past `maxElements` in all, NON_FINITE for a NaN or infinite value or scale.
 */
export function readBody(body: Uint8Array, count: number, maxElements: number): ReadTensor[] {
  const reader = new ByteReader(body, 'a tensor set');
  const names = new Set<string>();
  const tensors: ReadTensor[] = [];
  let elements = 0;
  for (let t = 0; t < count; t++) {
    const name = readName(reader, t, names);
    const dtype = readDtype(reader, name);
    const dims = readDims(reader, name);
    const n = elementsOf(dims, maxElements);
    if (elements + n > maxElements) {
      throw new FleetError(
        'TOO_LARGE',
        `tensor set holds more than ${maxElements} elements (at tensor ${name})`,
      );
    }
    elements += n;
    const scaleCount = reader.u32(`scale count of ${name}`);
    const last = dims[dims.length - 1]!;
    if (dtype === 'float32' ? scaleCount !== 0 : scaleCount !== 1 && scaleCount !== last) {
      throw new FleetError(
        'MALFORMED',
        `tensor ${name} (${dtype}, dims [${dims.join(', ')}]) has ${scaleCount} scales; ` +
          (dtype === 'float32' ? 'float32 has none' : `int8 has 1 or ${last}`),
      );
    }
    const scales = readFloats(reader, scaleCount, `scales of ${name}`);
    let values: Float32Array;
    if (dtype === 'int8') {
      const raw = reader.bytes(n, `values of ${name}`);
      const q = new Int8Array(raw.buffer, raw.byteOffset, raw.length);
      checkInt8Groups(name, q, scales);
      values = dequantizeInt8(q, scales);
    } else {
      values = readFloats(reader, n, `values of ${name}`);
      assertFinite(values, name);
    }
    tensors.push({ name, dims, dtype, values, scales });
  }
  reader.end();
  return tensors;
}

function readName(reader: ByteReader, index: number, names: Set<string>): string {
  const length = reader.u8(`name length of tensor ${index}`);
  if (length === 0 || length > MAX_TENSOR_NAME_BYTES) {
    throw new FleetError('MALFORMED', `tensor ${index} has a name of ${length} bytes (1-128)`);
  }
  const name = fromUtf8(reader.bytes(length, `name of tensor ${index}`));
  if (!TENSOR_NAME.test(name)) {
    throw new FleetError(
      'MALFORMED',
      `tensor ${index} is named ${JSON.stringify(name)}: a name is 1-128 of [A-Za-z0-9_./:-]`,
    );
  }
  if (names.has(name)) throw new FleetError('MALFORMED', `tensor ${name} is listed twice`);
  names.add(name);
  return name;
}

function readDtype(reader: ByteReader, name: string): TensorDtype {
  const code = reader.u8(`dtype of ${name}`);
  if (code === DTYPE_CODES.float32) return 'float32';
  if (code === DTYPE_CODES.int8) return 'int8';
  throw new FleetError('MALFORMED', `tensor ${name} has dtype code ${code} (1 float32, 2 int8)`);
}

function readDims(reader: ByteReader, name: string): number[] {
  const rank = reader.u8(`rank of ${name}`);
  if (rank === 0 || rank > MAX_TENSOR_RANK) {
    throw new FleetError('MALFORMED', `tensor ${name} has rank ${rank} (1-${MAX_TENSOR_RANK})`);
  }
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) {
    const d = reader.u32(`dims of ${name}`);
    if (d === 0) throw new FleetError('MALFORMED', `tensor ${name} has a dimension of 0`);
    dims.push(d);
  }
  return dims;
}

function readFloats(reader: ByteReader, count: number, field: string): Float32Array {
  const raw = reader.bytes(4 * count, field);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.length);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

/** Throws NON_FINITE naming the tensor and the first NaN or infinite element. */
export function assertFinite(values: Float32Array, name: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) {
      throw new FleetError('NON_FINITE', `tensor ${name} holds ${values[i]} at element ${i}`);
    }
  }
}
