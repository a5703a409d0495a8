/**
 * Weight deltas and their size: `tensorDelta(trained, start)` is what a device
 * sends after training (ARCHITECTURE "Federated learning"), `l2Norm` the
 * global norm over all tensors that clipping bounds.
 */
import { agentError } from '../errors.ts';
import type { NamedTensor } from './types.ts';

/** Trained minus start, tensor by tensor (matched by position and checked by name and size). */
export function tensorDelta(trained: NamedTensor[], start: NamedTensor[]): NamedTensor[] {
  if (trained.length !== start.length)
    throw agentError(
      'TRAIN_REQUEST',
      `${trained.length} trained tensors for ${start.length} start tensors`,
    );
  return trained.map((t, k) => {
    const s = start[k]!;
    if (t.name !== s.name || t.values.length !== s.values.length)
      throw agentError(
        'TRAIN_REQUEST',
        `tensor ${k}: ${t.name} does not match start tensor ${s.name}`,
      );
    const values = new Float32Array(t.values.length);
    for (let i = 0; i < values.length; i++) values[i] = t.values[i]! - s.values[i]!;
    return { name: t.name, dims: [...t.dims], values };
  });
}

/** Global L2 norm over all tensors together (float64 accumulation). */
export function l2Norm(tensors: NamedTensor[]): number {
  let sum = 0;
  for (const t of tensors) for (const v of t.values) sum += v * v;
  return Math.sqrt(sum);
}
