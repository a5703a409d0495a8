/**
 * Block transfer of bundles over MQTT (ARCHITECTURE "Over-the-air delivery",
 * after AWS IoT's MQTT file delivery): the control plane cuts a bundle into
 * blocks, builds a Merkle tree over them, and broadcasts each block as a
 * binary frame with its inclusion proof on `fleet/v1/bundle/{bundleId}/blocks`.
 * The agent checks every block against the Merkle root of the deploy command
 * as it arrives, so a corrupted block is dropped and asked for again, and a
 * block already checked and written to disk can be trusted after a restart.
 *
 * What the root proves: the deploy command is not signed, so the root only
 * guards against transport corruption and mixed-up transfers. Authenticity
 * comes from the signed manifest and from the SHA-256 of the whole file
 * equalling the bundle id, both checked once every block is in.
 *
 * The tree is RFC 6962's (Certificate Transparency), with the block index
 * bound into each leaf:
 *
 *   leaf(i)    = SHA-256(0x00 || u32be(i) || block i)
 *   node(l, r) = SHA-256(0x01 || l || r)
 *   MTH(n > 1) = node(MTH(first k), MTH(rest)), k the largest power of two < n
 *
 * Frame layout (all integers big-endian), `FRAME_HEADER_BYTES` + 32 x proof + data:
 *
 *   offset  size       field
 *   0       4          magic "FLB1"
 *   4       32         bundle id (the raw SHA-256 of the bundle file)
 *   36      4          block index, u32
 *   40      4          block count, u32
 *   44      1          number of proof hashes, u8 (at most MAX_PROOF_HASHES)
 *   45      32 x that  proof: sibling hashes from the leaf up
 *   ...     rest       block data, 1 to MAX_BLOCK_BYTES bytes
 */
import { FleetError } from '../errors.ts';
import { fromHex, toHex, utf8 } from '../encoding/bytes.ts';
import { sha256 } from '../crypto/sha256.ts';
import { MAX_BLOCK_BYTES, MAX_BLOCK_COUNT } from '../messages/common.ts';

/** The first four bytes of every block frame. */
export const BLOCK_FRAME_MAGIC = 'FLB1';

/** Most proof hashes a frame may carry; MAX_BLOCK_COUNT blocks need 18. */
export const MAX_PROOF_HASHES = 32;

const HASH_BYTES = 32;
const MAGIC_BYTES = utf8(BLOCK_FRAME_MAGIC);

/** Bytes before the proof: magic, bundle id, index, count, proof count. */
export const FRAME_HEADER_BYTES = 4 + HASH_BYTES + 4 + 4 + 1;

/**
 * The largest block frame: header, MAX_PROOF_HASHES hashes and a full block
 * (66,605 bytes). Brokers and clients can use it as the packet cap of the
 * bundle block topics.
 */
export const MAX_BLOCK_FRAME_BYTES =
  FRAME_HEADER_BYTES + MAX_PROOF_HASHES * HASH_BYTES + MAX_BLOCK_BYTES;

/** One block as it travels, with the proof that it belongs under the transfer's root. */
export interface BlockFrame {
  /** The bundle id, 64 lowercase hex. */
  bundleId: string;
  index: number;
  count: number;
  /** Sibling hashes from the leaf up, 32 bytes each. */
  proof: readonly Uint8Array[];
  data: Uint8Array;
}

/** A Merkle tree over a bundle's blocks. */
export interface BlockTree {
  /** The Merkle root, 64 lowercase hex: the deploy command's `blockRoot`. */
  readonly root: string;
  /** Number of blocks (leaves). */
  readonly count: number;
  /** The inclusion proof of block `index`: sibling hashes from the leaf up (fresh copies). */
  proof(index: number): Uint8Array[];
}

/**
 * Cuts `bundle` into blocks of `blockSizeBytes` (the last may be shorter).
 * The blocks are views into `bundle`, not copies.
 */
