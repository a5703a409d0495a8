CREATE TABLE "rollout_devices" (
	"rollout_id" text NOT NULL,
	"device_id" text NOT NULL,
	"wave" integer NOT NULL,
	"status" text NOT NULL,
	"attempts" integer NOT NULL,
	"last_sent_at" timestamp with time zone,
	"next_attempt_at" timestamp with time zone,
	"previous_model" jsonb,
	"error" jsonb,
	"committed_at" timestamp with time zone,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "rollout_devices_rollout_id_device_id_pk" PRIMARY KEY("rollout_id","device_id")
);
--> statement-breakpoint
CREATE TABLE "rollouts" (
	"id" text PRIMARY KEY NOT NULL,
	"status" text NOT NULL,
	"model" jsonb NOT NULL,
	"selector" jsonb NOT NULL,
	"policy" jsonb NOT NULL,
	"current_wave" integer NOT NULL,
	"wave_started_at" timestamp with time zone NOT NULL,
	"wave_succeeded_at" timestamp with time zone,
	"reason" text,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "rollout_devices" ADD CONSTRAINT "rollout_devices_rollout_id_rollouts_id_fk" FOREIGN KEY ("rollout_id") REFERENCES "public"."rollouts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "rollout_devices_status_idx" ON "rollout_devices" USING btree ("rollout_id","status","wave");--> statement-breakpoint
CREATE INDEX "rollout_devices_device_idx" ON "rollout_devices" USING btree ("device_id","rollout_id");--> statement-breakpoint
CREATE INDEX "rollouts_status_idx" ON "rollouts" USING btree ("status","created_at","id");--> statement-breakpoint
CREATE INDEX "rollouts_created_idx" ON "rollouts" USING btree ("created_at","id");