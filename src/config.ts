import path from "node:path";
import { z } from "zod";

/**
 * Every setting Ferry reads, from the environment, validated once at start-up.
 * Embedded defaults make `npm start` work on a machine with nothing else running.
 */
const intFrom = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `must be an integer between ${min} and ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const booleanFrom = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(["true", "false", "1", "0", "yes", "no"], { message: "must be true or false" }))
  .transform((value) => value === "true" || value === "1" || value === "yes");

const envSchema = z.object({
  PORT: intFrom(0, 65535).default(3000),
  HOST: z.string().trim().min(1, "must not be empty").default("127.0.0.1"),
  DATABASE_URL: z
    .string()
    .trim()
    .regex(/^postgres(ql)?:\/\/\S+$/, "must be a postgres:// or postgresql:// URL")
    .optional(),
  FERRY_DATA_DIR: z.string().trim().min(1, "must not be empty").default("./data"),
  FERRY_ADMIN_PASSWORD: z.string().min(12, "must be at least 12 characters").max(200).optional(),
  FERRY_PUBLIC_URL: z
    .string()
    .trim()
    .regex(/^https?:\/\/[^\s/]+(:\d+)?(\/\S*)?$/, "must be an http:// or https:// URL")
    .optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  FERRY_DB_POOL_SIZE: intFrom(1, 200).default(16),
  FERRY_LEDGER_BATCH_SIZE: intFrom(1, 5000).default(512),
  FERRY_LEDGER_BATCHES_IN_FLIGHT: intFrom(1, 64).optional(),
  FERRY_HOLD_EXPIRY_INTERVAL_MS: intFrom(50, 3_600_000).default(1000),
  FERRY_IDEMPOTENCY_TTL_HOURS: intFrom(1, 24 * 365).default(24),
  FERRY_SHUTDOWN_TIMEOUT_MS: intFrom(0, 600_000).default(10_000),
  FERRY_BODY_LIMIT_BYTES: intFrom(1024, 50 * 1024 * 1024).default(1024 * 1024),
  FERRY_WORKERS: booleanFrom.default(true),
});

export interface Config {
  port: number;
  host: string;
  /** PostgreSQL URL; absent means the embedded PGlite under `dataDir`. */
  databaseUrl: string | undefined;
  dataDir: string;
  adminPassword: string | undefined;
  publicUrl: string;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  dbPoolSize: number;
  ledgerBatchSize: number;
  ledgerBatchesInFlight: number;
  holdExpiryIntervalMs: number;
  idempotencyTtlHours: number;
  shutdownTimeoutMs: number;
  bodyLimitBytes: number;
  workersEnabled: boolean;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly problem: string,
  ) {
    super(`invalid configuration: ${variable} ${problem}`);
    this.name = "ConfigError";
  }
}

/** Reads the configuration from an environment. Throws ConfigError naming the first bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings count as unset, as in most twelve-factor tools.
  const present = Object.fromEntries(
    Object.keys(envSchema.shape)
      .map((key) => [key, env[key]] as const)
      .filter(([, value]) => value !== undefined && value !== ""),
  );
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = String(issue?.path[0] ?? "environment");
    const got = env[variable];
    const shown = variable === "FERRY_ADMIN_PASSWORD" || variable === "DATABASE_URL" ? "" : ` (got "${got}")`;
    throw new ConfigError(variable, `${issue?.message ?? "is invalid"}${shown}`);
  }
  const e = parsed.data;
  const displayHost = e.HOST === "0.0.0.0" || e.HOST === "::" ? "localhost" : e.HOST;
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    dataDir: path.resolve(e.FERRY_DATA_DIR),
    adminPassword: e.FERRY_ADMIN_PASSWORD,
    publicUrl: (e.FERRY_PUBLIC_URL ?? `http://${displayHost}:${e.PORT}`).replace(/\/$/, ""),
    logLevel: e.LOG_LEVEL,
    dbPoolSize: e.FERRY_DB_POOL_SIZE,
    ledgerBatchSize: e.FERRY_LEDGER_BATCH_SIZE,
    // PGlite has a single connection: more than one batch in flight only queues.
    ledgerBatchesInFlight: e.FERRY_LEDGER_BATCHES_IN_FLIGHT ?? (e.DATABASE_URL ? 2 : 1),
    holdExpiryIntervalMs: e.FERRY_HOLD_EXPIRY_INTERVAL_MS,
    idempotencyTtlHours: e.FERRY_IDEMPOTENCY_TTL_HOURS,
    shutdownTimeoutMs: e.FERRY_SHUTDOWN_TIMEOUT_MS,
    bodyLimitBytes: e.FERRY_BODY_LIMIT_BYTES,
    workersEnabled: e.FERRY_WORKERS,
  };
}
