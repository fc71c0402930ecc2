import { randomBytes } from "node:crypto";
import pg from "pg";
import { type FerryDatabase, openDatabase } from "../src/db/database.ts";
import { migrate } from "../src/db/migrate.ts";

/** The PostgreSQL server the suite runs against, if any (`DATABASE_URL`); otherwise PGlite. */
export const postgresUrl = process.env.DATABASE_URL || undefined;

/**
 * A fresh, migrated database for one test file: an in-memory PGlite, or — when DATABASE_URL is set —
 * a new database on that server, dropped again by `close()`.
 */
export async function createTestDatabase(
  options: { poolSize?: number } = {},
): Promise<FerryDatabase & { url: string | undefined }> {
  if (!postgresUrl) {
    const database = await openDatabase({ dataDir: "memory://" });
    await migrate(database);
    return Object.assign(database, { url: undefined });
  }
  const name = `ferry_test_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = withDatabase(postgresUrl, name);
  const database = await openDatabase({ databaseUrl: url, poolSize: options.poolSize ?? 20 });
  await migrate(database);
  const close = database.close.bind(database);
  return Object.assign(database, {
    url,
    async close() {
      await close();
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  });
}

export function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

/** Runs one statement on the server's default database (CREATE / DROP DATABASE). */
export async function adminQuery(text: string) {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}
