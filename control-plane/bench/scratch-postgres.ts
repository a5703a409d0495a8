/**
 * A throwaway PostgreSQL database for one bench run: created on the given
 * server as `fleet_bench_<timestamp>`, and dropped again by `drop()` (call it
 * in a `finally`), so the bench never writes into an existing database.
 */
import postgres from 'postgres';

export interface ScratchDatabase {
  name: string;
  /** URL of the new database (the admin URL with its database swapped). */
  url: string;
  drop(): Promise<void>;
}

/** The URL with its password hidden, for progress lines and the report. */
export function redactUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

/**
 * Creates the database through `adminUrl` (a role allowed to CREATE DATABASE).
 * Throws when the server cannot be reached or refuses.
 */
export async function createScratchDatabase(adminUrl: string): Promise<ScratchDatabase> {
  const name = `fleet_bench_${Date.now()}`;
  const admin = () => postgres(adminUrl, { max: 1, connect_timeout: 5, onnotice: () => undefined });
  const client = admin();
  try {
    await client.unsafe(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end({ timeout: 5 });
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      const dropper = admin();
      try {
        // FORCE (PostgreSQL 13+): connections the bench left open do not block the drop.
        await dropper.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await dropper.end({ timeout: 5 });
      }
    },
  };
}
