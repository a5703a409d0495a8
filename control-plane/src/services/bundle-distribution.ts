/**
 * Bundle delivery over MQTT (ARCHITECTURE "Over-the-air delivery", after AWS
 * IoT's MQTT file delivery): a bundle is cut into blocks of at most 64 KiB,
 * each sent as a binary frame with its Merkle proof on
 * `fleet/v1/bundle/{bundleId}/blocks`. When a wave starts, every block is
 * broadcast once; agents that missed some ask for them with a signed
 * `blocks-request` (a bitmap of what they lack).
 *
 * Repair requests are coalesced: requests arriving within `repairWindowMs`
 * of each other are merged, per block, with the devices that asked for it.
 * A block asked for by at least `repairBroadcastMin` devices is broadcast
 * again on the bundle topic, once: a thousand agents that missed the same
 * block cost one re-send, not a thousand. A block fewer devices asked for
 * goes to each of them alone, on its own `fleet/v1/dev/{id}/blocks`, so the
 * other agents still downloading do not receive (and verify, and discard) a
 * copy they hold: re-broadcasting every repair cost 51,000 duplicate blocks
 * at the agents in a 1,000-agent rollout. A device that asks again for a
 * block it was just sent alone gets it by broadcast instead (an agent that
 * does not read its own topic still gets its blocks).
 *
 * A block broadcast less than `rebroadcastHoldOffMs` ago is not broadcast
 * again: requests for it are held (dropped and counted), and an agent still
 * missing it asks again on its own backoff. A fleet busier than its repair
 * timer (a thousand agents in one process, a slow device's radio) asks for
 * blocks whose broadcast is still in its socket buffer; re-broadcasting each
 * such request to every downloading agent fed the congestion that caused it:
 * 34 broadcasts of each block, 26 x N x bundle bytes through the broker and
 * 57,522 duplicate blocks at 1,000 agents (simulator/bench/README.md). The
 * hold-off is the NACK-suppression interval of reliable-multicast protocols
 * (NORM, RFC 5740: a repaired block's NACKs are ignored for a hold-off).
 * Direct repairs are never held: they reach only the device that asked.
 *
 * A device asking again before `minRepairIntervalMs` is ignored (it cannot
 * make the control plane flood the broker).
 *
 * Nor is a block re-broadcast for requests made while the wave's own
 * broadcast is still due (`broadcastDue`, rollout-service asks the broadcast
 * gate): that broadcast brings every block. An agent waits only seconds
 * before its first request, and a wave's broadcast waits for its slowest
 * devices to subscribe; in a 3,000-agent rollout 2,800 agents asked before
 * it, and the re-broadcast they caused doubled the bytes sent. Such askers
 * are counted (`repairsBeforeBroadcast`); the few a block would be sent to
 * alone still get it at once.
 */
import {
  bitmapFromBase64,
  bundleBlocksTopic,
  createBlockTree,
  deviceTopic,
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
  /** Devices asking for one block in one window from which it is broadcast, not sent to each. */
  repairBroadcastMin?: number;
  /** How long after a block's broadcast it is not broadcast again (requests for it are held). */
  rebroadcastHoldOffMs?: number;
  /** How many prepared bundles to keep in memory. */
  cacheSize?: number;
}

export interface BundleDistribution {
  /** Cuts the bundle into blocks and builds its Merkle tree (cached). */
  plan(bundleId: string): Promise<TransferPlan>;
  /** Publishes every block once on the bundle's topic. */
  broadcast(bundleId: string): Promise<void>;
  /**
   * Takes a device's (already verified) request for missing blocks; with
   * `broadcastDue`, the bundle's broadcast is still to come: no block is
   * re-broadcast for this request's window.
   */
  requestRepair(
    deviceId: string,
    request: { bundleId: string; blockCount: number; missing: string },
    context?: { broadcastDue?: boolean },
  ): Promise<void>;
  /** Publishes pending repairs now (also runs on its own after `repairWindowMs`). */
  flushRepairs(): Promise<void>;
  stats(): {
    /** Block frames published, broadcast and direct. */
    blocksSent: number;
    bytesSent: number;
    /** Of `blocksSent`, the repairs sent to one device on its own topic. */
    blocksSentDirect: number;
    repairRequests: number;
    repairsIgnored: number;
    /** Askers of a block whose broadcast was within the hold-off (not re-broadcast). */
    repairsHeld: number;
    /** Askers of a block, while the bundle's broadcast was due, left to that broadcast. */
    repairsBeforeBroadcast: number;
  };
  close(): Promise<void>;
}

interface Prepared {
  plan: TransferPlan;
  blocks: Uint8Array[];
  tree: BlockTree;
}

/** Devices whose last direct repair is remembered (one small entry each). */
const MAX_DIRECT_MEMORY = 100_000;

