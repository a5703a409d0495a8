/**
 * Held-out evaluation sets: named `.fleval` files (the bundle factory's
 * evaluation-data format) that federated candidates and their champions are
 * scored on. An upload is decoded and checked whole (`decodeEvalData`, and
 * labels present: accuracy needs them) before anything is stored; a refused
 * file changes nothing. Bytes go to the content-addressed blob store, the row
 * (counts, blob id, who and when) to the database with its audit entry.
 *
 * Decoded sets are cached per blob id (content never changes under an id).
 */
import { decodeEvalData, type EvalData } from '@fleet/bundles';
import { isFleetError, modelNameSchema } from '@fleet/protocol';
import type { BlobStore } from '../core/models/blob-store.ts';
import { controlPlaneError } from '../core/errors.ts';
import type { Actor } from '../adapters/db/actor.ts';
import type { EvalSetRow, GovernanceStore } from '../adapters/db/governance-store.ts';

export interface EvalSets {
  /** Validates and stores `bytes` as the eval set `name` (replacing one of that name). */
  put(name: string, bytes: Uint8Array, actor: Actor): Promise<EvalSetRow>;
  list(): Promise<EvalSetRow[]>;
  /** The decoded set; NOT_FOUND for an unknown name. */
  load(name: string): Promise<{ row: EvalSetRow; data: EvalData }>;
}

/** Decoded sets kept in memory (an MNIST test set is ~31 MB decoded). */
const CACHE_SIZE = 2;

/** Eval set names follow model names: they become URL path segments. */
export function checkEvalSetName(name: string): string {
  if (!modelNameSchema.safeParse(name).success) {
    throw controlPlaneError(
      'INVALID_REQUEST',
      `eval set name ${JSON.stringify(name.slice(0, 80))}: 1-64 of [a-z0-9._-], starting with a letter or digit`,
    );
  }
  return name;
}

export function createEvalSets(deps: {
  store: GovernanceStore;
  blobs: BlobStore;
  nowMs: () => number;
  maxBytes: number;
}): EvalSets {
  const cache = new Map<string, EvalData>();

  function decode(bytes: Uint8Array): EvalData {
    try {
      return decodeEvalData(bytes);
    } catch (error) {
      const message = isFleetError(error) ? error.message : String(error);
      throw controlPlaneError('INVALID_REQUEST', `eval set: ${message}`, { cause: error });
    }
  }

  function remember(blobId: string, data: EvalData): EvalData {
    cache.delete(blobId);
    cache.set(blobId, data);
    while (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value!);
    return data;
  }

  return {
    async put(name, bytes, actor) {
      checkEvalSetName(name);
      if (bytes.length > deps.maxBytes) {
        throw controlPlaneError(
          'PAYLOAD_TOO_LARGE',
          `the eval set is larger than ${deps.maxBytes} bytes`,
        );
      }
      const data = decode(bytes);
      if (data.classCount === 0 || !data.labels) {
        throw controlPlaneError(
          'INVALID_REQUEST',
          'eval set: it carries no labels (accuracy needs them)',
        );
      }
      const blobId = await deps.blobs.put(bytes);
      remember(blobId, data);
      return deps.store.putEvalSet(
        {
          name,
          blobId,
          sizeBytes: bytes.length,
          sampleCount: data.sampleCount,
          featureCount: data.featureCount,
          classCount: data.classCount,
        },
        actor,
        new Date(deps.nowMs()),
      );
    },

    list: () => deps.store.listEvalSets(),

    async load(name) {
      const row = await deps.store.getEvalSet(name);
      if (!row) throw controlPlaneError('NOT_FOUND', `eval set ${name} is not uploaded`);
      const cached = cache.get(row.blobId);
      if (cached) return { row, data: remember(row.blobId, cached) };
      const bytes = await deps.blobs.get(row.blobId);
      if (!bytes) {
        throw controlPlaneError('NOT_FOUND', `eval set ${name} is registered but not stored`);
      }
      return { row, data: remember(row.blobId, decode(bytes)) };
    },
  };
}
