/**
 * The round service's aggregation step: loads the accepted updates' bytes
 * from the blob store, decodes them within the base architecture, applies
 * each update's stored clip scale (fl-intake.ts: an update over `clipNorm`
 * counts as exactly `clipNorm`), runs the round's strategy
 * (core/fl/aggregation.ts) and adds the aggregate delta to the base weights.
 * The candidate's full weights are kept in the blob store (float32 tensor
 * set), so evaluation survives a restart.
 */
import {
  addTensors,
  decodeTensorSet,
  denseParameterCount,
  denseTensorShapes,
  encodeTensorSet,
  isFleetError,
  type DenseShape,
  type NamedTensor,
} from '@fleet/protocol';
import { createStrategy } from '../core/fl/aggregation.ts';
import type { RoundAction } from '../core/fl/round-types.ts';
import type { ClientUpdate } from '../core/fl/types.ts';
import type { BlobStore } from '../core/models/blob-store.ts';
import type { FlUpdateRecord } from '../adapters/db/fl-store.ts';

export type AggregateOutcome =
  | { ok: true; weightsBlobId: string; notes: string[] }
  /** The strategy (or the layout of the updates against the base) refused: the round fails. */
  | { ok: false; error: string };

/** Multiplies every value by `scale` (1 leaves the tensors as they are). */
export function scaleTensors(tensors: NamedTensor[], scale: number): NamedTensor[] {
  if (scale === 1) return tensors;
  return tensors.map((t) => ({ ...t, values: t.values.map((v) => v * scale) }));
}

/**
 * Runs one `aggregate` action. Throws (to be retried) when a blob is missing;
 * returns `ok: false` for what no retry can fix.
 */
export async function aggregateRound(input: {
  action: Extract<RoundAction, { type: 'aggregate' }>;
  accepted: readonly FlUpdateRecord[];
  architecture: DenseShape;
  base: NamedTensor[];
  blobs: BlobStore;
}): Promise<AggregateOutcome> {
  const byId = new Map(input.accepted.map((u) => [u.updateId, u]));
  const limits = {
    maxTensors: denseTensorShapes(input.architecture).length,
    maxElements: denseParameterCount(input.architecture),
  };
  const updates: ClientUpdate[] = [];
  for (const ref of input.action.updates) {
    const row = byId.get(ref.updateId);
    if (!row?.blobId) throw new Error(`update ${ref.updateId} has no stored bytes`);
    const bytes = await input.blobs.get(row.blobId);
    if (!bytes) throw new Error(`blob ${row.blobId} of update ${ref.updateId} is missing`);
    const { tensors } = decodeTensorSet(bytes, limits);
    updates.push({
      deviceId: ref.deviceId,
      sampleCount: ref.sampleCount,
      tensors: scaleTensors(tensors, row.scale),
    });
  }
  try {
    const result = createStrategy(input.action.strategy).aggregate(updates);
    const weights = addTensors(input.base, result.tensors);
    const weightsBlobId = await input.blobs.put(encodeTensorSet(weights, { encoding: 'float32' }));
    const scaled = input.accepted.filter((u) => u.scale !== 1).length;
    return {
      ok: true,
      weightsBlobId,
      notes: [
        ...result.notes,
        ...(scaled > 0 ? [`${scaled} update(s) scaled down to clipNorm`] : []),
      ],
    };
  } catch (error) {
    if (isFleetError(error)) return { ok: false, error: error.message };
    throw error;
  }
}

/** The candidate weights stored by `aggregateRound`. */
export async function loadWeights(blobs: BlobStore, blobId: string): Promise<NamedTensor[]> {
  const bytes = await blobs.get(blobId);
  if (!bytes) throw new Error(`candidate weights ${blobId} are missing`);
  return decodeTensorSet(bytes).tensors;
}
