/**
 * The model registry's use cases: uploading a bundle, reading versions and
 * lineage, and managing the trust root bundles are checked against.
 *
 * Upload, in order; the first failure throws and nothing is stored:
 *   1. trust root   one is installed (NO_TRUST_ROOT) and fresh (EXPIRED)
 *   2. verify       protocol `verifyBundle`: signatures by a threshold of the
 *                   root's bundle keys, then every part's hash and length
 *                   (THREATS 1-4, 14-16)
 *   3. lineage      a named parent must be a registered version of this model
 *   4. new release  above every registered one for the name, so a replay is
 *                   refused before anything is written
 *   5. blob         bytes into the content-addressed store (idempotent; a row
 *                   without its blob never exists)
 *   6. register     release and version checked again under the registry's
 *                   lock (a concurrent upload may have won: then the blob stays
 *                   unreferenced, which is harmless), row and audit entry in
 *                   one transaction
 */
import {
  assertRootFresh,
  loadTrustedRoot,
  toBase64,
  fromBase64,
  updateRoot,
  verifyBundle,
  type Manifest,
  type TrustedRoot,
} from '@fleet/protocol';
import { nodeInflate } from '@fleet/protocol/node';
import type { BlobStore } from '../core/models/blob-store.ts';
import { controlPlaneError } from '../core/errors.ts';
import type { Actor } from '../adapters/db/actor.ts';
import type { ModelStore, ModelVersionRow, TrustRootRow } from '../adapters/db/model-store.ts';

export interface ModelRegistry {
  upload(bundle: Uint8Array, actor: Actor): Promise<ModelVersionRow>;
  lineage(name: string, release: number): Promise<ModelVersionRow[]>;
  /** The current trust root, checked; NO_TRUST_ROOT before the first is installed. */
  trustedRoot(): Promise<TrustedRoot>;
  /** Installs the first root, or the next one in a valid rotation. */
  installRoot(envelope: Uint8Array, actor: Actor): Promise<TrustRootRow>;
}

/** A lineage walk stops here even if rows somehow form a longer chain. */
const MAX_LINEAGE_DEPTH = 1000;

export function createModelRegistry(deps: {
  store: ModelStore;
  blobs: BlobStore;
  nowMs: () => number;
}): ModelRegistry {
  const { store, blobs, nowMs } = deps;

  async function trustedRoot(): Promise<TrustedRoot> {
    const row = await store.currentRoot();
    if (!row) {
      throw controlPlaneError(
        'NO_TRUST_ROOT',
        'no trust root is installed: PUT /v1/trust/root first',
      );
    }
    return loadTrustedRoot(fromBase64(row.envelope));
  }

  async function parentRelease(manifest: Manifest): Promise<number | null> {
    const parent = manifest.lineage.parent;
    if (!parent) return null;
    const row = await store.getVersion(manifest.name, parent.release);
    if (!row || row.version !== parent.version) {
      throw controlPlaneError(
        'INVALID_REQUEST',
        `lineage.parent ${manifest.name}@${parent.version} (release ${parent.release}) is not registered`,
      );
    }
    return row.release;
  }

  return {
    trustedRoot,

    async upload(bundle, actor) {
      const now = nowMs();
      const root = await trustedRoot(); // 1
      const verified = await verifyBundle(bundle, {
        root,
        nowMs: now,
        installedRelease: 0, // the registry's own counter is checked in step 5
        hardwareClass: null,
        inflate: nodeInflate, // zlib in the thread pool, bounded at the signed length
      }); // 2 (checks the root's expiry too)
      const { manifest } = verified;
      const parent = await parentRelease(manifest); // 3
      const latest = await store.latestRelease(manifest.name); // 4
      if (manifest.release <= latest) {
        throw controlPlaneError(
          'CONFLICT',
          `${manifest.name} release ${manifest.release} is not above the registered release ${latest}`,
        );
      }
      const bundleId = await blobs.put(bundle); // 5: the bundle id is its SHA-256 (BlobStore contract)
      return store.register(
        {
          bundleId,
          name: manifest.name,
          version: manifest.version,
          release: manifest.release,
          sizeBytes: bundle.length,
          manifest: manifest,
          manifestEnvelope: toBase64(verified.envelopeBytes),
          signedBy: [...verified.signedBy],
          parentRelease: parent,
        },
        actor,
        new Date(now),
      ); // 6
    },

    async lineage(name, release) {
      const chain: ModelVersionRow[] = [];
      let next: number | null = release;
      while (next !== null && chain.length < MAX_LINEAGE_DEPTH) {
        const row = await store.getVersion(name, next);
        if (!row) {
          if (chain.length === 0)
            throw controlPlaneError('NOT_FOUND', `${name} release ${release} is not registered`);
          break;
        }
        chain.push(row);
        next = row.parentRelease;
      }
      return chain;
    },

    async installRoot(envelope, actor) {
      const now = nowMs();
      const current = await store.currentRoot();
      // TUF 5.3.4-5.3.9: a rotation must be signed by the old and new root keys
      // and advance the version by one; the very first root is the admin's pin.
      const next = current
        ? await updateRoot(await loadTrustedRoot(fromBase64(current.envelope)), envelope)
        : await loadTrustedRoot(envelope);
      assertRootFresh(next, now); // TUF 5.3.10
      return store.installRoot(
        {
          version: next.metadata.version,
          envelope: toBase64(envelope),
          expires: next.metadata.expires,
        },
        current?.version ?? 0,
        actor,
        new Date(now),
      );
    },
  };
}
