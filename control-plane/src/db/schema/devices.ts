/**
 * Enrolled devices. `id` is what the device asked for at enrolment; `id_folded`
 * (lower case) is unique, so two devices can never differ only in case (MQTT
 * client ids and topic segments are case-sensitive; people are not). The
 * connection and model columns are kept current from the device's retained,
 * signed `state` messages and its last will.
 */
import {
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
} from 'drizzle-orm/pg-core';

export const devices = pgTable(
  'devices',
  {
    id: text('id').primaryKey(),
    idFolded: text('id_folded').notNull().unique(),
    /** ed25519 public key, base64. */
    publicKey: text('public_key').notNull(),
    keyId: text('key_id').notNull(),
    hardware: text('hardware').notNull(),
    tags: jsonb('tags').$type<Record<string, string>>().notNull(),
    agentVersion: text('agent_version').notNull(),
    enrolledAt: timestamp('enrolled_at', { withTimezone: true, mode: 'date' }).notNull(),
    revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date' }),
    online: boolean('online').notNull().default(false),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true, mode: 'date' }),
    /** Send time (`ts`) of the last state message applied: older ones are ignored. */
    stateAt: timestamp('state_at', { withTimezone: true, mode: 'date' }),
    modelName: text('model_name'),
    modelVersion: text('model_version'),
    modelRelease: integer('model_release'),
    bundleId: text('bundle_id'),
    updateState: text('update_state'),
    /**
     * Labelled samples the device last said it holds (health `feedback.stored`);
     * null: never reported. Federated rounds skip devices under `minSamples`.
     */
    labelledSamples: integer('labelled_samples'),
    /** When `labelledSamples` last changed (receipt time). */
    labelledSamplesAt: timestamp('labelled_samples_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [
    index('devices_hardware_idx').on(t.hardware, t.id),
    index('devices_last_seen_idx').on(t.lastSeenAt),
    index('devices_online_idx').on(t.online, t.id),
  ],
);

/**
 * The devices' tags once more, one row per tag, so a listing filtered by tag
 * walks exactly the matching devices in id order (primary key key, value,
 * device_id) instead of filtering the whole table: the listing's keyset
 * pagination stays one index range scan at any fleet size. `devices.tags`
 * stays the value shown; both are written in the same transaction.
 */
export const deviceTags = pgTable(
  'device_tags',
  {
    deviceId: text('device_id')
      .notNull()
      .references(() => devices.id, { onDelete: 'cascade' }),
    key: text('key').notNull(),
    value: text('value').notNull(),
    /**
     * The device's hardware class, copied here (it never changes after
     * enrolment) so that a listing by tag and hardware reads one index range
     * of exactly the matching devices, in id order, instead of probing every
     * device with the tag.
     */
    hardware: text('hardware').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.key, t.value, t.deviceId] }),
    index('device_tags_device_idx').on(t.deviceId),
    index('device_tags_hardware_idx').on(t.key, t.value, t.hardware, t.deviceId),
  ],
);
