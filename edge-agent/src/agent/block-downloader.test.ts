/**
 * The block downloader against real protocol frames (`splitBlocks`,
 * `createBlockTree`, `encodeBlockFrame`), a fake transport and injected
 * timers: no broker, no real waits. What a device would notice: the bundle
 * ends up whole whatever order or how often blocks come, bad blocks never get
 * in, it asks for exactly what it lacks, and it does not flood the control
 * plane while blocks are flowing (THREATS 17, 25).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bitmapFromBase64,
  createBlockTree,
  encodeBlockFrame,
  hasBit,
  sha256Hex,
  splitBlocks,
  type ErrorReport,
} from '@fleet/protocol';
import { createMemoryDownloadStore } from '../adapters/memory/memory-stores.ts';
import type { DownloadStore } from '../core/storage.ts';
import { DEFAULT_PROBATION } from '../core/update-machine.ts';
import type { UpdateJob } from '../core/update-state.ts';
import {
  createBlockDownloader,
  type BlockDownloaderOptions,
  type Timers,
} from './block-downloader.ts';

const BLOCK_BYTES = 16;
const FIRST_REPAIR_MS = 1_000;
const MAX_REPAIR_MS = 4_000;

/** A transfer as the control plane would cut it: bundle, blocks, tree, and a frame per block. */
async function transfer(sizeBytes: number, seed: number) {
  const bundle = Uint8Array.from({ length: sizeBytes }, (_, i) => (i * 31 + seed * 7) & 0xff);
  const bundleId = await sha256Hex(bundle);
  const blocks = splitBlocks(bundle, BLOCK_BYTES);
  const tree = await createBlockTree(blocks);
  const frame = (index: number, patch: { data?: Uint8Array; proof?: Uint8Array[] } = {}) =>
    encodeBlockFrame({
      bundleId,
      index,
      count: blocks.length,
      proof: patch.proof ?? tree.proof(index),
      data: patch.data ?? blocks[index]!,
    });
  const job: UpdateJob = {
    rolloutId: 'r-block-downloader-test',
    commandId: 'cmd-1',
    model: { name: 'm', version: '1.0.0', release: 1, bundleId },
    sizeBytes,
    blockSizeBytes: BLOCK_BYTES,
    blockCount: blocks.length,
    blockRoot: tree.root,
    manifestEnvelope: '{}',
    phase: 'downloading',
    slot: 'b',
    startedAtMs: 0,
    deadlineMs: 600_000,
    probation: DEFAULT_PROBATION,
    probationStartedAtMs: null,
    authorizedRollback: false,
  };
  return { bundle, bundleId, blocks, tree, frame, job };
}

type Transfer = Awaited<ReturnType<typeof transfer>>;

