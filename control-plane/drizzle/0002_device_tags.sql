CREATE TABLE "device_tags" (
	"device_id" text NOT NULL,
	"key" text NOT NULL,
	"value" text NOT NULL,
	CONSTRAINT "device_tags_key_value_device_id_pk" PRIMARY KEY("key","value","device_id")
);
--> statement-breakpoint
DROP INDEX "devices_tags_idx";--> statement-breakpoint
ALTER TABLE "device_tags" ADD CONSTRAINT "device_tags_device_id_devices_id_fk" FOREIGN KEY ("device_id") REFERENCES "public"."devices"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "device_tags_device_idx" ON "device_tags" USING btree ("device_id");--> statement-breakpoint
-- Backfill: one row per tag of every existing device.
INSERT INTO "device_tags" ("device_id", "key", "value") SELECT d."id", t."key", t."value" FROM "devices" d, jsonb_each_text(d."tags") t;
