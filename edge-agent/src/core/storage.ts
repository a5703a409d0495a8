/**
 * What the agent's core needs from storage, as interfaces: the update state,
 * partial downloads, the two model slots and the drift outbox. The filesystem implementations
 * (adapters/fs/) are what a device runs; the memory ones (adapters/memory/)
 * let the simulator run thousands of agents in one process. Both pass the same
 * contract tests (adapters/storage-contract.ts).
 */
import type { DriftFlush } from './drift-flush.ts';
import type { AgentState, Slot } from './update-state.ts';

export interface StateStore {
  /** The persisted state; the initial state when none was ever saved. Throws AGENT_STATE_CORRUPT for a damaged one. */
  load(): Promise<AgentState>;
  /** Replaces the state atomically and durably: after it resolves a power cut cannot lose it. */
  save(state: AgentState): Promise<void>;
}

/** One bundle's partial download: a file of `sizeBytes` filled block by block, and which blocks it holds. */
export interface Download {
  readonly blockCount: number;
  has(index: number): boolean;
  /** Blocks held. */
  received(): number;
  /** Indices of the blocks not yet held, lowest first, at most `limit`. */
  missing(limit?: number): number[];
  /** The bitmap of blocks held (bit i = block i, LSB first). */
  bitmap(): Uint8Array;
  /**
   * Writes a block already checked against the transfer's Merkle root, durably,
   * then marks it held: a block marked held survives a restart, a block written
   * but not marked is fetched again.
   */
  write(index: number, data: Uint8Array): Promise<void>;
  /**
   * The whole file; only once every block is held. The caller only reads
   * it: the memory store hands over the bytes it holds rather than a copy.
   */
  read(): Promise<Uint8Array>;
}

export interface DownloadSpec {
  bundleId: string;
  /** The transfer's Merkle root: blocks kept from a transfer with another root are not trusted. */
  blockRoot: string;
  sizeBytes: number;
  blockSizeBytes: number;
  blockCount: number;
}

export interface DownloadStore {
  /** Opens the download of `spec.bundleId`, resuming what an earlier run stored, or starts it empty. */
  open(spec: DownloadSpec): Promise<Download>;
  /** Deletes a download's files (finished, cancelled or replaced). */
  discard(bundleId: string): Promise<void>;
}

/** The files of one installed bundle, by part name, and the bundle they came from. */
export interface SlotContents {
  bundleId: string;
  /** The signed manifest envelope bytes. */
  manifestEnvelope: Uint8Array;
  parts: ReadonlyMap<string, Uint8Array>;
}

export interface SlotStore {
  /**
   * Replaces a slot's contents. The slot's marker is written last, so a slot
   * cut off mid-write reads as empty, never as a mix of two bundles.
   */
  write(slot: Slot, contents: SlotContents): Promise<void>;
  /** The slot's contents, or null when it is empty or holds another bundle than `bundleId`. */
  read(slot: Slot, bundleId: string): Promise<SlotContents | null>;
}

/** The drift outbox's counters, persisted beside its flushes. */
export interface DriftOutboxCounters {
  /** The seq the next flush gets: above every seq ever given out. */
  nextSeq: number;
  /** Flushes dropped unsent since the outbox began (the bound; see drift-outbox.ts). */
  dropped: number;
}

/** A stored outbox entry that could not be read: moved aside, never deleted, and reported. */
export interface CorruptEntry {
  /** What was moved, e.g. its file name. */
  name: string;
  /** Where it was moved to (a path), or null when the store has no such place. */
  movedTo: string | null;
  reason: string;
}

export interface DriftOutboxContents {
  /** The stored flushes, lowest seq first. */
  flushes: DriftFlush[];
  /** 'missing' when none were ever saved; 'corrupt' when they could not be read (see `corrupt`). */
  counters: DriftOutboxCounters | 'missing' | 'corrupt';
  /** Entries that failed their checks, already moved aside. */
  corrupt: CorruptEntry[];
}

/**
 * The drift outbox's storage: flushes by seq, and the counters. Every write is
 * atomic and durable when it resolves. The policy (seq, bounds, order) is the
 * outbox's (core/drift-outbox.ts); a store only keeps what it is given.
 */
export interface DriftOutboxStore {
  /** Everything stored. Never throws for a damaged entry: it is moved aside and listed in `corrupt`. */
  load(): Promise<DriftOutboxContents>;
  /** Stores a flush under its seq (replacing one with the same seq). */
  put(flush: DriftFlush): Promise<void>;
  /** Deletes the flush of `seq`; nothing happens when there is none. */
  remove(seq: number): Promise<void>;
  saveCounters(counters: DriftOutboxCounters): Promise<void>;
}
