import fs from "node:fs";
import path from "node:path";
import { PGlite, types } from "@electric-sql/pglite";
import { Kysely, PGliteDialect, PostgresDialect, type Transaction } from "kysely";
import pg from "pg";
import { CACHE_CHANNEL, cacheOf } from "./cache.ts";
import type { Database } from "./schema.ts";

export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;

/** Runs raw SQL (several statements allowed) inside one transaction of the underlying driver. */
export interface ScriptRunner {
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  exec(script: string): Promise<void>;
}

export interface FerryDatabase {
  db: Db;
  kind: "postgres" | "pglite";
  /** Where the data lives, for messages: the PGlite directory or the PostgreSQL URL without password. */
  location: string;
  /** One driver-level transaction for scripts that Kysely's parameterised queries cannot run (migrations). */
  withScriptTransaction<T>(fn: (runner: ScriptRunner) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  databaseUrl?: string | undefined;
  /** PGlite directory; `memory://` (or undefined with no URL) keeps everything in memory. */
  dataDir?: string | undefined;
  poolSize?: number;
}

export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(
      `the embedded database in ${dataDir} is in use by process ${pid}; stop that process first, or set DATABASE_URL to use PostgreSQL`,
    );
    this.name = "DataDirInUseError";
  }
}

// NUMERIC and INT8 stay strings (never floats); Ferry turns them into bigint where it computes.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => value);
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (value) => value);

/** Queries Ferry has sent to its database since the process started (the benchmark's statements per operation). */
export const databaseQueries: { count: number; trace?: string[] } = { count: 0 };
const TRANSACTION_CONTROL = /^(begin|commit|rollback)\b/i;
const countQuery = (event: { query: { sql: string } }) => {
  // BEGIN / COMMIT are not counted: PostgreSQL's driver sends them as queries, PGlite's does not.
  if (TRANSACTION_CONTROL.test(event.query.sql)) return;
  databaseQueries.count++;
  databaseQueries.trace?.push(event.query.sql);
};

export async function openDatabase(options: DatabaseOptions): Promise<FerryDatabase> {
  if (options.databaseUrl) return openPostgres(options.databaseUrl, options.poolSize ?? 16);
  return openPglite(options.dataDir ?? "memory://");
}

function openPostgres(databaseUrl: string, poolSize: number): FerryDatabase {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: poolSize,
    application_name: "ferry",
    // Prepared statements (below) keep their parse; plans stay per execution: a generic plan chosen
    // after five runs was measured slower for the hot-merchant workload (bench:http).
    options: "-c plan_cache_mode=force_custom_plan",
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on("error", () => {});
  pool.on("connect", (client) => preparedStatements(client));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log: countQuery });
  const location = redactUrl(databaseUrl);
  const stopListening = listenForCacheChanges(databaseUrl, db);
  return {
    db,
    kind: "postgres",
    location,
    async withScriptTransaction(fn) {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const result = await fn({
          query: async (sql, params) => (await client.query(sql, params as unknown[])).rows,
          exec: async (script) => {
            await client.query(script);
          },
        });
        await client.query("COMMIT");
        return result;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    async close() {
      stopListening();
      await db.destroy();
    },
  };
}

/**
 * Ferry's statements are few and repeated thousands of times: each connection prepares a statement
 * the first time it runs it (a named statement, parsed and planned once) and then only binds and
 * executes it. Names come from the text; at most MAX_PREPARED distinct texts per process are
 * prepared (statements whose text varies, such as multi-row inserts of N rows, stay unnamed).
 */
const MAX_PREPARED = 2000;
const statementNames = new Map<string, string>();

function nameFor(text: string): string | undefined {
  let name = statementNames.get(text);
  if (name === undefined) {
    if (statementNames.size >= MAX_PREPARED || text.length > 8000) return undefined;
    name = `ferry_${statementNames.size.toString(36)}`;
    statementNames.set(text, name);
  }
  return name;
}

/** Texts never to prepare again: a schema change (a rolling upgrade's migration) changed their rows. */
const unprepared = new Set<string>();

function preparedStatements(client: pg.PoolClient) {
  const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
  (client as { query: unknown }).query = (text: unknown, values?: unknown, callback?: unknown) => {
    if (typeof text === "string" && Array.isArray(values) && values.length > 0 && !callback) {
      const name = unprepared.has(text) ? undefined : nameFor(text);
      if (name)
        return query({ text, values, name }).catch((error: unknown) => {
          // PostgreSQL refuses a prepared statement whose result columns changed since it was
          // prepared ("cached plan must not change result type"): run it unprepared from now on.
          if ((error as { code?: string }).code !== "0A000") throw error;
          unprepared.add(text);
          // Inside a transaction the error has aborted it: the caller sees the original error.
          return query(text, values).catch(() => {
            throw error;
          });
        });
    }
    return query(text, values, callback);
  };
}

