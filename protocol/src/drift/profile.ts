/**
 * The drift profile: the bundle part (named by the manifest's `drift.part`)
 * that holds the baseline sketch of every monitored signal and, when a signal
 * needs it, the PCA basis of the training inputs. The bundle factory writes
 * it; the agent reads the basis to compute its signals (drift/signals.ts) and
 * the control plane reads the baselines to score flushed sketches against.
 *
 * Format, version 1 (big-endian; floats IEEE 754):
 *
 *   offset  size                  field
 *   0       4                     magic "FDRP"
 *   4       1                     version, 1
 *   5       1                     flags: bit 0 set = a PCA basis follows; other bits zero
 *   6       2                     signal count, u16, 1 to DRIFT_MAX_SIGNALS
 *   -- when bit 0 is set:
 *   8       4                     inputSize, u32, 1 to DRIFT_MAX_INPUT_SIZE
 *   12      2                     component count k, u16, 1 to DRIFT_MAX_PCA_COMPONENTS
 *   14      2                     zero
 *   16      4 x inputSize         mean, float32
 *   ...     4 x inputSize x k     components, float32, row-major, orthonormal
 *   -- then per signal:
 *           1                     name length, u8, 1 to 64
 *           that many             name, ASCII [a-z0-9_.-]
 *           4                     sketch length, u32
 *           that many             the signal sketch (signal-sketch.ts format)
 *
 * `decodeDriftProfile` validates all of it before returning, against the
 * manifest's drift spec too: every spec signal has exactly one baseline, of
 * the spec's kind, and nothing else; the basis is present exactly when a
 * `pca` or `pca-error` signal is monitored; component indices are below k;
 * input indices below inputSize; mean and components are finite and the
 * components orthonormal within PROFILE_ORTHONORMAL_TOLERANCE. It throws
 * FleetError MALFORMED, TRUNCATED, TRAILING_DATA or TOO_LARGE and never
 * returns part of a profile.
 *
 * @example
 *   const bytes = encodeDriftProfile({ pca: fit.basis, baselines });
 *   const profile = decodeDriftProfile(bytes, manifest.drift);
 */
import { FleetError } from '../errors.ts';
import { utf8 } from '../encoding/bytes.ts';
import {
  DRIFT_MAX_INPUT_SIZE,
  DRIFT_MAX_PCA_COMPONENTS,
  DRIFT_MAX_SIGNALS,
  DRIFT_SIGNAL_NAME,
  driftKindOf,
  type ManifestDrift,
} from '../bundle/manifest.ts';
import { ByteReader, magicMismatch } from './byte-reader.ts';
import type { PcaBasis } from './pca.ts';
import type { RandomSource } from './random.ts';
import {
  deserializeSignal,
  serializeSignal,
  SIGNAL_MAX_SERIALIZED_BYTES,
  type SignalSketch,
} from './signal-sketch.ts';
import { assertPcaFitsSpec } from './signals.ts';

export const DRIFT_PROFILE_MAGIC = 'FDRP';
export const DRIFT_PROFILE_VERSION = 1;
/** Default cap of a whole profile: 64 MiB (a typical one is tens of KB). */
export const DRIFT_PROFILE_MAX_BYTES = 64 * 1024 * 1024;
/** Most floats a PCA basis may hold, mean included (16 MiB of float32). */
export const DRIFT_PROFILE_MAX_PCA_FLOATS = 4 * 1024 * 1024;
/** Largest |cᵢ · cⱼ − δᵢⱼ| accepted: float32 rounding of unit rows is about 1e-7. */
export const PROFILE_ORTHONORMAL_TOLERANCE = 1e-4;

const MAGIC = utf8(DRIFT_PROFILE_MAGIC);
const WHAT = 'a drift profile';
const FLAG_PCA = 1;

/** Baselines by signal name, and the PCA basis (null when no signal uses it). */
export interface DriftProfile {
  pca: PcaBasis | null;
  baselines: Map<string, SignalSketch>;
}

export interface DriftProfileDecodeOptions {
  /** Refuse (TOO_LARGE) more bytes than this; default DRIFT_PROFILE_MAX_BYTES. */
  maxBytes?: number;
  /** For the baselines' KLL sketches, should they ever be updated; default Math.random. */
  random?: RandomSource;
}

