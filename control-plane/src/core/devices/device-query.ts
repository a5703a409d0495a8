/**
 * The device listing's filters and its keyset pagination cursor. Devices are
 * listed in id order; the cursor is the last id of the page (opaque,
 * base64url), so a page costs one index range scan however deep it is.
 */
import { z } from 'zod';
import { deviceIdSchema, tagKeySchema, tagValueSchema } from '@fleet/protocol';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

export const DEVICE_STATUSES = ['online', 'offline', 'revoked'] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

export interface DeviceQuery {
  /** Every tag must match (`site=berlin`). */
  tags: Record<string, string>;
  hardware?: string;
  status?: DeviceStatus;
  lastSeenBefore?: Date;
  lastSeenAfter?: Date;
  limit: number;
  /** Devices with ids after this one. */
  afterId?: string;
}

export function encodeCursor(lastId: string): string {
  return Buffer.from(lastId, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string | null {
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  return deviceIdSchema.safeParse(id).success ? id : null;
}

/** `k=v` into a pair; null when it is not one valid tag. */
export function parseTagFilter(text: string): [string, string] | null {
  const at = text.indexOf('=');
  if (at < 1) return null;
  const key = text.slice(0, at);
  const value = text.slice(at + 1);
  return tagKeySchema.safeParse(key).success && tagValueSchema.safeParse(value).success
    ? [key, value]
    : null;
}

export const deviceStatusSchema = z.enum(DEVICE_STATUSES);
