/**
 * The device listing's queries. Each combination of filters (how many tags,
 * whether hardware, status, last-seen bounds and a cursor are given) is one
 * prepared statement with placeholders, built once: building and mapping a
 * drizzle query cost more CPU than PostgreSQL spends answering it (measured
 * 2.3 ms against 1.3 ms per page of 50 in bench/README.md), and the listing is
 * the API's busiest query.
 *
 * With a tag filter the first tag drives: an index range scan of device_tags
 * (key, value, device_id) in device id order, or (key, value, hardware,
 * device_id) when the hardware class is given too, so the range holds exactly
 * the devices of that tag and class; each hit probes devices once
 * (LATERAL ... OFFSET $zero keeps the planner from pulling the subquery up
 * into a merge join that walks the devices primary key from the start, 4,000
 * to 8,000 rows per page with 100,000 devices), so a page reads about as many
 * rows as it matches. The offset is a bound parameter because drizzle drops a
 * literal `.offset(0)` from the SQL, and any OFFSET clause is the fence.
 * Further tags are primary-key probes of device_tags.
 */
import {
  and,
  asc,
  eq,
  exists,
  getTableColumns,
  gt,
  isNotNull,
  isNull,
  lt,
  sql,
  type SQL,
} from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import { deviceTags, devices } from '../../db/schema/index.ts';
import type { DeviceQuery } from '../../core/devices/device-query.ts';
import type { Database } from './database.ts';
import { deviceViewJson } from './device-view-sql.ts';

type DeviceRow = typeof devices.$inferSelect;
type Prepared = { execute(params: Record<string, unknown>): Promise<unknown[]> };

/** Prepared shapes kept per process; far more than the filter combinations that exist. */
const MAX_SHAPES = 2_000;

export interface Shape {
  tags: number;
  hardware: boolean;
  status: DeviceQuery['status'] | 'any';
  before: boolean;
  after: boolean;
  cursor: boolean;
}

export function shapeOf(query: DeviceQuery): Shape {
  return {
    tags: Object.keys(query.tags).length,
    hardware: query.hardware !== undefined,
    status: query.status ?? 'any',
    before: query.lastSeenBefore !== undefined,
    after: query.lastSeenAfter !== undefined,
    cursor: query.afterId !== undefined,
  };
}

export function paramsOf(query: DeviceQuery): Record<string, unknown> {
  const params: Record<string, unknown> = { limit: query.limit, zero: 0 };
  Object.entries(query.tags).forEach(([key, value], i) => {
    params[`k${i}`] = key;
    params[`v${i}`] = value;
  });
  if (query.hardware !== undefined) params.hw = query.hardware;
  if (query.lastSeenBefore) params.before = query.lastSeenBefore.toISOString();
  if (query.lastSeenAfter) params.after = query.lastSeenAfter.toISOString();
  if (query.afterId !== undefined) params.afterId = query.afterId;
  return params;
}

const placeholder = (name: string) => sql.placeholder(name);

/**
 * Filters on the devices table itself, and tags after the first as probes.
 * With a tag, the hardware class is a condition of the tag scan instead.
 */
function deviceFilters(db: Database, shape: Shape): SQL[] {
  const where: SQL[] = [];
  if (shape.hardware && shape.tags === 0) where.push(eq(devices.hardware, placeholder('hw')));
  if (shape.status === 'revoked') where.push(isNotNull(devices.revokedAt));
  if (shape.status === 'online')
    where.push(and(eq(devices.online, true), isNull(devices.revokedAt))!);
  if (shape.status === 'offline')
    where.push(and(eq(devices.online, false), isNull(devices.revokedAt))!);
  if (shape.before) where.push(lt(devices.lastSeenAt, placeholder('before')));
  if (shape.after) where.push(gt(devices.lastSeenAt, placeholder('after')));
  for (let i = 1; i < shape.tags; i++) {
    const t = alias(deviceTags, `tag_probe_${i}`);
    where.push(
      exists(
        db
          .select({ one: sql`1` })
          .from(t)
          .where(
            and(
              eq(t.key, placeholder(`k${i}`)),
              eq(t.value, placeholder(`v${i}`)),
              eq(t.deviceId, devices.id),
            ),
          ),
      ),
    );
  }
  return where;
}

/** The query of one filter shape, with placeholders for `paramsOf`; exported for its tests. */
export function shapeQuery(db: Database, shape: Shape) {
  const where = deviceFilters(db, shape);
  if (shape.tags === 0) {
    if (shape.cursor) where.push(gt(devices.id, placeholder('afterId')));
    return db
      .select()
      .from(devices)
      .where(and(...where))
      .orderBy(asc(devices.id))
      .limit(placeholder('limit'));
  }
  const t = alias(deviceTags, 'tag_scan');
  const device = db
    .select()
    .from(devices)
    .where(and(eq(devices.id, t.deviceId), ...where))
    .offset(placeholder('zero'))
    .as('devices');
  // The subquery is named `devices` so the outer select can name the table's
  // own columns ("devices"."id" resolves to the subquery's column), and
  // nothing of tag_scan is mapped. drizzle maps a plain column about twice as
  // fast as a subquery's proxied one: 1.34 -> 0.96 ms of CPU per page of 51
  // rows (bench/README.md).
  return db
    .select(getTableColumns(devices))
    .from(t)
    .innerJoinLateral(device, sql`true`)
    .where(
      and(
        eq(t.key, placeholder('k0')),
        eq(t.value, placeholder('v0')),
        shape.hardware ? eq(t.hardware, placeholder('hw')) : undefined,
        shape.cursor ? gt(t.deviceId, placeholder('afterId')) : undefined,
      ),
    )
    .orderBy(asc(t.deviceId))
    .limit(placeholder('limit'));
}

/** The rows of one shape's query as (id, view JSON text), in id order: see device-view-sql.ts. */
export function shapeViewQuery(db: Database, shape: Shape) {
  const page = shapeQuery(db, shape).as('page');
  return db
    .select({ id: sql<string>`"page"."id"`, view: deviceViewJson('page') })
    .from(page)
    .orderBy(sql`"page"."id"`);
}

/** Prepares each filter shape once, with `build`, and runs the query's statement. */
function createShapeRunner<Row>(
  db: Database,
  prefix: string,
  build: (db: Database, shape: Shape) => { prepare(name: string): Prepared },
): (query: DeviceQuery) => Promise<Row[]> {
  const statements = new Map<string, Prepared>();
  return async (query) => {
    const shape = shapeOf(query);
    const key = JSON.stringify(shape);
    let statement = statements.get(key);
    if (!statement) {
      if (statements.size >= MAX_SHAPES) statements.clear();
      statement = build(db, shape).prepare(
        `${prefix}_${statements.size}_${Date.now().toString(36)}`,
      );
      statements.set(key, statement);
    }
    return (await statement.execute(paramsOf(query))) as Row[];
  };
}

export function createDeviceLister(db: Database): (query: DeviceQuery) => Promise<DeviceRow[]> {
  return createShapeRunner<DeviceRow>(db, 'fleet_devices', shapeQuery);
}

/** Like `createDeviceLister`, but each row is its API view as JSON text. */
export function createDeviceViewLister(
  db: Database,
): (query: DeviceQuery) => Promise<{ id: string; view: string }[]> {
  return createShapeRunner(db, 'fleet_device_views', shapeViewQuery);
}
