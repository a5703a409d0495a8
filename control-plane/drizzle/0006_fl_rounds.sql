CREATE TABLE "fl_rounds" (
	"id" text PRIMARY KEY NOT NULL,
	"model_name" text NOT NULL,
	"base_bundle_id" text NOT NULL,
	"status" text NOT NULL,
	"snapshot" jsonb NOT NULL,
	"revision" integer DEFAULT 0 NOT NULL,
	"settings" jsonb NOT NULL,
	"trigger" jsonb NOT NULL,
	"outbox" jsonb NOT NULL,
	"outcome" jsonb NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "fl_updates" (
	"update_id" text PRIMARY KEY NOT NULL,
	"round_id" text NOT NULL,
	"device_id" text NOT NULL,
	"status" text NOT NULL,
	"sample_count" integer NOT NULL,
	"metrics" jsonb NOT NULL,
	"blob_id" text,
	"norm" double precision,
	"scale" double precision DEFAULT 1 NOT NULL,
	"reason" text,
	"received_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "fl_updates" ADD CONSTRAINT "fl_updates_round_id_fl_rounds_id_fk" FOREIGN KEY ("round_id") REFERENCES "public"."fl_rounds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "fl_rounds_status_idx" ON "fl_rounds" USING btree ("status","created_at","id");--> statement-breakpoint
CREATE INDEX "fl_rounds_created_idx" ON "fl_rounds" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "fl_updates_round_idx" ON "fl_updates" USING btree ("round_id","status");