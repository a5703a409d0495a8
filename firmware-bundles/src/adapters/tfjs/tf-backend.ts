/**
 * TensorFlow.js for training: `@tensorflow/tfjs-node` when it is installed and
 * loads (native, fastest; it cannot install on machines without access to its
 * libtensorflow download), else `@tensorflow/tfjs` on the WebAssembly backend
 * (about 4x faster than the pure-JS CPU backend for dense nets).
 */
import type * as TfModule from '@tensorflow/tfjs';

export type Tf = typeof TfModule;

export interface LoadedTf {
  tf: Tf;
  backend: string;
}

let loaded: Promise<LoadedTf> | undefined;

export function loadTf(): Promise<LoadedTf> {
  loaded ??= load();
  return loaded;
}

async function load(): Promise<LoadedTf> {
  const nodeName = '@tensorflow/tfjs-node'; // optional: not a dependency, so not a static import
  try {
    const tf = (await import(nodeName)) as Tf;
    await tf.ready();
    return { tf, backend: tf.getBackend() };
  } catch {
    const tf = await import('@tensorflow/tfjs');
    await import('@tensorflow/tfjs-backend-wasm');
    await tf.setBackend('wasm');
    await tf.ready();
    return { tf, backend: tf.getBackend() };
  }
}