export function splitBlocks(bundle: Uint8Array, blockSizeBytes: number): Uint8Array[] {
  if (!Number.isInteger(blockSizeBytes) || blockSizeBytes < 1 || blockSizeBytes > MAX_BLOCK_BYTES) {
    throw new FleetError(
      'MALFORMED',
      `a block size is an integer from 1 to ${MAX_BLOCK_BYTES} bytes, not ${blockSizeBytes}`,
    );
  }
  if (bundle.length === 0) throw new FleetError('MALFORMED', 'an empty bundle has no blocks');
  const count = Math.ceil(bundle.length / blockSizeBytes);
  if (count > MAX_BLOCK_COUNT) {
    throw new FleetError(
      'TOO_LARGE',
      `${bundle.length} bytes in blocks of ${blockSizeBytes} is ${count} blocks, the cap is ${MAX_BLOCK_COUNT}`,
    );
  }
  const blocks: Uint8Array[] = [];
  for (let offset = 0; offset < bundle.length; offset += blockSizeBytes) {
    blocks.push(bundle.subarray(offset, offset + blockSizeBytes));
  }
  return blocks;
}

// WebCrypto digests are async: hash this many at once, so the work overlaps
// without holding hundreds of thousands of pending promises.
const HASH_BATCH = 4096;

async function hashAll<T>(items: readonly T[], input: (item: T, i: number) => Uint8Array) {
  const out: Uint8Array[] = new Array<Uint8Array>(items.length);
  for (let start = 0; start < items.length; start += HASH_BATCH) {
    const end = Math.min(start + HASH_BATCH, items.length);
    const batch: Promise<void>[] = [];
    for (let i = start; i < end; i++) {
      batch.push(sha256(input(items[i]!, i)).then((hash) => void (out[i] = hash)));
    }
    await Promise.all(batch);
  }
  return out;
}

function leafInput(index: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + data.length);
  out[0] = 0x00;
  new DataView(out.buffer).setUint32(1, index);
  out.set(data, 5);
  return out;
}

function nodeInput(left: Uint8Array, right: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + 2 * HASH_BYTES);
  out[0] = 0x01;
  out.set(left, 1);
  out.set(right, 1 + HASH_BYTES);
  return out;
}

/**
 * The next level up: pairs hash together, and a last node without a sibling
 * moves up unchanged. Built bottom-up this way, the tree is exactly RFC 6962's
 * split at the largest power of two below n (tested against the recursive
 * definition).
 */
async function parentLevel(level: readonly Uint8Array[]): Promise<Uint8Array[]> {
  const pairs = Math.floor(level.length / 2);
  const parents = await hashAll(Array.from({ length: pairs }), (_, i) =>
    nodeInput(level[2 * i]!, level[2 * i + 1]!),
  );
  if (level.length % 2 === 1) parents.push(level[level.length - 1]!);
  return parents;
}

/**
 * Builds the Merkle tree over `blocks` (1 to MAX_BLOCK_COUNT blocks of 1 to
 * MAX_BLOCK_BYTES bytes each).
 *
 * @example
 *   const tree = await createBlockTree(splitBlocks(bundle, MAX_BLOCK_BYTES));
 *   encodeBlockFrame({ bundleId, index: 0, count: tree.count, proof: tree.proof(0), data });
 */
