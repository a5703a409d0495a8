/**
 * Contract test for BoundedInflate: every implementation (web streams, fflate,
 * Node's zlib from @fleet/protocol/node) must behave the same.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deflateSync } from 'fflate';
import { isFleetError } from '../errors.ts';
import { nativeInflate, portableInflate, type BoundedInflate } from './inflate.ts';
import { nodeInflate } from '../../node/index.ts';

const implementations: Record<string, BoundedInflate> = {
  nativeInflate,
  portableInflate,
  nodeInflate, // @fleet/protocol/node
};

function sample(length: number): Uint8Array {
  const out = new Uint8Array(length);
  let s = 12345;
  for (let i = 0; i < length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out[i] = (s >>> 24) & 0x3f;
  }
  return out;
}

for (const [name, inflate] of Object.entries(implementations)) {
  describe(`${name} (BoundedInflate contract)`, () => {
    it('inflates to exactly the expected bytes', async () => {
      for (const length of [0, 1, 1000, 300_000]) {
        const data = sample(length);
        assert.deepEqual(await inflate(deflateSync(data), length), data);
      }
    });

    // Each refusal at a small and a large signed length: nodeInflate takes
    // parts up to 256 KiB on the calling thread and larger ones in the thread pool.
    it('stops a compression bomb at the signed length (THREATS 15)', async () => {
      const bomb = deflateSync(new Uint8Array(64 * 1024 * 1024)); // 64 MiB of zeros, ~64 KiB
      for (const signed of [1024, 512 * 1024]) {
        const before = process.memoryUsage().arrayBuffers;
        await assert.rejects(inflate(bomb, signed), (e) => isFleetError(e, 'PART_TOO_LARGE'));
        // The output never grew towards 64 MiB.
        assert.ok(process.memoryUsage().arrayBuffers - before < 32 * 1024 * 1024);
      }
    });

    it('refuses a stream that inflates short of the signed length', async () => {
      for (const length of [100, 300_000]) {
        await assert.rejects(inflate(deflateSync(sample(length)), length + 1), (e) =>
          isFleetError(e, 'PART_LENGTH'),
        );
      }
    });

    it('refuses a truncated stream', async () => {
      for (const length of [100_000, 600_000]) {
        const compressed = deflateSync(sample(length));
        await assert.rejects(
          inflate(compressed.subarray(0, compressed.length >> 1), length),
          (e) => isFleetError(e) && (e.code === 'MALFORMED' || e.code === 'PART_LENGTH'),
        );
      }
    });

    it('refuses bytes that are not deflate', async () => {
      const garbage = new Uint8Array(64).fill(0xff);
      await assert.rejects(inflate(garbage, 64), (e) => isFleetError(e, 'MALFORMED'));
    });
  });
}
