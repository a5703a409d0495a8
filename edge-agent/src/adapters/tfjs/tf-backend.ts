/**
 * TensorFlow.js for local training, loaded once per thread (the calling
 * thread for the in-thread trainer, each pool worker for itself):
 * `@tensorflow/tfjs` on the WebAssembly backend (about 4x the pure-JS CPU
 * backend on dense nets), else the CPU backend if WebAssembly cannot start.
 * Results are repeatable on one backend; the backend is reported with them.
 */
import type * as TfModule from '@tensorflow/tfjs';

export type Tf = typeof TfModule;

export interface LoadedTf {
  tf: Tf;
  /** `wasm` or `cpu`. */
  backend: string;
}

let loaded: Promise<LoadedTf> | undefined;

/** The thread's TensorFlow.js, ready on its backend. */
export function loadTf(): Promise<LoadedTf> {
  loaded ??= load();
  return loaded;
}

async function load(): Promise<LoadedTf> {
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend('wasm'))) await tf.setBackend('cpu');
  await tf.ready();
  return { tf, backend: tf.getBackend() };
}
