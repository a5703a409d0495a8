/**
 * The in-process inference API: what the HTTP adapter, the agent and the
 * simulator call to classify rows with the active model. It validates the
 * input's shape and numbers before the runtime sees them, turns the model's
 * probabilities into predictions (argmax) and confidences (max probability),
 * and records every request, failed or not, in the active model's health
 * window. Pure apart from the model it is handed: time comes from the
 * injected clocks.
 *
 * @example
 *   const service = createInferenceService({ nowMs: Date.now, perfNowMs: () => performance.now() });
 *   service.setActive(model, ref);
 *   const { predictions, confidences } = await service.infer([[...784 pixels]]);
 *   const health = service.takeHealth(Date.now()); // and the next window starts
 */
import { isFleetError, type BundleModelRef } from '@fleet/protocol';
import { agentError } from './errors.ts';
import { createHealthWindow, type HealthSnapshot, type HealthWindow } from './health-window.ts';
import type { LoadedModel } from './loaded-model.ts';

export const DEFAULT_MAX_BATCH = 4096;

export interface InferenceServiceOptions {
  /** Wall clock, epoch ms: health window bounds. */
  nowMs: () => number;
  /** Monotonic clock, ms: request latency (`performance.now` in production); `nowMs` by default. */
  perfNowMs?: () => number;
  /** Inference ids; 22 random characters of [A-Za-z0-9_-] by default. */
  newId?: () => string;
  /** Most rows one request may carry (default 4096). */
  maxBatch?: number;
}

export interface InferOptions {
  /** Rows in a flat Float32Array input; by default its length divided by the model's row width. */
  batch?: number;
}

export interface InferenceResult {
  /** Names this request: 16+ characters of [A-Za-z0-9_-]. For a one-row request it also names that row. */
  id: string;
  /** One id per row, `${id}:${row}`: what feedback (`POST /v1/feedback`) names a row by. */
  ids: string[];
  /** One row of model outputs (class probabilities) per input row. */
  outputs: number[][];
  /** Per row, the index of the largest output (the first one on a tie). */
  predictions: number[];
  /** Per row, the largest output, clamped to [0, 1]. */
  confidences: number[];
  /** The model that answered. */
  model: BundleModelRef;
  latencyMs: number;
}

/**
 * Sees every successful inference, e.g. the drift monitor and the recent
 * inferences kept for feedback: the model that answered, the input rows and
 * output rows (flat, row-major), the batch and the request id (row `r` is
 * `${id}:${r}`; always given by the service, optional for older callers). Called before `infer` resolves; it must not keep the arrays
 * (copy what it needs). Its errors are swallowed: watching never fails an
 * inference.
 */
export type InferenceObserver = (
  model: BundleModelRef,
  inputs: Float32Array,
  outputs: Float32Array,
  batch: number,
  id?: string,
) => void;

/** The id of row `row` of request `requestId`, as feedback names it. */
export function rowInferenceId(requestId: string, row: number): string {
  return `${requestId}:${row}`;
}

/** A health window of the model that was active (null: none was). */
export interface InferenceHealth extends HealthSnapshot {
  model: BundleModelRef | null;
}

export interface InferenceService {
  /** Routes inference to `model` and starts a fresh health window for it. */
  setActive(model: LoadedModel, ref: BundleModelRef): void;
  /** Stops serving: later requests get NO_MODEL. */
  clearActive(): void;
  /** The model serving now, or null. */
  active(): BundleModelRef | null;
  /**
   * Infers a batch: rows as arrays, or one flat Float32Array of `batch` rows.
   * Rejects with INFER_INPUT (bad shape or number, naming where), NO_MODEL,
   * or INFER_FAILED (the runtime failed or answered with a non-finite number).
   */
  infer(
    input: Float32Array | readonly (readonly number[])[],
    options?: InferOptions,
  ): Promise<InferenceResult>;
  /** The active model's health since the last take, and a new window from `endMs`. */
  takeHealth(endMs: number): InferenceHealth;
  /** Sets the one observer of successful inferences (null: none). */
  observe(observer: InferenceObserver | null): void;
}

interface Serving {
  model: LoadedModel;
  ref: BundleModelRef;
  window: HealthWindow;
}