export function createBundleDistribution(options: BundleDistributionOptions): BundleDistribution {
  const blockSizeBytes = options.blockSizeBytes ?? MAX_BLOCK_BYTES;
  const repairWindowMs = options.repairWindowMs ?? 250;
  const minRepairIntervalMs = options.minRepairIntervalMs ?? 1_000;
  const cacheSize = options.cacheSize ?? 8;
  const repairBroadcastMin = options.repairBroadcastMin ?? 8;
  const rebroadcastHoldOffMs = options.rebroadcastHoldOffMs ?? 5_000;
  const prepared = new Map<string, Promise<Prepared>>();
  /**
   * Per bundle: per missing block, the devices that asked for it in this
   * window; and the blocks to broadcast whoever asked.
   */
  const pendingRepairs = new Map<
    string,
    {
      askers: Map<number, Set<string>>;
      broadcast: Set<number>;
      /** A request of this window came while the bundle's broadcast was due. */
      broadcastDue: boolean;
    }
  >();
  const lastRequestAt = new Map<string, number>();
  /** Per device, the blocks of its last direct repair: asked for again, they are broadcast. */
  const lastDirect = new Map<string, { bundleId: string; indices: Set<number> }>();
  /** Per bundle, per block: when it was last broadcast (ms). */
  const lastBroadcastAt = new Map<string, Map<number, number>>();
  const counters = {
    blocksSent: 0,
    bytesSent: 0,
    blocksSentDirect: 0,
    repairRequests: 0,
    repairsIgnored: 0,
    repairsHeld: 0,
    repairsBeforeBroadcast: 0,
  };
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

  function frameOf(entry: Prepared, index: number): Uint8Array {
    return encodeBlockFrame({
      bundleId: entry.plan.bundleId,
      index,
      count: entry.plan.blockCount,
      proof: entry.tree.proof(index),
      data: entry.blocks[index]!,
    });
  }

  async function publishFrame(topic: string, frame: Uint8Array): Promise<void> {
    await options.publish(topic, frame);
    counters.blocksSent += 1;
    counters.bytesSent += frame.length;
  }

  async function send(entry: Prepared, indices: Iterable<number>): Promise<void> {
    const { bundleId } = entry.plan;
    const topic = bundleBlocksTopic(bundleId);
    let sentAt = lastBroadcastAt.get(bundleId);
    if (!sentAt) {
      sentAt = new Map();
      lastBroadcastAt.set(bundleId, sentAt);
      // Kept for the prepared bundles only (a bounded few).
      for (const id of lastBroadcastAt.keys()) if (!prepared.has(id)) lastBroadcastAt.delete(id);
    }
    for (const index of indices) {
      sentAt.set(index, options.nowMs());
      await publishFrame(topic, frameOf(entry, index));
    }
  }

  /** Whether `index` of `bundleId` was broadcast within the hold-off. */
  function heldOff(bundleId: string, index: number): boolean {
    const at = lastBroadcastAt.get(bundleId)?.get(index);
    return at !== undefined && options.nowMs() - at < rebroadcastHoldOffMs;
  }

  async function flushRepairs(): Promise<void> {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = null;
    const batch = [...pendingRepairs];
    pendingRepairs.clear();
    for (const [bundleId, pending] of batch) {
      const entry = await prepare(bundleId);
      const broadcast: number[] = [];
      const direct = new Map<string, number[]>();
      for (const [index, devices] of [...pending.askers].sort(([a], [b]) => a - b)) {
        if (devices.size >= repairBroadcastMin || pending.broadcast.has(index)) {
          if (heldOff(bundleId, index)) counters.repairsHeld += devices.size;
          else if (pending.broadcastDue) counters.repairsBeforeBroadcast += devices.size;
          else broadcast.push(index);
          continue;
        }
        for (const deviceId of devices) {
          const indices = direct.get(deviceId) ?? [];
          indices.push(index);
          direct.set(deviceId, indices);
        }
      }
      await send(entry, broadcast);
      for (const [deviceId, indices] of direct) {
        lastDirect.delete(deviceId); // re-inserted last: the oldest go first
        lastDirect.set(deviceId, { bundleId, indices: new Set(indices) });
        if (lastDirect.size > MAX_DIRECT_MEMORY) lastDirect.delete(lastDirect.keys().next().value!);
        const topic = deviceTopic(deviceId, 'blocks');
        for (const index of indices) {
          await publishFrame(topic, frameOf(entry, index));
          counters.blocksSentDirect += 1;
        }
      }
    }
  }

  /** Notes `deviceId`'s request for `index`; a block it was just sent alone is broadcast. */
  function addPending(
    deviceId: string,
    bundleId: string,
    index: number,
    broadcastDue: boolean,
  ): void {
    let pending = pendingRepairs.get(bundleId);
    if (!pending) {
      pending = { askers: new Map(), broadcast: new Set(), broadcastDue: false };
      pendingRepairs.set(bundleId, pending);
    }
    if (broadcastDue) pending.broadcastDue = true;
    const devices = pending.askers.get(index) ?? new Set<string>();
    pending.askers.set(index, devices);
    devices.add(deviceId);
    const last = lastDirect.get(deviceId);
    // Sent to it alone and still missing: it may not read its own topic.
    if (last?.bundleId === bundleId && last.indices.has(index)) pending.broadcast.add(index);
  }

  /** The request's missing-block bitmap, checked against the bundle; throws for a bad request. */
  async function missingBlocks(request: {
    bundleId: string;
    blockCount: number;
    missing: string;
  }): Promise<Uint8Array> {
    const entry = await prepare(request.bundleId);
    if (request.blockCount !== entry.plan.blockCount) {
      throw controlPlaneError(
        'INVALID_REQUEST',
        `blocks-request for ${request.bundleId} names ${request.blockCount} blocks, the bundle has ${entry.plan.blockCount}`,
      );
    }
    return bitmapFromBase64(request.missing, request.blockCount);
  }

  return {
    async plan(bundleId) {
      return (await prepare(bundleId)).plan;
    },
    async broadcast(bundleId) {
      const entry = await prepare(bundleId);
      await send(entry, entry.blocks.keys());
    },
    async requestRepair(deviceId, request, context = {}) {
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
        missing = await missingBlocks(request);
      } catch (error) {
        if (lastRequestAt.get(deviceId) === now) {
          if (last === undefined) lastRequestAt.delete(deviceId);
          else lastRequestAt.set(deviceId, last);
        }
        throw error;
      }
      for (let i = 0; i < request.blockCount; i++) {
        if (hasBit(missing, i))
          addPending(deviceId, request.bundleId, i, context.broadcastDue ?? false);
      }
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