/** Serializes a profile; refuses (MALFORMED) one that `decodeDriftProfile` would. */
export function encodeDriftProfile(profile: DriftProfile): Uint8Array {
  const { pca, baselines } = profile;
  if (baselines.size < 1 || baselines.size > DRIFT_MAX_SIGNALS) {
    throw malformed(`${baselines.size} baselines; a profile holds 1 to ${DRIFT_MAX_SIGNALS}`);
  }
  if (pca !== null) checkBasis(pca);
  const signals = [...baselines].map(([name, sketch]) => {
    if (!DRIFT_SIGNAL_NAME.test(name)) throw malformed(`signal name ${JSON.stringify(name)}`);
    return { name: utf8(name), sketch: serializeSignal(sketch) };
  });
  const pcaBytes = pca === null ? 0 : 8 + 4 * pca.inputSize * (1 + pca.components.length);
  const size = signals.reduce((sum, s) => sum + 5 + s.name.length + s.sketch.length, 8 + pcaBytes);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint8(4, DRIFT_PROFILE_VERSION);
  view.setUint8(5, pca === null ? 0 : FLAG_PCA);
  view.setUint16(6, signals.length);
  let offset = 8;
  if (pca !== null) {
    view.setUint32(offset, pca.inputSize);
    view.setUint16(offset + 4, pca.components.length);
    offset += 8;
    for (const row of [pca.mean, ...pca.components]) {
      for (const value of row) {
        view.setFloat32(offset, value);
        offset += 4;
      }
    }
  }
  for (const { name, sketch } of signals) {
    view.setUint8(offset, name.length);
    out.set(name, offset + 1);
    view.setUint32(offset + 1 + name.length, sketch.length);
    out.set(sketch, offset + 5 + name.length);
    offset += 5 + name.length + sketch.length;
  }
  return out;
}

/** Reads a profile and checks it against the manifest's drift spec, all before returning. */
export function decodeDriftProfile(
  bytes: Uint8Array,
  spec: ManifestDrift,
  options: DriftProfileDecodeOptions = {},
): DriftProfile {
  const maxBytes = options.maxBytes ?? DRIFT_PROFILE_MAX_BYTES;
  if (bytes.length > maxBytes) {
    throw new FleetError('TOO_LARGE', `${WHAT} of ${bytes.length} bytes, the cap is ${maxBytes}`);
  }
  const reader = new ByteReader(bytes, WHAT);
  reader.need(8, 'header');
  if (magicMismatch(reader.bytes(4, 'magic'), MAGIC)) {
    throw malformed(`not ${WHAT} (bad magic bytes)`);
  }
  const version = reader.u8('version');
  if (version !== DRIFT_PROFILE_VERSION) {
    throw malformed(
      `${WHAT} of format version ${version}; this code reads ${DRIFT_PROFILE_VERSION}`,
    );
  }
  const flags = reader.u8('flags');
  if ((flags & ~FLAG_PCA) !== 0) throw malformed(`${WHAT} has unknown flags ${flags}`);
  const count = reader.u16('signal count');
  if (count < 1 || count > DRIFT_MAX_SIGNALS) {
    throw malformed(`${WHAT} of ${count} signals; it holds 1 to ${DRIFT_MAX_SIGNALS}`);
  }
  const pca = (flags & FLAG_PCA) !== 0 ? readBasis(reader) : null;
  const baselines = new Map<string, SignalSketch>();
  for (let i = 0; i < count; i++) {
    const name = readName(reader, i);
    if (baselines.has(name)) throw malformed(`${WHAT} holds signal ${name} twice`);
    const length = reader.u32(`signal ${name} length`);
    if (length > SIGNAL_MAX_SERIALIZED_BYTES) {
      throw new FleetError('TOO_LARGE', `${WHAT}'s signal ${name} claims ${length} bytes`);
    }
    const sketch = reader.bytes(length, `signal ${name}`);
    baselines.set(name, deserializeSignal(sketch, { random: options.random ?? Math.random }));
  }
  reader.end();
  checkAgainstSpec(spec, { pca, baselines });
  return { pca, baselines };
}

