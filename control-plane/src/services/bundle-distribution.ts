/**
 * Bundle delivery over MQTT (ARCHITECTURE "Over-the-air delivery", after AWS
 * IoT's MQTT file delivery): a bundle is cut into blocks of at most 64 KiB,
 * each sent as a binary frame with its Merkle proof on
 * `fleet/v1/bundle/{bundleId}/blocks`. When a wave starts, every block is
 * broadcast once; agents that missed some ask for them with a signed
 * `blocks-request` (a bitmap of what they lack), and the blocks asked for are
 * broadcast again on the same topic.
 *
 * Repair requests are coalesced: requests arriving within `repairWindowMs`
 * of each other are merged into one union of missing blocks, so a thousand
 * agents that missed the same block cost one re-send, not a thousand. A
 * device asking again before `minRepairIntervalMs` is ignored (it cannot make
 * the control plane flood the broker).
 */
import {
  bitmapFromBase64,
  bundleBlocksTopic,
  createBlockTree,
  encodeBlockFrame,
  hasBit,
  MAX_BLOCK_BYTES,
  splitBlocks,
  type BlockTree,
} from '@fleet/protocol';
import type { BlobStore } from '../core/models/blob-store.ts';
import { controlPlaneError } from '../core/errors.ts';

export interface TransferPlan {
  bundleId: string;
  sizeBytes: number;
  blockSizeBytes: number;
  blockCount: number;
  /** Merkle root of the blocks, hex: goes into the deploy command. */
  blockRoot: string;
}

export interface BundleDistributionOptions {
  blobs: BlobStore;
  publish: (topic: string, payload: Uint8Array) => Promise<void>;
  nowMs: () => number;
  blockSizeBytes?: number;
  repairWindowMs?: number;
  minRepairIntervalMs?: number;
  /** How many prepared bundles to keep in memory. */
  cacheSize?: number;
}

export interface BundleDistribution {
  /** Cuts the bundle into blocks and builds its Merkle tree (cached). */
  plan(bundleId: string): Promise<TransferPlan>;
  /** Publishes every block once on the bundle's topic. */
  broadcast(bundleId: string): Promise<void>;
  /** Takes a device's (already verified) request for missing blocks. */
  requestRepair(
    deviceId: string,
    request: { bundleId: string; blockCount: number; missing: string },
  ): Promise<void>;
  /** Publishes pending repairs now (also runs on its own after `repairWindowMs`). */
  flushRepairs(): Promise<void>;
  stats(): {
    blocksSent: number;
    bytesSent: number;
    repairRequests: number;
    repairsIgnored: number;
  };
  close(): Promise<void>;
}

interface Prepared {
  plan: TransferPlan;
  blocks: Uint8Array[];
  tree: BlockTree;
}

export function createBundleDistribution(options: BundleDistributionOptions): BundleDistribution {
  const blockSizeBytes = options.blockSizeBytes ?? MAX_BLOCK_BYTES;
  const repairWindowMs = options.repairWindowMs ?? 250;
  const minRepairIntervalMs = options.minRepairIntervalMs ?? 1_000;
  const cacheSize = options.cacheSize ?? 8;
  const prepared = new Map<string, Promise<Prepared>>();
  const pendingRepairs = new Map<string, Set<number>>();
  const lastRequestAt = new Map<string, number>();
  const counters = { blocksSent: 0, bytesSent: 0, repairRequests: 0, repairsIgnored: 0 };
  let flushTimer: NodeJS.Timeout | null = null;
  let flushing: Promise<void> = Promise.resolve();

  function prepare(bundleId: string): Promise<Prepared> {
    let entry = prepared.get(bundleId);
    if (!entry) {
      entry = load(bundleId);
      prepared.set(bundleId, entry);
      entry.catch(() => prepared.delete(bundleId));
      while (prepared.size > cacheSize) prepared.delete(prepared.keys().next().value!);
    }
    return entry;
  }

  async function load(bundleId: string): Promise<Prepared> {
    const bytes = await options.blobs.get(bundleId);
    if (!bytes) throw controlPlaneError('NOT_FOUND', `bundle ${bundleId} is not in the blob store`);
    const blocks = splitBlocks(bytes, blockSizeBytes);
    const tree = await createBlockTree(blocks);
    const plan = {
      bundleId,
      sizeBytes: bytes.length,
      blockSizeBytes,
      blockCount: blocks.length,
      blockRoot: tree.root,
    };
    return { plan, blocks, tree };
  }

  async function send(entry: Prepared, indices: Iterable<number>): Promise<void> {
    const topic = bundleBlocksTopic(entry.plan.bundleId);
    for (const index of indices) {
      const data = entry.blocks[index]!;
      const frame = encodeBlockFrame({
        bundleId: entry.plan.bundleId,
        index,
        count: entry.plan.blockCount,
        proof: entry.tree.proof(index),
        data,
      });
      await options.publish(topic, frame);
      counters.blocksSent += 1;
      counters.bytesSent += frame.length;
    }
  }

  async function flushRepairs(): Promise<void> {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = null;
    const batch = [...pendingRepairs];
    pendingRepairs.clear();
    for (const [bundleId, indices] of batch) {
      const entry = await prepare(bundleId);
      await send(
        entry,
        [...indices].sort((a, b) => a - b),
      );
    }
  }

  return {
    async plan(bundleId) {
      return (await prepare(bundleId)).plan;
    },
    async broadcast(bundleId) {
      const entry = await prepare(bundleId);
      await send(entry, entry.blocks.keys());
    },
    async requestRepair(deviceId, request) {
      counters.repairRequests += 1;
      const now = options.nowMs();
      const last = lastRequestAt.get(deviceId);
      if (last !== undefined && now - last < minRepairIntervalMs) {
        counters.repairsIgnored += 1;
        return;
      }
      // Taken before the first await, so concurrent requests of one device
      // cannot all pass; given back if the request is refused (it changes nothing).
      lastRequestAt.set(deviceId, now);
      let missing: Uint8Array;
      try {
        const entry = await prepare(request.bundleId);
        if (request.blockCount !== entry.plan.blockCount) {
          throw controlPlaneError(
            'INVALID_REQUEST',
            `blocks-request for ${request.bundleId} names ${request.blockCount} blocks, the bundle has ${entry.plan.blockCount}`,
          );
        }
        missing = bitmapFromBase64(request.missing, request.blockCount);
      } catch (error) {
        if (lastRequestAt.get(deviceId) === now) {
          if (last === undefined) lastRequestAt.delete(deviceId);
          else lastRequestAt.set(deviceId, last);
        }
        throw error;
      }
      const pending = pendingRepairs.get(request.bundleId) ?? new Set<number>();
      for (let i = 0; i < request.blockCount; i++) if (hasBit(missing, i)) pending.add(i);
      pendingRepairs.set(request.bundleId, pending);
      flushTimer ??= setTimeout(() => {
        flushing = flushing.then(flushRepairs).catch(() => undefined);
      }, repairWindowMs);
    },
    flushRepairs: () => (flushing = flushing.then(flushRepairs)),
    stats: () => ({ ...counters }),
    async close() {
      if (flushTimer) clearTimeout(flushTimer);
      flushTimer = null;
      await flushing.catch(() => undefined);
    },
  };
}
