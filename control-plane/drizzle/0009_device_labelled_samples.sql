ALTER TABLE "devices" ADD COLUMN "labelled_samples" integer;--> statement-breakpoint
ALTER TABLE "devices" ADD COLUMN "labelled_samples_at" timestamp with time zone;