/**
 * What a device's update bytes hold, checked against the round's base model:
 * the one decoding step both the control plane's intake (services/
 * fl-intake.ts) and the in-process federated simulation run, so the
 * simulation measures exactly what a real round would accept.
 *
 *   decode   `decodeTensorSet` within the architecture's tensor and element
 *            counts; NaN or Inf is `non-finite` (THREATS 39), any other
 *            refusal `malformed`
 *   layout   exactly the architecture's tensors, names, dims and order
 *            (`checkTrainingWeights`; THREATS 40)
 *   norm     the global L2 norm and the int8 rounding bound, for the round
 *            core's clip re-check (`withinClipBound`)
 *   scale    clipNorm / norm when the decoded norm is over clipNorm: the
 *            tolerant re-check lets int8 rounding through, which a crafted
 *            update can spend on one large value, so an accepted update is
 *            scaled down to exactly clipNorm before it is aggregated
 *            (THREATS 37)
 */
import {
  checkTrainingWeights,
  decodeTensorSet,
  denseParameterCount,
  denseTensorShapes,
  globalL2Norm,
  isFleetError,
  quantizationErrorBound,
  type DenseShape,
  type NamedTensor,
} from '@fleet/protocol';

export interface DecodedUpdate {
  tensors: NamedTensor[];
  norm: number;
  /** sqrt(sum of n x (scale/2)^2) over int8 tensors; 0 for float32. */
  quantizationErrorBound: number;
  /** clipNorm / norm when norm > clipNorm, else 1: the factor aggregation applies. */
  scale: number;
}

export type UpdateContent =
  | { ok: true; update: DecodedUpdate }
  | { ok: false; reason: 'malformed' | 'non-finite'; detail: string };

/** Decodes and checks one update's bytes for a round on `architecture` with `clipNorm`. */
export function decodeUpdateContent(
  bytes: Uint8Array,
  architecture: DenseShape,
  clipNorm: number,
): UpdateContent {
  let tensors: NamedTensor[];
  let bound: number;
  try {
    const decoded = decodeTensorSet(bytes, {
      maxTensors: denseTensorShapes(architecture).length,
      maxElements: denseParameterCount(architecture),
    });
    checkTrainingWeights(architecture, decoded.tensors);
    tensors = decoded.tensors;
    bound = quantizationErrorBound(decoded);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    if (isFleetError(error) && error.code === 'NON_FINITE') {
      return { ok: false, reason: 'non-finite', detail };
    }
    return { ok: false, reason: 'malformed', detail };
  }
  const norm = globalL2Norm(tensors);
  const scale = norm > clipNorm ? clipNorm / norm : 1;
  return { ok: true, update: { tensors, norm, quantizationErrorBound: bound, scale } };
}

/** `tensors` times `scale` (new arrays; the same tensors when scale is 1). */
export function scaleTensors(tensors: readonly NamedTensor[], scale: number): NamedTensor[] {
  if (scale === 1) return [...tensors];
  return tensors.map((t) => ({ ...t, values: t.values.map((v) => v * scale) }));
}