/** Timers that run only when the test advances the clock; every requested delay is logged. */
function fakeTimers() {
  let now = 0;
  let seq = 0;
  const pending = new Map<number, { atMs: number; fn: () => void }>();
  const delays: number[] = [];
  const timers: Timers = {
    setTimeout(fn, ms) {
      delays.push(ms);
      pending.set(++seq, { atMs: now + ms, fn });
      return seq;
    },
    clearTimeout(handle) {
      pending.delete(handle as number);
    },
  };
  return {
    timers,
    delays,
    now: () => now,
    /** Moves the clock `ms` forward, firing what falls due in order, letting each settle. */
    async advance(ms: number) {
      const end = now + ms;
      for (;;) {
        let next: [number, { atMs: number; fn: () => void }] | null = null;
        for (const entry of pending) if (!next || entry[1].atMs < next[1].atMs) next = entry;
        if (!next || next[1].atMs > end) break;
        pending.delete(next[0]);
        now = next[1].atMs;
        next[1].fn();
        await settle();
      }
      now = end;
      await settle();
    },
  };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

interface Sent {
  rolloutId: string;
  bundleId: string;
  blockCount: number;
  missing: string;
}

/** Everything the downloader did to the outside world. */
function harness(
  options: Partial<Pick<BlockDownloaderOptions, 'random' | 'downloads' | 'broadcastWaitMs'>> & {
    failSubscribe?: boolean;
  } = {},
) {
  const clock = fakeTimers();
  const downloads = options.downloads ?? createMemoryDownloadStore();
  const subscribed = new Set<string>();
  const requests: Sent[] = [];
  const completed: string[] = [];
  const failed: Array<{ bundleId: string; error: ErrorReport }> = [];
  const progress: Array<[string, number, number]> = [];
  /** For each progress report: was any block topic subscribed when it was made? */
  const subscribedAtProgress: boolean[] = [];
  const downloader = createBlockDownloader({
    downloads,
    timers: clock.timers,
    random: options.random ?? (() => 0.5), // no jitter: delays are exact
    firstRepairDelayMs: FIRST_REPAIR_MS,
    // The same as the first repair delay unless a test looks at the wait for the broadcast.
    broadcastWaitMs: 'broadcastWaitMs' in options ? options.broadcastWaitMs : FIRST_REPAIR_MS,
    maxRepairDelayMs: MAX_REPAIR_MS,
    transport: {
      subscribe: (topic) =>
        options.failSubscribe
          ? Promise.reject(new Error('not connected'))
          : Promise.resolve(void subscribed.add(topic)),
      unsubscribe: (topic) => Promise.resolve(void subscribed.delete(topic)),
      requestBlocks: (request) => Promise.resolve(void requests.push(request)),
    },
    onProgress: (bundleId, received, count) => {
      progress.push([bundleId, received, count]);
      subscribedAtProgress.push(subscribed.size > 0);
    },
    onComplete: (bundleId) => completed.push(bundleId),
    onFailed: (bundleId, error) => failed.push({ bundleId, error }),
  });
  return {
    clock,
    downloads,
    downloader,
    subscribed,
    requests,
    completed,
    failed,
    progress,
    subscribedAtProgress,
  };
}

/** The block indices a request's bitmap names. */
function missingOf(request: Sent): number[] {
  const bitmap = bitmapFromBase64(request.missing, request.blockCount);
  return Array.from({ length: request.blockCount }, (_, i) => i).filter((i) => hasBit(bitmap, i));
}

async function held(downloads: DownloadStore, t: Transfer) {
  const { job } = t;
  return downloads.open({
    bundleId: job.model.bundleId,
    blockRoot: job.blockRoot,
    sizeBytes: job.sizeBytes,
    blockSizeBytes: job.blockSizeBytes,
    blockCount: job.blockCount,
  });
}

const topicOf = (t: Transfer) => `fleet/v1/bundle/${t.bundleId}/blocks`;

describe('block downloader', () => {
  it('assembles the bundle from duplicate and out-of-order blocks, writing each once', async () => {
    const t = await transfer(5 * BLOCK_BYTES - 6, 1); // 5 blocks, the last one short
    const h = harness();
    await h.downloader.start(t.job);
    assert.deepEqual([...h.subscribed], [topicOf(t)]);
    for (const index of [3, 0, 3, 4, 1, 0, 2]) await h.downloader.onFrame(t.frame(index));
    const stats = h.downloader.stats();
    assert.equal(stats.blocksWritten, 5);
    assert.equal(stats.duplicates, 2);
    assert.deepEqual(h.completed, [t.bundleId]);
    assert.equal(h.subscribed.size, 0, 'unsubscribed once every block is in');
    assert.deepEqual(await (await held(h.downloads, t)).read(), t.bundle);
    // A late copy after completion changes nothing and completes nothing again.
    await h.downloader.onFrame(t.frame(1));
    assert.deepEqual(h.downloader.stats(), stats);
    assert.deepEqual(h.completed, [t.bundleId]);
  });

  it('counts a copy arriving while the first is still being verified as a duplicate, writing once', async () => {
    const t = await transfer(3 * BLOCK_BYTES, 5);
    const h = harness();
    await h.downloader.start(t.job);
    // Both copies of block 1 start before either has been verified and written.
    await Promise.all([h.downloader.onFrame(t.frame(1)), h.downloader.onFrame(t.frame(1))]);
    assert.equal(h.downloader.stats().blocksWritten, 1);
    assert.equal(h.downloader.stats().duplicates, 1);
    for (const index of [0, 2]) await h.downloader.onFrame(t.frame(index));
    assert.deepEqual(h.completed, [t.bundleId]);
    assert.deepEqual(await (await held(h.downloads, t)).read(), t.bundle);
  });

  it('reports its first progress only once the block topic is subscribed (ready for the broadcast)', async () => {
    const t = await transfer(3 * BLOCK_BYTES, 6);
    const h = harness();
    await h.downloader.start(t.job);
    assert.deepEqual(h.progress, [[t.bundleId, 0, 3]]);
    assert.deepEqual(h.subscribedAtProgress, [true]);

    const refused = harness({ failSubscribe: true });
    await refused.downloader.start(t.job);
    assert.deepEqual(refused.progress, [], 'no "ready" report when the subscription failed');
    assert.equal(refused.failed.length, 1);
  });

  it('drops a block with bad data or a bad proof, counts it, and takes the good copy later', async () => {
    const t = await transfer(4 * BLOCK_BYTES, 2);
    const h = harness();
    await h.downloader.start(t.job);
    const flipped = t.blocks[1]!.slice();
    flipped[3]! ^= 0x01;
    await h.downloader.onFrame(t.frame(1, { data: flipped }));
    await h.downloader.onFrame(t.frame(2, { proof: t.tree.proof(3) })); // a sibling's proof
    await h.downloader.onFrame(t.frame(2, { proof: [] })); // no proof at all
    // Block 0's bytes sent as block 3 (its proof is right for index 3, the leaf is not).
    await h.downloader.onFrame(t.frame(3, { data: t.blocks[0]! }));
    assert.equal(h.downloader.stats().corrupt, 4);
    assert.equal(h.downloader.stats().blocksWritten, 0);
    const download = await held(h.downloads, t);
    assert.deepEqual(download.missing(), [0, 1, 2, 3], 'nothing corrupt was kept');
    await h.clock.advance(FIRST_REPAIR_MS);
    assert.deepEqual(
      missingOf(h.requests.at(-1)!),
      [0, 1, 2, 3],
      'the corrupt blocks are asked for',
    );
    for (const index of [0, 1, 2, 3]) await h.downloader.onFrame(t.frame(index));
    assert.deepEqual(h.completed, [t.bundleId]);
    assert.deepEqual(await download.read(), t.bundle);
  });

  it('counts malformed frames and frames of the wrong block count, and keeps nothing of them', async () => {
    const t = await transfer(3 * BLOCK_BYTES, 3);
    const h = harness();
    await h.downloader.start(t.job);
    const good = t.frame(0);
    await h.downloader.onFrame(new Uint8Array([1, 2, 3, 4, 5]));
    await h.downloader.onFrame(good.subarray(0, 40)); // cut inside its header
    const badMagic = good.slice();
    badMagic[0] = 0x58;
    await h.downloader.onFrame(badMagic);
    // Structurally fine, but it claims another block count than this transfer's.
    await h.downloader.onFrame(
      encodeBlockFrame({ bundleId: t.bundleId, index: 0, count: 4, proof: [], data: t.blocks[0]! }),
    );
    assert.deepEqual(h.downloader.stats(), {
      blocksWritten: 0,
      duplicates: 0,
      corrupt: 0,
      malformed: 4,
      requests: 0,
    });
    assert.equal((await held(h.downloads, t)).received(), 0);
  });

  it('ignores frames of a bundle it is not fetching', async () => {
    const t = await transfer(3 * BLOCK_BYTES, 4);
    const other = await transfer(3 * BLOCK_BYTES, 5);
    const h = harness();
    await h.downloader.start(t.job);
    const before = h.progress.length;
    for (const index of [0, 1, 2]) await h.downloader.onFrame(other.frame(index));
    assert.deepEqual(h.downloader.stats(), {
      blocksWritten: 0,
      duplicates: 0,
      corrupt: 0,
      malformed: 0,
      requests: 0,
    });
    assert.equal(h.progress.length, before);
    assert.deepEqual(h.completed, []);
    assert.equal((await held(h.downloads, other)).received(), 0, 'nothing of it was stored');
  });

  it('asks for the missing blocks after a quiet spell, backing off up to the cap', async () => {
    const t = await transfer(5 * BLOCK_BYTES, 6);
    const h = harness();
    await h.downloader.start(t.job);
    await h.clock.advance(FIRST_REPAIR_MS - 1);
    assert.equal(h.requests.length, 0, 'the broadcast may be under way: no request yet');
    await h.clock.advance(1);
    assert.equal(h.requests.length, 1);
    assert.deepEqual(h.requests[0], {
      rolloutId: t.job.rolloutId,
      bundleId: t.bundleId,
      blockCount: 5,
      missing: h.requests[0]!.missing,
    });
    assert.deepEqual(missingOf(h.requests[0]), [0, 1, 2, 3, 4]);
    // Nothing comes: the delay doubles, 2 s, then 4 s, then stays at the 4 s cap.
    for (const delayMs of [2_000, 4_000, 4_000]) {
      const count: number = h.requests.length;
      await h.clock.advance(delayMs - 1);
      assert.equal(h.requests.length, count, `nothing before ${delayMs} ms`);
      await h.clock.advance(1);
      assert.equal(h.requests.length, count + 1, `a request after ${delayMs} ms`);
    }
    // Two blocks arrive; the next request names only the three still missing.
    await h.downloader.onFrame(t.frame(0));
    await h.downloader.onFrame(t.frame(3));
    await h.clock.advance(MAX_REPAIR_MS + FIRST_REPAIR_MS);
    assert.deepEqual(missingOf(h.requests.at(-1)!), [1, 2, 4]);
    assert.equal(h.downloader.stats().requests, h.requests.length);
  });

  it('does not ask while blocks keep arriving, and asks once they stop', async () => {
    const t = await transfer(6 * BLOCK_BYTES, 7);
    const h = harness();
    await h.downloader.start(t.job);
    await h.downloader.onFrame(t.frame(0));
    // One block every 900 ms: each repair timer finds new blocks and waits again.
    for (const index of [1, 2, 3, 4]) {
      await h.clock.advance(900);
      await h.downloader.onFrame(t.frame(index));
    }
    await h.clock.advance(900);
    assert.equal(h.requests.length, 0, 'no request while blocks flow');
    await h.clock.advance(2 * FIRST_REPAIR_MS);
    assert.equal(h.requests.length, 1);
    assert.deepEqual(missingOf(h.requests[0]!), [5]);
  });

  it('does not ask for a block that was already waiting to be read when the quiet timer fired', async () => {
    const t = await transfer(3 * BLOCK_BYTES, 12);
    const h = harness();
    await h.downloader.start(t.job);
    // A busy process: the frame is in (queued as I/O) before the timer fires,
    // but is handled only after it, in the same turn of the event loop.
    setImmediate(() => void h.downloader.onFrame(t.frame(1)));
    await h.clock.advance(FIRST_REPAIR_MS);
    assert.equal(h.requests.length, 0, 'the waiting block was progress');
    assert.equal(h.downloader.stats().blocksWritten, 1);
    // Nothing more comes: the next quiet spell asks for exactly the rest.
    await h.clock.advance(FIRST_REPAIR_MS);
    assert.equal(h.requests.length, 1);
    assert.deepEqual(missingOf(h.requests[0]!), [0, 2]);
  });

  it('counts a corrupt block as no progress: the quiet timer still asks', async () => {
    const t = await transfer(2 * BLOCK_BYTES, 13);
    const h = harness();
    await h.downloader.start(t.job);
    const bad = t.frame(0, { data: new Uint8Array(BLOCK_BYTES).fill(9) });
    setImmediate(() => void h.downloader.onFrame(bad));
    await h.clock.advance(FIRST_REPAIR_MS);
    assert.equal(h.downloader.stats().corrupt, 1);
    assert.equal(h.requests.length, 1);
    assert.deepEqual(missingOf(h.requests[0]!), [0, 1]);
  });

  it('waits longer before its first request while no block has come (the broadcast is awaited)', async () => {
    const t = await transfer(3 * BLOCK_BYTES, 14);
    const h = harness({ broadcastWaitMs: undefined }); // the default: 5 x the first repair delay
    await h.downloader.start(t.job);
    await h.clock.advance(5 * FIRST_REPAIR_MS - 1);
    assert.equal(h.requests.length, 0, 'no block yet: the broadcast may still come');
    await h.clock.advance(1);
    assert.equal(h.requests.length, 1);
    assert.deepEqual(missingOf(h.requests[0]!), [0, 1, 2]);
    // Once blocks have come, a quiet spell is a loss: asked after the usual delay.
    await h.downloader.onFrame(t.frame(0));
    await h.clock.advance(MAX_REPAIR_MS); // the backed-off check finds block 0
    assert.equal(h.requests.length, 1, 'block 0 was progress');
    await h.clock.advance(FIRST_REPAIR_MS);
    assert.equal(h.requests.length, 2);
    assert.deepEqual(missingOf(h.requests[1]!), [1, 2]);
  });

  it('jitters each repair delay from its random source (+-50%)', async () => {
    const t = await transfer(2 * BLOCK_BYTES, 8);
    const draws = [0, 0.999, 0.25];
    const h = harness({ random: () => draws.shift() ?? 0.5 });
    await h.downloader.start(t.job);
    await h.clock.advance(30_000);
    // 1000 ms x (0.5 + 0), then 2000 ms x (0.5 + 0.999), then 4000 ms x (0.5 + 0.25), then exact.
    assert.deepEqual(h.clock.delays.slice(0, 4), [500, 2998, 3000, 4000]);
    assert.ok(h.requests.length >= 4);
  });

  it('keeps asking after a request fails while offline', async () => {
    const t = await transfer(2 * BLOCK_BYTES, 9);
    let offline = true;
    const sent: Sent[] = [];
    const clock = fakeTimers();
    const downloader = createBlockDownloader({
      downloads: createMemoryDownloadStore(),
      timers: clock.timers,
      random: () => 0.5,
      firstRepairDelayMs: FIRST_REPAIR_MS,
      broadcastWaitMs: FIRST_REPAIR_MS,
      transport: {
        subscribe: () => Promise.resolve(),
        unsubscribe: () => Promise.resolve(),
        requestBlocks: (request) =>
          offline ? Promise.reject(new Error('offline')) : Promise.resolve(void sent.push(request)),
      },
      onProgress: () => undefined,
      onComplete: () => undefined,
      onFailed: () => undefined,
    });
    await downloader.start(t.job);
    await clock.advance(FIRST_REPAIR_MS);
    assert.equal(downloader.stats().requests, 1, 'the attempt is counted');
    offline = false;
    await clock.advance(2 * FIRST_REPAIR_MS);
    assert.equal(sent.length, 1);
    assert.deepEqual(missingOf(sent[0]!), [0, 1]);
  });

  it('stop with discard deletes the partial download and stops asking', async () => {
    const t = await transfer(4 * BLOCK_BYTES, 10);
    const h = harness();
    await h.downloader.start(t.job);
    await h.downloader.onFrame(t.frame(0));
    await h.downloader.onFrame(t.frame(2));
    await h.downloader.stop(t.bundleId, true);
    assert.equal(h.subscribed.size, 0);
    assert.equal((await held(h.downloads, t)).received(), 0, 'the partial file is gone');
    await h.clock.advance(60_000);
    assert.equal(h.requests.length, 0, 'no request after stop');
    await h.downloader.onFrame(t.frame(1));
    assert.equal(h.downloader.stats().blocksWritten, 2, 'frames after stop are not written');
  });

  it('stop without discard keeps the blocks held for a later resume', async () => {
    const t = await transfer(4 * BLOCK_BYTES, 11);
    const h = harness();
    await h.downloader.start(t.job);
    await h.downloader.onFrame(t.frame(1));
    await h.downloader.stop(t.bundleId, false);
    assert.deepEqual((await held(h.downloads, t)).missing(), [0, 2, 3]);
  });

  it('resuming a download with blocks held asks for the rest at once', async () => {
    const t = await transfer(5 * BLOCK_BYTES, 12);
    const downloads = createMemoryDownloadStore();
    const earlier = await held(downloads, t);
    await earlier.write(0, t.blocks[0]!);
    await earlier.write(3, t.blocks[3]!);
    const h = harness({ downloads });
    await h.downloader.start(t.job);
    assert.deepEqual(h.progress[0], [t.bundleId, 2, 5], 'progress starts from the blocks held');
    await h.clock.advance(0);
    assert.equal(h.requests.length, 1, 'asked without waiting for a broadcast');
    assert.deepEqual(missingOf(h.requests[0]!), [1, 2, 4]);
    for (const index of [0, 1, 2, 3, 4]) await h.downloader.onFrame(t.frame(index));
    assert.equal(h.downloader.stats().blocksWritten, 3, 'only the missing blocks were written');
    assert.equal(h.downloader.stats().duplicates, 2);
    assert.deepEqual(h.completed, [t.bundleId]);
    assert.deepEqual(await (await held(downloads, t)).read(), t.bundle);
  });

  it('completes at once, without subscribing, when every block is already held', async () => {
    const t = await transfer(2 * BLOCK_BYTES, 13);
    const downloads = createMemoryDownloadStore();
    const earlier = await held(downloads, t);
    for (const [i, block] of t.blocks.entries()) await earlier.write(i, block);
    const h = harness({ downloads });
    await h.downloader.start(t.job);
    assert.deepEqual(h.completed, [t.bundleId]);
    assert.equal(h.subscribed.size, 0);
    await h.clock.advance(60_000);
    assert.equal(h.requests.length, 0);
  });

  it('reports DISCONNECTED when it cannot subscribe to the blocks', async () => {
    const t = await transfer(2 * BLOCK_BYTES, 14);
    const h = harness({ failSubscribe: true });
    await h.downloader.start(t.job);
    assert.equal(h.failed.length, 1);
    assert.equal(h.failed[0]!.error.code, 'DISCONNECTED');
    assert.match(h.failed[0]!.error.message, /not connected/);
    await h.clock.advance(60_000);
    assert.equal(h.requests.length, 0, 'a failed download does not ask for blocks');
  });
});
