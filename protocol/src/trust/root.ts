/**
 * The trust root (after TUF's root role): which keys may sign bundles and which
 * may sign the next root, each with a threshold, a version and an expiry. It is
 * itself a signed envelope, signed by a threshold of its own root keys.
 *
 * Devices pin a root at enrolment and move to a newer one only through
 * `updateRoot`, which enforces TUF 5.3: each step is signed by a threshold of the
 * old root keys and of the new root keys, versions go up by exactly one, and
 * expiry is judged on the final root only (so a device whose pinned root
 * expired can still recover through the chain; THREATS 10, 11).
 */
import { z } from 'zod';
import { FleetError } from '../errors.ts';
import { fromBase64, toBase64, utf8 } from '../encoding/bytes.ts';
import { canonicalJson, parseJsonBytes } from '../encoding/json.ts';
import { assertNotExpired, isoTimestampSchema } from '../encoding/time.ts';
import { PUBLIC_KEY_BYTES } from '../crypto/ed25519.ts';
import {
  keyIdOf,
  keyIdSchema,
  parseEnvelope,
  signEnvelope,
  verifyThreshold,
  type SignedEnvelope,
  type Signer,
} from '../crypto/envelope.ts';

export const ROOT_PAYLOAD_TYPE = 'application/vnd.fleet.root+json';
/** Root metadata larger than this is refused before it is parsed (THREATS 14). */
export const MAX_ROOT_BYTES = 64 * 1024;
export const MAX_KEYS_PER_ROOT = 64;

export const ROLE_NAMES = ['root', 'bundle'] as const;
export type RoleName = (typeof ROLE_NAMES)[number];

const roleSchema = z.strictObject({
  keyIds: z.array(keyIdSchema).min(1).max(MAX_KEYS_PER_ROOT),
  threshold: z.number().int().min(1),
});

export const rootMetadataSchema = z.strictObject({
  type: z.literal('fleet-root'),
  schemaVersion: z.literal(1),
  version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  expires: isoTimestampSchema,
  keys: z.record(
    keyIdSchema,
    z.strictObject({ scheme: z.literal('ed25519'), publicKey: z.string().max(64) }),
  ),
  roles: z.strictObject({ root: roleSchema, bundle: roleSchema }),
});

export type RootMetadata = z.infer<typeof rootMetadataSchema>;

/** A root whose own signatures and structure have been checked. */
export interface TrustedRoot {
  readonly metadata: RootMetadata;
  /** Public keys by id, decoded. */
  readonly keys: ReadonlyMap<string, Uint8Array>;
  /** The exact envelope bytes, for storing and forwarding. */
  readonly envelopeBytes: Uint8Array;
}

/** A key as a root lists it: its id and public half. */
export interface RootKey {
  keyId: string;
  publicKey: Uint8Array;
}

export interface RootSpec {
  version: number;
  expires: string;
  rootKeys: readonly RootKey[];
  rootThreshold: number;
  bundleKeys: readonly RootKey[];
  bundleThreshold: number;
}

/** Root metadata listing the given keys under their roles (not yet signed or checked). */
export function buildRootMetadata(spec: RootSpec): RootMetadata {
  const keys: RootMetadata['keys'] = {};
  for (const k of [...spec.rootKeys, ...spec.bundleKeys]) {
    keys[k.keyId] = { scheme: 'ed25519', publicKey: toBase64(k.publicKey) };
  }
  return {
    type: 'fleet-root',
    schemaVersion: 1,
    version: spec.version,
    expires: spec.expires,
    keys,
    roles: {
      root: { keyIds: spec.rootKeys.map((k) => k.keyId), threshold: spec.rootThreshold },
      bundle: { keyIds: spec.bundleKeys.map((k) => k.keyId), threshold: spec.bundleThreshold },
    },
  };
}

/** Builds and signs root metadata; `signers` must include a threshold of its root keys. */
export async function signRoot(
  metadata: RootMetadata,
  signers: readonly Signer[],
): Promise<Uint8Array> {
  const checked = checkRootStructure(metadata);
  await checkKeyIds(checked);
  const envelope = signEnvelope(ROOT_PAYLOAD_TYPE, canonicalJson(checked), signers);
  return utf8(JSON.stringify(envelope));
}

/**
 * Loads a root the caller already trusts (pinned, or shipped with the agent):
 * checks its structure and that it is signed by a threshold of its own root
 * keys. Expiry is not checked here; use `assertRootFresh` before relying on it.
 */
export async function loadTrustedRoot(envelopeBytes: Uint8Array): Promise<TrustedRoot> {
  const envelope = parseEnvelope(envelopeBytes, MAX_ROOT_BYTES, 'root metadata');
  const candidate = await decodeRootPayload(envelope);
  await verifyRootRole(envelope, candidate, 'root');
  return candidate.withBytes(envelopeBytes);
}

/**
 * Moves trust from `trusted` to the next root version (TUF 5.3.4 - 5.3.9).
 * Throws ROOT_ROTATION / SIGNATURE_THRESHOLD / ROLLBACK and leaves `trusted` as it was.
 */
