/**
 * FTNS v1: a set of named tensors as bytes, for federated-learning updates
 * (weight deltas, int8 per-tensor by default) and a bundle's training weights
 * (`weights.ftns`: the shipped model's exact int8 per-channel kernels with
 * float32 biases, or all float32).
 *
 *   offset  size  field (clear header, big-endian)
 *   0       4     magic "FTNS"
 *   4       1     version, 1
 *   5       1     reserved, 0
 *   6       2     tensor count, 1 to MAX_TENSOR_SET_TENSORS (256)
 *   8       4     body length: the uncompressed length of what follows
 *   12      ...   the body, raw deflate (RFC 1951)
 *
 *   body, per tensor:
 *     u8     name length, 1-128; then the name, [A-Za-z0-9_./:-], unique
 *     u8     dtype: 1 float32, 2 int8
 *     u8     rank, 1-4; then rank x u32 dims, each >= 1
 *     u32    scale count: 0 for float32; 1 (per tensor) or dims[last] (per channel) for int8
 *     f32le  x scale count
 *     data   float32le x n, or int8 x n (n = product of dims; row-major, last axis innermost)
 *
 * Caps: 256 tensors and MAX_TENSOR_SET_ELEMENTS (16,777,216) elements in all,
 * so a body is at most MAX_TENSOR_SET_BODY_BYTES. The body length is in the
 * clear, so inflating stops there (bounded-deflate.ts). int8 follows
 * quantize.ts: symmetric, canonical (max |q| = 127 per nonzero scale group,
 * scale 1 for an all-zero group), error at most scale / 2 per element.
 *
 * `decodeTensorSet` validates the whole input before it returns; every refusal
 * is a FleetError: TOO_LARGE (over a cap, or inflating past the declared
 * length), NON_FINITE (a NaN or infinite value or scale), MALFORMED for
 * everything else (bad magic, truncation, trailing bytes, bad names or dims).
 *
 * @example
 *   const bytes = encodeTensorSet(delta, { encoding: 'int8' });
 *   const { tensors } = decodeTensorSet(bytes, { maxElements: 199_210 });
 */
import { FleetError, isFleetError } from '../errors.ts';
import { utf8 } from '../encoding/bytes.ts';
import { ByteReader, magicMismatch } from '../drift/byte-reader.ts';
import { deflateRaw, inflateExactly, MAX_DEFLATE_RATIO } from './bounded-deflate.ts';
import { channelCount, checkInt8Groups, quantizeInt8 } from './quantize.ts';
import {
  assertFinite,
  elementsOf,
  MAX_TENSOR_RANK,
  readBody,
  TENSOR_NAME,
  TENSOR_OVERHEAD_BYTES,
  writeBody,
  type StoredTensor,
  type TensorDtype,
} from './tensor-set-body.ts';

export { MAX_TENSOR_NAME_BYTES, MAX_TENSOR_RANK, type TensorDtype } from './tensor-set-body.ts';

export const TENSOR_SET_MAGIC = 'FTNS';
export const TENSOR_SET_VERSION = 1;
/** Most tensors in one set. */
export const MAX_TENSOR_SET_TENSORS = 256;
/** Most elements of all tensors of one set together (2^24). */
export const MAX_TENSOR_SET_ELEMENTS = 16_777_216;
/** Clear header bytes before the compressed body. */
export const TENSOR_SET_HEADER_BYTES = 12;

/** Largest body of a set of `tensors` tensors and `elements` elements (int8 per channel of a rank-1 tensor: 5 bytes per element). */
export function maxTensorSetBodyBytes(tensors: number, elements: number): number {
  return tensors * TENSOR_OVERHEAD_BYTES + 5 * elements;
}

/** Largest uncompressed body of any set: 83,924,736 bytes. */
export const MAX_TENSOR_SET_BODY_BYTES = maxTensorSetBodyBytes(
  MAX_TENSOR_SET_TENSORS,
  MAX_TENSOR_SET_ELEMENTS,
);

const MAGIC = utf8(TENSOR_SET_MAGIC);
const WHAT = 'a tensor set';

/** A tensor by name: `dims` row-major (last axis innermost), `values.length` their product. */
export interface NamedTensor {
  name: string;
  dims: number[];
  values: Float32Array;
}

/** How a whole set is stored when encoding from float32. */
export type TensorSetEncoding = 'float32' | 'int8';

export interface EncodeTensorSetOptions {
  encoding: TensorSetEncoding;
  /** int8 only: one scale per tensor (default) or per last-axis channel. */
  scales?: 'tensor' | 'channel';
}

