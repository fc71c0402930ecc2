import type { FastifyInstance } from "fastify";
import pino, { type Logger } from "pino";
import { buildApp } from "./app.ts";
import type { Config } from "./config.ts";
import { type FerryDatabase, openDatabase } from "./db/database.ts";
import { migrate } from "./db/migrate.ts";
import { loggerOptions } from "./http/logging.ts";
import { Metrics } from "./http/metrics.ts";
import { ensurePlatformAdmin } from "./modules/admins/service.ts";
import { Ledger } from "./modules/ledger/service.ts";
import { startWorkers } from "./workers/index.ts";
import type { Worker } from "./workers/worker.ts";

export interface RunningFerry {
  app: FastifyInstance;
  database: FerryDatabase;
  ledger: Ledger;
  /** Where it listens, e.g. http://127.0.0.1:3000 */
  url: string;
  /** Set on the first start when no FERRY_ADMIN_PASSWORD was configured. */
  generatedAdminPassword: string | undefined;
  stop(): Promise<void>;
}

export function createLogger(config: Pick<Config, "logLevel">): Logger {
  return pino(loggerOptions(config.logLevel));
}

/** config → database (migrated) → admin → ledger → app → workers → listen. */
export async function startFerry(
  config: Config,
  logger: Logger = createLogger(config),
): Promise<RunningFerry> {
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: config.dbPoolSize,
  });
  try {
    const migrations = await migrate(database);
    if (migrations.applied.length > 0) logger.info({ applied: migrations.applied }, "database migrated");
    const { generatedPassword } = await ensurePlatformAdmin(database.db, config.adminPassword);

    const metrics = new Metrics();
    const ledger = new Ledger(database.db, {
      maxBatchSize: config.ledgerBatchSize,
      maxInFlight: config.ledgerBatchesInFlight,
      onBatch: metrics.recordLedgerBatch,
      onResult: metrics.recordLedgerResult,
    });
    const app = await buildApp({ config, database, metrics, logger });
    const workers: Worker[] = config.workersEnabled ? startWorkers(database.db, config, logger) : [];
    const address = await app.listen({ port: config.port, host: config.host });
    const port = new URL(address).port;
    const url = config.publicUrl.replace(/:\d+$/, `:${port}`);
    logger.info({ url, database: database.kind, location: database.location }, "ferry is listening");

    let stopping: Promise<void> | undefined;
    return {
      app,
      database,
      ledger,
      url,
      generatedAdminPassword: generatedPassword,
      stop() {
        stopping ??= (async () => {
          // Stop taking requests and let those in flight finish; then the workers and the ledger's queue.
          await app.close();
          await Promise.all(workers.map((w) => w.stop()));
          await ledger.drained();
          await database.close();
          logger.info("ferry stopped");
        })();
        return stopping;
      },
    };
  } catch (error) {
    await database.close().catch(() => {});
    throw error;
  }
}
