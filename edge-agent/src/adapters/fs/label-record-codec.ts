/**
 * The bytes of a labelled-sample segment file (fs-label-store.ts): a 16-byte
 * header, then fixed-size records, all little-endian.
 *
 *   header   0 'FLBL'  4 u16 version (1)  6 u16 0  8 u32 featureCount  12 u32 CRC-32 of bytes 0..12
 *   record   0 u32 CRC-32 of bytes 4..end   4 i32 label   8 f64 inferenceTs   16 f64 labelTs
 *            24 u8 model length   25..185 model as UTF-8 `name@version#release`   185..192 zero
 *            192 float32 x featureCount
 *
 * Every record carries its own checksum, so a torn or garbled record is
 * found, and its size is fixed by the header, so record i is at
 * 16 + i x recordBytes.
 */
import { crc32 } from 'node:zlib';
import type { ModelRef } from '@fleet/protocol';
import type { LabelledSample } from '../../core/labelled-samples.ts';

export const SEGMENT_HEADER_BYTES = 16;
export const RECORD_FIXED_BYTES = 192;
const MAGIC = 0x4c424c46; // 'FLBL' read as u32 LE
const VERSION = 1;
const MODEL_OFFSET = 25;
const MODEL_MAX_BYTES = 160;

export const recordBytesFor = (featureCount: number) => RECORD_FIXED_BYTES + 4 * featureCount;

export function encodeHeader(featureCount: number): Uint8Array {
  const bytes = new Uint8Array(SEGMENT_HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint16(4, VERSION, true);
  view.setUint32(8, featureCount, true);
  view.setUint32(12, crc32(bytes.subarray(0, 12)), true);
  return bytes;
}

/** The header's feature count, or a reason it is not a segment header. */
export function decodeHeader(bytes: Uint8Array): { featureCount: number } | { error: string } {
  if (bytes.length < SEGMENT_HEADER_BYTES) return { error: 'shorter than its header' };
  const view = new DataView(bytes.buffer, bytes.byteOffset, SEGMENT_HEADER_BYTES);
  if (view.getUint32(0, true) !== MAGIC) return { error: 'not a labelled-sample segment' };
  if (view.getUint32(12, true) !== crc32(bytes.subarray(0, 12)))
    return { error: 'header checksum mismatch' };
  if (view.getUint16(4, true) !== VERSION)
    return { error: `unknown version ${view.getUint16(4, true)}` };
  const featureCount = view.getUint32(8, true);
  if (featureCount === 0 || featureCount > 1 << 20)
    return { error: `feature count ${featureCount}` };
  return { featureCount };
}

const modelText = (m: ModelRef) => `${m.name}@${m.version}#${m.release}`;

function parseModel(text: string): ModelRef | null {
  const match = /^([^@]+)@([^#]+)#([0-9]+)$/.exec(text);
  return match ? { name: match[1]!, version: match[2]!, release: Number(match[3]) } : null;
}

/** Writes one record into `into` at `offset` (whose width must be the segment's). */
export function encodeRecord(sample: LabelledSample, into: Uint8Array, offset: number): void {
  const size = recordBytesFor(sample.features.length);
  const record = into.subarray(offset, offset + size);
  record.fill(0);
  const view = new DataView(record.buffer, record.byteOffset, size);
  const model = new TextEncoder().encode(modelText(sample.model));
  if (model.length > MODEL_MAX_BYTES) throw new RangeError('model name and version too long');
  view.setInt32(4, sample.label, true);
  view.setFloat64(8, sample.inferenceTs, true);
  view.setFloat64(16, sample.labelTs, true);
  view.setUint8(24, model.length);
  record.set(model, MODEL_OFFSET);
  sample.features.forEach((v, i) => view.setFloat32(RECORD_FIXED_BYTES + 4 * i, v, true));
  view.setUint32(0, crc32(record.subarray(4)), true);
}

/** The record at `offset`, or null when its checksum or contents are wrong. */
export function decodeRecord(
  bytes: Uint8Array,
  offset: number,
  featureCount: number,
): LabelledSample | null {
  const size = recordBytesFor(featureCount);
  if (offset + size > bytes.length) return null;
  const record = bytes.subarray(offset, offset + size);
  const view = new DataView(record.buffer, record.byteOffset, size);
  if (view.getUint32(0, true) !== crc32(record.subarray(4))) return null;
  const modelLength = view.getUint8(24);
  if (modelLength > MODEL_MAX_BYTES) return null;
  const model = parseModel(
    new TextDecoder().decode(record.subarray(MODEL_OFFSET, MODEL_OFFSET + modelLength)),
  );
  const label = view.getInt32(4, true);
  if (!model || label < 0) return null;
  const features = new Float32Array(featureCount);
  for (let i = 0; i < featureCount; i++)
    features[i] = view.getFloat32(RECORD_FIXED_BYTES + 4 * i, true);
  return {
    features,
    label,
    model,
    inferenceTs: view.getFloat64(8, true),
    labelTs: view.getFloat64(16, true),
  };
}
