/**
 * Where bundle bytes live: a content-addressed store keyed by the SHA-256 of
 * the bytes (the bundle id). Implementations: the filesystem in the data dir
 * (adapters/fs/fs-blob-store.ts) and memory (tests); both pass the contract
 * suite in adapters/blob-store.contract.ts. An object store (S3) would be a
 * third.
 */
export interface BlobStore {
  /** Stores `bytes` under their SHA-256 (idempotent) and returns it. */
  put(bytes: Uint8Array): Promise<string>;
  /** The bytes stored under `sha256`, or null. */
  get(sha256: string): Promise<Uint8Array | null>;
  has(sha256: string): Promise<boolean>;
}
