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

const switchFrom = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(["on", "off", "true", "false"], { message: "must be on or off" }))
  .transform((value) => value === "on" || value === "true");

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
  FERRY_MASTER_KEY: z
    .string()
    .trim()
    .refine((v) => /^[A-Za-z0-9+/]{43}=$/.test(v), "must be 32 bytes in base64 (openssl rand -base64 32)")
    .optional(),
  FERRY_USER_TOKEN_TTL_SECONDS: intFrom(10, 86_400).default(300),
  FERRY_RATE_LIMIT_PER_MINUTE: intFrom(1, 1_000_000).default(1200),
  FERRY_SANDBOX_KYC_DELAY_MS: intFrom(0, 3_600_000).default(1000),
  FERRY_WEBHOOK_RETRY_SCHEDULE: z
    .string()
    .trim()
    .regex(/^\d+(,\d+)*$/, "must be comma-separated seconds, e.g. 5,30,120")
    .default("5,30,120,600,1800,3600,10800,21600,43200,86400"),
  FERRY_WEBHOOK_TIMEOUT_MS: intFrom(100, 60_000).default(10_000),
  FERRY_WEBHOOK_INTERVAL_MS: intFrom(20, 60_000).default(500),
  FERRY_WEBHOOK_CONCURRENCY: intFrom(1, 5000).default(512),
  FERRY_WEBHOOK_CONCURRENCY_PER_CLIENT: intFrom(1, 1000).default(32),
  FERRY_WEBHOOK_LEASE_SECONDS: intFrom(2, 60).default(5),
  FERRY_DEMO_CLIENT: booleanFrom.default(true),
  FERRY_SANCTIONS_FILE: z.string().trim().min(1).optional(),
  FERRY_RECOVERY_INTERVAL_MS: intFrom(50, 600_000).default(2000),
  FERRY_SANDBOX_PAYOUT_DELAY_MS: intFrom(0, 3_600_000).default(2000),
  FERRY_PROVIDER_LEASE_SECONDS: intFrom(1, 3600).default(30),
  FERRY_STEP_RETRY_BASE_MS: intFrom(10, 600_000).default(1000),
  FERRY_STEP_TIMEOUT_MS: intFrom(100, 600_000).default(60_000),
  FERRY_STEP_CONCURRENCY: intFrom(1, 1000).default(32),
  FERRY_STEP_CONCURRENCY_PER_CLIENT: intFrom(1, 1000).default(4),
  FERRY_SANDBOX_ROUTES: switchFrom.default(true),
  FERRY_WEBHOOK_ALLOW_PRIVATE: booleanFrom.default(false),
  FERRY_ACCESS_TOKEN_TTL_SECONDS: intFrom(60, 30 * 86_400).default(3600),
  FERRY_DEFAULT_CLIENT: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9_-]{3,255}$/, "must be a client id")
    .optional(),
  FERRY_LOGIN_SLOW_STEP_MS: intFrom(0, 10_000).default(500),
  FERRY_ADMIN_MAX_FAILURES: intFrom(1, 1_000_000).default(10),
  FERRY_SANDBOX_CHAIN_CONFIRM_MS: intFrom(0, 3_600_000).default(3000),
  FERRY_SANDBOX_ACQUIRER_ANSWER_DELAY_MS: intFrom(0, 600_000).default(0),
  FERRY_ONECLICK_CALLBACK_TIMEOUT_MS: intFrom(100, 120_000).default(10_000),
  FERRY_ONECLICK_CALLBACK_ATTEMPTS: intFrom(1, 20).default(3),
  FERRY_ONECLICK_TRANSFER_ATTEMPTS: intFrom(1, 50).default(8),
  FERRY_ONECLICK_RETRY_BASE_MS: intFrom(10, 600_000).default(1000),
  FERRY_ONECLICK_TOKEN_TTL_SECONDS: intFrom(60, 86_400).default(3600),
  FERRY_ONECLICK_SESSION_TTL_SECONDS: intFrom(30, 86_400).default(900),
});

