/**
 * Delayed labels for earlier inferences. The inference observer remembers
 * recent rows (recent-inferences.ts); a label for one of them is checked
 * (an integer class of the model that served it), stored with its row as a
 * labelled sample (labelled-samples.ts), and counted for online accuracy:
 * the prediction recorded at inference time against the label.
 *
 * Rules:
 * - **One label per inference.** A second label for a labelled row is
 *   refused (ALREADY_LABELLED) and the first stands: samples are appended,
 *   never rewritten, and accuracy counts each inference once.
 * - **A refusal changes nothing.** A single label is checked whole before it
 *   is stored; in a batch each item is accepted or refused on its own, and
 *   the accepted ones are stored in one append. If storing fails, nothing of
 *   it is counted and the rows may be labelled again.
 * - **Accuracy windows.** Counts are kept per model (name, version, release)
 *   of the inference; `takeWindow(model)` gives that model's counts since the
 *   last take (for the health report) and starts a new window for all.
 *
 * @example
 *   const feedback = createFeedback({ store, nowMs, recent: DEFAULT_RECENT_INFERENCE_BOUNDS });
 *   host.observeInferences(feedback.observer);
 *   await feedback.label(result.ids[0], 7);
 */
import type { ModelRef } from '@fleet/protocol';
import { agentError } from './errors.ts';
import type { InferenceObserver } from './inference-service.ts';
import type { LabelledSample, LabelledSampleStore } from './labelled-samples.ts';
import {
  createRecentInferences,
  type RecentInference,
  type RecentInferenceBounds,
} from './recent-inferences.ts';

/** Most items one feedback request may carry. */
export const MAX_FEEDBACK_ITEMS = 1000;

export interface FeedbackItem {
  id: string;
  label: number;
}

export type FeedbackItemStatus = 'accepted' | 'unknown' | 'invalid' | 'duplicate';

export interface FeedbackBatchResult {
  accepted: number;
  unknown: number;
  invalid: number;
  duplicate: number;
  /** Per item, in request order; `message` says why an item was refused. */
  results: Array<{ id: string; status: FeedbackItemStatus; message?: string }>;
}

/** Labelled and correct predictions. */
export interface AccuracyCounts {
  labelled: number;
  correct: number;
}

export interface FeedbackStats extends AccuracyCounts {
  /** The model of the latest inference, whose counts (since the agent started) these are. */
  model: ModelRef | null;
  /** correct / labelled, null before the first label. */
  accuracy: number | null;
  storedSamples: number;
  /** Rows remembered for feedback now. */
  recentRows: number;
}

export interface FeedbackOptions {
  store: LabelledSampleStore;
  nowMs: () => number;
  recent: RecentInferenceBounds;
}

export interface Feedback {
  /** Remembers each successful inference's rows: the inference service's observer. */
  observer: InferenceObserver;
  /** Labels one row; rejects with FEEDBACK_INPUT, UNKNOWN_INFERENCE or ALREADY_LABELLED, changing nothing. */
  label(id: string, label: number): Promise<void>;
  /** Labels up to MAX_FEEDBACK_ITEMS rows, each accepted or refused on its own. */
  labelMany(items: readonly FeedbackItem[]): Promise<FeedbackBatchResult>;
  /** `model`'s counts since the last take; resets every model's window. */
  takeWindow(model: ModelRef): AccuracyCounts;
  stats(): FeedbackStats;
}

const modelKey = (m: ModelRef) => `${m.name}@${m.version}#${m.release}`;