export async function createBlockTree(blocks: readonly Uint8Array[]): Promise<BlockTree> {
  if (blocks.length === 0)
    throw new FleetError('MALFORMED', 'a block tree needs at least one block');
  if (blocks.length > MAX_BLOCK_COUNT) {
    throw new FleetError('TOO_LARGE', `${blocks.length} blocks, the cap is ${MAX_BLOCK_COUNT}`);
  }
  for (const [i, block] of blocks.entries()) checkBlockData(block, `block ${i}`);
  const levels: Uint8Array[][] = [await hashAll(blocks, (block, i) => leafInput(i, block))];
  while (levels[levels.length - 1]!.length > 1) {
    levels.push(await parentLevel(levels[levels.length - 1]!));
  }
  const count = blocks.length;
  return {
    root: toHex(levels[levels.length - 1]![0]!),
    count,
    proof(index: number): Uint8Array[] {
      if (!Number.isInteger(index) || index < 0 || index >= count) {
        throw new FleetError('MALFORMED', `block ${index} is not in a tree of ${count} blocks`);
      }
      const proof: Uint8Array[] = [];
      let i = index;
      for (const level of levels.slice(0, -1)) {
        const sibling = level[i ^ 1];
        if (sibling !== undefined) proof.push(sibling.slice());
        i >>>= 1;
      }
      return proof;
    },
  };
}

/** How many proof hashes block `index` of `count` needs: its depth in the tree. */
export function proofLength(index: number, count: number): number {
  let length = 0;
  for (let i = index, n = count; n > 1; i >>>= 1, n = Math.ceil(n / 2)) {
    if (i !== n - 1 || i % 2 === 1) length++; // a last node without a sibling moves up free
  }
  return length;
}

export interface BlockCheck {
  /** The Merkle root from the deploy command, 64 lowercase hex. */
  root: string;
  index: number;
  count: number;
  data: Uint8Array;
  proof: readonly Uint8Array[];
}

/**
 * Whether `data` is block `index` of `count` under `root`. False, never a
 * throw, for any mismatch: a wrong hash, a proof longer or shorter than the
 * index and count need, a hash that is not 32 bytes, an index out of range.
 */
export async function verifyBlock(check: BlockCheck): Promise<boolean> {
  const { root, index, count, data, proof } = check;
  if (!/^[0-9a-f]{64}$/.test(root)) return false;
  if (!Number.isInteger(count) || count < 1 || count > MAX_BLOCK_COUNT) return false;
  if (!Number.isInteger(index) || index < 0 || index >= count) return false;
  if (data.length === 0 || data.length > MAX_BLOCK_BYTES) return false;
  if (proof.length !== proofLength(index, count)) return false;
  if (proof.some((hash) => hash.length !== HASH_BYTES)) return false;
  let hash = await sha256(leafInput(index, data));
  let used = 0;
  for (let i = index, n = count; n > 1; i >>>= 1, n = Math.ceil(n / 2)) {
    if (i === n - 1 && i % 2 === 0) continue; // no sibling at this level
    const sibling = proof[used++]!;
    hash = await sha256(i % 2 === 1 ? nodeInput(sibling, hash) : nodeInput(hash, sibling));
  }
  return toHex(hash) === root;
}

function checkBlockData(data: Uint8Array, what: string): void {
  if (data.length === 0) throw new FleetError('MALFORMED', `${what} is empty`);
  if (data.length > MAX_BLOCK_BYTES) {
    throw new FleetError(
      'TOO_LARGE',
      `${what} is ${data.length} bytes, the cap is ${MAX_BLOCK_BYTES}`,
    );
  }
}

function checkPosition(index: number, count: number): void {
  if (!Number.isInteger(count) || count < 1 || count > MAX_BLOCK_COUNT) {
    throw new FleetError(
      'MALFORMED',
      `block count ${count} is not an integer from 1 to ${MAX_BLOCK_COUNT}`,
    );
  }
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    throw new FleetError('MALFORMED', `block index ${index} is not below the block count ${count}`);
  }
}

/**
 * Encodes a block frame. Refuses (MALFORMED, TOO_LARGE) any frame that
 * `decodeBlockFrame` would refuse, so a sender never publishes one.
 */