export interface Config {
  /** Wallet API access tokens' lifetime. */
  accessTokenTtlSeconds: number;
  /** The client of Wallet API calls made before a token without X-Client-Id (default: the demo client, if any). */
  defaultClient: string | undefined;
  /** Wallet API logins: the delay added per wrong password past the third in a row. */
  loginSlowStepMs: number;
  /** Platform admin: wrong passwords per source address in 15 minutes before it is locked for the rest of them. */
  adminMaxFailures: number;
  /** How long the sandbox chain takes to confirm a transfer. */
  sandboxChainConfirmMs: number;
  /** How long the sandbox acquirer takes to answer a charge it has made (a slow network; crash tests). */
  sandboxAcquirerAnswerDelayMs: number;
  /** 1-Click: how long Ferry waits for an operator's callback answer. */
  oneClickCallbackTimeoutMs: number;
  /** 1-Click: attempts of signin, verifyuser and authorize (the user is waiting). */
  oneClickCallbackAttempts: number;
  /** 1-Click: attempts of transfer (then INCONSISTENT) and cancel. */
  oneClickTransferAttempts: number;
  /** 1-Click: first retry delay of a callback; doubled per attempt, at most 5 minutes. */
  oneClickRetryBaseMs: number;
  /** 1-Click: access tokens' lifetime. */
  oneClickTokenTtlSeconds: number;
  /** 1-Click: how long the user has on the identity provider's page. */
  oneClickSessionTtlSeconds: number;
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
  /** Base64 of 32 bytes; absent means a key file in dataDir. */
  masterKey: string | undefined;
  userTokenTtlSeconds: number;
  rateLimitPerMinute: number;
  sandboxKycDelayMs: number;
  /** Seconds to wait before each retry of a webhook delivery; its length is the number of retries. */
  webhookRetrySchedule: number[];
  webhookTimeoutMs: number;
  webhookIntervalMs: number;
  /** Webhook chains (a user's deliveries in order) sent at once, per process. */
  webhookConcurrency: number;
  /** Webhook chains of one client in flight at once, across all processes (one client's slow receiver holds only these). */
  webhookConcurrencyPerClient: number;
  /** How long a claim holds a webhook chain; renewed while it is sent, so it bounds only a dead process's hold. */
  webhookLeaseSeconds: number;
  /** Create a demo client with a key pair on the first start of an embedded install. */
  demoClient: boolean;
  /** A CSV of sanctioned names (header `name[,country]`) replacing the shipped list. */
  sanctionsFile: string | undefined;
  /** How often provider steps a crash left open are looked for. */
  recoveryIntervalMs: number;
  /** How long the sandbox bank takes to settle (or return) a payout. */
  sandboxPayoutDelayMs: number;
  /** How long a provider call (charge, payout) is leased to the process making it before recovery may take over. */
  providerLeaseSeconds: number;
  /** First retry delay of a failed provider step; doubled per attempt, at most 5 minutes. */
  stepRetryBaseMs: number;
  /** The deadline of one provider call made by a step (connect, answer, body): then the attempt fails. */
  stepTimeoutMs: number;
  /** Provider calls the claim loop makes at once, per process. */
  stepConcurrency: number;
  /** Provider calls of one client in flight at once, across all processes (one client never takes every slot). */
  stepConcurrencyPerClient: number;
  /** Serve the /sandbox control routes (3-D Secure page, simulated bank transfers) for sandbox clients. */
  sandboxRoutes: boolean;
  /** Let live clients' webhooks point at loopback, link-local and private addresses. */
  webhookAllowPrivate: boolean;
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
    const secret = ["FERRY_ADMIN_PASSWORD", "DATABASE_URL", "FERRY_MASTER_KEY"].includes(variable);
    const shown = secret ? "" : ` (got "${got}")`;
    throw new ConfigError(variable, `${issue?.message ?? "is invalid"}${shown}`);
  }
  const e = parsed.data;
  // A callback's own deadline beyond the runner's would be cut short by it, unexplained.
  if (e.FERRY_ONECLICK_CALLBACK_TIMEOUT_MS > e.FERRY_STEP_TIMEOUT_MS)
    throw new ConfigError(
      "FERRY_ONECLICK_CALLBACK_TIMEOUT_MS",
      `must not exceed FERRY_STEP_TIMEOUT_MS (${e.FERRY_STEP_TIMEOUT_MS})`,
    );
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
    masterKey: e.FERRY_MASTER_KEY,
    userTokenTtlSeconds: e.FERRY_USER_TOKEN_TTL_SECONDS,
    rateLimitPerMinute: e.FERRY_RATE_LIMIT_PER_MINUTE,
    sandboxKycDelayMs: e.FERRY_SANDBOX_KYC_DELAY_MS,
    webhookRetrySchedule: e.FERRY_WEBHOOK_RETRY_SCHEDULE.split(",").map(Number),
    webhookTimeoutMs: e.FERRY_WEBHOOK_TIMEOUT_MS,
    webhookIntervalMs: e.FERRY_WEBHOOK_INTERVAL_MS,
    webhookConcurrency: e.FERRY_WEBHOOK_CONCURRENCY,
    webhookConcurrencyPerClient: e.FERRY_WEBHOOK_CONCURRENCY_PER_CLIENT,
    webhookLeaseSeconds: e.FERRY_WEBHOOK_LEASE_SECONDS,
    demoClient: e.FERRY_DEMO_CLIENT,
    sanctionsFile: e.FERRY_SANCTIONS_FILE,
    recoveryIntervalMs: e.FERRY_RECOVERY_INTERVAL_MS,
    sandboxPayoutDelayMs: e.FERRY_SANDBOX_PAYOUT_DELAY_MS,
    providerLeaseSeconds: e.FERRY_PROVIDER_LEASE_SECONDS,
    stepRetryBaseMs: e.FERRY_STEP_RETRY_BASE_MS,
    stepTimeoutMs: e.FERRY_STEP_TIMEOUT_MS,
    stepConcurrency: e.FERRY_STEP_CONCURRENCY,
    stepConcurrencyPerClient: e.FERRY_STEP_CONCURRENCY_PER_CLIENT,
    sandboxRoutes: e.FERRY_SANDBOX_ROUTES,
    webhookAllowPrivate: e.FERRY_WEBHOOK_ALLOW_PRIVATE,
    accessTokenTtlSeconds: e.FERRY_ACCESS_TOKEN_TTL_SECONDS,
    defaultClient: e.FERRY_DEFAULT_CLIENT ?? (e.FERRY_DEMO_CLIENT ? "demo" : undefined),
    loginSlowStepMs: e.FERRY_LOGIN_SLOW_STEP_MS,
    adminMaxFailures: e.FERRY_ADMIN_MAX_FAILURES,
    sandboxChainConfirmMs: e.FERRY_SANDBOX_CHAIN_CONFIRM_MS,
    sandboxAcquirerAnswerDelayMs: e.FERRY_SANDBOX_ACQUIRER_ANSWER_DELAY_MS,
    oneClickCallbackTimeoutMs: e.FERRY_ONECLICK_CALLBACK_TIMEOUT_MS,
    oneClickCallbackAttempts: e.FERRY_ONECLICK_CALLBACK_ATTEMPTS,
    oneClickTransferAttempts: e.FERRY_ONECLICK_TRANSFER_ATTEMPTS,
    oneClickRetryBaseMs: e.FERRY_ONECLICK_RETRY_BASE_MS,
    oneClickTokenTtlSeconds: e.FERRY_ONECLICK_TOKEN_TTL_SECONDS,
    oneClickSessionTtlSeconds: e.FERRY_ONECLICK_SESSION_TTL_SECONDS,
  };
}