/** A tensor already in its stored form (the bundle factory's exact int8 weights). */
export type QuantizedTensor = StoredTensor;

/** The scales of one decoded tensor: empty for float32. */
export interface TensorQuantization {
  name: string;
  dtype: TensorDtype;
  scales: Float32Array;
}

export interface DecodedTensorSet {
  /** `mixed` when the set holds both dtypes (int8 kernels with float32 biases). */
  encoding: TensorSetEncoding | 'mixed';
  /** In stored order; int8 tensors dequantized. */
  tensors: NamedTensor[];
  /** Parallel to `tensors`. */
  quantization: TensorQuantization[];
}

/** Caps a receiver sets below the format's own; larger values are clamped to those. */
export interface TensorSetLimits {
  maxTensors?: number;
  /** E.g. the model's parameter count for an update of that model. */
  maxElements?: number;
}

/**
 * Encodes float32 tensors, quantizing them for `int8`. Throws NON_FINITE for a
 * NaN or infinite value, MALFORMED for a bad name, duplicate, dims or length,
 * TOO_LARGE over the caps.
 */
export function encodeTensorSet(
  tensors: readonly NamedTensor[],
  options: EncodeTensorSetOptions,
): Uint8Array {
  const stored = tensors.map((t, i): StoredTensor => {
    checkShape(t.name, t.dims, t.values.length, i);
    assertFinite(t.values, t.name);
    if (options.encoding === 'float32') return { ...t, dtype: 'float32' };
    const q = quantizeInt8(t.values, channelCount(t.dims, options.scales ?? 'tensor'));
    return { name: t.name, dims: t.dims, dtype: 'int8', values: q.values, scales: q.scales };
  });
  return encodeQuantizedTensorSet(stored);
}

/**
 * Encodes tensors already in stored form: int8 values with their scales (in
 * quantize.ts's canonical form), or float32. Validated as decoding would.
 */
export function encodeQuantizedTensorSet(tensors: readonly QuantizedTensor[]): Uint8Array {
  checkCount(tensors.length, MAX_TENSOR_SET_TENSORS);
  const names = new Set<string>();
  let elements = 0;
  tensors.forEach((t, i) => {
    checkShape(t.name, t.dims, t.values.length, i);
    if (names.has(t.name)) throw new FleetError('MALFORMED', `tensor ${t.name} is listed twice`);
    names.add(t.name);
    elements += t.values.length;
    if (t.dtype === 'float32') {
      assertFinite(t.values, t.name);
    } else if (t.dtype === 'int8') {
      const last = t.dims[t.dims.length - 1]!;
      if (t.scales.length !== 1 && t.scales.length !== last) {
        throw new FleetError(
          'MALFORMED',
          `tensor ${t.name} has ${t.scales.length} scales; int8 has 1 or ${last}`,
        );
      }
      checkInt8Groups(t.name, t.values, t.scales);
    } else {
      throw new FleetError('MALFORMED', `tensor ${String((t as StoredTensor).name)} has no dtype`);
    }
  });
  if (elements > MAX_TENSOR_SET_ELEMENTS) {
    throw new FleetError(
      'TOO_LARGE',
      `${WHAT} of ${elements} elements, the cap is ${MAX_TENSOR_SET_ELEMENTS}`,
    );
  }
  const body = writeBody(tensors);
  const compressed = deflateRaw(body);
  const out = new Uint8Array(TENSOR_SET_HEADER_BYTES + compressed.length);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint8(4, TENSOR_SET_VERSION);
  view.setUint8(5, 0);
  view.setUint16(6, tensors.length);
  view.setUint32(8, body.length);
  out.set(compressed, TENSOR_SET_HEADER_BYTES);
  return out;
}

