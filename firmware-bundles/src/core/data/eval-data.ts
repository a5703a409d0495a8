/**
 * The evaluation-data file format (`.fleval`): samples of float32 features,
 * optionally with integer class labels. Little-endian throughout:
 *
 *   offset  0  "FLEVAL01"       magic and format version, 8 bytes
 *           8  sampleCount      u32
 *          12  featureCount     u32
 *          16  classCount       u32; 0 = unlabelled
 *          20  features         float32[sampleCount * featureCount], row-major
 *           …  labels           u8[sampleCount], each < classCount (only when classCount > 0)
 *
 * The file must be exactly this long; every feature must be finite.
 */
import { factoryError } from '../errors.ts';

const MAGIC = 'FLEVAL01';
const HEADER_BYTES = 20;
export const MAX_CLASSES = 256;

export interface EvalData {
  sampleCount: number;
  featureCount: number;
  /** 0 when the data carries no labels. */
  classCount: number;
  features: Float32Array;
  /** One label per sample, or null when unlabelled. */
  labels: Uint8Array | null;
}

export function encodeEvalData(data: EvalData): Uint8Array {
  checkShape(data);
  const featureBytes = data.features.length * 4;
  const out = new Uint8Array(HEADER_BYTES + featureBytes + (data.labels?.length ?? 0));
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(8, data.sampleCount, true);
  view.setUint32(12, data.featureCount, true);
  view.setUint32(16, data.classCount, true);
  for (let i = 0; i < data.features.length; i++) {
    view.setFloat32(HEADER_BYTES + i * 4, data.features[i]!, true);
  }
  if (data.labels) out.set(data.labels, HEADER_BYTES + featureBytes);
  return out;
}

export function decodeEvalData(bytes: Uint8Array): EvalData {
  if (bytes.length < HEADER_BYTES || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    throw factoryError(
      'EVAL_DATA_MALFORMED',
      'not an evaluation-data file (expected the FLEVAL01 header)',
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const sampleCount = view.getUint32(8, true);
  const featureCount = view.getUint32(12, true);
  const classCount = view.getUint32(16, true);
  const featureBytes = sampleCount * featureCount * 4;
  const expected = HEADER_BYTES + featureBytes + (classCount > 0 ? sampleCount : 0);
  if (bytes.length !== expected) {
    throw factoryError(
      'EVAL_DATA_MALFORMED',
      `the header promises ${expected} bytes (${sampleCount} samples x ${featureCount} features), the file has ${bytes.length}`,
    );
  }
  const features = new Float32Array(sampleCount * featureCount);
  for (let i = 0; i < features.length; i++)
    features[i] = view.getFloat32(HEADER_BYTES + i * 4, true);
  const labels = classCount > 0 ? bytes.slice(HEADER_BYTES + featureBytes) : null;
  const data = { sampleCount, featureCount, classCount, features, labels };
  checkShape(data);
  return data;
}

function checkShape(data: EvalData): void {
  if (data.sampleCount < 1 || data.featureCount < 1) {
    throw factoryError(
      'EVAL_DATA_MALFORMED',
      'evaluation data needs at least one sample and one feature',
    );
  }
  if (data.features.length !== data.sampleCount * data.featureCount) {
    throw factoryError('EVAL_DATA_MALFORMED', 'feature count does not match samples x features');
  }
  if (data.classCount > MAX_CLASSES) {
    throw factoryError('EVAL_DATA_MALFORMED', `at most ${MAX_CLASSES} classes`);
  }
  if (
    data.classCount > 0 !== (data.labels !== null) ||
    (data.labels && data.labels.length !== data.sampleCount)
  ) {
    throw factoryError(
      'EVAL_DATA_MALFORMED',
      'labels must be given exactly when classCount > 0, one per sample',
    );
  }
  for (let i = 0; i < data.features.length; i++) {
    if (!Number.isFinite(data.features[i])) {
      throw factoryError(
        'EVAL_DATA_MALFORMED',
        `sample ${Math.floor(i / data.featureCount)} has a non-finite feature`,
      );
    }
  }
  if (data.labels) {
    const bad = data.labels.findIndex((l) => l >= data.classCount);
    if (bad >= 0)
      throw factoryError(
        'EVAL_DATA_MALFORMED',
        `sample ${bad} has label ${data.labels[bad]}, classCount is ${data.classCount}`,
      );
  }
}
