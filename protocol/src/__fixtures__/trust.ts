/**
 * Test fixtures: deterministic ed25519 keys (from fixed seeds) and roots built
 * from them, so tests can sign with any subset of keys and roles.
 */
import { keyPairFromSeed } from '../crypto/ed25519.ts';
import { keyIdOf, type Signer } from '../crypto/envelope.ts';
import {
  buildRootMetadata,
  loadTrustedRoot,
  signRoot,
  type RootMetadata,
  type TrustedRoot,
} from '../trust/root.ts';

export interface TestKey extends Signer {
  publicKey: Uint8Array;
}

/** Key number `n` (any integer): the same key every run. */
export async function testKey(n: number): Promise<TestKey> {
  const seed = new Uint8Array(32);
  new DataView(seed.buffer).setUint32(0, n + 1);
  seed[31] = 0x5a;
  const pair = keyPairFromSeed(seed);
  return {
    publicKey: pair.publicKey,
    secretKey: pair.secretKey,
    keyId: await keyIdOf(pair.publicKey),
  };
}

export async function testKeys(from: number, count: number): Promise<TestKey[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => testKey(from + i)));
}

/** 2026-11-26T12:00:00Z: the reference "now" of the tests. */
export const NOW_MS = Date.parse('2026-11-26T12:00:00Z');
export const IN_A_YEAR = '2027-11-26T12:00:00Z';
export const YESTERDAY = '2026-11-25T12:00:00Z';

export interface TestRootSpec {
  version?: number;
  expires?: string;
  rootKeys: TestKey[];
  rootThreshold: number;
  bundleKeys: TestKey[];
  bundleThreshold: number;
}

export function rootMetadata(spec: TestRootSpec): RootMetadata {
  return buildRootMetadata({
    ...spec,
    version: spec.version ?? 1,
    expires: spec.expires ?? IN_A_YEAR,
  });
}

export interface TestTrust {
  rootKeys: TestKey[];
  bundleKeys: TestKey[];
  rootBytes: Uint8Array;
  root: TrustedRoot;
}

/** A v1 root: root role 2-of-3 (keys 0-2), bundle role 2-of-3 (keys 10-12). */
export async function testTrust(overrides: Partial<TestRootSpec> = {}): Promise<TestTrust> {
  const rootKeys = overrides.rootKeys ?? (await testKeys(0, 3));
  const bundleKeys = overrides.bundleKeys ?? (await testKeys(10, 3));
  const spec: TestRootSpec = {
    rootThreshold: 2,
    bundleThreshold: 2,
    ...overrides,
    rootKeys,
    bundleKeys,
  };
  const rootBytes = await signRoot(rootMetadata(spec), rootKeys);
  return { rootKeys, bundleKeys, rootBytes, root: await loadTrustedRoot(rootBytes) };
}
