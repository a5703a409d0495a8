/**
 * Timestamps on the wire are ISO 8601 UTC strings; the code compares epoch
 * milliseconds. Time is always passed in (`nowMs`), never read here.
 */
import { z } from 'zod';
import { FleetError } from '../errors.ts';

/** An ISO 8601 UTC timestamp such as `2026-11-26T20:00:00Z` or with milliseconds. */
export const isoTimestampSchema = z.iso.datetime({ offset: false });

export function parseIsoMs(text: string, what: string): number {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new FleetError('MALFORMED', `${what} is not a timestamp: ${text}`);
  return ms;
}

/** Throws EXPIRED when `expires` is at or before `nowMs`. */
export function assertNotExpired(expires: string, nowMs: number, what: string): void {
  if (parseIsoMs(expires, `${what} expiry`) <= nowMs) {
    throw new FleetError(
      'EXPIRED',
      `${what} expired at ${expires} (now ${new Date(nowMs).toISOString()}); it is stale and must be refreshed`,
    );
  }
}
