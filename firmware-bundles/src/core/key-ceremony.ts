/**
 * Key ceremonies for a trust root: creating the first root with fresh root and
 * bundle-signing keys, and rotating to the next root (TUF 5.3 shape: the new
 * root is signed by a threshold of the old root keys and by the new root keys).
 * Pure apart from key generation; the key directory adapter stores the results.
 */
import {
  buildRootMetadata,
  FleetError,
  generateKeyPair,
  keyIdOf,
  signRoot,
  updateRoot,
  type RoleName,
  type TrustedRoot,
} from '@fleet/protocol';

export interface KeyRecord {
  role: RoleName;
  keyId: string;
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

export interface RoleShape {
  /** How many keys the role has. */
  keys: number;
  /** How many of them must sign. */
  threshold: number;
}

export async function generateRoleKeys(role: RoleName, count: number): Promise<KeyRecord[]> {
  const out: KeyRecord[] = [];
  for (let i = 0; i < count; i++) {
    const pair = generateKeyPair();
    out.push({ role, keyId: await keyIdOf(pair.publicKey), ...pair });
  }
  return out;
}

function checkShape(role: RoleName, shape: RoleShape): void {
  if (!Number.isInteger(shape.keys) || shape.keys < 1 || shape.keys > 16) {
    throw new FleetError('MALFORMED', `--keys for the ${role} role must be 1-16`);
  }
  if (!Number.isInteger(shape.threshold) || shape.threshold < 1 || shape.threshold > shape.keys) {
    throw new FleetError('MALFORMED', `the ${role} threshold must be 1-${shape.keys}`);
  }
}

export interface InitTrustOptions {
  root: RoleShape;
  bundle: RoleShape;
  expires: string;
}

export interface TrustCeremonyResult {
  rootBytes: Uint8Array;
  version: number;
  /** Private keys to store (all of them on init; the new ones on rotation). */
  newKeys: KeyRecord[];
  /** Private keys that no longer belong to the root (rotation only). */
  retiredKeys: KeyRecord[];
}

/** A first root (version 1) with fresh root and bundle keys, signed by all root keys. */
export async function initTrust(options: InitTrustOptions): Promise<TrustCeremonyResult> {
  checkShape('root', options.root);
  checkShape('bundle', options.bundle);
  const rootKeys = await generateRoleKeys('root', options.root.keys);
  const bundleKeys = await generateRoleKeys('bundle', options.bundle.keys);
  const metadata = buildRootMetadata({
    version: 1,
    expires: options.expires,
    rootKeys,
    rootThreshold: options.root.threshold,
    bundleKeys,
    bundleThreshold: options.bundle.threshold,
  });
  const rootBytes = await signRoot(metadata, rootKeys);
  return { rootBytes, version: 1, newKeys: [...rootKeys, ...bundleKeys], retiredKeys: [] };
}

export interface RotateTrustOptions {
  current: TrustedRoot;
  /** The private keys held for the current root. */
  heldKeys: readonly KeyRecord[];
  /** Roles whose keys are replaced; the others keep theirs. */
  replace: readonly RoleName[];
  /** New shapes for replaced roles (default: the current shape). */
  shapes?: Partial<Record<RoleName, RoleShape>>;
  expires: string;
}

/**
 * The next root. Refuses (SIGNATURE_THRESHOLD) when fewer than a threshold of
 * the current root keys are held, and checks its own output with `updateRoot`
 * so a root it produces is one every device will accept.
 */
export async function rotateTrust(options: RotateTrustOptions): Promise<TrustCeremonyResult> {
  const { current, heldKeys } = options;
  const roles = current.metadata.roles;
  const held = (role: RoleName) =>
    heldKeys.filter((k) => k.role === role && roles[role].keyIds.includes(k.keyId));
  const oldRootSigners = held('root');
  if (oldRootSigners.length < roles.root.threshold) {
    throw new FleetError(
      'SIGNATURE_THRESHOLD',
      `rotation needs ${roles.root.threshold} of the current root keys, ${oldRootSigners.length} are held`,
    );
  }
  const next: Record<RoleName, KeyRecord[] | undefined> = { root: undefined, bundle: undefined };
  const shapes: Record<RoleName, RoleShape> = {
    root: { keys: roles.root.keyIds.length, threshold: roles.root.threshold },
    bundle: { keys: roles.bundle.keyIds.length, threshold: roles.bundle.threshold },
  };
  for (const role of options.replace) {
    shapes[role] = options.shapes?.[role] ?? shapes[role];
    checkShape(role, shapes[role]);
    next[role] = await generateRoleKeys(role, shapes[role].keys);
  }
  const publicKeysOf = (role: RoleName) =>
    next[role] ??
    roles[role].keyIds.map((keyId) => ({ keyId, publicKey: current.keys.get(keyId)! }));
  const metadata = buildRootMetadata({
    version: current.metadata.version + 1,
    expires: options.expires,
    rootKeys: publicKeysOf('root'),
    rootThreshold: shapes.root.threshold,
    bundleKeys: publicKeysOf('bundle'),
    bundleThreshold: shapes.bundle.threshold,
  });
  const newRootSigners = next.root ?? oldRootSigners;
  const signers = dedupeByKeyId([...oldRootSigners, ...newRootSigners]);
  const rootBytes = await signRoot(metadata, signers);
  await updateRoot(current, rootBytes); // the same check every device runs
  const newKeys = [...(next.root ?? []), ...(next.bundle ?? [])];
  const retiredKeys = options.replace.flatMap((role) => held(role));
  return { rootBytes, version: metadata.version, newKeys, retiredKeys };
}

function dedupeByKeyId(keys: KeyRecord[]): KeyRecord[] {
  const seen = new Set<string>();
  return keys.filter((k) => !seen.has(k.keyId) && seen.add(k.keyId));
}
