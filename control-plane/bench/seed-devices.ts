/**
 * Seeds the bench fleet straight into the `devices` and `device_tags` tables with drizzle, in
 * batches of 2,000 rows, then runs VACUUM ANALYZE: the planner sees the real
 * table, and the visibility map is set as autovacuum would have set it on a
 * fleet that was not inserted a moment ago (otherwise each index-only scan of
 * device_tags fetches every heap row it passes). The first devices get the real ed25519 public keys of the MQTT bench
 * clients; the rest get random bytes (nothing verifies a signature for them).
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { toBase64 } from '@fleet/protocol';
import type { Database } from '../src/adapters/db/database.ts';
import { deviceTags, devices } from '../src/db/schema/index.ts';
import { HARDWARE, RINGS, SITES, benchDeviceId, pick, seededRandom } from './bench-fleet.ts';

/** A device key the MQTT clients hold the secret half of. */
export interface RealDeviceKey {
  publicKey: Uint8Array;
  keyId: string;
}

export interface SeedOptions {
  count: number;
  /** Keys for devices 0..realKeys.length-1. */
  realKeys: readonly RealDeviceKey[];
  batchSize?: number;
  onProgress?: (seeded: number, total: number) => void;
}

const DAY_MS = 86_400_000;

function deviceRow(index: number, realKey: RealDeviceKey | undefined, random: () => number) {
  const id = benchDeviceId(index);
  const enrolledAt = new Date(Date.UTC(2026, 0, 1) + Math.floor(random() * 300 * DAY_MS));
  const online = random() < 0.6;
  return {
    id,
    idFolded: id.toLowerCase(),
    publicKey: toBase64(realKey?.publicKey ?? randomBytes(32)),
    keyId: realKey?.keyId ?? randomBytes(32).toString('hex'),
    hardware: pick(HARDWARE, random),
    tags: { site: pick(SITES, random), ring: pick(RINGS, random) },
    agentVersion: '0.1.0',
    enrolledAt,
    online,
    lastSeenAt: new Date(Date.now() - Math.floor(random() * (online ? 60_000 : 7 * DAY_MS))),
  };
}

/** Inserts `count` devices and analyzes the table; resolves to the seeding time. */
export async function seedDevices(db: Database, options: SeedOptions): Promise<number> {
  const batchSize = options.batchSize ?? 2000;
  const random = seededRandom(42);
  const t0 = performance.now();
  for (let start = 0; start < options.count; start += batchSize) {
    const end = Math.min(start + batchSize, options.count);
    const rows = [];
    for (let i = start; i < end; i++) rows.push(deviceRow(i, options.realKeys[i], random));
    await db.insert(devices).values(rows);
    // The tag index the listing walks (the registry writes both on enrolment).
    const tags = rows.flatMap((r) =>
      Object.entries(r.tags).map(([key, value]) => ({
        deviceId: r.id,
        key,
        value,
        hardware: r.hardware,
      })),
    );
    await db.insert(deviceTags).values(tags);
    options.onProgress?.(end, options.count);
  }
  await db.execute(sql`VACUUM ANALYZE devices`);
  await db.execute(sql`VACUUM ANALYZE device_tags`);
  return performance.now() - t0;
}
