/**
 * Fetches one bundle's blocks over MQTT, resumably (ARCHITECTURE "Over-the-
 * air delivery"):
 *
 *   1. open the download (blocks held from an earlier run are kept) and
 *      subscribe to `fleet/v1/bundle/{bundleId}/blocks`;
 *   2. for each frame: decode it (bounded), check it belongs to this transfer
 *      and that its Merkle proof leads to the deploy's block root, then write
 *      it; duplicates and out-of-order blocks are harmless, a corrupt block
 *      is counted and dropped (it stays missing and is asked for again);
 *   3. when no new block has arrived for a while, publish a signed request for
 *      the missing ones (a bitmap), with backoff and jitter (THREATS 25); a
 *      download that has had no block at all waits longer first: the
 *      broadcast has most likely not started (the control plane holds it
 *      until the wave's devices are subscribed), and a fleet asking in the
 *      meantime only loads the control plane (10,000 simulated agents sent
 *      3.3 requests each before their broadcast, which delayed it);
 *   4. when every block is held: unsubscribe and report completion.
 *
 * The deadline is the update machine's (a `tick` past it stops the download).
 */
import {
  bundleBlocksTopic,
  decodeBlockFrame,
  bitmapToBase64,
  createBitmap,
  setBit,
  verifyBlock,
  type BlockFrame,
  type ErrorReport,
} from '@fleet/protocol';
import type { Download, DownloadStore } from '../core/storage.ts';
import type { UpdateJob } from '../core/update-state.ts';

