/**
 * One monitored signal's sketches in one value, so the agent's sampler and
 * the control plane's merge handle a single type: a numeric signal (an input
 * feature, model confidence, a PCA projection) keeps summary counters and a
 * KLL sketch; a categorical one (the predicted class) keeps a frequent-items
 * sketch and a count of missing values.
 *
 * Numeric: null/undefined, NaN and +-Infinity go to the counters only; finite
 * values to both, so `counters.count === kll.n` always (deserialize checks it).
 * Categorical: null/undefined add to `nullCount`; a number must be a safe
 * integer and is counted as its decimal string (class 3 is item "3").
 *
 * Format, version 1 (big-endian):
 *
 *   offset  size  field
 *   0       4     magic "FSIG"
 *   4       1     version, 1
 *   5       1     kind: 1 numeric, 2 categorical
 *   6       2     zero
 *   numeric:     u32 length + counters (counters.ts), u32 length + KLL sketch (kll-format.ts)
 *   categorical: u64 nullCount, u32 length + frequent-items sketch (frequent-items.ts)
 *
 * @example
 *   const signal = createNumericSignal({ k: 200 });
 *   updateSignal(signal, 0.93);
 *   const merged = deserializeSignal(bytesA);
 *   mergeSignal(merged, deserializeSignal(bytesB));
 */
import { FleetError } from '../errors.ts';
import { utf8 } from '../encoding/bytes.ts';
import { ByteReader, magicMismatch, setU64 } from './byte-reader.ts';
import { COUNTERS_SERIALIZED_BYTES, SummaryCounters } from './counters.ts';
import {
  FREQUENT_ITEMS_MAX_SERIALIZED_BYTES,
  FrequentItemsSketch,
  type FrequentItemsOptions,
} from './frequent-items.ts';
import { KllSketch, type KllOptions } from './kll.ts';
import { KLL_MAX_SERIALIZED_BYTES } from './kll-format.ts';
import type { RandomSource } from './random.ts';

export const SIGNAL_FORMAT_MAGIC = 'FSIG';
export const SIGNAL_FORMAT_VERSION = 1;
/** The largest serialized signal sketch of either kind. */
export const SIGNAL_MAX_SERIALIZED_BYTES =
  8 +
  Math.max(
    8 + COUNTERS_SERIALIZED_BYTES + KLL_MAX_SERIALIZED_BYTES,
    12 + FREQUENT_ITEMS_MAX_SERIALIZED_BYTES,
  );

const MAGIC = utf8(SIGNAL_FORMAT_MAGIC);
const WHAT = 'a signal sketch';
const KIND_CODES = { numeric: 1, categorical: 2 } as const;

export interface NumericSignalSketch {
  readonly kind: 'numeric';
  readonly counters: SummaryCounters;
  readonly kll: KllSketch;
}

export interface CategoricalSignalSketch {
  readonly kind: 'categorical';
  readonly items: FrequentItemsSketch;
  /** Updates with null or undefined. */
  nullCount: number;
}

export type SignalSketch = NumericSignalSketch | CategoricalSignalSketch;

export function createNumericSignal(options: KllOptions = {}): NumericSignalSketch {
  return { kind: 'numeric', counters: new SummaryCounters(), kll: new KllSketch(options) };
}

export function createCategoricalSignal(
  options: FrequentItemsOptions = {},
): CategoricalSignalSketch {
  return { kind: 'categorical', items: new FrequentItemsSketch(options), nullCount: 0 };
}

/** Feeds one observation: a number for a numeric signal, a string or integer for a categorical one. */
export function updateSignal(
  sketch: SignalSketch,
  value: number | string | null | undefined,
): void {
  if (sketch.kind === 'numeric') {
    if (typeof value === 'string') {
      throw new FleetError('MALFORMED', 'a numeric signal takes numbers, not strings');
    }
    sketch.counters.update(value);
    if (value !== null && value !== undefined) sketch.kll.update(value);
    return;
  }
  if (value === null || value === undefined) {
    if (sketch.nullCount >= Number.MAX_SAFE_INTEGER) {
      throw new FleetError('TOO_LARGE', 'a signal counts at most 2^53 - 1 missing values');
    }
    sketch.nullCount++;
  } else if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new FleetError(
      'MALFORMED',
      `a categorical signal takes strings or integers, not ${value}`,
    );
  } else {
    sketch.items.update(String(value));
  }
}

