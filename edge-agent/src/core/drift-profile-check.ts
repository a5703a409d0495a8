/**
 * What a bundle asks its devices to monitor, checked before its model may
 * serve (THREATS 40: content is validated on the device against the exact
 * schema its consumer expects): the manifest's signed `drift` field, and the
 * profile part it names, decoded whole by protocol's `decodeDriftProfile`
 * (every baseline of the spec's kind, a PCA basis exactly when a signal
 * needs one), with a basis as wide as the model's input rows.
 *
 * @example
 *   const drift = checkDriftProfile(manifest, parts); // null: not monitored
 *   monitor.setModel(drift && { ref, rolloutId, ...drift, sampleRate: driftSampleRate(drift.spec, rate) });
 */
import {
  decodeDriftProfile,
  type Manifest,
  type ManifestDrift,
  type PcaBasis,
} from '@fleet/protocol';
import { agentError } from './errors.ts';

export interface CheckedDrift {
  spec: ManifestDrift;
  pca: PcaBasis | null;
}

/**
 * The bundle's drift spec and PCA basis; null when its manifest has no
 * `drift` field. Throws DRIFT_PROFILE when the part is missing or does not
 * decode against the spec, or the basis does not fit the model's input.
 */
export function checkDriftProfile(
  manifest: Manifest,
  parts: ReadonlyMap<string, Uint8Array>,
): CheckedDrift | null {
  const spec = manifest.drift;
  if (!spec) return null;
  const bytes = parts.get(spec.part);
  if (!bytes) {
    throw agentError('DRIFT_PROFILE', `the bundle has no drift profile part ${spec.part}`);
  }
  let pca: PcaBasis | null;
  try {
    pca = decodeDriftProfile(bytes, spec).pca;
  } catch (error) {
    throw agentError('DRIFT_PROFILE', `drift profile ${spec.part}: ${String(error)}`, {
      cause: error,
    });
  }
  const width = inputRowWidth(manifest);
  if (pca !== null && width !== null && pca.inputSize !== width) {
    throw agentError(
      'DRIFT_PROFILE',
      `drift profile ${spec.part}: a PCA basis over ${pca.inputSize} inputs for a model whose rows hold ${width}`,
    );
  }
  return { spec, pca };
}

/** The share of inferences to sample: the rollout's override when it set one, else the manifest's. */
export function driftSampleRate(spec: ManifestDrift, override: number | undefined): number {
  return override ?? spec.sampleRate;
}

/** The fixed row width of the model's first input (the product of its dimensions after the batch), if known. */
function inputRowWidth(manifest: Manifest): number | null {
  const shape = manifest.io?.inputs[0]?.shape;
  if (!shape || shape.length < 2) return null;
  let width = 1;
  for (const dim of shape.slice(1)) {
    if (typeof dim !== 'number') return null;
    width *= dim;
  }
  return width;
}
