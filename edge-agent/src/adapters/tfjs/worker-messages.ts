/**
 * What the training pool and its workers say to each other, and the copies
 * that cross: a request's arrays are copied before they are transferred (the
 * caller keeps its own), a result's arrays are transferred back.
 */
import type { NamedTensor, TrainRequest, TrainResult } from '../../core/training/types.ts';

/** Pool to worker: train this. */
export interface TrainJobMessage {
  id: number;
  request: TrainRequest;
}

/** Worker to pool: the job's result, or its error's code and message. */
export type TrainReplyMessage =
  | { id: number; ok: true; result: TrainResult }
  | { id: number; ok: false; code: string; message: string };

const copyTensor = (t: NamedTensor): NamedTensor => ({
  name: t.name,
  dims: [...t.dims],
  values: t.values.slice(),
});

/** A deep copy of the request's arrays, with the buffers to transfer. */
export function copyForTransfer(request: TrainRequest): {
  request: TrainRequest;
  transfer: ArrayBuffer[];
} {
  const weights = request.weights.map(copyTensor);
  const samples = {
    ...request.samples,
    features: request.samples.features.slice(),
    labels: request.samples.labels.slice(),
  };
  const copy: TrainRequest = {
    ...request,
    architecture: {
      ...request.architecture,
      layers: request.architecture.layers.map((l) => ({ ...l })),
    },
    weights,
    samples,
  };
  const transfer = [
    ...weights.map((t) => t.values.buffer as ArrayBuffer),
    samples.features.buffer,
    samples.labels.buffer,
  ];
  return { request: copy, transfer };
}

/** The result's buffers (each tensor owns its whole buffer), to transfer. */
export function resultBuffers(result: TrainResult): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const t of [...result.weights, ...result.delta]) buffers.add(t.values.buffer as ArrayBuffer);
  return [...buffers];
}
