/**
 * Bundle verification as ordered, named steps (TUF 5.4, Uptane 5.4.4.x, small):
 *
 *   1. size caps            whole file and manifest envelope (THREATS 14)
 *   2. container            header, envelope bounds (nothing decoded yet)
 *   3. root freshness       the trust root itself has not expired (THREATS 10)
 *   4. signatures           threshold of distinct bundle-role keys over the exact
 *                           manifest bytes (THREATS 1-4, 6)
 *   5. manifest             strict schema, safe part names (THREATS 16); only
 *                           authenticated bytes are parsed
 *   6. expiry               (THREATS 10)
 *   7. release              above the installed release counter (THREATS 9)
 *   8. hardware, device     (THREATS 8)
 *   9. agent version        the bundle's minimum agent version
 *  10. part sizes           per part and in total, before any download (THREATS 24)
 *  11. layout               the parts fill the file exactly (THREATS 14, 17)
 *  12. parts                stored length and SHA-256, then bounded inflate,
 *                           then uncompressed SHA-256 (THREATS 2, 12, 15)
 *
 * Not one byte is decompressed before step 4 holds. A manifest that passed steps
 * 3-10 is a `VerifiedManifest`; `readPart` refuses anything else, so the agent
 * can verify a manifest first and fetch parts later without skipping a step.
 */
import semver from 'semver';
import { FleetError } from '../errors.ts';
import { parseJsonBytes } from '../encoding/json.ts';
import { assertNotExpired } from '../encoding/time.ts';
import { parseEnvelope, verifyThreshold } from '../crypto/envelope.ts';
import { sha256Hex } from '../crypto/sha256.ts';
import { assertRootFresh, roleRule, type TrustedRoot } from '../trust/root.ts';
import {
  DEFAULT_BUNDLE_LIMITS,
  readContainer,
  splitParts,
  type BundleLimits,
} from './container.ts';
import { defaultInflate, type BoundedInflate } from './inflate.ts';
import { MANIFEST_PAYLOAD_TYPE, parseManifest, type Manifest } from './manifest.ts';

export interface VerifyOptions {
  /** The trust root the verifier has pinned (after any rotations). */
  root: TrustedRoot;
  /** One reference time for the whole check, in epoch ms (tuf-js fixes it the same way). */
  nowMs: number;
  /** Release counter of the installed bundle of this model; 0 when none is. */
  installedRelease: number;
  /** The device's hardware class; `null` skips the check (tools only, never an agent). */
  hardwareClass: string | null;
  /** The device's id; when set, a manifest restricted to other devices is refused. */
  deviceId?: string;
  /** The verifying agent's version; when set, `minAgentVersion` is enforced. */
  agentVersion?: string;
  limits?: Partial<BundleLimits>;
  /** Decompressor; the platform's native one by default. */
  inflate?: BoundedInflate;
}

export interface VerifiedManifest {
  readonly manifest: Manifest;
  /** The exact signed manifest bytes. */
  readonly manifestBytes: Uint8Array;
  /** The signed envelope as received, to store beside the installed model. */
  readonly envelopeBytes: Uint8Array;
  /** Ids of the bundle-role keys whose signatures counted. */
  readonly signedBy: readonly string[];
}

export interface VerifiedBundle extends VerifiedManifest {
  /** Uncompressed part bytes by name, every one checked against the manifest. */
  readonly parts: ReadonlyMap<string, Uint8Array>;
}

/** Manifests that went through every step; `readPart` accepts nothing else. */
const verifiedManifests = new WeakSet<VerifiedManifest>();

interface ManifestCheck {
  readonly envelopeBytes: Uint8Array;
  readonly options: VerifyOptions;
  readonly limits: BundleLimits;
  manifestBytes?: Uint8Array;
  signedBy?: string[];
  manifest?: Manifest;
}

type ManifestStep = (check: ManifestCheck) => void | Promise<void>;

/** Refuses to run a step whose input an earlier step has not produced. */
function needs<T>(value: T | undefined, step: string): T {
  if (value === undefined) throw new Error(`bundle verification step ${step} ran out of order`);
  return value;
}

