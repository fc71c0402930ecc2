import fs from "node:fs";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { exportJWK, generateKeyPair } from "jose";
import pino, { type Logger } from "pino";
import { buildApp } from "./app.ts";
import type { Config } from "./config.ts";
import { type FerryDatabase, openDatabase } from "./db/database.ts";
import { migrate } from "./db/migrate.ts";
import { loggerOptions } from "./http/logging.ts";
import { Metrics } from "./http/metrics.ts";
import { loadMasterKey, Sealer } from "./lib/sealer.ts";
import { ensurePlatformAdmin } from "./modules/admins/service.ts";
import { createClient } from "./modules/clients/service.ts";
import { ensureSigningKey } from "./modules/keys/service.ts";
import type { Ledger } from "./modules/ledger/service.ts";
import { allowPrivateWebhookDestinations } from "./modules/webhooks/service.ts";
import { createServices, type Services } from "./services.ts";
import { startWorkers } from "./workers/index.ts";
import type { Worker } from "./workers/worker.ts";

export interface RunningFerry {
  app: FastifyInstance;
  database: FerryDatabase;
  ledger: Ledger;
  services: Services;
  /** Where it listens, e.g. http://127.0.0.1:3000 */
  url: string;
  /** Set on the first start when no FERRY_ADMIN_PASSWORD was configured. */
  generatedAdminPassword: string | undefined;
  /** Set on the first start of an embedded install: the demo client and its private key file. */
  demoClient:
    | {
        clientId: string;
        privateKeyFile: string;
        walletAdmin?: { login: string; password: string } | undefined;
      }
    | undefined;
  stop(): Promise<void>;
}

export function createLogger(config: Pick<Config, "logLevel">): Logger {
  return pino(loggerOptions(config.logLevel));
}

/** config → database (migrated) → keys and admin → services → app → workers → listen. */
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
    const sealer = new Sealer(loadMasterKey(config.masterKey, config.dataDir));
    await ensureSigningKey(database.db, sealer);
    const { generatedPassword } = await ensurePlatformAdmin(database.db, config.adminPassword);
    const demoClient =
      config.demoClient && database.kind === "pglite" && migrations.applied.includes("0001_foundation")
        ? await createDemoClient(database, config.dataDir)
        : undefined;

    allowPrivateWebhookDestinations(config.webhookAllowPrivate);
    const metrics = new Metrics();
    const services = createServices(database, sealer, config, metrics);
    // The demo client's Wallet API administrator, printed with the other first-start credentials.
    const walletAdmin = demoClient
      ? await services.logins
          .create(
            { clientId: demoClient.clientId, actor: { kind: "system", id: "ferry" } },
            { login: DEMO_WALLET_ADMIN, role: "administrator" },
            { reveal: true },
          )
          .then((made) => ({ login: made.login.login, password: made.password ?? "" }))
          .catch(() => undefined)
      : undefined;
    const app = await buildApp({ config, services, metrics, logger });
    // Listening first: a port in use stops the start before any worker touches the database.
    const address = await app.listen({ port: config.port, host: config.host });
    const workers: Worker[] = config.workersEnabled ? startWorkers(services, config, logger) : [];
    const port = new URL(address).port;
    const url = config.publicUrl.replace(/:\d+$/, `:${port}`);
    logger.info({ url, database: database.kind, location: database.location }, "ferry is listening");

    let stopping: Promise<void> | undefined;
    return {
      app,
      database,
      ledger: services.ledger,
      services,
      url,
      generatedAdminPassword: generatedPassword,
      demoClient: demoClient ? { ...demoClient, walletAdmin } : undefined,
      stop() {
        stopping ??= (async () => {
          // Stop taking requests and let those in flight finish; then the workers and the ledger's queue.
          await app.close();
          await Promise.all(workers.map((w) => w.stop()));
          await services.transactions.drained();
          await services.ledger.drained();
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

/** The demo client's first Wallet API administrator. */
export const DEMO_WALLET_ADMIN = "admin@demo.example";

/**
 * The first start of an embedded install creates a client "demo" with an ES256 key pair: the public
 * half registered, the private half written next to the data (so a newcomer can sign requests at once).
 */
async function createDemoClient(database: FerryDatabase, dataDir: string) {
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  const client = await createClient(database.db, {
    id: "demo",
    name: "Demo client",
    signingKeys: [await exportJWK(publicKey)],
    allowedOrigins: ["http://localhost:5173", "http://localhost:8080"],
  }).catch(() => undefined);
  if (!client) return undefined;
  const privateKeyFile = path.join(dataDir, "demo-client.private.jwk.json");
  fs.writeFileSync(privateKeyFile, JSON.stringify(await exportJWK(privateKey), null, 2), { mode: 0o600 });
  return { clientId: client.id, privateKeyFile };
}