export function createFeedback(options: FeedbackOptions): Feedback {
  const recent = createRecentInferences(options.recent);
  let window = new Map<string, AccuracyCounts>();
  const total = new Map<string, AccuracyCounts>();
  let latest: ModelRef | null = null;

  /** The row an item labels, or why it cannot be. */
  function check(
    item: FeedbackItem,
  ):
    | { row: RecentInference }
    | { status: Exclude<FeedbackItemStatus, 'accepted'>; message: string } {
    const { id, label } = item;
    if (!Number.isInteger(label) || label < 0) {
      return {
        status: 'invalid',
        message: `label must be a non-negative integer class, got ${label}`,
      };
    }
    const row = recent.find(id, options.nowMs());
    if (!row) {
      return {
        status: 'unknown',
        message: `no recent inference ${JSON.stringify(id.slice(0, 40))} (unknown or expired)`,
      };
    }
    if (label >= row.classes) {
      return {
        status: 'invalid',
        message: `label ${label} is outside the model's ${row.classes} classes (0..${row.classes - 1})`,
      };
    }
    if (row.labelled)
      return { status: 'duplicate', message: `inference ${id} is already labelled` };
    return { row };
  }

  function count(row: RecentInference, label: number): void {
    const key = modelKey(row.model);
    for (const counts of [window, total]) {
      const entry = counts.get(key) ?? { labelled: 0, correct: 0 };
      entry.labelled++;
      if (row.prediction === label) entry.correct++;
      counts.set(key, entry);
    }
  }

  /** Stores the checked rows in one append; only then are they counted. */
  async function store(accepted: Array<{ row: RecentInference; label: number }>): Promise<void> {
    for (const a of accepted) recent.setLabelled(a.row.id, true); // a concurrent second label is a duplicate
    const labelTs = options.nowMs();
    const samples: LabelledSample[] = accepted.map(({ row, label }) => ({
      features: row.features.slice(),
      label,
      model: { name: row.model.name, version: row.model.version, release: row.model.release },
      inferenceTs: row.inferenceTs,
      labelTs,
    }));
    try {
      await options.store.append(samples);
    } catch (error) {
      for (const a of accepted) recent.setLabelled(a.row.id, false);
      throw error;
    }
    for (const a of accepted) count(a.row, a.label);
  }

  const CODE = {
    invalid: 'FEEDBACK_INPUT',
    unknown: 'UNKNOWN_INFERENCE',
    duplicate: 'ALREADY_LABELLED',
  } as const;

  return {
    observer(model, inputs, outputs, batch, id) {
      latest = model;
      if (id !== undefined) recent.record(id, model, inputs, outputs, batch, options.nowMs());
    },
    async label(id, label) {
      const checked = check({ id, label });
      if ('status' in checked) throw agentError(CODE[checked.status], checked.message);
      await store([{ row: checked.row, label }]);
    },
    async labelMany(items) {
      if (items.length > MAX_FEEDBACK_ITEMS) {
        throw agentError(
          'FEEDBACK_INPUT',
          `${items.length} items is above the limit of ${MAX_FEEDBACK_ITEMS}`,
        );
      }
      const result: FeedbackBatchResult = {
        accepted: 0,
        unknown: 0,
        invalid: 0,
        duplicate: 0,
        results: [],
      };
      const accepted: Array<{ row: RecentInference; label: number }> = [];
      const seen = new Set<string>();
      for (const item of items) {
        const checked = check(item);
        if ('status' in checked) {
          result[checked.status]++;
          result.results.push({ id: item.id, status: checked.status, message: checked.message });
        } else if (seen.has(checked.row.id)) {
          result.duplicate++;
          result.results.push({
            id: item.id,
            status: 'duplicate',
            message: `inference ${item.id} is labelled twice in this request`,
          });
        } else {
          seen.add(checked.row.id);
          accepted.push({ row: checked.row, label: item.label });
          result.accepted++;
          result.results.push({ id: item.id, status: 'accepted' });
        }
      }
      if (accepted.length > 0) await store(accepted);
      return result;
    },
    takeWindow(model) {
      const counts = window.get(modelKey(model)) ?? { labelled: 0, correct: 0 };
      window = new Map();
      return { ...counts };
    },
    stats() {
      const counts = (latest && total.get(modelKey(latest))) || { labelled: 0, correct: 0 };
      return {
        model: latest
          ? { name: latest.name, version: latest.version, release: latest.release }
          : null,
        labelled: counts.labelled,
        correct: counts.correct,
        accuracy: counts.labelled > 0 ? counts.correct / counts.labelled : null,
        storedSamples: options.store.count(),
        recentRows: recent.rows(),
      };
    },
  };
}
