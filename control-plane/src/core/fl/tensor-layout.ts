/**
 * The shared layout check of every strategy: all updates carry the same
 * tensors (names, dims, order), each with exactly as many values as its dims
 * say. Aggregating mismatched tensors would silently average unrelated
 * weights, so a mismatch is refused with the update and tensor that differ.
 */
import { controlPlaneError } from '../errors.ts';
import type { ClientUpdate, NamedTensor } from './types.ts';

/** Name and dims of one tensor of the common layout. */
export interface TensorShape {
  name: string;
  dims: number[];
  size: number;
}

function formatShape(t: { name: string; dims: readonly number[] }): string {
  return `'${t.name}' [${t.dims.join(', ')}]`;
}

function shapeOf(tensor: NamedTensor, where: string): TensorShape {
  let size = 1;
  for (const d of tensor.dims) {
    if (!Number.isInteger(d) || d < 0) {
      throw controlPlaneError(
        'INVALID_REQUEST',
        `${where}: dims of '${tensor.name}' are not sizes`,
      );
    }
    size *= d;
  }
  if (tensor.values.length !== size) {
    throw controlPlaneError(
      'INVALID_REQUEST',
      `${where}: ${formatShape(tensor)} holds ${tensor.values.length} values, its dims say ${size}`,
    );
  }
  return { name: tensor.name, dims: [...tensor.dims], size };
}

function label(update: ClientUpdate, index: number): string {
  return `update ${index} (device ${update.deviceId})`;
}

/**
 * The layout every update shares. Throws INVALID_REQUEST for no update, a
 * repeated tensor name, a values length that contradicts the dims, or any
 * update whose tensors differ from the first one's.
 */
export function commonLayout(updates: readonly ClientUpdate[]): TensorShape[] {
  const first = updates[0];
  if (first === undefined) throw controlPlaneError('INVALID_REQUEST', 'no update to aggregate');
  const layout = first.tensors.map((t) => shapeOf(t, label(first, 0)));
  const names = new Set(layout.map((s) => s.name));
  if (names.size !== layout.length) {
    throw controlPlaneError('INVALID_REQUEST', `${label(first, 0)}: repeated tensor name`);
  }
  for (let u = 1; u < updates.length; u++) {
    const update = updates[u]!;
    const where = label(update, u);
    if (update.tensors.length !== layout.length) {
      throw controlPlaneError(
        'INVALID_REQUEST',
        `${where}: ${update.tensors.length} tensors, expected ${layout.length} like update 0`,
      );
    }
    for (const [i, expected] of layout.entries()) {
      const tensor = update.tensors[i]!;
      const same =
        tensor.name === expected.name &&
        tensor.dims.length === expected.dims.length &&
        tensor.dims.every((d, k) => d === expected.dims[k]);
      if (!same) {
        throw controlPlaneError(
          'INVALID_REQUEST',
          `${where}: tensor ${i} is ${formatShape(tensor)}, expected ${formatShape(expected)} like update 0`,
        );
      }
      shapeOf(tensor, where);
    }
  }
  return layout;
}

/** A non-finite aggregate is refused rather than shipped (NaN in one update poisons a mean). */
export function refuseNonFinite(strategy: string, tensors: readonly NamedTensor[]): void {
  for (const t of tensors) {
    for (let i = 0; i < t.values.length; i++) {
      const v = t.values[i]!;
      if (v - v !== 0) {
        throw controlPlaneError(
          'INVALID_REQUEST',
          `${strategy}: aggregate of '${t.name}' is not finite at ${i} (an update holds NaN or Inf)`,
        );
      }
    }
  }
}
