/**
 * What the API returns: zod schemas (documented in the OpenAPI document) and
 * the mappers from database rows to them. Rows are never sent as they are.
 */
import { z } from '@hono/zod-openapi';
import type { DeviceRow } from '../db/device-store.ts';
import type { ModelVersionRow, TrustRootRow } from '../db/model-store.ts';
import type { OperatorTokenRow } from '../db/operator-token-store.ts';

const time = z.string().openapi({ format: 'date-time', example: '2026-11-26T12:00:00.000Z' });
const tagMap = z.record(z.string(), z.string()).openapi({ example: { site: 'berlin' } });

export const deviceView = z
  .object({
    id: z.string().openapi({ example: 'pump-17' }),
    keyId: z.string(),
    hardware: z.string().openapi({ example: 'rpi4' }),
    tags: tagMap,
    agentVersion: z.string(),
    status: z.enum(['online', 'offline', 'revoked']),
    enrolledAt: time,
    lastSeenAt: time.nullable(),
    revokedAt: time.nullable(),
    model: z
      .object({
        name: z.string(),
        version: z.string(),
        release: z.number().int(),
        bundleId: z.string(),
      })
      .nullable(),
    updateState: z.string().nullable(),
    labelledSamples: z.object({ count: z.number().int(), at: time }).nullable().openapi({
      description:
        'Labelled samples the device last reported holding (health feedback.stored), and when that count changed; null: never reported',
    }),
  })
  .openapi('Device');

export function toDeviceView(row: DeviceRow): z.infer<typeof deviceView> {
  const status = row.revokedAt ? 'revoked' : row.online ? 'online' : 'offline';
  const model =
    row.modelName && row.modelVersion && row.modelRelease !== null && row.bundleId
      ? {
          name: row.modelName,
          version: row.modelVersion,
          release: row.modelRelease,
          bundleId: row.bundleId,
        }
      : null;
  return {
    id: row.id,
    keyId: row.keyId,
    hardware: row.hardware,
    tags: row.tags,
    agentVersion: row.agentVersion,
    status,
    enrolledAt: row.enrolledAt.toISOString(),
    lastSeenAt: row.lastSeenAt?.toISOString() ?? null,
    revokedAt: row.revokedAt?.toISOString() ?? null,
    model,
    updateState: row.updateState,
    labelledSamples:
      row.labelledSamples !== null && row.labelledSamplesAt
        ? { count: row.labelledSamples, at: row.labelledSamplesAt.toISOString() }
        : null,
  };
}

export const modelVersionView = z
  .object({
    name: z.string().openapi({ example: 'mnist-2nn' }),
    version: z.string().openapi({ example: '1.2.0' }),
    release: z.number().int(),
    bundleId: z.string().openapi({ description: 'SHA-256 of the bundle file' }),
    sizeBytes: z.number().int(),
    signedBy: z.array(z.string()),
    parentRelease: z.number().int().nullable(),
    uploadedBy: z.string(),
    uploadedAt: time,
    manifest: z.record(z.string(), z.unknown()).openapi({ description: 'The verified manifest' }),
  })
  .openapi('ModelVersion');

export function toModelVersionView(row: ModelVersionRow): z.infer<typeof modelVersionView> {
  return {
    name: row.name,
    version: row.version,
    release: row.release,
    bundleId: row.bundleId,
    sizeBytes: row.sizeBytes,
    signedBy: row.signedBy,
    parentRelease: row.parentRelease,
    uploadedBy: row.uploadedBy,
    uploadedAt: row.uploadedAt.toISOString(),
    manifest: row.manifest,
  };
}

/** One step of a lineage walk: what produced this version, from which parent. */
export const lineageStepView = z
  .object({
    version: z.string(),
    release: z.number().int(),
    bundleId: z.string(),
    parentRelease: z.number().int().nullable(),
    lineage: z.unknown().openapi({ description: 'The manifest’s lineage field' }),
    quantization: z.unknown().openapi({ description: 'The manifest’s quantization report' }),
    uploadedAt: time,
  })
  .openapi('LineageStep');

export function toLineageStep(row: ModelVersionRow): z.infer<typeof lineageStepView> {
  return {
    version: row.version,
    release: row.release,
    bundleId: row.bundleId,
    parentRelease: row.parentRelease,
    lineage: row.manifest.lineage ?? null,
    quantization: row.manifest.quantization ?? null,
    uploadedAt: row.uploadedAt.toISOString(),
  };
}

export const trustRootView = z
  .object({
    version: z.number().int(),
    expires: time,
    envelope: z.string().openapi({ description: 'The signed root envelope, base64' }),
    installedAt: time,
  })
  .openapi('TrustRoot');

export const toTrustRootView = (row: TrustRootRow): z.infer<typeof trustRootView> => ({
  version: row.version,
  expires: row.expires,
  envelope: row.envelope,
  installedAt: row.installedAt.toISOString(),
});

export const tokenView = z
  .object({
    id: z.string(),
    name: z.string(),
    role: z.string(),
    createdBy: z.string(),
    createdAt: time,
    revokedAt: time.nullable(),
  })
  .openapi('ApiToken');

export const toTokenView = (row: OperatorTokenRow): z.infer<typeof tokenView> => ({
  id: row.id,
  name: row.name,
  role: row.role,
  createdBy: row.createdBy,
  createdAt: row.createdAt.toISOString(),
  revokedAt: row.revokedAt?.toISOString() ?? null,
});
