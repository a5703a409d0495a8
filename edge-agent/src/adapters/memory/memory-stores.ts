/**
 * In-memory StateStore, DownloadStore, SlotStore and DriftOutboxStore, for the simulator's
 * thousands of agents in one process (and for tests). Same contract as the
 * filesystem stores (storage-contract.ts); "durable" here means "until the
 * process ends", which is what a simulated power cut (a fresh agent on the
 * same stores) needs.
 */
import { countSet, createBitmap, hasBit, missingIndices, setBit } from '@fleet/protocol';
import type { DriftFlush } from '../../core/drift-flush.ts';
import type {
  Download,
  DownloadSpec,
  DownloadStore,
  DriftOutboxCounters,
  DriftOutboxStore,
  SlotContents,
  SlotStore,
  StateStore,
} from '../../core/storage.ts';
import { initialAgentState, type AgentState, type Slot } from '../../core/update-state.ts';
import { checkBlock } from '../download-checks.ts';

export function createMemoryStateStore(): StateStore {
  let saved: string | null = null;
  return {
    load: () =>
      Promise.resolve(saved === null ? initialAgentState() : (JSON.parse(saved) as AgentState)),
    save: (state) => {
      saved = JSON.stringify(state); // a copy: later mutation of `state` cannot leak in
      return Promise.resolve();
    },
  };
}

export function createMemoryDownloadStore(): DownloadStore {
  const downloads = new Map<
    string,
    { spec: DownloadSpec; bytes: Uint8Array; bitmap: Uint8Array }
  >();
  return {
    open(spec) {
      let entry = downloads.get(spec.bundleId);
      if (!entry || JSON.stringify(entry.spec) !== JSON.stringify(spec)) {
        entry = {
          spec: { ...spec },
          bytes: new Uint8Array(spec.sizeBytes),
          bitmap: createBitmap(spec.blockCount),
        };
        downloads.set(spec.bundleId, entry);
      }
      return Promise.resolve(memoryDownload(entry));
    },
    discard(bundleId) {
      downloads.delete(bundleId);
      return Promise.resolve();
    },
  };
}

function memoryDownload(entry: {
  spec: DownloadSpec;
  bytes: Uint8Array;
  bitmap: Uint8Array;
}): Download {
  const { spec, bytes, bitmap } = entry;
  return {
    blockCount: spec.blockCount,
    has: (index) => hasBit(bitmap, index),
    received: () => countSet(bitmap),
    missing: (limit) => missingIndices(bitmap, spec.blockCount, limit),
    bitmap: () => bitmap.slice(),
    write(index, data) {
      checkBlock(spec, index, data);
      if (!hasBit(bitmap, index)) {
        bytes.set(data, index * spec.blockSizeBytes);
        setBit(bitmap, index);
      }
      return Promise.resolve();
    },
    read() {
      const held = countSet(bitmap);
      if (held !== spec.blockCount) {
        return Promise.reject(
          new Error(`download of ${spec.bundleId} holds ${held} of ${spec.blockCount} blocks`),
        );
      }
      // Not a copy (DownloadStore.read): for a simulated fleet, a second
      // ~200 KB buffer per agent while it stages was a cost of its own
      // (0.6 ms of CPU an agent in a 3,000-agent profile).
      return Promise.resolve(bytes);
    },
  };
}

export function createMemorySlotStore(): SlotStore {
  const slots = new Map<Slot, SlotContents>();
  return {
    write(slot, contents) {
      slots.set(slot, { ...contents, parts: new Map(contents.parts) });
      return Promise.resolve();
    },
    read(slot, bundleId) {
      const contents = slots.get(slot);
      return Promise.resolve(contents?.bundleId === bundleId ? contents : null);
    },
  };
}

/** Flushes kept as JSON text, so what is read back is a copy, as from a file. */
export function createMemoryDriftOutboxStore(): DriftOutboxStore {
  const flushes = new Map<number, string>();
  let counters: string | null = null;
  return {
    load: () =>
      Promise.resolve({
        flushes: [...flushes.entries()]
          .sort(([a], [b]) => a - b)
          .map(([, text]) => JSON.parse(text) as DriftFlush),
        counters: counters === null ? 'missing' : (JSON.parse(counters) as DriftOutboxCounters),
        corrupt: [],
      }),
    put(flush) {
      flushes.set(flush.seq, JSON.stringify(flush));
      return Promise.resolve();
    },
    remove(seq) {
      flushes.delete(seq);
      return Promise.resolve();
    },
    saveCounters(next) {
      counters = JSON.stringify(next);
      return Promise.resolve();
    },
  };
}
