import { Writable } from "node:stream";
import type { FastifyInstance } from "fastify";
import pino from "pino";
import { buildApp } from "../src/app.ts";
import type { FerryDatabase } from "../src/db/database.ts";
import { loggerOptions } from "../src/http/logging.ts";
import { Metrics } from "../src/http/metrics.ts";
import { setAdminPassword } from "../src/modules/admins/service.ts";
import { Ledger } from "../src/modules/ledger/service.ts";
import { createTestDatabase } from "./database.ts";

export const ADMIN_PASSWORD = "correct-horse-battery-staple";

export interface TestApp {
  app: FastifyInstance;
  database: FerryDatabase;
  ledger: Ledger;
  metrics: Metrics;
  /** Every log line the app wrote, as text. */
  logs: string[];
  adminAuth: { authorization: string };
  close(): Promise<void>;
}

/**
 * A Ferry app on a fresh database, for `app.inject()` tests. `extend` may add routes before the
 * app is made ready (plumbing tests use it).
 */
export async function startTestApp(
  extend?: (app: FastifyInstance, database: FerryDatabase) => void | Promise<void>,
): Promise<TestApp> {
  const database = await createTestDatabase();
  await setAdminPassword(database.db, ADMIN_PASSWORD);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const logger = pino(loggerOptions("info"), sink);
  const metrics = new Metrics();
  const ledger = new Ledger(database.db, {
    maxBatchSize: 64,
    maxInFlight: 2,
    onBatch: metrics.recordLedgerBatch,
    onResult: metrics.recordLedgerResult,
  });
  const app = await buildApp({
    config: { bodyLimitBytes: 64 * 1024, publicUrl: "http://localhost:3000", logLevel: "info" },
    database,
    metrics,
    logger,
  });
  await extend?.(app, database);
  await app.ready();
  return {
    app,
    database,
    ledger,
    metrics,
    logs,
    adminAuth: { authorization: basic("admin", ADMIN_PASSWORD) },
    async close() {
      await app.close();
      await database.close();
    },
  };
}

export function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}
