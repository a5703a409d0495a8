ALTER TABLE "device_tags" ADD COLUMN "hardware" text;--> statement-breakpoint
-- Rebuilt from devices.tags, the value shown: before this migration a tag
-- edit changed devices.tags but not these rows, so listings by tag missed
-- re-tagged devices (and found them under their old tags).
DELETE FROM "device_tags";--> statement-breakpoint
INSERT INTO "device_tags" ("device_id", "key", "value", "hardware") SELECT d."id", t."key", t."value", d."hardware" FROM "devices" d, jsonb_each_text(d."tags") t;--> statement-breakpoint
ALTER TABLE "device_tags" ALTER COLUMN "hardware" SET NOT NULL;--> statement-breakpoint
CREATE INDEX "device_tags_hardware_idx" ON "device_tags" USING btree ("key","value","hardware","device_id");
