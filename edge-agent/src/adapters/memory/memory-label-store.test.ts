/** The labelled-sample store contract on the memory store (the simulator's). */
import { runLabelStoreContract } from '../labelled-samples-contract.ts';
import { createMemoryLabelStore } from './memory-label-store.ts';
import type { LabelledSampleStore } from '../../core/labelled-samples.ts';

runLabelStoreContract('memory', () => {
  let store: LabelledSampleStore | null = null;
  // The memory store is its own backing data: a "restart" is the same object.
  return { store: (nowMs, retention) => (store ??= createMemoryLabelStore({ nowMs, retention })) };
});