export async function updateRoot(
  trusted: TrustedRoot,
  nextEnvelopeBytes: Uint8Array,
): Promise<TrustedRoot> {
  const envelope = parseEnvelope(nextEnvelopeBytes, MAX_ROOT_BYTES, 'new root metadata');
  const next = await decodeRootPayload(envelope);
  // TUF 5.3.4: the new root is signed by a threshold of the trusted root's root keys.
  await verifyRootRole(envelope, trusted, `trusted root v${trusted.metadata.version}`);
  // TUF 5.3.4: ... and by a threshold of its own root keys.
  await verifyRootRole(envelope, next, `new root v${next.metadata.version}`);
  // TUF 5.3.5: the version is exactly one more (no rollback, no skipped version).
  const expected = trusted.metadata.version + 1;
  if (next.metadata.version <= trusted.metadata.version) {
    throw new FleetError(
      'ROLLBACK',
      `root v${next.metadata.version} does not follow trusted v${trusted.metadata.version}`,
    );
  }
  if (next.metadata.version !== expected) {
    throw new FleetError(
      'ROOT_ROTATION',
      `root v${next.metadata.version} skips versions; v${expected} comes next`,
    );
  }
  return next.withBytes(nextEnvelopeBytes);
}

/**
 * Applies a chain of rotations in order, then checks the final root's expiry
 * against one reference time (TUF 5.3.10).
 */
export async function updateRootChain(
  trusted: TrustedRoot,
  chain: readonly Uint8Array[],
  nowMs: number,
): Promise<TrustedRoot> {
  let current = trusted;
  for (const bytes of chain) current = await updateRoot(current, bytes);
  assertRootFresh(current, nowMs);
  return current;
}

/** Throws EXPIRED when the root is past its expiry at `nowMs` (THREATS 10). */
export function assertRootFresh(root: TrustedRoot, nowMs: number): void {
  assertNotExpired(root.metadata.expires, nowMs, `root v${root.metadata.version}`);
}

/** The keys and threshold of one role, for `verifyThreshold`. */
export function roleRule(root: TrustedRoot, role: RoleName, payloadType: string) {
  const { keyIds, threshold } = root.metadata.roles[role];
  return {
    payloadType,
    keys: root.keys,
    roleKeyIds: keyIds,
    threshold,
    role: `${role} (root v${root.metadata.version})`,
  };
}

async function verifyRootRole(
  envelope: SignedEnvelope,
  signingRoot: Pick<TrustedRoot, 'metadata' | 'keys'>,
  label: string,
): Promise<void> {
  const { keyIds, threshold } = signingRoot.metadata.roles.root;
  await verifyThreshold(envelope, {
    payloadType: ROOT_PAYLOAD_TYPE,
    keys: signingRoot.keys,
    roleKeyIds: keyIds,
    threshold,
    role: `root-role keys of ${label}`,
  });
}

interface DecodedRoot {
  metadata: RootMetadata;
  keys: ReadonlyMap<string, Uint8Array>;
  withBytes(envelopeBytes: Uint8Array): TrustedRoot;
}

/**
 * Decodes the payload to check structure only. The payload is parsed before
 * its signatures are checked because the keys that must sign it are inside it;
 * the caller verifies before trusting anything (TUF does the same).
 */
async function decodeRootPayload(envelope: SignedEnvelope): Promise<DecodedRoot> {
  if (envelope.payloadType !== ROOT_PAYLOAD_TYPE) {
    throw new FleetError('MALFORMED', `payload type "${envelope.payloadType}" is not a root`);
  }
  const json = parseJsonBytes(fromBase64(envelope.payload), MAX_ROOT_BYTES, 'root payload');
  const parsed = rootMetadataSchema.safeParse(json);
  if (!parsed.success) {
    throw new FleetError('MALFORMED', `root metadata: ${parsed.error.message}`);
  }
  const metadata = checkRootStructure(parsed.data);
  const keys = await checkKeyIds(metadata);
  return { metadata, keys, withBytes: (envelopeBytes) => ({ metadata, keys, envelopeBytes }) };
}

function checkRootStructure(metadata: RootMetadata): RootMetadata {
  const keyCount = Object.keys(metadata.keys).length;
  if (keyCount > MAX_KEYS_PER_ROOT) {
    throw new FleetError('MALFORMED', `root lists ${keyCount} keys, at most ${MAX_KEYS_PER_ROOT}`);
  }
  for (const name of ROLE_NAMES) {
    const role = metadata.roles[name];
    if (new Set(role.keyIds).size !== role.keyIds.length) {
      throw new FleetError('MALFORMED', `role ${name} lists a key id twice`);
    }
    for (const id of role.keyIds) {
      if (!(id in metadata.keys)) {
        throw new FleetError('MALFORMED', `role ${name} names key ${id}, which the root lacks`);
      }
    }
    if (role.threshold > role.keyIds.length) {
      throw new FleetError(
        'MALFORMED',
        `role ${name} needs ${role.threshold} signatures but lists ${role.keyIds.length} keys`,
      );
    }
  }
  return metadata;
}

/** Key ids must be the SHA-256 of the key, so one key cannot hide under two ids (THREATS 3). */
async function checkKeyIds(metadata: RootMetadata): Promise<Map<string, Uint8Array>> {
  const keys = new Map<string, Uint8Array>();
  for (const [id, entry] of Object.entries(metadata.keys)) {
    const publicKey = fromBase64(entry.publicKey);
    if (publicKey.length !== PUBLIC_KEY_BYTES) {
      throw new FleetError('MALFORMED', `key ${id} is not a 32-byte ed25519 public key`);
    }
    if ((await keyIdOf(publicKey)) !== id) {
      throw new FleetError('MALFORMED', `key id ${id} is not the SHA-256 of its public key`);
    }
    keys.set(id, publicKey);
  }
  return keys;
}
