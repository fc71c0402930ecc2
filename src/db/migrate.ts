import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { FerryDatabase } from "./database.ts";

const migrationsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "migrations");

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export function readMigrations(dir: string = migrationsDir): Migration[] {
  return fs
    .readdirSync(dir)
    .filter((file) => /^\d{4}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .map((file) => {
      const sql = fs.readFileSync(path.join(dir, file), "utf8");
      return {
        version: Number.parseInt(file.slice(0, 4), 10),
        name: file.replace(/\.sql$/, ""),
        sql,
        checksum: createHash("sha256").update(sql).digest("hex"),
      };
    });
}

// Any constant; every Ferry process takes the same advisory lock, so migrations never run twice at once.
const MIGRATION_LOCK_KEY = 7_384_251_001;

/**
 * Applies the numbered migrations not yet applied, in order, in one transaction under an advisory
 * lock. An applied migration whose file has changed is an error: migrations are append-only.
 */
export async function migrate(database: FerryDatabase, migrations: Migration[] = readMigrations()) {
  return database.withScriptTransaction(async (runner) => {
    await runner.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_KEY]);
    await runner.exec(`CREATE TABLE IF NOT EXISTS ferry_schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const applied = new Map(
      (await runner.query("SELECT version, name, checksum FROM ferry_schema_migrations")).map((row) => [
        Number(row.version),
        row,
      ]),
    );
    const done: string[] = [];
    for (const migration of migrations) {
      const row = applied.get(migration.version);
      if (row) {
        if (row.checksum !== migration.checksum) {
          throw new Error(
            `migration ${migration.name} was changed after it was applied; add a new migration instead`,
          );
        }
        continue;
      }
      await runner.exec(migration.sql);
      await runner.query(
        "INSERT INTO ferry_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
        [migration.version, migration.name, migration.checksum],
      );
      done.push(migration.name);
    }
    return { applied: done, total: migrations.length };
  });
}
