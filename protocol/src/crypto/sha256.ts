/**
 * SHA-256: node:crypto's hash on Node for inputs up to 1 MiB, WebCrypto
 * otherwise (browsers, and larger inputs on Node).
 *
 * Why two: WebCrypto is native everywhere but costs a thread-pool round trip
 * per call. On Node 20 (AMD EPYC, SHA-NI) a 65-byte Merkle node took 40 us
 * through WebCrypto against 2.3 us with `createHash`, and a 64 KiB block
 * 111 us against 46 us; hashing was 18% of a 1,000-agent simulated fleet's
 * CPU in a rollout, and a key id digest 6% of the control plane's. Above
 * 1 MiB the synchronous hash would hold the event loop for more than half a
 * millisecond, so large parts still go to WebCrypto's thread pool.
 *
 * node:crypto is reached through `process.getBuiltinModule` (Node >= 20.16),
 * not imported, so this module stays free of Node built-ins and loads in a
 * browser unchanged. Both paths are tested against each other and the
 * FIPS 180-2 vectors.
 */
import { toHex } from '../encoding/bytes.ts';

interface NodeHash {
  update(data: Uint8Array): NodeHash;
  digest(): Uint8Array;
}

type CreateHash = (algorithm: string) => NodeHash;

/** The largest input hashed synchronously on Node. */
export const SYNC_SHA256_MAX_BYTES = 1 << 20;

function nodeCreateHash(): CreateHash | undefined {
  const host = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const nodeCrypto = host?.getBuiltinModule?.('node:crypto') as
    { createHash?: CreateHash } | undefined;
  return nodeCrypto?.createHash;
}

const createHash = nodeCreateHash();

export type Sha256Backend = 'node' | 'webcrypto';

/** The backend `sha256` uses for `byteLength` bytes here. */
export function sha256BackendFor(byteLength: number): Sha256Backend {
  return createHash && byteLength <= SYNC_SHA256_MAX_BYTES ? 'node' : 'webcrypto';
}

/** `backend` is for tests; callers leave it to `sha256BackendFor`. */
export async function sha256(bytes: Uint8Array, backend?: Sha256Backend): Promise<Uint8Array> {
  if ((backend ?? sha256BackendFor(bytes.length)) === 'node' && createHash) {
    return new Uint8Array(createHash('sha256').update(bytes).digest());
  }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return toHex(await sha256(bytes));
}