export function encodeBlockFrame(frame: BlockFrame): Uint8Array {
  const { index, count, proof, data } = frame;
  if (!/^[0-9a-f]{64}$/.test(frame.bundleId)) {
    throw new FleetError('MALFORMED', 'a bundle id is 64 lowercase hex');
  }
  checkPosition(index, count);
  if (proof.length > MAX_PROOF_HASHES) {
    throw new FleetError(
      'MALFORMED',
      `a proof of ${proof.length} hashes, at most ${MAX_PROOF_HASHES}`,
    );
  }
  if (proof.some((hash) => hash.length !== HASH_BYTES)) {
    throw new FleetError('MALFORMED', 'every proof hash is 32 bytes');
  }
  checkBlockData(data, `block ${index}`);
  const proofOffset = FRAME_HEADER_BYTES;
  const dataOffset = proofOffset + proof.length * HASH_BYTES;
  const out = new Uint8Array(dataOffset + data.length);
  const view = new DataView(out.buffer);
  out.set(MAGIC_BYTES, 0);
  out.set(fromHex(frame.bundleId), 4);
  view.setUint32(36, index);
  view.setUint32(40, count);
  out[44] = proof.length;
  for (const [i, hash] of proof.entries()) out.set(hash, proofOffset + i * HASH_BYTES);
  out.set(data, dataOffset);
  return out;
}

/**
 * Decodes a block frame, checking its structure only (the proof is checked by
 * `verifyBlock`). `proof` and `data` are views into `bytes`. Every refusal is
 * a FleetError naming what is wrong:
 *
 *   TOO_LARGE  the frame is over MAX_BLOCK_FRAME_BYTES, or its data over MAX_BLOCK_BYTES
 *   TRUNCATED  it ends inside its header or its proof hashes
 *   MALFORMED  bad magic, index >= count, count above MAX_BLOCK_COUNT,
 *              more than MAX_PROOF_HASHES proof hashes, no data
 */
export function decodeBlockFrame(bytes: Uint8Array): BlockFrame {
  // Checked first: nothing of an oversize frame is read.
  if (bytes.length > MAX_BLOCK_FRAME_BYTES) {
    throw new FleetError(
      'TOO_LARGE',
      `block frame is ${bytes.length} bytes, the cap is ${MAX_BLOCK_FRAME_BYTES}`,
    );
  }
  if (bytes.length < FRAME_HEADER_BYTES) {
    throw new FleetError(
      'TRUNCATED',
      `block frame is ${bytes.length} bytes, shorter than its ${FRAME_HEADER_BYTES}-byte header`,
    );
  }
  if (!MAGIC_BYTES.every((b, i) => bytes[i] === b)) {
    throw new FleetError('MALFORMED', 'not a block frame (bad magic bytes)');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const index = view.getUint32(36);
  const count = view.getUint32(40);
  if (count > MAX_BLOCK_COUNT) {
    throw new FleetError(
      'MALFORMED',
      `block frame count ${count} is above the cap of ${MAX_BLOCK_COUNT} blocks`,
    );
  }
  if (index >= count) {
    throw new FleetError('MALFORMED', `block frame index ${index} is not below its count ${count}`);
  }
  const proofCount = bytes[44]!;
  if (proofCount > MAX_PROOF_HASHES) {
    throw new FleetError(
      'MALFORMED',
      `block frame carries ${proofCount} proof hashes, at most ${MAX_PROOF_HASHES}`,
    );
  }
  const dataOffset = FRAME_HEADER_BYTES + proofCount * HASH_BYTES;
  if (bytes.length < dataOffset) {
    throw new FleetError(
      'TRUNCATED',
      `block frame ends inside its ${proofCount} proof hashes (${bytes.length} of ${dataOffset} bytes)`,
    );
  }
  const data = bytes.subarray(dataOffset);
  checkBlockData(data, `block frame ${index} data`);
  const proof: Uint8Array[] = [];
  for (let offset = FRAME_HEADER_BYTES; offset < dataOffset; offset += HASH_BYTES) {
    proof.push(bytes.subarray(offset, offset + HASH_BYTES));
  }
  return { bundleId: toHex(bytes.subarray(4, 36)), index, count, proof, data };
}
