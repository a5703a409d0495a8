/**
 * The bundle manifest: what a bundle is, who may run it, and the SHA-256 and
 * lengths of every part, compressed and not. It travels as the signed payload
 * of a DSSE envelope at the head of the bundle.
 */
import semver from 'semver';
import { z } from 'zod';
import { FleetError } from '../errors.ts';
import { isoTimestampSchema } from '../encoding/time.ts';
import { KLL_MAX_K, KLL_MIN_K } from '../drift/kll-levels.ts';
import { manifestTrainingSchema } from '../fl/training-spec.ts';

export const MANIFEST_PAYLOAD_TYPE = 'application/vnd.fleet.bundle-manifest+json';
export const MANIFEST_SCHEMA_VERSION = 1;
export const MAX_PARTS = 32;

const sha256HexSchema = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 is 64 lowercase hex');
const byteLengthSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const semverSchema = z
  .string()
  .max(64)
  .refine((v) => semver.valid(v) === v, 'not a semantic version (e.g. 1.4.0)');

/** Model names: lowercase, digits, `.`, `_`, `-`; they become path and topic segments. */
export const modelNameSchema = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'bad model name');
export const hardwareClassSchema = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'bad class');
export const deviceIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'bad id');

/**
 * Part names become file names on the device: one lowercase path segment, never
 * `.`/`..`, no separators, no absolute or drive paths (THREATS 16).
 */
const PART_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export function isSafePartName(name: string): boolean {
  return PART_NAME.test(name);
}

export function assertSafePartName(name: string): void {
  if (!isSafePartName(name)) {
    throw new FleetError(
      'PART_NAME',
      `part name ${JSON.stringify(name.slice(0, 80))} is not one safe path segment ([a-z0-9][a-z0-9._-]*)`,
    );
  }
}

export const COMPRESSIONS = ['deflate-raw', 'none'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

export const partEntrySchema = z.strictObject({
  /** Checked by `assertSafePartName` (PART_NAME), not here, so the error says what it is. */
  name: z.string().max(256),
  mediaType: z.string().max(128),
  compression: z.enum(COMPRESSIONS),
  /** Length and SHA-256 of the bytes as stored in the bundle. */
  length: byteLengthSchema,
  sha256: sha256HexSchema,
  /** Length and SHA-256 after decompression: decompression stops at this length. */
  uncompressedLength: byteLengthSchema,
  uncompressedSha256: sha256HexSchema,
});
export type PartEntry = z.infer<typeof partEntrySchema>;

const tensorSpecSchema = z.strictObject({
  name: z.string().min(1).max(128),
  dtype: z.enum(['float32', 'int8', 'uint8', 'int32', 'int64', 'bool']),
  /** Dimensions; a string names a free dimension such as `batch`. */
  shape: z.array(z.union([z.number().int().nonnegative(), z.string().max(32)])).max(8),
});

const jsonScalarSchema = z.union([z.string().max(256), z.number().finite(), z.boolean()]);

export const lineageSchema = z.strictObject({
  producer: z.strictObject({
    kind: z.enum(['train-reference', 'import', 'federated-round', 'manual']),
    roundId: z.string().max(64).optional(),
    participants: z.number().int().nonnegative().optional(),
  }),
  parent: z.strictObject({ version: semverSchema, release: z.number().int().min(1) }).optional(),
  datasetDigest: sha256HexSchema.optional(),
  codeRevision: z.string().max(64).optional(),
  hyperparameters: z.record(z.string().max(64), jsonScalarSchema).optional(),
});

/** Most signals a bundle may monitor. */
export const DRIFT_MAX_SIGNALS = 64;
/** Largest model input a drift signal may index, and a PCA basis may span. */
export const DRIFT_MAX_INPUT_SIZE = 65_536;
/** Most principal components a drift profile may carry. */
export const DRIFT_MAX_PCA_COMPONENTS = 64;
/** Signal names: they key sketches in flushes and scores in the control plane. */
export const DRIFT_SIGNAL_NAME = /^[a-z0-9_.-]{1,64}$/;

/**
 * Where a monitored value comes from, per sampled inference (drift/signals.ts
 * computes it): a model input feature, the confidence (max probability), the
 * predicted class (argmax, categorical), the projection on a principal
 * component of the training inputs, or the PCA reconstruction error.
 */
export const driftSourceSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('input'),
    index: z
      .number()
      .int()
      .nonnegative()
      .max(DRIFT_MAX_INPUT_SIZE - 1),
  }),
  z.strictObject({ type: z.literal('confidence') }),
  z.strictObject({ type: z.literal('predicted-class') }),
  z.strictObject({
    type: z.literal('pca'),
    component: z
      .number()
      .int()
      .nonnegative()
      .max(DRIFT_MAX_PCA_COMPONENTS - 1),
  }),
  z.strictObject({ type: z.literal('pca-error') }),
]);
export type DriftSource = z.infer<typeof driftSourceSchema>;

/** The one categorical source; every other source is numeric. */
export function driftKindOf(source: DriftSource): 'numeric' | 'categorical' {
  return source.type === 'predicted-class' ? 'categorical' : 'numeric';
}

export const driftSignalSchema = z.strictObject({
  name: z.string().regex(DRIFT_SIGNAL_NAME, 'a signal name is 1-64 of [a-z0-9_.-]'),
  kind: z.enum(['numeric', 'categorical']),
  source: driftSourceSchema,
});
export type DriftSignalSpec = z.infer<typeof driftSignalSchema>;

