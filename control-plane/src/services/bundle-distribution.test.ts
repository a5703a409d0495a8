/**
 * Bundle distribution against a memory blob store and a recording publisher:
 * the plan an agent downloads against, the broadcast it receives (every frame
 * passes the agent's own `verifyBlock`), coalesced repairs (broadcast when
 * many asked, sent to each asker alone when few did), the per-device
 * repair rate limit, and refusals of bad requests that change nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bitmapToBase64,
  bundleBlocksTopic,
  createBitmap,
  createBlockTree,
  decodeBlockFrame,
  deviceTopic,
  isFleetError,
  setBit,
  splitBlocks,
  verifyBlock,
  type BlockFrame,
} from '@fleet/protocol';
import { createMemoryBlobStore } from '../adapters/blob/memory-blob-store.ts';
import { createBundleDistribution } from './bundle-distribution.ts';

const BLOCK_BYTES = 100;
const MIN_REPAIR_INTERVAL_MS = 1_000;
const HOLD_OFF_MS = 5_000;

async function setup(
  options: {
    sizeBytes?: number;
    repairWindowMs?: number;
    repairBroadcastMin?: number;
    rebroadcastHoldOffMs?: number;
  } = {},
) {
  const blobs = createMemoryBlobStore();
  const sizeBytes = options.sizeBytes ?? 9 * BLOCK_BYTES + 37; // 10 blocks, the last short
  const bundle = Uint8Array.from({ length: sizeBytes }, (_, i) => (i * 131 + 17) & 0xff);
  const bundleId = await blobs.put(bundle);
  const published: Array<{ topic: string; frame: BlockFrame }> = [];
  const clock = { nowMs: 1_000_000 };
  const distribution = createBundleDistribution({
    blobs,
    nowMs: () => clock.nowMs,
    blockSizeBytes: BLOCK_BYTES,
    // Long by default: the tests flush by hand unless they test the timer.
    repairWindowMs: options.repairWindowMs ?? 60_000,
    minRepairIntervalMs: MIN_REPAIR_INTERVAL_MS,
    // One asker is enough to broadcast, unless a test looks at direct repairs.
    repairBroadcastMin: options.repairBroadcastMin ?? 1,
    rebroadcastHoldOffMs: options.rebroadcastHoldOffMs ?? HOLD_OFF_MS,
    publish: (topic, payload) => {
      published.push({ topic, frame: decodeBlockFrame(payload) });
      return Promise.resolve();
    },
  });
  return { blobs, bundle, bundleId, published, clock, distribution };
}

function bitmapOf(count: number, indices: number[]): string {
  const bitmap = createBitmap(count);
  for (const i of indices) setBit(bitmap, i);
  return bitmapToBase64(bitmap);
}

const indicesOf = (published: Array<{ frame: BlockFrame }>) => published.map((p) => p.frame.index);

async function refusal(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isFleetError(error), `a FleetError, not ${String(error)}`);
    return { code: error.code, message: error.message };
  }
  assert.fail('expected a refusal');
}

describe('bundle distribution', () => {
  it('plans the transfer: sizes, block count and the Merkle root of the blocks', async () => {
    const { bundle, bundleId, distribution } = await setup();
    const plan = await distribution.plan(bundleId);
    const expectedRoot = (await createBlockTree(splitBlocks(bundle, BLOCK_BYTES))).root;
    assert.deepEqual(plan, {
      bundleId,
      sizeBytes: bundle.length,
      blockSizeBytes: BLOCK_BYTES,
      blockCount: 10,
      blockRoot: expectedRoot,
    });
  });

  it('broadcasts each block once, and every frame passes the agent’s check against the plan', async () => {
    const { bundle, bundleId, published, distribution } = await setup();
    const plan = await distribution.plan(bundleId);
    await distribution.broadcast(bundleId);
    assert.deepEqual(indicesOf(published), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const joined = new Uint8Array(bundle.length);
    for (const { topic, frame } of published) {
      assert.equal(topic, bundleBlocksTopic(bundleId));
      assert.equal(frame.bundleId, bundleId);
      assert.equal(frame.count, plan.blockCount);
      assert.ok(
        await verifyBlock({ root: plan.blockRoot, ...frame }),
        `block ${frame.index} verifies against the deploy's root`,
      );
      joined.set(frame.data, frame.index * plan.blockSizeBytes);
    }
    assert.deepEqual(joined, bundle, 'the blocks are the bundle, in place');
    const stats = distribution.stats();
    assert.equal(stats.blocksSent, 10);
    assert.ok(stats.bytesSent > bundle.length, 'bytes sent count the frames, headers included');
  });

  it('a bundle of one block is one frame without proof hashes', async () => {
    const { bundle, bundleId, published, distribution } = await setup({ sizeBytes: 40 });
    const plan = await distribution.plan(bundleId);
    assert.equal(plan.blockCount, 1);
    await distribution.broadcast(bundleId);
    assert.equal(published.length, 1);
    assert.deepEqual(published[0]!.frame.proof, []);
    assert.deepEqual(published[0]!.frame.data, bundle);
    assert.ok(await verifyBlock({ root: plan.blockRoot, ...published[0]!.frame }));
  });

  it('coalesces repair requests within the window into one send of the union', async () => {
    const { bundleId, published, distribution } = await setup();
    await distribution.requestRepair('dev-a', {
      bundleId,
      blockCount: 10,
      missing: bitmapOf(10, [7, 1, 3]),
    });
    await distribution.requestRepair('dev-b', {
      bundleId,
      blockCount: 10,
      missing: bitmapOf(10, [3, 4]),
    });
    await distribution.requestRepair('dev-c', {
      bundleId,
      blockCount: 10,
      missing: bitmapOf(10, [1]),
    });
    assert.equal(published.length, 0, 'nothing goes before the window closes');
    await distribution.flushRepairs();
    assert.deepEqual(indicesOf(published), [1, 3, 4, 7], 'the union, each block once, in order');
    await distribution.flushRepairs();
    assert.equal(published.length, 4, 'a flush with nothing pending sends nothing');
    assert.equal(distribution.stats().repairRequests, 3);
  });

  it('broadcasts a block many devices asked for, and sends the rest to each asker alone', async () => {
    const { bundleId, published, distribution } = await setup({ repairBroadcastMin: 2 });
    const ask = (deviceId: string, indices: number[]) =>
      distribution.requestRepair(deviceId, {
        bundleId,
        blockCount: 10,
        missing: bitmapOf(10, indices),
      });
    await ask('dev-a', [7, 1, 3]);
    await ask('dev-b', [3, 4]);
    await ask('dev-c', [1]);
    await distribution.flushRepairs();
    const sent = published.map((p) => `${p.topic} ${p.frame.index}`);
    assert.deepEqual(sent, [
      `${bundleBlocksTopic(bundleId)} 1`, // a and c
      `${bundleBlocksTopic(bundleId)} 3`, // a and b
      `${deviceTopic('dev-b', 'blocks')} 4`,
      `${deviceTopic('dev-a', 'blocks')} 7`,
    ]);
    for (const { frame } of published) assert.equal(frame.bundleId, bundleId);
    const stats = distribution.stats();
    assert.equal(stats.blocksSent, 4);
    assert.equal(stats.blocksSentDirect, 2);
  });

  it('re-broadcasts nothing for requests made while the broadcast is due, and still sends a lone asker its blocks', async () => {
    const { bundleId, published, clock, distribution } = await setup({ repairBroadcastMin: 2 });
    const early = (deviceId: string, indices: number[], blockCount = 10) =>
      distribution.requestRepair(
        deviceId,
        { bundleId, blockCount, missing: bitmapOf(blockCount, indices) },
        { broadcastDue: true },
      );
    for (const deviceId of ['dev-a', 'dev-b', 'dev-c']) await early(deviceId, [0, 1, 2]);
    await early('dev-d', [7]);
    await assert.rejects(early('dev-e', [1], 9), (e) => isFleetError(e, 'INVALID_REQUEST'));
    await distribution.flushRepairs();
    assert.deepEqual(
      published.map((p) => `${p.topic} ${p.frame.index}`),
      [`${deviceTopic('dev-d', 'blocks')} 7`],
      'blocks 0-2 come with the broadcast; 7, asked for by one, goes to it at once',
    );
    assert.equal(distribution.stats().repairsBeforeBroadcast, 9, 'three askers of three blocks');
    // With no broadcast due, the same requests are repaired as usual.
    published.length = 0;
    clock.nowMs += MIN_REPAIR_INTERVAL_MS;
    for (const deviceId of ['dev-a', 'dev-b']) {
      await distribution.requestRepair(deviceId, {
        bundleId,
        blockCount: 10,
        missing: bitmapOf(10, [1]),
      });
    }
    await distribution.flushRepairs();
    assert.deepEqual(
      published.map((p) => `${p.topic} ${p.frame.index}`),
      [`${bundleBlocksTopic(bundleId)} 1`],
    );
  });

  it('broadcasts a block a device asks for again after it was sent to it alone', async () => {
    const { bundleId, published, clock, distribution } = await setup({ repairBroadcastMin: 8 });
    const ask = (indices: number[]) =>
      distribution.requestRepair('dev-a', {
        bundleId,
        blockCount: 10,
        missing: bitmapOf(10, indices),
      });
    await ask([2, 5]);
    await distribution.flushRepairs();
    clock.nowMs += MIN_REPAIR_INTERVAL_MS;
    await ask([5, 6]); // 5 did not arrive on its own topic; 6 is new
    await distribution.flushRepairs();
    assert.deepEqual(
      published.map((p) => `${p.topic} ${p.frame.index}`),
      [
        `${deviceTopic('dev-a', 'blocks')} 2`,
        `${deviceTopic('dev-a', 'blocks')} 5`,
        `${bundleBlocksTopic(bundleId)} 5`,
        `${deviceTopic('dev-a', 'blocks')} 6`,
      ],
    );
  });

  it('does not broadcast a block again within the hold-off; its askers are held and counted', async () => {
    const { bundleId, published, clock, distribution } = await setup({ repairBroadcastMin: 2 });
    const ask = (deviceId: string, indices: number[]) =>
      distribution.requestRepair(deviceId, {
        bundleId,
        blockCount: 10,
        missing: bitmapOf(10, indices),
      });
    const sent = () => published.map((p) => `${p.topic} ${p.frame.index}`);
    await distribution.broadcast(bundleId);
    assert.equal(published.length, 10);
    published.length = 0;

    // Busy agents ask for blocks still in their socket buffers.
    clock.nowMs += HOLD_OFF_MS - 1;
    await ask('dev-a', [2, 3]);
    await ask('dev-b', [2, 3]);
    await ask('dev-c', [3]);
    await ask('dev-d', [4]); // alone: a direct repair is never held
    await distribution.flushRepairs();
    assert.deepEqual(sent(), [`${deviceTopic('dev-d', 'blocks')} 4`]);
    assert.equal(distribution.stats().repairsHeld, 5, 'two askers of block 2, three of block 3');

    // Past the hold-off, agents still missing a block get it broadcast again.
    clock.nowMs += MIN_REPAIR_INTERVAL_MS;
    published.length = 0;
    await ask('dev-a', [3]);
    await ask('dev-c', [3]);
    await distribution.flushRepairs();
    assert.deepEqual(sent(), [`${bundleBlocksTopic(bundleId)} 3`]);

    // That repair broadcast starts a hold-off of its own; block 2's has passed.
    clock.nowMs += MIN_REPAIR_INTERVAL_MS;
    published.length = 0;
    await ask('dev-a', [2, 3]);
    await ask('dev-b', [2, 3]);
    await distribution.flushRepairs();
    assert.deepEqual(sent(), [`${bundleBlocksTopic(bundleId)} 2`]);
    assert.equal(distribution.stats().repairsHeld, 7);
  });

  it('sends pending repairs on its own when the window closes', async () => {
    const { bundleId, published, distribution } = await setup({ repairWindowMs: 20 });
    await distribution.requestRepair('dev-a', {
      bundleId,
      blockCount: 10,
      missing: bitmapOf(10, [9]),
    });
    const deadline = Date.now() + 5_000;
    while (published.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.deepEqual(indicesOf(published), [9]);
    await distribution.close();
  });

  it('ignores and counts a device asking again within minRepairIntervalMs', async () => {
    const { bundleId, published, clock, distribution } = await setup();
    const ask = (indices: number[]) =>
      distribution.requestRepair('dev-a', {
        bundleId,
        blockCount: 10,
        missing: bitmapOf(10, indices),
      });
    await ask([0]);
    clock.nowMs += MIN_REPAIR_INTERVAL_MS - 1;
    await ask([5]);
    await distribution.flushRepairs();
    assert.deepEqual(indicesOf(published), [0], 'the second request was ignored');
    assert.equal(distribution.stats().repairsIgnored, 1);
    clock.nowMs += 1;
    await ask([5]);
    await distribution.flushRepairs();
    assert.deepEqual(indicesOf(published), [0, 5], 'asked again after the interval, it is served');
    assert.equal(distribution.stats().repairsIgnored, 1);
  });

  it('serves one of a device’s concurrent requests and ignores the rest', async () => {
    const { bundleId, published, distribution } = await setup();
    await Promise.all(
      [[1], [2], [3]].map((indices) =>
        distribution.requestRepair('dev-a', {
          bundleId,
          blockCount: 10,
          missing: bitmapOf(10, indices),
        }),
      ),
    );
    await distribution.flushRepairs();
    assert.deepEqual(indicesOf(published), [1]);
    assert.equal(distribution.stats().repairsIgnored, 2);
  });

  it('refuses a request naming another block count, clearly, and changes nothing', async () => {
    const { bundleId, published, distribution } = await setup();
    const refused = await refusal(
      distribution.requestRepair('dev-a', {
        bundleId,
        blockCount: 11,
        missing: bitmapOf(11, [0, 10]),
      }),
    );
    assert.equal(refused.code, 'INVALID_REQUEST');
    assert.match(refused.message, /11 blocks.*has 10/);
    await distribution.flushRepairs();
    assert.equal(published.length, 0, 'nothing was queued');
    // The refused request did not use up the device's repair allowance.
    await distribution.requestRepair('dev-a', {
      bundleId,
      blockCount: 10,
      missing: bitmapOf(10, [2]),
    });
    await distribution.flushRepairs();
    assert.deepEqual(indicesOf(published), [2]);
    assert.equal(distribution.stats().repairsIgnored, 0);
  });

  it('refuses a malformed bitmap, clearly, and changes nothing', async () => {
    const { bundleId, published, distribution } = await setup();
    const cases = [
      { missing: 'AAAAAA==', why: /base64 characters/ }, // 4 bytes for a 2-byte bitmap
      { missing: bitmapOf(16, [12]), why: /past block 9/ }, // a bit past the last block
      { missing: '', why: /base64 characters/ },
    ];
    for (const { missing, why } of cases) {
      const refused = await refusal(
        distribution.requestRepair('dev-a', { bundleId, blockCount: 10, missing }),
      );
      assert.equal(refused.code, 'MALFORMED', missing);
      assert.match(refused.message, why);
    }
    await distribution.flushRepairs();
    assert.equal(published.length, 0);
    await distribution.requestRepair('dev-a', {
      bundleId,
      blockCount: 10,
      missing: bitmapOf(10, [4]),
    });
    await distribution.flushRepairs();
    assert.deepEqual(indicesOf(published), [4], 'the device may still ask, at once');
  });

  it('answers NOT_FOUND for a bundle not in the blob store, and sends nothing', async () => {
    const { bundleId, published, distribution } = await setup();
    const unknown = 'ab'.repeat(32);
    for (const attempt of [
      () => distribution.plan(unknown),
      () => distribution.broadcast(unknown),
      () =>
        distribution.requestRepair('dev-a', {
          bundleId: unknown,
          blockCount: 10,
          missing: bitmapOf(10, [0]),
        }),
    ]) {
      const refused = await refusal(attempt());
      assert.equal(refused.code, 'NOT_FOUND');
      assert.match(refused.message, new RegExp(unknown));
    }
    await distribution.flushRepairs();
    assert.equal(published.length, 0);
    await distribution.requestRepair('dev-a', {
      bundleId,
      blockCount: 10,
      missing: bitmapOf(10, [6]),
    });
    await distribution.flushRepairs();
    assert.deepEqual(indicesOf(published), [6], 'the known bundle is still served to the device');
  });
});
