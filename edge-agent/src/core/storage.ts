/**
 * What the agent's core needs from storage, as interfaces: the update state,
 * partial downloads and the two model slots. The filesystem implementations
 * (adapters/fs/) are what a device runs; the memory ones (adapters/memory/)
 * let the simulator run thousands of agents in one process. Both pass the same
 * contract tests (adapters/storage-contract.ts).
 */
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
  /** The whole file; only once every block is held. */
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
