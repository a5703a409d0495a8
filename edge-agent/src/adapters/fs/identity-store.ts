/**
 * The device's identity on disk, in its data dir:
 *
 *   identity.json   device id, ed25519 key pair (mode 0600), hardware, tags,
 *                   and, once enrolled, the control plane and broker URLs
 *   trust-root.json the pinned trust root (signed envelope), replaced only by
 *                   a root that follows it in a valid chain
 *
 * The key is generated and saved before enrolment is attempted, so a crash
 * or a refused enrolment never loses it: the same key is presented again.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import {
  deviceIdSchema,
  FleetError,
  fromBase64,
  hardwareClassSchema,
  keyIdOf,
  tagsSchema,
  toBase64,
  type Signer,
} from '@fleet/protocol';
import { generateKeyPairNative, nativeSigner, writeFileAtomic } from '@fleet/protocol/node';

const identitySchema = z.strictObject({
  schemaVersion: z.literal(1),
  deviceId: deviceIdSchema,
  publicKey: z.string().max(64),
  secretKey: z.string().max(128),
  hardware: hardwareClassSchema,
  tags: tagsSchema,
  enrolled: z
    .strictObject({
      controlPlaneUrl: z.string().max(2048),
      mqttUrl: z.string().max(2048).nullable(),
      at: z.string(),
    })
    .nullable(),
});
export type StoredIdentity = z.infer<typeof identitySchema>;

export interface DeviceIdentity {
  stored: StoredIdentity;
  publicKey: Uint8Array;
  signer: Signer;
}

export interface IdentityStore {
  /** The saved identity, or a new key pair saved for `init` when there is none. */
  /** `deviceId` null: the saved one, or for a new identity `dev-` and 12 hex digits of the key id. */
  loadOrCreate(init: {
    deviceId: string | null;
    hardware: string;
    tags: Record<string, string>;
  }): Promise<DeviceIdentity>;
  markEnrolled(
    identity: DeviceIdentity,
    enrolled: NonNullable<StoredIdentity['enrolled']>,
  ): Promise<DeviceIdentity>;
  /** The pinned trust root envelope bytes, or null before enrolment. */
  loadTrustRoot(): Promise<Uint8Array | null>;
  saveTrustRoot(envelope: Uint8Array): Promise<void>;
}

export function createIdentityStore(dataDir: string): IdentityStore {
  const identityPath = join(dataDir, 'identity.json');
  const rootPath = join(dataDir, 'trust-root.json');

  async function toIdentity(stored: StoredIdentity): Promise<DeviceIdentity> {
    const publicKey = fromBase64(stored.publicKey);
    const keyId = await keyIdOf(publicKey);
    let signer: Signer;
    try {
      // node:crypto signs each message about 100x faster than tweetnacl; it also
      // checks that the secret key's public half is the stored public key.
      signer = nativeSigner({ keyId, secretKey: fromBase64(stored.secretKey) });
    } catch (error) {
      throw new FleetError(
        'AGENT_STATE_CORRUPT',
        `${identityPath}: the device key is damaged (${(error as Error).message})`,
      );
    }
    return { stored, publicKey, signer };
  }

  function parseStored(text: string): StoredIdentity {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new FleetError('AGENT_STATE_CORRUPT', `${identityPath}: not JSON`);
    }
    const parsed = identitySchema.safeParse(json);
    if (!parsed.success)
      throw new FleetError(
        'AGENT_STATE_CORRUPT',
        `${identityPath}: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
      );
    return parsed.data;
  }

  async function save(stored: StoredIdentity): Promise<void> {
    await writeFileAtomic(identityPath, JSON.stringify(stored), { mode: 0o600 });
  }

  return {
    async loadOrCreate(init) {
      const text = await readFile(identityPath, 'utf8').catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return null;
        throw error;
      });
      if (text !== null) {
        const stored = parseStored(text);
        if (init.deviceId !== null && stored.deviceId !== init.deviceId) {
          throw new FleetError(
            'AGENT_CONFIG',
            `${identityPath} belongs to device ${stored.deviceId}, not ${init.deviceId}; use another data dir`,
          );
        }
        return toIdentity(stored);
      }
      const pair = generateKeyPairNative();
      const keyId = await keyIdOf(pair.publicKey);
      const stored: StoredIdentity = {
        schemaVersion: 1,
        deviceId: init.deviceId ?? `dev-${keyId.slice(0, 12)}`,
        publicKey: toBase64(pair.publicKey),
        secretKey: toBase64(pair.secretKey),
        hardware: init.hardware,
        tags: init.tags,
        enrolled: null,
      };
      await save(stored);
      return toIdentity(stored);
    },
    async markEnrolled(identity, enrolled) {
      const stored = { ...identity.stored, enrolled };
      await save(stored);
      return { ...identity, stored };
    },
    async loadTrustRoot() {
      return readFile(rootPath).then(
        (bytes) => new Uint8Array(bytes),
        (error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') return null;
          throw error;
        },
      );
    },
    saveTrustRoot: (envelope) => writeFileAtomic(rootPath, envelope),
  };
}