function readBasis(reader: ByteReader): PcaBasis {
  const inputSize = reader.u32('PCA input size');
  const k = reader.u16('PCA component count');
  if (reader.u16('PCA reserved bytes') !== 0)
    throw malformed(`${WHAT}'s reserved bytes are not zero`);
  checkBasisShape(inputSize, k);
  reader.need(4 * inputSize * (k + 1), 'PCA basis');
  const rows = Array.from({ length: k + 1 }, (_, r) => {
    const raw = reader.bytes(4 * inputSize, r === 0 ? 'PCA mean' : `PCA component ${r - 1}`);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    return Float32Array.from({ length: inputSize }, (_, i) => view.getFloat32(4 * i));
  });
  const basis = { inputSize, mean: rows[0]!, components: rows.slice(1) };
  checkBasis(basis);
  return basis;
}

function readName(reader: ByteReader, i: number): string {
  const length = reader.u8(`signal ${i} name length`);
  const raw = reader.bytes(length, `signal ${i} name`);
  const name = String.fromCharCode(...raw);
  if (!DRIFT_SIGNAL_NAME.test(name)) {
    throw malformed(`${WHAT}'s signal ${i} has a bad name ${JSON.stringify(name)}`);
  }
  return name;
}

function checkBasisShape(inputSize: number, k: number): void {
  if (inputSize < 1 || inputSize > DRIFT_MAX_INPUT_SIZE) {
    throw malformed(`a PCA basis over ${inputSize} inputs; 1 to ${DRIFT_MAX_INPUT_SIZE}`);
  }
  if (k < 1 || k > DRIFT_MAX_PCA_COMPONENTS || k > inputSize) {
    throw malformed(
      `a PCA basis of ${k} components over ${inputSize} inputs; 1 to ${Math.min(DRIFT_MAX_PCA_COMPONENTS, inputSize)}`,
    );
  }
  if (inputSize * (k + 1) > DRIFT_PROFILE_MAX_PCA_FLOATS) {
    throw new FleetError(
      'TOO_LARGE',
      `a PCA basis of ${inputSize * (k + 1)} floats; the cap is ${DRIFT_PROFILE_MAX_PCA_FLOATS}`,
    );
  }
}

/** Shape, finite numbers, and orthonormal rows. */
function checkBasis(pca: PcaBasis): void {
  checkBasisShape(pca.inputSize, pca.components.length);
  for (const [r, row] of [pca.mean, ...pca.components].entries()) {
    const what = r === 0 ? 'PCA mean' : `PCA component ${r - 1}`;
    if (row.length !== pca.inputSize) {
      throw malformed(`the ${what} has ${row.length} values, not ${pca.inputSize}`);
    }
    const bad = row.findIndex((value) => !Number.isFinite(value));
    if (bad >= 0) throw malformed(`the ${what} holds ${row[bad]} at ${bad}`);
  }
  pca.components.forEach((a, i) => {
    for (let j = i; j < pca.components.length; j++) {
      const b = pca.components[j]!;
      let product = 0;
      for (let t = 0; t < a.length; t++) product += a[t]! * b[t]!;
      if (Math.abs(product - (i === j ? 1 : 0)) > PROFILE_ORTHONORMAL_TOLERANCE) {
        throw malformed(
          `PCA components ${i} and ${j} are not orthonormal (dot product ${product.toPrecision(6)})`,
        );
      }
    }
  });
}

/** The profile holds exactly the spec's signals, each of its kind, and a basis that fits. */
function checkAgainstSpec(spec: ManifestDrift, profile: DriftProfile): void {
  for (const signal of spec.signals) {
    const baseline = profile.baselines.get(signal.name);
    if (baseline === undefined)
      throw malformed(`${WHAT} has no baseline for signal ${signal.name}`);
    const kind = driftKindOf(signal.source);
    if (baseline.kind !== kind) {
      throw malformed(
        `${WHAT}'s baseline for ${signal.name} is ${baseline.kind}, the signal is ${kind}`,
      );
    }
  }
  if (profile.baselines.size !== spec.signals.length) {
    const listed = new Set(spec.signals.map((s) => s.name));
    const extra = [...profile.baselines.keys()].find((name) => !listed.has(name));
    throw malformed(`${WHAT} has a baseline for ${extra}, which the manifest does not monitor`);
  }
  assertPcaFitsSpec(spec, profile.pca);
}

function malformed(message: string): FleetError {
  return new FleetError('MALFORMED', message);
}
