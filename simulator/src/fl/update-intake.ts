/**
 * One device update's way from the agent to the aggregator, in process but
 * with the real maths and the real codec: the agent clips its weight delta to
 * `clipNorm` (protocol `clipToL2`) and encodes it (`encodeTensorSet`, int8
 * per-tensor scales by default); the control plane's side runs the intake's
 * own content check (control-plane core/fl/update-content.ts) and clip
 * re-check (core/fl/clip-check.ts):
 *
 *   sampleCount  an integer in [1, maxSamples], else `malformed`
 *   decode       `decodeTensorSet` within the architecture's tensor and element
 *                counts; NON_FINITE is `non-finite`, any other refusal `malformed`
 *   layout       exactly the architecture's tensors (`checkTrainingWeights`)
 *   clip         `withinClipBound(norm, clipNorm, quantizationErrorBound)`,
 *                else `over-clip`; an accepted update over `clipNorm` (inside
 *                the int8 tolerance) is scaled down to exactly `clipNorm`
 *                (THREATS 37)
 *
 * What is not simulated: signatures, round and base-version binding, replay,
 * deadlines and the part transport (the control plane's own tests cover them).
 */
import { decodeUpdateContent, scaleTensors, withinClipBound } from '@fleet/control-plane';
import type { DenseArchitecture, NamedTensor } from '@fleet/edge-agent';
import { clipToL2, encodeTensorSet } from '@fleet/protocol';

/** Why the simulated control plane refused an update (a subset of the round core's reasons). */
export type SimRejection = 'malformed' | 'non-finite' | 'over-clip';

/** What a device sends: the encoded update and the sample count it claims. */
export interface SentUpdate {
  bytes: Uint8Array;
  sampleCount: number;
}

export type IntakeResult =
  | {
      ok: true;
      tensors: NamedTensor[];
      sampleCount: number;
      /** Norm after decoding, before the scale-down. */
      norm: number;
      /** clipNorm / norm when the decoded norm was over clipNorm, else 1. */
      scale: number;
    }
  | { ok: false; reason: SimRejection; detail: string };

export interface IntakeLimits {
  architecture: DenseArchitecture;
  clipNorm: number;
  maxSamples: number;
}

/**
 * The honest agent's side: clip `delta` to `clipNorm`, encode it.
 *
 * @example
 *   const { bytes, clipped } = encodeHonestUpdate(result.delta, 5, 'int8');
 */
export function encodeHonestUpdate(
  delta: readonly NamedTensor[],
  clipNorm: number,
  encoding: 'int8' | 'float32',
): { bytes: Uint8Array; normBeforeClip: number; clipped: boolean } {
  const clip = clipToL2(delta, clipNorm);
  const bytes = encodeTensorSet(clip.tensors, { encoding });
  return { bytes, normBeforeClip: clip.normBeforeClip, clipped: clip.clipped };
}

/** The control plane's side: checks one sent update and returns what would be aggregated. */
export function receiveUpdate(sent: SentUpdate, limits: IntakeLimits): IntakeResult {
  const { sampleCount } = sent;
  if (!Number.isInteger(sampleCount) || sampleCount < 1 || sampleCount > limits.maxSamples) {
    return refuse('malformed', `sampleCount ${sampleCount} is not in [1, ${limits.maxSamples}]`);
  }
  const content = decodeUpdateContent(sent.bytes, limits.architecture, limits.clipNorm);
  if (!content.ok) return refuse(content.reason, content.detail);
  const { norm, quantizationErrorBound: bound, scale } = content.update;
  if (!withinClipBound(norm, limits.clipNorm, bound)) {
    return refuse(
      'over-clip',
      `norm ${norm.toFixed(4)} over clipNorm ${limits.clipNorm} + int8 bound ${bound.toFixed(4)}`,
    );
  }
  const tensors = scaleTensors(content.update.tensors, scale);
  return { ok: true, tensors, sampleCount, norm, scale };
}

function refuse(reason: SimRejection, detail: string): IntakeResult {
  return { ok: false, reason, detail };
}