export interface BlockTransport {
  subscribe(topic: string): Promise<void>;
  unsubscribe(topic: string): Promise<void>;
  /** Publishes a signed `blocks-request` for the given missing-block bitmap. */
  requestBlocks(request: {
    rolloutId: string;
    bundleId: string;
    blockCount: number;
    missing: string;
  }): Promise<void>;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface BlockDownloaderOptions {
  downloads: DownloadStore;
  transport: BlockTransport;
  timers?: Timers;
  random?: () => number;
  /** Quiet time before the first repair request (the broadcast may be under way). */
  firstRepairDelayMs?: number;
  /**
   * Quiet time before the first repair request of a download that has had no
   * block yet (waiting for the broadcast); default 5 x `firstRepairDelayMs`.
   */
  broadcastWaitMs?: number;
  /** Longest wait between repair requests (the delay doubles up to it). */
  maxRepairDelayMs?: number;
  /**
   * Blocks held so far. The first call of a download comes once the block
   * topic is subscribed, so the control plane can read it as "ready for the
   * broadcast".
   */
  onProgress(bundleId: string, received: number, blockCount: number): void;
  onComplete(bundleId: string): void;
  onFailed(bundleId: string, error: ErrorReport): void;
}

interface Active {
  job: UpdateJob;
  download: Download;
  repairDelayMs: number;
  timer: unknown;
  /** Blocks held or being checked at the last repair check (`seen`). */
  lastSeen: number;
  /** Blocks being verified and written: a copy arriving meanwhile is a duplicate. */
  inFlight: Set<number>;
}

export interface BlockDownloader {
  start(job: UpdateJob): Promise<void>;
  /** A message that arrived on a bundle block topic. */
  onFrame(payload: Uint8Array): Promise<void>;
  stop(bundleId: string, discard: boolean): Promise<void>;
  stats(): {
    blocksWritten: number;
    duplicates: number;
    corrupt: number;
    malformed: number;
    requests: number;
  };
  close(): void;
}

/** Resolves after the I/O the event loop has already been told of is handled (`setImmediate` runs after the poll phase). */
function afterPendingIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export function createBlockDownloader(options: BlockDownloaderOptions): BlockDownloader {
  const timers = options.timers ?? realTimers;
  const random = options.random ?? Math.random;
  const firstRepairDelayMs = options.firstRepairDelayMs ?? 2_000;
  const maxRepairDelayMs = options.maxRepairDelayMs ?? 30_000;
  const broadcastWaitMs = options.broadcastWaitMs ?? 5 * firstRepairDelayMs;
  const active = new Map<string, Active>();
  const counters = { blocksWritten: 0, duplicates: 0, corrupt: 0, malformed: 0, requests: 0 };

  /** Delay with +-50% jitter, so a fleet that lost the same blocks does not ask at once. */
  function jittered(ms: number): number {
    return Math.round(ms * (0.5 + random()));
  }

  function schedule(entry: Active): void {
    timers.clearTimeout(entry.timer);
    entry.timer = timers.setTimeout(() => void repair(entry), jittered(entry.repairDelayMs));
  }

  /** Blocks held, plus those arrived and being checked: what a repair check counts as progress. */
  function seen(entry: Active): number {
    return entry.download.received() + entry.inFlight.size;
  }

  async function repair(entry: Active): Promise<void> {
    if (active.get(entry.job.model.bundleId) !== entry) return;
    // Timers run before the event loop reads its sockets: on a busy process,
    // blocks that came in time can still be waiting there when the quiet
    // timer fires. Judge the quiet only once they have been handled (a
    // 3,000-agent simulated fleet, CPU-bound, sent 2,591 repair requests for
    // blocks it had been sent).
    await afterPendingIo();
    if (active.get(entry.job.model.bundleId) !== entry) return;
    const now = seen(entry);
    // Fewer than before: a block under check turned out corrupt, which is no progress.
    if (now <= entry.lastSeen) {
      const missing = createBitmap(entry.job.blockCount);
      for (const index of entry.download.missing()) setBit(missing, index);
      counters.requests += 1;
      await options.transport
        .requestBlocks({
          rolloutId: entry.job.rolloutId,
          bundleId: entry.job.model.bundleId,
          blockCount: entry.job.blockCount,
          missing: bitmapToBase64(missing),
        })
        .catch(() => undefined); // offline: the next attempt (after reconnect) asks again
      entry.repairDelayMs = Math.min(entry.repairDelayMs * 2, maxRepairDelayMs);
    } else {
      entry.repairDelayMs = firstRepairDelayMs; // blocks are flowing: be patient
    }
    entry.lastSeen = now;
    schedule(entry);
  }

  async function finish(entry: Active): Promise<void> {
    const bundleId = entry.job.model.bundleId;
    if (active.get(bundleId) !== entry) return;
    timers.clearTimeout(entry.timer);
    active.delete(bundleId);
    await options.transport.unsubscribe(bundleBlocksTopic(bundleId)).catch(() => undefined);
    options.onComplete(bundleId);
  }

  async function verifyAndWrite(entry: Active, frame: BlockFrame): Promise<void> {
    const { job, download } = entry;
    const ok = await verifyBlock({
      root: job.blockRoot,
      index: frame.index,
      count: frame.count,
      data: frame.data,
      proof: frame.proof,
    });
    if (!ok) {
      counters.corrupt += 1; // stays missing: the next repair request asks for it again
      return;
    }
    try {
      await download.write(frame.index, frame.data);
    } catch {
      counters.malformed += 1; // a block of the wrong length for this transfer
      return;
    }
    counters.blocksWritten += 1;
    options.onProgress(job.model.bundleId, download.received(), job.blockCount);
    if (download.received() === job.blockCount) await finish(entry);
  }

  return {
    async start(job) {
      const bundleId = job.model.bundleId;
      if (active.has(bundleId)) return;
      const download = await options.downloads.open({
        bundleId,
        blockRoot: job.blockRoot,
        sizeBytes: job.sizeBytes,
        blockSizeBytes: job.blockSizeBytes,
        blockCount: job.blockCount,
      });
      const entry: Active = {
        job,
        download,
        repairDelayMs: firstRepairDelayMs,
        timer: null,
        // The blocks held now are not "new": a resumed download with nothing
        // arriving asks for the rest on its first (immediate) repair.
        lastSeen: download.received(),
        inFlight: new Set(),
      };
      active.set(bundleId, entry);
      if (download.received() === job.blockCount) {
        options.onProgress(bundleId, download.received(), job.blockCount);
        return finish(entry);
      }
      try {
        await options.transport.subscribe(bundleBlocksTopic(bundleId));
      } catch (error) {
        active.delete(bundleId);
        options.onFailed(bundleId, {
          code: 'DISCONNECTED',
          message: `cannot subscribe to the bundle's blocks: ${String(error)}`.slice(0, 1000),
        });
        return;
      }
      options.onProgress(bundleId, download.received(), job.blockCount);
      // Resuming with blocks in hand: ask for the rest at once rather than wait
      // for a broadcast; with none, give the broadcast its time.
      entry.repairDelayMs = download.received() > 0 ? 0 : broadcastWaitMs;
      schedule(entry);
      entry.repairDelayMs = Math.max(entry.repairDelayMs, firstRepairDelayMs);
    },

    async onFrame(payload) {
      let frame;
      try {
        frame = decodeBlockFrame(payload);
      } catch {
        counters.malformed += 1;
        return;
      }
      const entry = active.get(frame.bundleId);
      if (!entry) return; // a bundle this agent is not fetching
      const { job, download } = entry;
      if (frame.count !== job.blockCount) {
        counters.malformed += 1;
        return;
      }
      if (download.has(frame.index) || entry.inFlight.has(frame.index)) {
        counters.duplicates += 1;
        return;
      }
      entry.inFlight.add(frame.index);
      try {
        await verifyAndWrite(entry, frame);
      } finally {
        entry.inFlight.delete(frame.index);
      }
    },

    async stop(bundleId, discard) {
      const entry = active.get(bundleId);
      if (entry) {
        timers.clearTimeout(entry.timer);
        active.delete(bundleId);
        await options.transport.unsubscribe(bundleBlocksTopic(bundleId)).catch(() => undefined);
      }
      if (discard) await options.downloads.discard(bundleId);
    },

    stats: () => ({ ...counters }),

    close() {
      for (const entry of active.values()) timers.clearTimeout(entry.timer);
      active.clear();
    },
  };
}
