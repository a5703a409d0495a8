/**
 * A trust-root key directory on disk:
 *
 *   DIR/root.json                 the current signed root: pin or publish this
 *   DIR/history/<N>.root.json     every root version, the chain devices follow
 *   DIR/private/<role>-<id>.json  private keys, mode 0600 (directory 0700)
 *   DIR/retired/...               private keys of rotated-out roles
 *
 * Rotation writes the new keys and history first and replaces root.json last,
 * so a crash leaves the previous root in force.
 */
import { mkdir, readdir, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  FleetError,
  fromBase64,
  keyIdOf,
  keyPairFromSeed,
  loadTrustedRoot,
  ROLE_NAMES,
  toBase64,
  type RoleName,
  type Signer,
  type TrustedRoot,
} from '@fleet/protocol';
import type { KeyRecord, TrustCeremonyResult } from '../../core/key-ceremony.ts';
import { writeFileAtomic } from './atomic-write.ts';

export interface KeyDirectory {
  readonly dir: string;
  readonly rootPath: string;
  exists(): Promise<boolean>;
  /** Writes the first root and its keys; refuses a directory that already has a root. */
  writeInitial(result: TrustCeremonyResult): Promise<void>;
  /** The current root and the private keys held for it. */
  load(): Promise<{ root: TrustedRoot; keys: KeyRecord[] }>;
  writeRotation(result: TrustCeremonyResult): Promise<void>;
  /** Bundle-role signers held in the directory. */
  bundleSigners(): Promise<Signer[]>;
}

interface KeyFile {
  role: RoleName;
  keyId: string;
  scheme: 'ed25519';
  secretKey: string;
}

export function createKeyDirectory(dir: string): KeyDirectory {
  const rootPath = join(dir, 'root.json');
  const privateDir = join(dir, 'private');
  const historyDir = join(dir, 'history');
  const retiredDir = join(dir, 'retired');
  const keyFileName = (k: KeyRecord) => `${k.role}-${k.keyId.slice(0, 16)}.json`;

  async function exists(): Promise<boolean> {
    return stat(rootPath).then(
      () => true,
      () => false,
    );
  }

  async function writeKeys(keys: readonly KeyRecord[]): Promise<void> {
    await mkdir(privateDir, { recursive: true, mode: 0o700 });
    for (const k of keys) {
      const file: KeyFile = {
        role: k.role,
        keyId: k.keyId,
        scheme: 'ed25519',
        secretKey: toBase64(k.secretKey),
      };
      await writeFileAtomic(join(privateDir, keyFileName(k)), JSON.stringify(file, null, 2), {
        mode: 0o600,
        exclusive: true,
      });
    }
  }

  async function writeRoot(result: TrustCeremonyResult): Promise<void> {
    await mkdir(historyDir, { recursive: true });
    await writeFileAtomic(join(historyDir, `${result.version}.root.json`), result.rootBytes, {
      exclusive: true,
    });
    await writeFileAtomic(rootPath, result.rootBytes);
  }

  async function readKeys(): Promise<KeyRecord[]> {
    const names = await readdir(privateDir).catch(() => [] as string[]);
    const keys: KeyRecord[] = [];
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      keys.push(await readKeyFile(join(privateDir, name)));
    }
    return keys;
  }

  return {
    dir,
    rootPath,
    exists,
    async writeInitial(result) {
      if (await exists()) {
        throw new FleetError('MALFORMED', `${dir} already holds a trust root; use keys rotate`);
      }
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await writeKeys(result.newKeys);
      await writeRoot(result);
    },
    async load() {
      const root = await loadTrustedRoot(new Uint8Array(await readFile(rootPath)));
      const listed = new Set(ROLE_NAMES.flatMap((r) => root.metadata.roles[r].keyIds));
      const keys = (await readKeys()).filter((k) => listed.has(k.keyId));
      return { root, keys };
    },
    async writeRotation(result) {
      await writeKeys(result.newKeys);
      await writeRoot(result);
      await mkdir(retiredDir, { recursive: true, mode: 0o700 });
      for (const k of result.retiredKeys) {
        await rename(join(privateDir, keyFileName(k)), join(retiredDir, keyFileName(k)));
      }
    },
    async bundleSigners() {
      const { keys } = await this.load();
      return keys.filter((k) => k.role === 'bundle');
    },
  };
}

async function readKeyFile(path: string): Promise<KeyRecord> {
  let file: KeyFile;
  try {
    file = JSON.parse(await readFile(path, 'utf8')) as KeyFile;
  } catch (cause) {
    throw new FleetError('MALFORMED', `key file ${path} is not JSON`, { cause });
  }
  const secretKey = fromBase64(String(file.secretKey));
  // Derive the public half from the seed rather than trusting the stored copy.
  const publicKey =
    secretKey.length === 64
      ? keyPairFromSeed(secretKey.subarray(0, 32)).publicKey
      : new Uint8Array();
  if (secretKey.length !== 64 || (await keyIdOf(publicKey)) !== file.keyId) {
    throw new FleetError('MALFORMED', `key file ${path} does not hold the key ${file.keyId}`);
  }
  if (!ROLE_NAMES.includes(file.role)) {
    throw new FleetError('MALFORMED', `key file ${path} names an unknown role`);
  }
  return { role: file.role, keyId: file.keyId, publicKey, secretKey };
}
