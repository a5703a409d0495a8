/**
 * Byzantine devices for the federated simulation (issue 7 item 5, THREATS
 * 37-38): devices that hold real data and train like the others, then send
 * something else. They stay Byzantine for the whole run.
 *
 *   sign-flip  -k x its honest delta, then clipped to the round's bound and
 *              encoded like an honest update: it passes every check and pulls
 *              the aggregate the wrong way as hard as the bound allows
 *   scaled     its honest delta x k (default 100), not clipped, encoded with
 *              the real codec: the control plane's clip re-check refuses it
 *              (`over-clip`) or, inside the int8 tolerance, scales it back to
 *              the bound
 *   nan        an update holding NaN. `encodeTensorSet` refuses NaN, so these
 *              bytes come from `encodeRawFloat32TensorSet` below, a
 *              SIMULATION-ONLY writer of FTNS v1 float32 tensors that checks
 *              nothing; the real `decodeTensorSet` must refuse them (NON_FINITE)
 *
 * Any of them may also claim an inflated sample count: the most the round
 * allows (`maxSamples`), FedAvg's weight for the update.
 */
import { deflateRawSync } from 'node:zlib';
import type { NamedTensor } from '@fleet/edge-agent';
import { clipToL2, encodeTensorSet } from '@fleet/protocol';
import { seededUniform } from './partitions.ts';
import type { SentUpdate } from './update-intake.ts';

export type ByzantineKind = 'sign-flip' | 'scaled' | 'nan';

export interface ByzantineBehaviour {
  kind: ByzantineKind;
  /** sign-flip: the k of -k x delta (default 10); scaled: the factor (default 100). */
  factor?: number;
  /** Claim `maxSamples` whatever the device holds (default true). */
  inflateSampleCount?: boolean;
}

/** What a Byzantine device needs to forge its update. */
export interface ForgeInput {
  /** Its honestly trained delta (unclipped). */
  delta: readonly NamedTensor[];
  /** Samples it really trained on. */
  sampleCount: number;
  clipNorm: number;
  maxSamples: number;
  encoding: 'int8' | 'float32';
}

/**
 * The update a Byzantine device sends instead of its honest one.
 *
 * @example
 *   forgeUpdate({ kind: 'sign-flip' }, { delta, sampleCount: 80, clipNorm: 5, maxSamples: 600, encoding: 'int8' })
 */
export function forgeUpdate(behaviour: ByzantineBehaviour, input: ForgeInput): SentUpdate {
  const sampleCount = (behaviour.inflateSampleCount ?? true) ? input.maxSamples : input.sampleCount;
  switch (behaviour.kind) {
    case 'sign-flip': {
      const flipped = scaleTensors(input.delta, -(behaviour.factor ?? 10));
      const { tensors } = clipToL2(flipped, input.clipNorm);
      return { bytes: encodeTensorSet(tensors, { encoding: input.encoding }), sampleCount };
    }
    case 'scaled': {
      const scaled = scaleTensors(input.delta, behaviour.factor ?? 100);
      return { bytes: encodeTensorSet(scaled, { encoding: input.encoding }), sampleCount };
    }
    case 'nan': {
      const poisoned = input.delta.map((t) => {
        const values = t.values.slice();
        values[0] = Number.NaN;
        return { ...t, values };
      });
      return { bytes: encodeRawFloat32TensorSet(poisoned), sampleCount };
    }
  }
}

/**
 * Assigns Byzantine behaviours to a `fraction` of `devices` device indices,
 * chosen with a seeded shuffle; `kinds` are dealt round-robin over them.
 * Returns device index -> behaviour (honest devices are absent).
 */
export function chooseByzantine(
  devices: number,
  fraction: number,
  kinds: readonly ByzantineBehaviour[],
  seed: number,
): Map<number, ByzantineBehaviour> {
  if (!(fraction >= 0 && fraction <= 1))
    throw new RangeError(`fraction ${fraction} is not in [0, 1]`);
  if (kinds.length === 0 && fraction > 0) throw new RangeError('no Byzantine behaviour to deal');
  const random = seededUniform(seed);
  const order = Array.from({ length: devices }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const count = Math.round(fraction * devices);
  return new Map(order.slice(0, count).map((d, i) => [d, kinds[i % kinds.length]!]));
}

function scaleTensors(tensors: readonly NamedTensor[], factor: number): NamedTensor[] {
  return tensors.map((t) => ({
    name: t.name,
    dims: [...t.dims],
    values: t.values.map((v) => v * factor),
  }));
}

/**
 * SIMULATION ONLY: FTNS v1 bytes (layout in protocol/src/fl/tensor-set.ts)
 * holding `tensors` as raw float32, NaN and Infinity included, with no check
 * at all, for the NaN attack. Nothing outside the simulator may use it.
 */
export function encodeRawFloat32TensorSet(tensors: readonly NamedTensor[]): Uint8Array {
  const size = tensors.reduce(
    (s, t) => s + 1 + t.name.length + 2 + 4 * t.dims.length + 4 + 4 * t.values.length,
    0,
  );
  const body = new Uint8Array(size);
  const view = new DataView(body.buffer);
  let o = 0;
  for (const t of tensors) {
    view.setUint8(o++, t.name.length);
    for (let i = 0; i < t.name.length; i++) body[o++] = t.name.charCodeAt(i);
    view.setUint8(o++, 1); // dtype float32
    view.setUint8(o++, t.dims.length);
    for (const d of t.dims) view.setUint32((o += 4) - 4, d);
    view.setUint32((o += 4) - 4, 0); // no scales
    for (const v of t.values) view.setFloat32((o += 4) - 4, v, true);
  }
  const compressed = deflateRawSync(body);
  const out = new Uint8Array(12 + compressed.length);
  const header = new DataView(out.buffer);
  out.set([0x46, 0x54, 0x4e, 0x53], 0); // "FTNS"
  header.setUint8(4, 1);
  header.setUint8(5, 0);
  header.setUint16(6, tensors.length);
  header.setUint32(8, body.length);
  out.set(compressed, 12);
  return out;
}