/** Decodes and validates a tensor set; see the module comment for what it refuses. */
export function decodeTensorSet(bytes: Uint8Array, limits: TensorSetLimits = {}): DecodedTensorSet {
  const maxTensors = Math.min(limits.maxTensors ?? Infinity, MAX_TENSOR_SET_TENSORS);
  const maxElements = Math.min(limits.maxElements ?? Infinity, MAX_TENSOR_SET_ELEMENTS);
  const maxBody = maxTensorSetBodyBytes(maxTensors, maxElements);
  try {
    // Stored deflate blocks cost 5 bytes per 65,535: compressed input is never much over the body.
    const maxInput = TENSOR_SET_HEADER_BYTES + maxBody + Math.ceil(maxBody / 1024) + 1024;
    if (bytes.length > maxInput) {
      throw new FleetError('TOO_LARGE', `${WHAT} of ${bytes.length} bytes, the cap is ${maxInput}`);
    }
    const reader = new ByteReader(bytes, WHAT);
    reader.need(TENSOR_SET_HEADER_BYTES, 'header');
    if (magicMismatch(reader.bytes(4, 'magic'), MAGIC)) {
      throw new FleetError('MALFORMED', `not ${WHAT} (bad magic bytes)`);
    }
    const version = reader.u8('version');
    if (version !== TENSOR_SET_VERSION) {
      throw new FleetError(
        'MALFORMED',
        `${WHAT} of format version ${version}; this code reads ${TENSOR_SET_VERSION}`,
      );
    }
    const reserved = reader.u8('reserved byte');
    if (reserved !== 0) throw new FleetError('MALFORMED', `${WHAT} has reserved byte ${reserved}`);
    const count = checkCount(reader.u16('tensor count'), maxTensors);
    const bodyLength = reader.u32('body length');
    const compressed = reader.bytes(reader.remaining, 'body');
    if (bodyLength > maxBody) {
      throw new FleetError(
        'TOO_LARGE',
        `${WHAT} declares a body of ${bodyLength} bytes, the cap is ${maxBody}`,
      );
    }
    if (bodyLength > MAX_DEFLATE_RATIO * compressed.length + 64) {
      throw new FleetError(
        'MALFORMED',
        `${WHAT} declares a body of ${bodyLength} bytes, more than its ${compressed.length} compressed bytes can hold`,
      );
    }
    const body = inflateExactly(compressed, bodyLength, WHAT);
    const read = readBody(body, count, maxElements);
    const dtypes = new Set(read.map((t) => t.dtype));
    return {
      encoding: dtypes.size === 1 ? read[0]!.dtype : 'mixed',
      tensors: read.map(({ name, dims, values }) => ({ name, dims, values })),
      quantization: read.map(({ name, dtype, scales }) => ({ name, dtype, scales })),
    };
  } catch (error) {
    throw asTensorSetError(error);
  }
}

/** Folds the byte reader's TRUNCATED and TRAILING_DATA into MALFORMED; other errors pass. */
function asTensorSetError(error: unknown): unknown {
  if (isFleetError(error, 'TRUNCATED') || isFleetError(error, 'TRAILING_DATA')) {
    return new FleetError('MALFORMED', error.message.slice(error.code.length + 2), {
      cause: error,
    });
  }
  if (error instanceof FleetError) return error;
  return new FleetError('MALFORMED', `${WHAT} could not be read`, { cause: error });
}

function checkCount(count: number, max: number): number {
  if (count === 0) throw new FleetError('MALFORMED', `${WHAT} holds no tensor`);
  if (count > max) {
    throw new FleetError('TOO_LARGE', `${WHAT} of ${count} tensors, the cap is ${max}`);
  }
  return count;
}

/** Name, rank and dims of tensor `index`, and `length` equal to the product of its dims. */
function checkShape(name: string, dims: readonly number[], length: number, index: number): void {
  if (typeof name !== 'string' || !TENSOR_NAME.test(name)) {
    throw new FleetError(
      'MALFORMED',
      `tensor ${index} is named ${JSON.stringify(String(name).slice(0, 140))}: a name is 1-128 of [A-Za-z0-9_./:-]`,
    );
  }
  if (!Array.isArray(dims) || dims.length === 0 || dims.length > MAX_TENSOR_RANK) {
    throw new FleetError(
      'MALFORMED',
      `tensor ${name} has rank ${dims?.length} (1-${MAX_TENSOR_RANK})`,
    );
  }
  if (!dims.every((d) => Number.isInteger(d) && d >= 1 && d <= 0xffffffff)) {
    throw new FleetError(
      'MALFORMED',
      `tensor ${name} has dims [${dims.join(', ')}]: integers >= 1`,
    );
  }
  const n = elementsOf(dims, MAX_TENSOR_SET_ELEMENTS);
  if (n > MAX_TENSOR_SET_ELEMENTS) {
    throw new FleetError(
      'TOO_LARGE',
      `tensor ${name} has more than ${MAX_TENSOR_SET_ELEMENTS} elements`,
    );
  }
  if (n !== length) {
    throw new FleetError(
      'MALFORMED',
      `tensor ${name} has dims [${dims.join(', ')}] (${n} elements) but ${length} values`,
    );
  }
}