/** Adds everything `other` saw to `into`; both must be of one kind. */
export function mergeSignal(into: SignalSketch, other: SignalSketch): void {
  if (into.kind === 'numeric' && other.kind === 'numeric') {
    into.counters.merge(other.counters);
    into.kll.merge(other.kll);
  } else if (into.kind === 'categorical' && other.kind === 'categorical') {
    if (into.nullCount + other.nullCount > Number.MAX_SAFE_INTEGER) {
      throw new FleetError('TOO_LARGE', 'a merged signal would count 2^53 missing values or more');
    }
    into.items.merge(other.items);
    into.nullCount += other.nullCount;
  } else {
    throw new FleetError(
      'MALFORMED',
      `cannot merge a ${other.kind} signal into a ${into.kind} one`,
    );
  }
}

export function serializeSignal(sketch: SignalSketch): Uint8Array {
  const parts: Uint8Array[] =
    sketch.kind === 'numeric'
      ? [sketch.counters.serialize(), sketch.kll.serialize()]
      : [sketch.items.serialize()];
  const prefix = sketch.kind === 'numeric' ? 0 : 8; // the categorical nullCount
  const out = new Uint8Array(8 + prefix + parts.reduce((sum, part) => sum + 4 + part.length, 0));
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint8(4, SIGNAL_FORMAT_VERSION);
  view.setUint8(5, KIND_CODES[sketch.kind]);
  if (sketch.kind === 'categorical') setU64(view, 8, sketch.nullCount);
  let offset = 8 + prefix;
  for (const part of parts) {
    view.setUint32(offset, part.length);
    out.set(part, offset + 4);
    offset += 4 + part.length;
  }
  return out;
}

export interface SignalDeserializeOptions {
  /** For the KLL sketch's future compactions; default Math.random. */
  random?: RandomSource;
  /** Refuse (TOO_LARGE) more bytes than this; default SIGNAL_MAX_SERIALIZED_BYTES. */
  maxBytes?: number;
}

/** Reads a serialized signal sketch, validating all of it first (a FleetError otherwise). */
export function deserializeSignal(
  bytes: Uint8Array,
  options: SignalDeserializeOptions = {},
): SignalSketch {
  const maxBytes = options.maxBytes ?? SIGNAL_MAX_SERIALIZED_BYTES;
  if (bytes.length > maxBytes) {
    throw new FleetError('TOO_LARGE', `${WHAT} of ${bytes.length} bytes, the cap is ${maxBytes}`);
  }
  const reader = new ByteReader(bytes, WHAT);
  reader.need(8, 'header');
  if (magicMismatch(reader.bytes(4, 'magic'), MAGIC)) {
    throw new FleetError('MALFORMED', `not ${WHAT} (bad magic bytes)`);
  }
  const version = reader.u8('version');
  if (version !== SIGNAL_FORMAT_VERSION) {
    throw new FleetError(
      'MALFORMED',
      `${WHAT} of format version ${version}; this code reads ${SIGNAL_FORMAT_VERSION}`,
    );
  }
  const kind = reader.u8('kind');
  if (reader.u16('reserved bytes') !== 0)
    throw new FleetError('MALFORMED', `${WHAT}'s reserved bytes are not zero`);
  let sketch: SignalSketch;
  if (kind === KIND_CODES.numeric) {
    const counters = SummaryCounters.deserialize(readPart(reader, 'counters'));
    const kll = KllSketch.deserialize(readPart(reader, 'KLL sketch'), {
      random: options.random ?? Math.random,
    });
    if (counters.count !== kll.n) {
      throw new FleetError(
        'MALFORMED',
        `${WHAT}'s counters count ${counters.count} finite values, its KLL sketch ${kll.n}`,
      );
    }
    sketch = { kind: 'numeric', counters, kll };
  } else if (kind === KIND_CODES.categorical) {
    const nullCount = reader.u64('null count');
    const items = FrequentItemsSketch.deserialize(readPart(reader, 'frequent-items sketch'));
    sketch = { kind: 'categorical', items, nullCount };
  } else {
    throw new FleetError('MALFORMED', `${WHAT} of unknown kind ${kind}`);
  }
  reader.end();
  return sketch;
}

function readPart(reader: ByteReader, field: string): Uint8Array {
  const length = reader.u32(`${field} length`);
  return reader.bytes(length, field);
}
