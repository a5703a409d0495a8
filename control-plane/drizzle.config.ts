// drizzle-kit: `npx drizzle-kit generate` (from control-plane/) writes SQL
// migrations for schema changes into drizzle/; they are committed and applied
// at start-up on PGlite and PostgreSQL alike.
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema/*.ts',
  out: './drizzle',
});
