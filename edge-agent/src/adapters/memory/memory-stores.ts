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

/**
 * Identical content is held once per process: the downloads of one transfer
 * (same block root and sizes) write into one shared buffer, and slots share
 * equal part bytes. A simulated fleet runs thousands of agents in one
 * process, each fetching the same bundle; a ~200 KB download buffer and the
 * inflated parts for every agent, allocated in the same few seconds, made
 * V8 collect its whole heap again and again (external memory pressure): a
 * 5,000-agent fleet process stalled for tens of seconds. Every agent still
 * receives, checks and writes each of its own blocks; only the bytes are
 * stored once, as on a deduplicating file system.
 *
 * Copy semantics hold: a block is copied into the shared buffer by the first
 * download to write it, later writers' blocks are compared with it, and a
 * download whose block differs gets a private copy from then on (copy on
 * write). Bytes in a shared buffer are never changed once written. What
 * `read` returns is only read (DownloadStore.read).
 */
interface SharedTransfer {
  bytes: Uint8Array;
  /** Blocks written into `bytes` so far (each once). */
  written: Uint8Array;
}

/** Values held weakly by key: an entry lasts as long as some store still holds its value. */
function weakCache<T extends object>() {
  const entries = new Map<string, WeakRef<T>>();
  return {
    get: (key: string): T | undefined => entries.get(key)?.deref(),
    set(key: string, value: T): T {
      for (const [k, ref] of entries) if (!ref.deref()) entries.delete(k);
      entries.set(key, new WeakRef(value));
      return value;
    },
  };
}

const sharedTransfers = weakCache<SharedTransfer>();

function sharedTransferFor(spec: DownloadSpec): SharedTransfer {
  const key = `${spec.blockRoot}:${spec.sizeBytes}:${spec.blockSizeBytes}:${spec.blockCount}`;
  return (
    sharedTransfers.get(key) ??
    sharedTransfers.set(key, {
      bytes: new Uint8Array(spec.sizeBytes),
      written: createBitmap(spec.blockCount),
    })
  );
}

interface MemoryDownloadEntry {
  spec: DownloadSpec;
  /** The shared transfer until a block differs from it; then this download's own bytes. */
  content: { shared: SharedTransfer } | { own: Uint8Array } | null;
  bitmap: Uint8Array;
}

export function createMemoryDownloadStore(): DownloadStore {
  const downloads = new Map<string, MemoryDownloadEntry>();
  return {
    open(spec) {
      let entry = downloads.get(spec.bundleId);
      if (!entry || JSON.stringify(entry.spec) !== JSON.stringify(spec)) {
        entry = { spec: { ...spec }, content: null, bitmap: createBitmap(spec.blockCount) };
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

function writeBlock(entry: MemoryDownloadEntry, index: number, data: Uint8Array): void {
  const offset = index * entry.spec.blockSizeBytes;
  entry.content ??= { shared: sharedTransferFor(entry.spec) };
  if ('own' in entry.content) {
    entry.content.own.set(data, offset);
    return;
  }
  const { shared } = entry.content;
  if (!hasBit(shared.written, index)) {
    shared.bytes.set(data, offset);
    setBit(shared.written, index);
    return;
  }
  const held = shared.bytes.subarray(offset, offset + data.length);
  if (Buffer.compare(held, data) === 0) return; // the same bytes are there
  const own = shared.bytes.slice(); // the blocks this download wrote are in it unchanged
  own.set(data, offset);
  entry.content = { own };
}

function memoryDownload(entry: MemoryDownloadEntry): Download {
  const { spec, bitmap } = entry;
  return {
    blockCount: spec.blockCount,
    has: (index) => hasBit(bitmap, index),
    received: () => countSet(bitmap),
    missing: (limit) => missingIndices(bitmap, spec.blockCount, limit),
    bitmap: () => bitmap.slice(),
    write(index, data) {
      checkBlock(spec, index, data);
      if (!hasBit(bitmap, index)) {
        writeBlock(entry, index, data);
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
      // Not a copy (DownloadStore.read).
      const content = entry.content;
      if (!content) return Promise.resolve(new Uint8Array(0)); // no blocks: an empty file
      return Promise.resolve('own' in content ? content.own : content.shared.bytes);
    },
  };
}

/** Part bytes held by the memory slot stores of this process, by bundle and part name (see above). */
const sharedParts = weakCache<Uint8Array>();

/** A copy of `bytes`: the one another slot already holds when equal, else a new one (then shared). */
function sharedPart(bundleId: string, name: string, bytes: Uint8Array): Uint8Array {
  const key = `${bundleId}/${name}`;
  const held = sharedParts.get(key);
  if (held && Buffer.compare(held, bytes) === 0) return held;
  return sharedParts.set(key, bytes.slice());
}

export function createMemorySlotStore(): SlotStore {
  const slots = new Map<Slot, SlotContents>();
  return {
    write(slot, contents) {
      const parts = new Map(
        [...contents.parts].map(([name, bytes]) => [
          name,
          sharedPart(contents.bundleId, name, bytes),
        ]),
      );
      slots.set(slot, { ...contents, parts });
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