/**
 * The connection on which this process hears other processes' cache invalidations (db/cache.ts).
 * It reconnects after an error, clearing the cache: what was announced meanwhile is not known.
 */
function listenForCacheChanges(databaseUrl: string, db: Db): () => void {
  let stopped = false;
  let client: pg.Client | undefined;
  let retry: NodeJS.Timeout | undefined;
  const connect = () => {
    if (stopped) return;
    const current = new pg.Client({ connectionString: databaseUrl, application_name: "ferry-cache" });
    client = current;
    const reconnect = () => {
      if (client !== current) return;
      client = undefined;
      current.end().catch(() => {});
      cacheOf(db).clear();
      if (!stopped) retry = setTimeout(connect, 1000).unref();
    };
    current.on("error", reconnect);
    current.on("end", reconnect);
    current.on("notification", (message) => cacheOf(db).invalidatePayload(message.payload ?? ""));
    current
      .connect()
      .then(() => current.query(`LISTEN ${CACHE_CHANNEL}`))
      .then(() => cacheOf(db).clear())
      .catch(reconnect);
  };
  connect();
  return () => {
    stopped = true;
    if (retry) clearTimeout(retry);
    const current = client;
    client = undefined;
    current?.end().catch(() => {});
  };
}

/**
 * PGlite answers without any real I/O, so a request's queries would otherwise run back to back in
 * one event-loop turn; Node accepts one new connection per turn, so a crowd of new clients waited
 * seconds to be accepted (the Pay-in bench's p99 on PGlite). Each acquisition of the connection
 * first lets the event loop turn once.
 */
class FairPGliteDialect extends PGliteDialect {
  override createDriver() {
    const driver = super.createDriver();
    const acquire = driver.acquireConnection.bind(driver);
    driver.acquireConnection = async () => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      return acquire();
    };
    return driver;
  }
}

async function openPglite(dataDir: string): Promise<FerryDatabase> {
  const inMemory = dataDir.startsWith("memory://");
  let releaseLock = () => {};
  if (!inMemory) {
    fs.mkdirSync(dataDir, { recursive: true });
    releaseLock = lockDataDir(dataDir);
  }
  let pglite: PGlite;
  try {
    pglite = await PGlite.create({
      ...(inMemory ? {} : { dataDir: path.join(dataDir, "pglite") }),
      // As with pg (above): INT8 stays a string (PGlite's default makes it a JavaScript number).
      parsers: { [types.INT8]: (value: string) => value },
    });
  } catch (error) {
    releaseLock();
    throw error;
  }
  const db = new Kysely<Database>({ dialect: new FairPGliteDialect({ pglite }), log: countQuery });
  await pglite.listen(CACHE_CHANNEL, (payload) => cacheOf(db).invalidatePayload(payload));
  return {
    db,
    kind: "pglite",
    location: inMemory ? "memory" : dataDir,
    async withScriptTransaction(fn) {
      // Through Kysely's connection so that its single-connection mutex orders us with other queries.
      return db.connection().execute(() =>
        pglite.transaction(async (tx) =>
          fn({
            query: async (sql, params) =>
              (await tx.query<Record<string, unknown>>(sql, params as unknown[])).rows,
            exec: async (script) => {
              await tx.exec(script);
            },
          }),
        ),
      );
    },
    async close() {
      await db.destroy();
      releaseLock();
    },
  };
}

/**
 * PGlite is one process's database: a second process opening the same directory would corrupt it.
 * A lock file with our pid keeps a second Ferry (or CLI command) out while the first is alive.
 */
function lockDataDir(dataDir: string): () => void {
  const lockFile = path.join(dataDir, "ferry.pid");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockFile, String(process.pid), { flag: "wx" });
      return () => {
        try {
          if (fs.readFileSync(lockFile, "utf8") === String(process.pid)) fs.unlinkSync(lockFile);
        } catch {
          // already gone
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const pid = Number.parseInt(fs.readFileSync(lockFile, "utf8"), 10);
      if (Number.isInteger(pid) && pid !== process.pid && isProcessAlive(pid)) {
        throw new DataDirInUseError(dataDir, pid);
      }
      fs.unlinkSync(lockFile); // stale: its process is gone
    }
  }
  throw new Error(`could not lock ${dataDir}`);
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "postgres://…";
  }
}
