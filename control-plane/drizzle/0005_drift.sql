CREATE TABLE "drift_alerts" (
	"id" text PRIMARY KEY NOT NULL,
	"bundle_id" text NOT NULL,
	"model_name" text NOT NULL,
	"model_version" text NOT NULL,
	"model_release" integer NOT NULL,
	"cohort" text NOT NULL,
	"window_start" timestamp with time zone NOT NULL,
	"window_end" timestamp with time zone NOT NULL,
	"drifted_share" double precision NOT NULL,
	"signals" jsonb NOT NULL,
	"opened_at" timestamp with time zone NOT NULL,
	"cleared_window_end" timestamp with time zone,
	"cleared_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "drift_cumulative" (
	"bundle_id" text NOT NULL,
	"cohort" text NOT NULL,
	"verdict" text NOT NULL,
	"flushes" integer NOT NULL,
	"sampled" bigint NOT NULL,
	"inferences" bigint NOT NULL,
	"drifted_share" double precision NOT NULL,
	"drifted_signals" jsonb NOT NULL,
	"signal_scores" jsonb NOT NULL,
	"sketches" "bytea" NOT NULL,
	"through_serial" bigint NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "drift_cumulative_bundle_id_cohort_pk" PRIMARY KEY("bundle_id","cohort")
);
--> statement-breakpoint
CREATE TABLE "drift_flushes" (
	"id" text PRIMARY KEY NOT NULL,
	"serial" bigserial NOT NULL,
	"device_id" text NOT NULL,
	"seq" bigint NOT NULL,
	"bundle_id" text NOT NULL,
	"model_name" text NOT NULL,
	"model_version" text NOT NULL,
	"model_release" integer NOT NULL,
	"rollout_id" text,
	"labels" jsonb NOT NULL,
	"flush_start" timestamp with time zone NOT NULL,
	"flush_end" timestamp with time zone NOT NULL,
	"window_end" timestamp with time zone NOT NULL,
	"inferences" bigint NOT NULL,
	"sampled" bigint NOT NULL,
	"signals" "bytea" NOT NULL,
	"late" boolean NOT NULL,
	"received_at" timestamp with time zone NOT NULL,
	CONSTRAINT "drift_flushes_device_seq" UNIQUE("device_id","seq")
);
--> statement-breakpoint
CREATE TABLE "drift_pending_windows" (
	"bundle_id" text NOT NULL,
	"window_end" timestamp with time zone NOT NULL,
	CONSTRAINT "drift_pending_windows_bundle_id_window_end_pk" PRIMARY KEY("bundle_id","window_end")
);
--> statement-breakpoint
CREATE TABLE "drift_windows" (
	"bundle_id" text NOT NULL,
	"cohort" text NOT NULL,
	"window_start" timestamp with time zone NOT NULL,
	"window_end" timestamp with time zone NOT NULL,
	"verdict" text NOT NULL,
	"flushes" integer NOT NULL,
	"sampled" bigint NOT NULL,
	"inferences" bigint NOT NULL,
	"drifted_share" double precision NOT NULL,
	"drifted_signals" jsonb NOT NULL,
	"signal_scores" jsonb NOT NULL,
	"devices" integer NOT NULL,
	"scored_at" timestamp with time zone NOT NULL,
	CONSTRAINT "drift_windows_bundle_id_cohort_window_end_pk" PRIMARY KEY("bundle_id","cohort","window_end")
);
--> statement-breakpoint
CREATE UNIQUE INDEX "drift_alerts_open_idx" ON "drift_alerts" USING btree ("bundle_id","cohort") WHERE "drift_alerts"."cleared_at" is null;--> statement-breakpoint
CREATE INDEX "drift_alerts_model_idx" ON "drift_alerts" USING btree ("model_name","opened_at");--> statement-breakpoint
CREATE INDEX "drift_flushes_window_idx" ON "drift_flushes" USING btree ("bundle_id","window_end");--> statement-breakpoint
CREATE INDEX "drift_flushes_serial_idx" ON "drift_flushes" USING btree ("bundle_id","serial");--> statement-breakpoint
CREATE INDEX "drift_pending_windows_end_idx" ON "drift_pending_windows" USING btree ("window_end");--> statement-breakpoint
CREATE INDEX "drift_windows_end_idx" ON "drift_windows" USING btree ("window_end");