CREATE TABLE "eval_sets" (
	"name" text PRIMARY KEY NOT NULL,
	"blob_id" text NOT NULL,
	"size_bytes" integer NOT NULL,
	"sample_count" integer NOT NULL,
	"feature_count" integer NOT NULL,
	"class_count" integer NOT NULL,
	"uploaded_by" text NOT NULL,
	"uploaded_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "fl_candidates" (
	"candidate_id" text PRIMARY KEY NOT NULL,
	"round_id" text NOT NULL,
	"base_bundle_id" text NOT NULL,
	"eval_set" text NOT NULL,
	"weights_blob_id" text NOT NULL,
	"model_sha256" text NOT NULL,
	"candidate_accuracy" double precision NOT NULL,
	"champion_accuracy" double precision NOT NULL,
	"bundle_id" text,
	"lineage" jsonb,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "model_approvals" (
	"bundle_id" text PRIMARY KEY NOT NULL,
	"model_name" text NOT NULL,
	"version" text NOT NULL,
	"release" integer NOT NULL,
	"round_id" text NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"requested_at" timestamp with time zone NOT NULL,
	"decided_by" text,
	"decided_at" timestamp with time zone,
	"rollout_id" text
);
--> statement-breakpoint
CREATE TABLE "model_policies" (
	"model_name" text PRIMARY KEY NOT NULL,
	"risk_tier" text DEFAULT 'high' NOT NULL,
	"auto_promote" boolean DEFAULT false NOT NULL,
	"promotion_margin" double precision DEFAULT 0.005 NOT NULL,
	"updated_by" text NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE INDEX "fl_candidates_round_idx" ON "fl_candidates" USING btree ("round_id");--> statement-breakpoint
CREATE INDEX "model_approvals_model_idx" ON "model_approvals" USING btree ("model_name","release");