/**
 * The manifest's `drift` field: what devices monitor and how (ARCHITECTURE
 * "Drift"). The baselines and the PCA basis live in the part it names
 * (drift/profile.ts); the manifest signs that part's hash.
 */
export const manifestDriftSchema = z
  .strictObject({
    /** The bundle part holding the drift profile, e.g. `drift-profile.bin`. */
    part: z.string().max(256),
    /** Default share of inferences a device samples, in (0, 1]; a rollout may override it. */
    sampleRate: z.number().gt(0).max(1),
    /** A device flushes its sketches at whichever bound it reaches first. */
    flush: z.strictObject({
      maxSamples: z.number().int().min(1).max(1_000_000),
      maxIntervalMs: z
        .number()
        .int()
        .min(1000)
        .max(7 * 86_400_000),
    }),
    /** The KLL k devices sketch numeric signals with. */
    sketchK: z.number().int().min(KLL_MIN_K).max(KLL_MAX_K),
    signals: z.array(driftSignalSchema).min(1).max(DRIFT_MAX_SIGNALS),
  })
  .superRefine((drift, ctx) => {
    const seen = new Set<string>();
    drift.signals.forEach((signal, i) => {
      if (seen.has(signal.name)) {
        ctx.addIssue({ code: 'custom', path: ['signals', i, 'name'], message: 'listed twice' });
      }
      seen.add(signal.name);
      const kind = driftKindOf(signal.source);
      if (signal.kind !== kind) {
        ctx.addIssue({
          code: 'custom',
          path: ['signals', i, 'kind'],
          message: `a ${signal.source.type} signal is ${kind}`,
        });
      }
    });
  });
export type ManifestDrift = z.infer<typeof manifestDriftSchema>;

export const manifestSchema = z.strictObject({
  type: z.literal('fleet-bundle'),
  schemaVersion: z.literal(MANIFEST_SCHEMA_VERSION),
  name: modelNameSchema,
  version: semverSchema,
  /** Monotonic release counter: devices refuse any release at or below the installed one. */
  release: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  hardware: z.array(hardwareClassSchema).min(1).max(32),
  /** When present, only these devices may install the bundle. */
  devices: z.array(deviceIdSchema).min(1).max(256).optional(),
  minAgentVersion: semverSchema,
  issuedAt: isoTimestampSchema,
  expires: isoTimestampSchema,
  io: z
    .strictObject({
      inputs: z.array(tensorSpecSchema).max(16),
      outputs: z.array(tensorSpecSchema).max(16),
    })
    .optional(),
  /** The quantization report; the bundle factory defines its fields. */
  quantization: z.record(z.string().max(64), z.unknown()).optional(),
  lineage: lineageSchema,
  parts: z.array(partEntrySchema).min(1).max(MAX_PARTS),
  /** Drift monitoring: the signals, sampling and flush policy, and the profile part. */
  drift: manifestDriftSchema.optional(),
  /**
   * Federated learning (fl/training-spec.ts): the dense architecture devices
   * train and the part with its start weights (an FTNS tensor set).
   */
  training: manifestTrainingSchema.optional(),
});
export type Manifest = z.infer<typeof manifestSchema>;

/** The fields a caller supplies to pack a bundle; the rest are computed. */
export type ManifestInput = Omit<Manifest, 'type' | 'schemaVersion' | 'parts'>;

/**
 * Parses a manifest strictly (unknown fields refused), then checks part names,
 * the drift field, and that the training field's weights part is in the bundle.
 */
export function parseManifest(json: unknown): Manifest {
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join('.') ?? '';
    throw new FleetError('MALFORMED', `manifest ${where}: ${issue?.message ?? 'invalid'}`);
  }
  const names = new Set<string>();
  for (const part of parsed.data.parts) {
    assertSafePartName(part.name);
    if (names.has(part.name)) throw new FleetError('MALFORMED', `part ${part.name} listed twice`);
    names.add(part.name);
    if (part.compression === 'none' && part.length !== part.uncompressedLength) {
      throw new FleetError('MALFORMED', `stored part ${part.name} has two different lengths`);
    }
  }
  if (parsed.data.drift) checkDriftAgainstManifest(parsed.data.drift, parsed.data);
  const training = parsed.data.training;
  if (training && !names.has(training.weightsPart)) {
    throw new FleetError(
      'MALFORMED',
      `manifest training.weightsPart: ${JSON.stringify(training.weightsPart.slice(0, 80))} is not a part of the bundle`,
    );
  }
  return parsed.data;
}

/** The drift profile part must be in the bundle, and input indices inside the model's input. */
function checkDriftAgainstManifest(drift: ManifestDrift, manifest: Manifest): void {
  if (!manifest.parts.some((part) => part.name === drift.part)) {
    throw new FleetError(
      'MALFORMED',
      `manifest drift.part: ${JSON.stringify(drift.part.slice(0, 80))} is not a part of the bundle`,
    );
  }
  const width = fixedInputWidth(manifest.io?.inputs[0]?.shape);
  if (width === null) return;
  drift.signals.forEach((signal, i) => {
    if (signal.source.type === 'input' && signal.source.index >= width) {
      throw new FleetError(
        'MALFORMED',
        `manifest drift.signals.${i}.source.index: ${signal.source.index} is outside the model input of ${width} features`,
      );
    }
  });
}

/** Features per row of an input shaped [batch, ...fixed dims]; null when a dim is free or absent. */
function fixedInputWidth(shape: readonly (number | string)[] | undefined): number | null {
  if (shape === undefined || shape.length < 2) return null;
  let width = 1;
  for (const dim of shape.slice(1)) {
    if (typeof dim !== 'number') return null;
    width *= dim;
  }
  return width;
}
