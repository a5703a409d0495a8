CREATE TABLE "devices" (
	"id" text PRIMARY KEY NOT NULL,
	"id_folded" text NOT NULL,
	"public_key" text NOT NULL,
	"key_id" text NOT NULL,
	"hardware" text NOT NULL,
	"tags" jsonb NOT NULL,
	"agent_version" text NOT NULL,
	"enrolled_at" timestamp with time zone NOT NULL,
	"revoked_at" timestamp with time zone,
	"online" boolean DEFAULT false NOT NULL,
	"last_seen_at" timestamp with time zone,
	"state_at" timestamp with time zone,
	"model_name" text,
	"model_version" text,
	"model_release" integer,
	"bundle_id" text,
	"update_state" text,
	CONSTRAINT "devices_id_folded_unique" UNIQUE("id_folded")
);
--> statement-breakpoint
CREATE TABLE "enrolment_tokens" (
	"id" text PRIMARY KEY NOT NULL,
	"token_hash" text NOT NULL,
	"tags" jsonb NOT NULL,
	"hardware" text,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"used_at" timestamp with time zone,
	"used_by" text,
	CONSTRAINT "enrolment_tokens_token_hash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
CREATE TABLE "operator_tokens" (
	"id" text PRIMARY KEY NOT NULL,
	"token_hash" text NOT NULL,
	"name" text NOT NULL,
	"role" text NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "operator_tokens_token_hash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
CREATE TABLE "model_versions" (
	"bundle_id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"version" text NOT NULL,
	"release" integer NOT NULL,
	"size_bytes" bigint NOT NULL,
	"manifest" jsonb NOT NULL,
	"manifest_envelope" text NOT NULL,
	"signed_by" jsonb NOT NULL,
	"parent_release" integer,
	"uploaded_by" text NOT NULL,
	"uploaded_at" timestamp with time zone NOT NULL,
	CONSTRAINT "model_versions_name_release" UNIQUE("name","release"),
	CONSTRAINT "model_versions_name_version" UNIQUE("name","version")
);
--> statement-breakpoint
CREATE TABLE "trust_roots" (
	"version" integer PRIMARY KEY NOT NULL,
	"envelope" text NOT NULL,
	"expires" text NOT NULL,
	"installed_by" text NOT NULL,
	"installed_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE INDEX "devices_hardware_idx" ON "devices" USING btree ("hardware","id");--> statement-breakpoint
CREATE INDEX "devices_last_seen_idx" ON "devices" USING btree ("last_seen_at");--> statement-breakpoint
CREATE INDEX "devices_online_idx" ON "devices" USING btree ("online","id");--> statement-breakpoint
CREATE INDEX "devices_tags_idx" ON "devices" USING gin ("tags" jsonb_path_ops);--> statement-breakpoint
CREATE INDEX "enrolment_tokens_expires_idx" ON "enrolment_tokens" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "model_versions_name_idx" ON "model_versions" USING btree ("name","release");