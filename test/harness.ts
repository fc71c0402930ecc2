import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import type { FastifyInstance } from "fastify";
import pino from "pino";
import { buildApp } from "../src/app.ts";
import type { FerryDatabase } from "../src/db/database.ts";
import { loggerOptions } from "../src/http/logging.ts";
import { Metrics } from "../src/http/metrics.ts";
import { Sealer } from "../src/lib/sealer.ts";
import { setAdminPassword } from "../src/modules/admins/service.ts";
import { ensureSigningKey } from "../src/modules/keys/service.ts";
import type { Ledger } from "../src/modules/ledger/service.ts";
import { createServices, type ServiceSettings, type Services } from "../src/services.ts";
import { startWorkers } from "../src/workers/index.ts";
import type { Worker } from "../src/workers/worker.ts";
import { createTestDatabase } from "./database.ts";

export const ADMIN_PASSWORD = "correct-horse-battery-staple";

export interface TestApp {
  app: FastifyInstance;
  database: FerryDatabase;
  services: Services;
  ledger: Ledger;
  metrics: Metrics;
  /** Every log line the app wrote, as text. */
  logs: string[];
  adminAuth: { authorization: string };
  /** The app listening on a loopback port (for browsers, webhooks' jku); set by `listen: true`. */
  url: string | undefined;
  close(): Promise<void>;
}

export const testSettings: ServiceSettings = {
  ledgerBatchSize: 64,
  ledgerBatchesInFlight: 2,
  sandboxKycDelayMs: 150,
  userTokenTtlSeconds: 300,
  rateLimitPerMinute: 100_000,
  idempotencyTtlHours: 24,
  publicUrl: "http://localhost:3000",
  webhookRetrySchedule: [1, 1, 1],
  webhookTimeoutMs: 2000,
  sanctionsFile: undefined,
  sandboxPayoutDelayMs: 300,
  providerLeaseSeconds: 30,
  stepRetryBaseMs: 50,
  stepTimeoutMs: 30_000,
  stepConcurrency: 16,
  stepConcurrencyPerClient: 4,
  accessTokenTtlSeconds: 3600,
  defaultClient: undefined,
  loginSlowStepMs: 0,
  // test/admin-routes.test.ts sends hundreds of wrong passwords from one address to pin the 401s;
  // test/admin-guess-limit.test.ts checks the default.
  adminMaxFailures: 1_000_000,
  sandboxChainConfirmMs: 300,
  sandboxAcquirerAnswerDelayMs: 0,
  oneClickCallbackTimeoutMs: 1000,
  oneClickCallbackAttempts: 3,
  oneClickTransferAttempts: 4,
  oneClickRetryBaseMs: 50,
  oneClickTokenTtlSeconds: 3600,
  oneClickSessionTtlSeconds: 900,
};

/**
 * A Ferry app on a fresh database, for `app.inject()` tests. `extend` may add routes before the
 * app is made ready (plumbing tests use it); `workers` starts the background loops.
 */
export async function startTestApp(
  options:
    | ((app: FastifyInstance, database: FerryDatabase) => void | Promise<void>)
    | {
        extend?: (app: FastifyInstance, database: FerryDatabase) => void | Promise<void>;
        workers?: boolean;
        listen?: boolean;
        settings?: Partial<ServiceSettings>;
        database?: FerryDatabase;
        /** FERRY_SANDBOX_ROUTES (default on). */
        sandboxRoutes?: boolean;
      } = {},
): Promise<TestApp> {
  const opts = typeof options === "function" ? { extend: options } : options;
  const database = opts.database ?? (await createTestDatabase());
  await setAdminPassword(database.db, ADMIN_PASSWORD);
  const sealer = new Sealer(randomBytes(32));
  await ensureSigningKey(database.db, sealer);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const logger = pino(loggerOptions("info"), sink);
  const metrics = new Metrics();
  const settings = { ...testSettings, ...opts.settings };
  const services = createServices(database, sealer, settings, metrics);
  const app = await buildApp({
    config: {
      bodyLimitBytes: 64 * 1024,
      publicUrl: settings.publicUrl,
      logLevel: "info",
      sandboxRoutes: opts.sandboxRoutes ?? true,
    },
    services,
    metrics,
    logger,
  });
  await opts.extend?.(app, database);
  await app.ready();
  let url: string | undefined;
  let workers: Worker[] = [];
  if (opts.listen || opts.workers) url = await app.listen({ port: 0, host: "127.0.0.1" });
  if (opts.workers) {
    workers = startWorkers(
      services,
      {
        holdExpiryIntervalMs: 100,
        webhookIntervalMs: 50,
        publicUrl: url ?? settings.publicUrl,
        webhookRetrySchedule: settings.webhookRetrySchedule,
        webhookTimeoutMs: settings.webhookTimeoutMs,
        recoveryIntervalMs: 200,
        shutdownTimeoutMs: 4000,
      },
      logger,
    );
  }
  return {
    app,
    database,
    services,
    ledger: services.ledger,
    metrics,
    logs,
    adminAuth: { authorization: basic("admin", ADMIN_PASSWORD) },
    url,
    async close() {
      await Promise.all(workers.map((w) => w.stop()));
      await app.close();
      await database.close();
    },
  };
}

export function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}
