import {
  createMemoryDownloadStore,
  createMemoryDriftOutboxStore,
  createMemorySlotStore,
  createMemoryStateStore,
} from './memory-stores.ts';
import { runStorageContract } from '../storage-contract.ts';

const stores = {
  state: createMemoryStateStore(),
  downloads: createMemoryDownloadStore(),
  slots: createMemorySlotStore(),
  driftOutbox: createMemoryDriftOutboxStore(),
};
runStorageContract('memory stores', () => stores);
