import { type Config, ConfigError, loadConfig } from "./config.ts";
import { DataDirInUseError } from "./db/database.ts";
import { createLogger, startFerry } from "./server.ts";

/** `ferry serve`: start, print what a newcomer needs, stop gracefully on SIGTERM or SIGINT. */
export async function serve(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger(config);
  let ferry: Awaited<ReturnType<typeof startFerry>>;
  try {
    ferry = await startFerry(config, logger);
  } catch (error) {
    if (error instanceof DataDirInUseError) exitWith(error.message);
    logger.fatal({ err: error }, "ferry failed to start");
    process.exit(1);
  }
  const banner = [
    "",
    `  Ferry is running on ${ferry.database.kind === "pglite" ? `the embedded database (${ferry.database.location})` : "PostgreSQL"}`,
    `  API reference:   ${ferry.url}/docs`,
    `  OpenAPI:         ${ferry.url}/openapi.json`,
    `  Health:          ${ferry.url}/health/ready`,
  ];
  if (ferry.demoClient) {
    banner.push(
      `  Demo client:     id "${ferry.demoClient.clientId}", private signing key in ${ferry.demoClient.privateKeyFile}`,
      "                   (see docs/platform-api.md to sign a request with it)",
    );
    if (ferry.demoClient.walletAdmin)
      banner.push(
        `  Wallet API admin: login "${ferry.demoClient.walletAdmin.login}", password ${ferry.demoClient.walletAdmin.password}`,
        "                   (POST /api/v1/authorization; shown this once — see docs/wallet-api.md)",
      );
  }
  if (ferry.generatedAdminPassword) {
    banner.push(
      `  Platform admin:  user "admin", password ${ferry.generatedAdminPassword}`,
      "                   (shown this once; set FERRY_ADMIN_PASSWORD or run `ferry admin password` to change it)",
    );
  }
  process.stdout.write(`${banner.join("\n")}\n\n`);

  let signals = 0;
  const shutdown = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    logger.info({ signal }, "shutting down");
    const timer = setTimeout(() => {
      logger.error("shutdown timed out; exiting");
      process.exit(1);
    }, config.shutdownTimeoutMs);
    timer.unref();
    ferry.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}

export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) exitWith(error.message);
    throw error;
  }
}

/** One clear line on stderr, exit code 1 — for mistakes an operator can fix. */
export function exitWith(message: string): never {
  process.stderr.write(`ferry: ${message}\n`);
  process.exit(1);
}
