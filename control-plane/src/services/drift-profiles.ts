/**
 * The drift baselines of registered bundles (the `DriftBaselines` port of
 * core/drift/drift-baselines.ts): the manifest's `drift` field from the
 * registry row, the profile part from the bundle in the blob store, decoded
 * with the protocol's `decodeDriftProfile` (validated whole, and against the
 * manifest's signal list).
 *
 * Nothing is verified beyond what the upload verified (signatures, every
 * part's hash; model-registry.ts): the row's manifest is the verified one,
 * and the blob must still hash to its bundle id, which covers every byte,
 * so a damaged blob is refused rather than read. The root may have rotated
 * or the manifest expired since; drift of a registered version is still
 * scored. The part is inflated at most to its signed length.
 *
 * Profiles are cached per bundle (they never change: the id is the
 * content's hash), the absence of one too; a failure is not cached.
 */
import {
  DEFAULT_BUNDLE_LIMITS,
  FleetError,
  decodeDriftProfile,
  parseManifest,
  readContainer,
  sha256Hex,
  splitParts,
  type BoundedInflate,
} from '@fleet/protocol';
import { nodeInflate } from '@fleet/protocol/node';
import type { BlobStore } from '../core/models/blob-store.ts';
import type { DriftBaseline, DriftBaselines } from '../core/drift/drift-baselines.ts';
import type { ModelStore } from '../adapters/db/model-store.ts';
import { controlPlaneError } from '../core/errors.ts';

/** Bundles whose profile is kept; past it the least recently used goes. */
const DEFAULT_CACHE_SIZE = 64;

export function createDriftProfiles(deps: {
  models: Pick<ModelStore, 'getByBundleId'>;
  blobs: BlobStore;
  cacheSize?: number;
  inflate?: BoundedInflate;
}): DriftBaselines {
  const cacheSize = deps.cacheSize ?? DEFAULT_CACHE_SIZE;
  const inflate = deps.inflate ?? nodeInflate;
  const cache = new Map<string, Promise<DriftBaseline | null>>();

  async function load(bundleId: string): Promise<DriftBaseline | null> {
    const row = await deps.models.getByBundleId(bundleId);
    if (!row) return null;
    const manifest = parseManifest(row.manifest);
    const spec = manifest.drift;
    if (!spec) return null;
    const bundle = await deps.blobs.get(bundleId);
    if (!bundle)
      throw controlPlaneError('NOT_FOUND', `bundle ${bundleId} is registered but not stored`);
    if ((await sha256Hex(bundle)) !== bundleId) {
      throw new FleetError('PART_HASH', `the stored bundle ${bundleId} does not hash to its id`);
    }
    const { body } = readContainer(bundle, {
      ...DEFAULT_BUNDLE_LIMITS,
      maxBundleBytes: bundle.length,
    });
    const index = manifest.parts.findIndex((p) => p.name === spec.part);
    const entry = manifest.parts[index]!; // parseManifest checked drift.part is a part
    const stored = splitParts(manifest, body)[index]!;
    const bytes =
      entry.compression === 'none' ? stored : await inflate(stored, entry.uncompressedLength);
    const profile = decodeDriftProfile(bytes, spec);
    return {
      signals: spec.signals.map((s) => ({ name: s.name, kind: s.kind })),
      baselines: profile.baselines,
      sketchK: spec.sketchK,
    };
  }

  return {
    forBundle(bundleId) {
      let entry = cache.get(bundleId);
      if (entry) {
        cache.delete(bundleId); // most recently used last
      } else {
        entry = load(bundleId);
        const loading = entry;
        loading.catch(() => {
          if (cache.get(bundleId) === loading) cache.delete(bundleId);
        });
      }
      cache.set(bundleId, entry);
      if (cache.size > cacheSize) cache.delete(cache.keys().next().value!);
      return entry;
    },
  };
}