export function createInferenceService(options: InferenceServiceOptions): InferenceService {
  const { nowMs } = options;
  const perfNowMs = options.perfNowMs ?? nowMs;
  const newId = options.newId ?? randomId;
  const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
  let serving: Serving | null = null;
  let idleSinceMs = nowMs();
  let observer: InferenceObserver | null = null;

  async function infer(
    input: Float32Array | readonly (readonly number[])[],
    inferOptions: InferOptions = {},
  ): Promise<InferenceResult> {
    const startMs = perfNowMs();
    // Captured once: a request that started on one model is answered and
    // counted by that model, even if another is activated meanwhile.
    const current = serving;
    if (current === null) throw agentError('NO_MODEL', 'no model is active on this device yet');
    try {
      const { rows, batch } = toRows(input, current.model.inputWidth, inferOptions.batch, maxBatch);
      const { outputs, outputWidth } = await current.model.run(rows, batch);
      const answer = readAnswer(outputs, outputWidth, batch);
      const latencyMs = Math.max(0, perfNowMs() - startMs);
      const meanConfidence = answer.confidences.reduce((a, b) => a + b, 0) / batch;
      current.window.record({ ok: true, latencyMs, confidence: meanConfidence, samples: batch });
      const id = newId();
      notify(current.ref, rows, outputs.subarray(0, batch * outputWidth), batch, id);
      const ids = Array.from({ length: batch }, (_, r) => rowInferenceId(id, r));
      return { id, ids, ...answer, model: current.ref, latencyMs };
    } catch (error) {
      current.window.record({ ok: false, latencyMs: Math.max(0, perfNowMs() - startMs) });
      if (isFleetError(error)) throw error;
      throw agentError('INFER_FAILED', `inference failed: ${String(error)}`, { cause: error });
    }
  }

  function notify(
    ref: BundleModelRef,
    rows: Float32Array,
    outputs: Float32Array,
    batch: number,
    id: string,
  ) {
    if (observer === null) return;
    try {
      observer(ref, rows, outputs, batch, id);
    } catch {
      // The observer's own business (the drift monitor counts its errors).
    }
  }

  return {
    observe(next) {
      observer = next;
    },
    setActive(model, ref) {
      serving = { model, ref, window: createHealthWindow(nowMs()) };
    },
    clearActive() {
      serving = null;
      idleSinceMs = nowMs();
    },
    active: () => serving?.ref ?? null,
    infer,
    takeHealth(endMs) {
      if (serving === null) {
        const idle = createHealthWindow(idleSinceMs).snapshot(endMs);
        idleSinceMs = endMs;
        return { ...idle, model: null };
      }
      const snapshot = serving.window.snapshot(endMs);
      serving.window.reset(endMs);
      return { ...snapshot, model: serving.ref };
    },
  };
}

/** Checks the input is `batch` rows of `width` finite numbers and flattens it. */
function toRows(
  input: unknown,
  width: number,
  batchOption: number | undefined,
  maxBatch: number,
): { rows: Float32Array; batch: number } {
  let rows: Float32Array;
  if (input instanceof Float32Array) {
    rows = input;
    const batch = batchOption ?? input.length / width;
    if (!Number.isInteger(batch) || batch < 0 || input.length !== batch * width) {
      throw invalid(
        batchOption === undefined
          ? `${input.length} numbers do not split into rows of ${width}`
          : `${input.length} numbers are not ${batchOption} rows of ${width}`,
      );
    }
    rows.forEach((v, i) => {
      if (!Number.isFinite(v))
        throw invalid(`row ${Math.floor(i / width)}, column ${i % width} is ${v}`);
    });
  } else if (Array.isArray(input)) {
    rows = flattenArrays(input, width);
  } else {
    throw invalid('input must be an array of rows or a Float32Array');
  }
  const batch = rows.length / width;
  if (batch === 0) throw invalid('the input has no rows');
  if (batch > maxBatch) throw invalid(`${batch} rows is above the limit of ${maxBatch} a request`);
  return { rows, batch };
}

function flattenArrays(input: readonly unknown[], width: number): Float32Array {
  const rows = new Float32Array(input.length * width);
  input.forEach((row, r) => {
    if (!Array.isArray(row)) throw invalid(`row ${r} is not an array of numbers`);
    if (row.length !== width) {
      throw invalid(`row ${r} has ${row.length} numbers, the model takes ${width}`);
    }
    row.forEach((v: unknown, c) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw invalid(`row ${r}, column ${c} is not a finite number: ${shown(v)}`);
      }
      rows[r * width + c] = v;
    });
  });
  return rows;
}

function readAnswer(outputs: Float32Array, width: number, batch: number) {
  const result = {
    outputs: [] as number[][],
    predictions: [] as number[],
    confidences: [] as number[],
  };
  for (let r = 0; r < batch; r++) {
    const row = outputs.subarray(r * width, (r + 1) * width);
    let best = 0;
    for (let j = 0; j < width; j++) {
      if (!Number.isFinite(row[j]!)) {
        throw agentError('INFER_FAILED', `the model answered ${row[j]} at row ${r}, output ${j}`);
      }
      if (row[j]! > row[best]!) best = j;
    }
    result.outputs.push(Array.from(row));
    result.predictions.push(best);
    result.confidences.push(Math.min(1, Math.max(0, row[best] ?? 0)));
  }
  return result;
}

function invalid(message: string) {
  return agentError('INFER_INPUT', message);
}

function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 20)) : String(value);
}

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** 22 characters of a 64-letter alphabet: 132 random bits. */
function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(22));
  let id = '';
  for (const b of bytes) id += ID_ALPHABET[b & 63];
  return id;
}
