import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isFleetError } from '../errors.ts';
import { concatBytes, fromUtf8, toHex } from '../encoding/bytes.ts';
import { sha256 } from '../crypto/sha256.ts';
import { MAX_BLOCK_BYTES, MAX_BLOCK_COUNT } from '../messages/common.ts';
import {
  FRAME_HEADER_BYTES,
  MAX_BLOCK_FRAME_BYTES,
  MAX_PROOF_HASHES,
  createBlockTree,
  decodeBlockFrame,
  encodeBlockFrame,
  proofLength,
  splitBlocks,
  verifyBlock,
  type BlockFrame,
} from './blocks.ts';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';

const BUNDLE_ID = '5e'.repeat(32);

/** Deterministic, non-repeating bytes. */
function sampleBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function u32be(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

// RFC 6962 section 2.1, written out recursively as the RFC states it, with
// this protocol's leaf (the index bound in), to check the bottom-up tree against.
const leafHash = (i: number, data: Uint8Array) =>
  sha256(concatBytes(Uint8Array.of(0), u32be(i), data));
const nodeHash = (l: Uint8Array, r: Uint8Array) => sha256(concatBytes(Uint8Array.of(1), l, r));
const split = (n: number) => 2 ** Math.ceil(Math.log2(n) - 1); // largest power of two < n

async function referenceRoot(leaves: Uint8Array[]): Promise<Uint8Array> {
  if (leaves.length === 1) return leaves[0]!;
  const k = split(leaves.length);
  return nodeHash(await referenceRoot(leaves.slice(0, k)), await referenceRoot(leaves.slice(k)));
}

async function referencePath(m: number, leaves: Uint8Array[]): Promise<Uint8Array[]> {
  if (leaves.length === 1) return [];
  const k = split(leaves.length);
  return m < k
    ? [...(await referencePath(m, leaves.slice(0, k))), await referenceRoot(leaves.slice(k))]
    : [...(await referencePath(m - k, leaves.slice(k))), await referenceRoot(leaves.slice(0, k))];
}

function frame(overrides: Partial<BlockFrame> = {}): BlockFrame {
  return {
    bundleId: BUNDLE_ID,
    index: 5,
    count: 7,
    proof: [sampleBytes(32, 2), sampleBytes(32, 3), sampleBytes(32, 4)],
    data: sampleBytes(1000, 5),
    ...overrides,
  };
}

describe('splitBlocks', () => {
  it('cuts into full blocks and a shorter last one, as views of the bundle', () => {
    const bundle = sampleBytes(10);
    const blocks = splitBlocks(bundle, 4);
    assert.deepEqual(
      blocks.map((b) => [...b]),
      [[...bundle.subarray(0, 4)], [...bundle.subarray(4, 8)], [...bundle.subarray(8)]],
    );
    assert.ok(
      blocks.every((b) => b.buffer === bundle.buffer),
      'views, not copies',
    );
    assert.equal(splitBlocks(bundle, 5).length, 2);
    assert.equal(splitBlocks(bundle, MAX_BLOCK_BYTES).length, 1);
    assert.equal(splitBlocks(bundle, 1).length, 10);
  });

  it('refuses a block size outside 1..MAX_BLOCK_BYTES, and an empty bundle', () => {
    for (const size of [0, -1, 1.5, MAX_BLOCK_BYTES + 1, NaN]) {
      refused(() => splitBlocks(sampleBytes(10), size), 'MALFORMED', /a block size is an integer/);
    }
    refused(() => splitBlocks(new Uint8Array(0), 4), 'MALFORMED', /empty bundle/);
  });

  it('refuses a bundle that would need more than MAX_BLOCK_COUNT blocks', () => {
    const bundle = new Uint8Array(MAX_BLOCK_COUNT + 1);
    refused(() => splitBlocks(bundle, 1), 'TOO_LARGE', /262145 blocks, the cap is 262144/);
    assert.equal(splitBlocks(bundle.subarray(1), 1).length, MAX_BLOCK_COUNT);
  });
});

describe('block tree', () => {
  it("is RFC 6962's tree (split at the largest power of two below n) for 1 to 40 blocks", async () => {
    for (let n = 1; n <= 40; n++) {
      const blocks = Array.from({ length: n }, (_, i) => sampleBytes(1 + (i % 5), i));
      const leaves = await Promise.all(blocks.map((b, i) => leafHash(i, b)));
      const tree = await createBlockTree(blocks);
      assert.equal(tree.root, toHex(await referenceRoot(leaves)), `root of ${n}`);
      assert.equal(tree.count, n);
      for (let m = 0; m < n; m++) {
        const expected = await referencePath(m, leaves);
        assert.deepEqual(tree.proof(m).map(toHex), expected.map(toHex), `path ${m} of ${n}`);
        assert.equal(proofLength(m, n), expected.length, `proofLength(${m}, ${n})`);
      }
    }
  });

  it('has the leaf hash as root, and an empty proof, for one block', async () => {
    const block = sampleBytes(100);
    const tree = await createBlockTree([block]);
    assert.equal(tree.root, toHex(await leafHash(0, block)));
    assert.deepEqual(tree.proof(0), []);
  });

  it('binds the index into each leaf: the same bytes at two positions hash apart', async () => {
    const same = sampleBytes(8);
    const tree = await createBlockTree([same, same]);
    assert.notEqual(toHex(await leafHash(0, same)), toHex(await leafHash(1, same)));
    // Block 0's bytes with block 0's proof do not pass as block 1.
    const proof = tree.proof(0);
    const ok = (index: number) =>
      verifyBlock({ root: tree.root, index, count: 2, data: same, proof });
    assert.equal(await ok(0), true);
    assert.equal(await ok(1), false);
  });

  it('hands out proof copies, so a caller cannot corrupt the tree', async () => {
    const tree = await createBlockTree([sampleBytes(4, 1), sampleBytes(4, 2)]);
    tree.proof(0)[0]!.fill(0);
    assert.notDeepEqual([...tree.proof(0)[0]!], new Array(32).fill(0));
  });

  it('refuses no blocks, an empty or oversize block, and a proof index out of range', async () => {
    await assert.rejects(createBlockTree([]), (e) => isFleetError(e, 'MALFORMED'));
    await assert.rejects(
      createBlockTree([sampleBytes(4), new Uint8Array(0)]),
      (e: unknown) => isFleetError(e, 'MALFORMED') && /block 1 is empty/.test(e.message),
    );
    await assert.rejects(createBlockTree([new Uint8Array(MAX_BLOCK_BYTES + 1)]), (e: unknown) =>
      isFleetError(e, 'TOO_LARGE'),
    );
    const tree = await createBlockTree([sampleBytes(4)]);
    refused(() => tree.proof(1), 'MALFORMED', /block 1 is not in a tree of 1 blocks/);
    refused(() => tree.proof(-1), 'MALFORMED');
  });

  it('builds the tree of a 20 MB bundle in 64 KiB blocks quickly', async () => {
    const bundle = sampleBytes(20 * 1024 * 1024);
    const started = performance.now();
    const tree = await createBlockTree(splitBlocks(bundle, MAX_BLOCK_BYTES));
    const elapsedMs = performance.now() - started;
    assert.equal(tree.count, 320);
    // About 80 ms on a 2-core development machine; the bound leaves room for slow CI.
    assert.ok(elapsedMs < 3_000, `${elapsedMs.toFixed(0)} ms`);
    assert.equal(
      await verifyBlock({
        root: tree.root,
        index: 319,
        count: 320,
        data: splitBlocks(bundle, MAX_BLOCK_BYTES)[319]!,
        proof: tree.proof(319),
      }),
      true,
    );
  });
});

describe('verifyBlock', () => {
  const blocks = Array.from({ length: 11 }, (_, i) => sampleBytes(64, i + 100));

  it('accepts every block of the tree with its proof', async () => {
    const tree = await createBlockTree(blocks);
    for (const [index, data] of blocks.entries()) {
      const proof = tree.proof(index);
      assert.equal(await verifyBlock({ root: tree.root, index, count: 11, data, proof }), true);
    }
  });

  it('returns false for a flipped bit anywhere: data, proof or root', async () => {
    const tree = await createBlockTree(blocks);
    const good = { root: tree.root, index: 6, count: 11, data: blocks[6]!, proof: tree.proof(6) };
    assert.equal(await verifyBlock(good), true);
    const data = good.data.slice();
    data[63]! ^= 0x80;
    assert.equal(await verifyBlock({ ...good, data }), false);
    for (let level = 0; level < good.proof.length; level++) {
      const proof = good.proof.map((h) => h.slice());
      proof[level]![0]! ^= 0x01;
      assert.equal(await verifyBlock({ ...good, proof }), false, `proof hash ${level}`);
    }
    const root = (tree.root[0] === '0' ? '1' : '0') + tree.root.slice(1);
    assert.equal(await verifyBlock({ ...good, root }), false);
  });

  it('returns false, without throwing, for malformed checks', async () => {
    const tree = await createBlockTree(blocks);
    const good = {
      root: tree.root,
      index: 10,
      count: 11,
      data: blocks[10]!,
      proof: tree.proof(10),
    };
    const cases = [
      { proof: [...good.proof, good.proof[0]!] }, // one hash too many
      { proof: good.proof.slice(1) }, // one too few
      { proof: [good.proof[0]!.subarray(0, 31), ...good.proof.slice(1)] }, // a short hash
      { proof: [] },
      { root: tree.root.toUpperCase() },
      { root: 'zz' },
      { count: 12 }, // the same proof under another tree shape
      { count: 10 },
      { index: 11 },
      { index: -1 },
      { index: 1.5 },
      { count: MAX_BLOCK_COUNT + 1 },
      { count: 0 },
      { data: new Uint8Array(0) },
      { data: new Uint8Array(MAX_BLOCK_BYTES + 1) },
    ];
    for (const change of cases) {
      assert.equal(await verifyBlock({ ...good, ...change }), false, JSON.stringify(change));
    }
  });

  it('accepts the last block of a tree whose last leaf moves up several levels', async () => {
    // 9 leaves: leaf 8 has no sibling until the top, so its proof is one hash.
    const nine = blocks.slice(0, 9);
    const tree = await createBlockTree(nine);
    assert.equal(tree.proof(8).length, 1);
    assert.equal(proofLength(8, 9), 1);
    const check = { root: tree.root, index: 8, count: 9, data: nine[8]!, proof: tree.proof(8) };
    assert.equal(await verifyBlock(check), true);
  });

  it('needs at most 18 proof hashes for MAX_BLOCK_COUNT blocks', () => {
    assert.equal(proofLength(0, MAX_BLOCK_COUNT), 18);
    assert.equal(proofLength(MAX_BLOCK_COUNT - 1, MAX_BLOCK_COUNT), 18);
    assert.equal(proofLength(MAX_BLOCK_COUNT - 1, MAX_BLOCK_COUNT - 1), 18);
    assert.ok(18 <= MAX_PROOF_HASHES);
  });
});

describe('block frames', () => {
  it('lay out magic, bundle id, index, count, proof count, proof, data', () => {
    const f = frame();
    const bytes = encodeBlockFrame(f);
    assert.equal(FRAME_HEADER_BYTES, 45);
    assert.equal(bytes.length, 45 + 3 * 32 + 1000);
    assert.equal(fromUtf8(bytes.subarray(0, 4)), 'FLB1');
    assert.equal(toHex(bytes.subarray(4, 36)), BUNDLE_ID);
    assert.deepEqual([...bytes.subarray(36, 45)], [0, 0, 0, 5, 0, 0, 0, 7, 3]);
    assert.deepEqual(bytes.subarray(45, 77), f.proof[0]);
    assert.deepEqual(bytes.subarray(141), f.data);
  });

  it('round-trip through decode, with proof and data as views', () => {
    const bytes = encodeBlockFrame(frame());
    const decoded = decodeBlockFrame(bytes);
    assert.deepEqual(
      { ...decoded, proof: decoded.proof.map(toHex), data: toHex(decoded.data) },
      { ...frame(), proof: frame().proof.map(toHex), data: toHex(frame().data) },
    );
    assert.equal(decoded.data.buffer, bytes.buffer);
    const atOffset = new Uint8Array(bytes.length + 3);
    atOffset.set(bytes, 3);
    assert.equal(decodeBlockFrame(atOffset.subarray(3)).index, 5);
  });

  it('carry a real block and proof that verify after decoding', async () => {
    const blocks = splitBlocks(sampleBytes(5000), 1024);
    const tree = await createBlockTree(blocks);
    for (const [index, data] of blocks.entries()) {
      const bytes = encodeBlockFrame({
        bundleId: BUNDLE_ID,
        index,
        count: 5,
        proof: tree.proof(index),
        data,
      });
      const decoded = decodeBlockFrame(bytes);
      assert.equal(await verifyBlock({ root: tree.root, ...decoded }), true);
    }
  });

  it('accept a frame of exactly MAX_BLOCK_FRAME_BYTES and refuse one byte more', () => {
    const proof = Array.from({ length: MAX_PROOF_HASHES }, (_, i) => sampleBytes(32, i));
    const largest = encodeBlockFrame(frame({ proof, data: new Uint8Array(MAX_BLOCK_BYTES) }));
    assert.equal(largest.length, MAX_BLOCK_FRAME_BYTES);
    assert.equal(MAX_BLOCK_FRAME_BYTES, 66_605);
    assert.equal(decodeBlockFrame(largest).data.length, MAX_BLOCK_BYTES);
    const over = concatBytes(largest, Uint8Array.of(0));
    refused(() => decodeBlockFrame(over), 'TOO_LARGE', /66606 bytes, the cap is 66605/);
  });

  it('refuse each structural fault, naming it', () => {
    const good = encodeBlockFrame(frame());
    const edited = (edit: (b: Uint8Array, v: DataView) => void) => {
      const b = good.slice();
      edit(b, new DataView(b.buffer));
      return b;
    };
    const cases: [Uint8Array, string, RegExp][] = [
      [good.subarray(0, 44), 'TRUNCATED', /44 bytes, shorter than its 45-byte header/],
      [new Uint8Array(0), 'TRUNCATED', /0 bytes/],
      [edited((b) => (b[3] = 0x32)), 'MALFORMED', /bad magic/],
      [edited((_, v) => v.setUint32(36, 7)), 'MALFORMED', /index 7 is not below its count 7/],
      [edited((_, v) => v.setUint32(40, 0)), 'MALFORMED', /index 5 is not below its count 0/],
      [
        edited((_, v) => v.setUint32(40, MAX_BLOCK_COUNT + 1)),
        'MALFORMED',
        /count 262145 is above the cap of 262144 blocks/,
      ],
      [edited((b) => (b[44] = 33)), 'MALFORMED', /33 proof hashes, at most 32/],
      [
        edited((b) => (b[44] = 32)).subarray(0, 45 + 31 * 32),
        'TRUNCATED',
        /ends inside its 32 proof hashes \(1037 of 1069 bytes\)/,
      ],
      [good.subarray(0, 45 + 3 * 32), 'MALFORMED', /block frame 5 data is empty/],
      [
        concatBytes(good.subarray(0, 45), new Uint8Array(MAX_BLOCK_BYTES + 1)).map((b, i) =>
          i === 44 ? 0 : b,
        ),
        'TOO_LARGE',
        /data is 65537 bytes, the cap is 65536/,
      ],
    ];
    for (const [bytes, code, message] of cases)
      refused(() => decodeBlockFrame(bytes), code, message);
  });

  it('refuse to encode what a receiver would refuse', () => {
    const cases: [Partial<BlockFrame>, string, RegExp][] = [
      [{ bundleId: 'AB'.repeat(32) }, 'MALFORMED', /bundle id/],
      [{ bundleId: 'ab' }, 'MALFORMED', /bundle id/],
      [{ index: 7 }, 'MALFORMED', /index 7 is not below the block count 7/],
      [{ index: -1 }, 'MALFORMED', /index -1/],
      [{ count: MAX_BLOCK_COUNT + 1, index: 0 }, 'MALFORMED', /block count 262145/],
      [{ proof: Array.from({ length: 33 }, () => new Uint8Array(32)) }, 'MALFORMED', /33 hashes/],
      [{ proof: [new Uint8Array(31)] }, 'MALFORMED', /32 bytes/],
      [{ data: new Uint8Array(0) }, 'MALFORMED', /block 5 is empty/],
      [{ data: new Uint8Array(MAX_BLOCK_BYTES + 1) }, 'TOO_LARGE', /65537 bytes/],
    ];
    for (const [change, code, message] of cases) {
      refused(() => encodeBlockFrame(frame(change)), code, message);
    }
  });

  it('decode only ever returns a frame or throws a FleetError (fuzz)', () => {
    const valid = encodeBlockFrame(frame());
    const expectFleetErrorOrFrame = (bytes: Uint8Array) => {
      let decoded: BlockFrame;
      try {
        decoded = decodeBlockFrame(bytes);
      } catch (e) {
        assert.ok(isFleetError(e), `not a FleetError: ${String(e)}`);
        assert.ok(['MALFORMED', 'TOO_LARGE', 'TRUNCATED'].includes(e.code), e.code);
        return;
      }
      // What decodes re-encodes to the same bytes: the layout has one encoding.
      assert.deepEqual(encodeBlockFrame(decoded), bytes);
    };
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          // valid frames with bytes overwritten, cut or extended
          fc
            .tuple(
              fc.array(fc.tuple(fc.nat(valid.length - 1), fc.nat(255)), { maxLength: 6 }),
              fc.nat(valid.length),
              fc.uint8Array({ maxLength: 70 }),
            )
            .map(([writes, cut, tail]) => {
              const bytes = valid.slice();
              for (const [at, value] of writes) bytes[at] = value;
              return concatBytes(bytes.subarray(0, cut), tail);
            }),
          // a good magic in front of random header fields
          fc
            .uint8Array({ minLength: 41, maxLength: 2000 })
            .map((rest) => concatBytes(valid.subarray(0, 4), rest)),
        ),
        (bytes) => expectFleetErrorOrFrame(bytes),
      ),
      { numRuns: 2000 },
    );
    expectFleetErrorOrFrame(new Uint8Array(MAX_BLOCK_FRAME_BYTES + 1));
  });
});