const manifestSteps: readonly ManifestStep[] = [
  function checkRootFreshness({ options }) {
    assertRootFresh(options.root, options.nowMs);
  },
  async function checkSignatures(check) {
    const envelope = parseEnvelope(
      check.envelopeBytes,
      check.limits.maxManifestBytes,
      'manifest envelope',
    );
    const rule = roleRule(check.options.root, 'bundle', MANIFEST_PAYLOAD_TYPE);
    const { payload, signedBy } = await verifyThreshold(envelope, rule);
    check.manifestBytes = payload;
    check.signedBy = signedBy;
  },
  function parseSignedManifest(check) {
    const bytes = needs(check.manifestBytes, 'parseSignedManifest');
    check.manifest = parseManifest(
      parseJsonBytes(bytes, check.limits.maxManifestBytes, 'manifest'),
    );
  },
  function checkExpiry({ manifest, options }) {
    const m = needs(manifest, 'checkExpiry');
    assertNotExpired(m.expires, options.nowMs, `bundle ${m.name}@${m.version}`);
  },
  function checkRelease({ manifest, options }) {
    const m = needs(manifest, 'checkRelease');
    if (m.release <= options.installedRelease) {
      throw new FleetError(
        'ROLLBACK',
        `release ${m.release} of ${m.name} is not above the installed release ${options.installedRelease}`,
      );
    }
  },
  function checkHardware({ manifest, options }) {
    const m = needs(manifest, 'checkHardware');
    if (options.hardwareClass !== null && !m.hardware.includes(options.hardwareClass)) {
      throw new FleetError(
        'WRONG_HARDWARE',
        `bundle is for ${m.hardware.join(', ')}, not ${options.hardwareClass}`,
      );
    }
  },
  function checkDevice({ manifest, options }) {
    const m = needs(manifest, 'checkDevice');
    if (options.deviceId !== undefined && m.devices && !m.devices.includes(options.deviceId)) {
      throw new FleetError('WRONG_DEVICE', `bundle is not addressed to device ${options.deviceId}`);
    }
  },
  function checkAgentVersion({ manifest, options }) {
    const m = needs(manifest, 'checkAgentVersion');
    if (options.agentVersion !== undefined && semver.lt(options.agentVersion, m.minAgentVersion)) {
      throw new FleetError(
        'AGENT_TOO_OLD',
        `bundle needs agent ${m.minAgentVersion} or later, this is ${options.agentVersion}`,
      );
    }
  },
  function checkPartSizes({ manifest, limits }) {
    const m = needs(manifest, 'checkPartSizes');
    let total = 0;
    for (const part of m.parts) {
      if (part.uncompressedLength > limits.maxPartBytes) {
        throw new FleetError(
          'PART_TOO_LARGE',
          `part ${part.name} is ${part.uncompressedLength} bytes, the cap is ${limits.maxPartBytes}`,
        );
      }
      total += part.uncompressedLength;
    }
    if (total > limits.maxTotalUncompressedBytes) {
      throw new FleetError(
        'PART_TOO_LARGE',
        `parts need ${total} bytes, the device allows ${limits.maxTotalUncompressedBytes}`,
      );
    }
  },
];

function limitsOf(options: VerifyOptions): BundleLimits {
  return { ...DEFAULT_BUNDLE_LIMITS, ...options.limits };
}

/**
 * Verifies a manifest envelope on its own (steps 3-10), e.g. from a deploy
 * command before any block is downloaded.
 */
export async function verifyManifestEnvelope(
  envelopeBytes: Uint8Array,
  options: VerifyOptions,
): Promise<VerifiedManifest> {
  const limits = limitsOf(options);
  if (envelopeBytes.length > limits.maxManifestBytes) {
    throw new FleetError(
      'TOO_LARGE',
      `manifest envelope is ${envelopeBytes.length} bytes, the cap is ${limits.maxManifestBytes}`,
    );
  }
  const check: ManifestCheck = { envelopeBytes, options, limits };
  for (const step of manifestSteps) await step(check);
  const verified: VerifiedManifest = {
    manifest: needs(check.manifest, 'verifyManifestEnvelope'),
    manifestBytes: needs(check.manifestBytes, 'verifyManifestEnvelope'),
    envelopeBytes,
    signedBy: needs(check.signedBy, 'verifyManifestEnvelope'),
  };
  verifiedManifests.add(verified);
  return verified;
}

/**
 * Checks one part's stored bytes against a verified manifest and returns its
 * uncompressed bytes (step 12). The stored hash is checked first, so only
 * authenticated bytes ever reach the decompressor.
 */
export async function readPart(
  verified: VerifiedManifest,
  name: string,
  stored: Uint8Array,
  inflate: BoundedInflate = defaultInflate(),
): Promise<Uint8Array> {
  if (!verifiedManifests.has(verified)) {
    throw new Error('readPart needs a manifest returned by verifyManifestEnvelope');
  }
  const entry = verified.manifest.parts.find((p) => p.name === name);
  if (entry === undefined) throw new FleetError('MALFORMED', `the manifest lists no part ${name}`);
  if (stored.length !== entry.length) {
    throw new FleetError(
      'PART_LENGTH',
      `part ${name} is ${stored.length} bytes, the manifest signs ${entry.length}`,
    );
  }
  if ((await sha256Hex(stored)) !== entry.sha256) {
    throw new FleetError('PART_HASH', `part ${name} does not match its signed SHA-256`);
  }
  const data =
    entry.compression === 'none' ? stored : await inflate(stored, entry.uncompressedLength);
  if ((await sha256Hex(data)) !== entry.uncompressedSha256) {
    throw new FleetError('PART_HASH', `part ${name} does not inflate to its signed SHA-256`);
  }
  return data;
}

/** Verifies a whole bundle file (steps 1-12) and returns its checked parts. */
export async function verifyBundle(
  bundle: Uint8Array,
  options: VerifyOptions,
): Promise<VerifiedBundle> {
  const { envelopeBytes, body } = readContainer(bundle, limitsOf(options));
  const verified = await verifyManifestEnvelope(envelopeBytes, options);
  const stored = splitParts(verified.manifest, body);
  const inflate = options.inflate ?? defaultInflate();
  const parts = new Map<string, Uint8Array>();
  for (const [i, entry] of verified.manifest.parts.entries()) {
    parts.set(entry.name, await readPart(verified, entry.name, stored[i]!, inflate));
  }
  return { ...verified, parts };
}

/** The bundle's content address: hex SHA-256 of the whole file. */
export function bundleIdOf(bundle: Uint8Array): Promise<string> {
  return sha256Hex(bundle);
}
