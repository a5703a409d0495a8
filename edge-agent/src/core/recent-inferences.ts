/**
 * The recent inferences the agent remembers so that a label can arrive later
 * (`POST /v1/feedback`): per request, a copy of its input rows, the model
 * that served it, each row's prediction (argmax, the first on a tie, as the
 * inference service answers) and whether the row was labelled. Bounded by
 * rows (`maxRows`, oldest requests evicted first) and by age (`maxAgeMs`,
 * from the inference time); a request of more rows than `maxRows` keeps its
 * first `maxRows`. `maxRows: 0` remembers nothing.
 *
 * The hot path (`record`, called by the inference service's observer before
 * `infer` resolves) is one copy of the input rows into a circular buffer
 * allocated once (`maxRows` x row width floats: 12.8 MB for 4,096 MNIST
 * rows), so it makes no garbage a row, and an argmax per row. A model of
 * another row width starts a new buffer and forgets the rows of the old
 * one. Pure: time is passed in.
 *
 * Ids: a request's id `R` names its rows `R:0`, `R:1`, ...; a bare `R` names
 * row 0 of a one-row request.
 */
import type { BundleModelRef } from '@fleet/protocol';

export interface RecentInferenceBounds {
  /** Most rows remembered (all requests together); 0 turns remembering off. */
  maxRows: number;
  /** A row is forgotten this long after its inference. */
  maxAgeMs: number;
}

/** 4,096 rows for one hour: what the daemon keeps by default. */
export const DEFAULT_RECENT_INFERENCE_BOUNDS: RecentInferenceBounds = Object.freeze({
  maxRows: 4096,
  maxAgeMs: 60 * 60 * 1000,
});

/** One remembered row. */
export interface RecentInference {
  /** The row id (`${requestId}:${row}`). */
  id: string;
  /** The input row: a view into the ring, overwritten later: copy it before awaiting anything. */
  features: Float32Array;
  model: BundleModelRef;
  /** The class predicted at inference time. */
  prediction: number;
  /** Classes the model answers (its output width): a label must be below it. */
  classes: number;
  /** Epoch ms of the inference. */
  inferenceTs: number;
  labelled: boolean;
}

export interface RecentInferences {
  /** Remembers a successful request (copies `inputs`); `nowMs` is its inference time. */
  record(
    requestId: string,
    model: BundleModelRef,
    inputs: Float32Array,
    outputs: Float32Array,
    batch: number,
    nowMs: number,
  ): void;
  /** The row an id names, or null when unknown or expired at `nowMs`. */
  find(id: string, nowMs: number): RecentInference | null;
  /** Marks a row labelled (true) or not (false, e.g. when storing its label failed). */
  setLabelled(id: string, labelled: boolean): void;
  /** Rows remembered now. */
  rows(): number;
}

interface Entry {
  model: BundleModelRef;
  ts: number;
  classes: number;
  /** The ring slot of row 0; row r is at (start + r) % maxRows. */
  start: number;
  predictions: Int32Array;
  labelled: Uint8Array;
}

const ROW_SUFFIX = /^(0|[1-9][0-9]{0,8})$/;

export function createRecentInferences(bounds: RecentInferenceBounds): RecentInferences {
  const entries = new Map<string, Entry>(); // insertion order = inference order
  let total = 0;
  let ring = new Float32Array(0);
  let width = -1;
  let head = 0; // the next slot written; occupied slots are the `total` before it

  function evictOldest(): void {
    const first = entries.keys().next();
    if (first.done) return;
    total -= entries.get(first.value)!.predictions.length;
    entries.delete(first.value);
  }

  function pruneAge(nowMs: number): void {
    for (const [, entry] of entries) {
      if (nowMs - entry.ts <= bounds.maxAgeMs) break;
      evictOldest();
    }
  }

  function locate(id: string): { entry: Entry; row: number } | null {
    const sep = id.lastIndexOf(':');
    const requestId = sep < 0 ? id : id.slice(0, sep);
    const entry = entries.get(requestId);
    if (!entry) return null;
    if (sep < 0) return entry.predictions.length === 1 ? { entry, row: 0 } : null;
    const suffix = id.slice(sep + 1);
    if (!ROW_SUFFIX.test(suffix)) return null;
    const row = Number(suffix);
    return row < entry.predictions.length ? { entry, row } : null;
  }

  return {
    record(requestId, model, inputs, outputs, batch, nowMs) {
      // Ids are random: a repeat (only ever in tests) keeps the first.
      if (bounds.maxRows <= 0 || batch <= 0 || entries.has(requestId)) return;
      pruneAge(nowMs);
      const kept = Math.min(batch, bounds.maxRows);
      const rowWidth = inputs.length / batch;
      if (rowWidth !== width) {
        entries.clear();
        total = 0;
        head = 0;
        width = rowWidth;
        ring = new Float32Array(bounds.maxRows * width);
      }
      while (entries.size > 0 && total + kept > bounds.maxRows) evictOldest();
      // The rows written next are free: the occupied ones are the `total` slots before `head`.
      const first = Math.min(kept, bounds.maxRows - head);
      ring.set(inputs.subarray(0, first * width), head * width);
      if (kept > first) ring.set(inputs.subarray(first * width, kept * width), 0);
      const classes = outputs.length / batch;
      const predictions = new Int32Array(kept);
      for (let r = 0; r < kept; r++) {
        let best = 0;
        const base = r * classes;
        for (let j = 1; j < classes; j++) if (outputs[base + j]! > outputs[base + best]!) best = j;
        predictions[r] = best;
      }
      entries.set(requestId, {
        model,
        ts: nowMs,
        classes,
        start: head,
        predictions,
        labelled: new Uint8Array(kept),
      });
      head = (head + kept) % bounds.maxRows;
      total += kept;
    },
    find(id, nowMs) {
      pruneAge(nowMs);
      const found = locate(id);
      if (!found) return null;
      const { entry, row } = found;
      const sep = id.lastIndexOf(':');
      return {
        id: sep < 0 ? `${id}:0` : id,
        features: ring.subarray(
          ((entry.start + row) % bounds.maxRows) * width,
          (((entry.start + row) % bounds.maxRows) + 1) * width,
        ),
        model: entry.model,
        prediction: entry.predictions[row]!,
        classes: entry.classes,
        inferenceTs: entry.ts,
        labelled: entry.labelled[row] === 1,
      };
    },
    setLabelled(id, labelled) {
      const found = locate(id);
      if (found) found.entry.labelled[found.row] = labelled ? 1 : 0;
    },
    rows: () => total,
  };
}
