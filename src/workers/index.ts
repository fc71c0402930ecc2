import type { Logger } from "pino";
import type { Config } from "../config.ts";
import { purgeExpiredIdempotencyKeys } from "../http/idempotency.ts";
import { purgeExpiredSignatures } from "../http/platform-auth.ts";
import { expirePendingTransfers } from "../modules/ledger/service.ts";
import { purgeExpiredUserTokens } from "../modules/tokens/service.ts";
import { purgeOldUsage } from "../modules/transactions/usage.ts";
import { WEBHOOK_DISPATCH_DEFAULTS, WebhookDispatcher } from "../modules/webhooks/service.ts";
import type { Services } from "../services.ts";
import { startWorker, type Worker } from "./worker.ts";

const EXPIRY_BATCH = 500;

/** Starts Ferry's background loops. Each is safe to run in several processes at once. */
export function startWorkers(
  services: Services,
  config: Pick<
    Config,
    | "holdExpiryIntervalMs"
    | "webhookIntervalMs"
    | "publicUrl"
    | "webhookRetrySchedule"
    | "webhookTimeoutMs"
    | "recoveryIntervalMs"
    | "shutdownTimeoutMs"
  > &
    // Absent: the defaults of config.ts (the same figures).
    Partial<Pick<Config, "webhookConcurrency" | "webhookConcurrencyPerClient" | "webhookLeaseSeconds">>,
  logger: Logger,
): Worker[] {
  const db = services.database.db;
  const deliveries = new WebhookDispatcher(db, services.signingKeys, {
    retrySchedule: config.webhookRetrySchedule,
    timeoutMs: config.webhookTimeoutMs,
    publicUrl: config.publicUrl,
    concurrency: config.webhookConcurrency ?? WEBHOOK_DISPATCH_DEFAULTS.concurrency,
    perClient: config.webhookConcurrencyPerClient ?? WEBHOOK_DISPATCH_DEFAULTS.perClient,
    leaseSeconds: config.webhookLeaseSeconds ?? WEBHOOK_DISPATCH_DEFAULTS.leaseSeconds,
    logger: logger.child({ worker: "webhook-delivery" }),
  });
  const webhooks = startWorker({
    name: "webhook-delivery",
    intervalMs: config.webhookIntervalMs,
    logger,
    // The step runner's shape: claims chains for the free slots and returns at once (they are sent
    // on their own, each outcome recorded as it ends); a chain that ends wakes it.
    round: () => deliveries.dispatch(),
    // Shutdown: deliveries in flight get half the shutdown time, then are aborted and recorded as
    // failed attempts (retried on their schedule); untried ones are handed back.
    drain: () => deliveries.drain(Math.floor(config.shutdownTimeoutMs / 2)),
  });
  deliveries.onSlotFree(() => webhooks.wake());
  const steps = startWorker({
    name: "transaction-recovery",
    intervalMs: config.recoveryIntervalMs,
    logger,
    // The step runner's claim loop: fills free slots and returns at once (the calls run on
    // their own); a call that ends wakes it, so a freed slot is filled without waiting.
    round: () => services.steps.dispatch(),
    // Shutdown: calls in flight get half the shutdown time, then are abandoned (recorded as failed
    // attempts, retried by backoff) before the database closes.
    drain: () => services.steps.drain(Math.floor(config.shutdownTimeoutMs / 2)),
  });
  services.steps.onSlotFree(() => steps.wake());
  return [
    startWorker({
      name: "offer-expiry",
      intervalMs: 5000,
      logger,
      // Pay-in offers past their 20 s: marked EXPIRED (a payment checks the time itself anyway).
      round: async () => (await services.offers.expire(500)) === 500,
    }),
    startWorker({
      name: "oneclick-expiry",
      intervalMs: 5000,
      logger,
      // 1-Click sign-ins nobody decided on in time: cancelled (602).
      round: async () => (await services.oneClick.expireWaiting(100)) === 100,
    }),
    startWorker({
      name: "hold-expiry",
      intervalMs: config.holdExpiryIntervalMs,
      logger,
      round: async () => {
        const expired = await expirePendingTransfers(db, { limit: EXPIRY_BATCH });
        if (expired > 0) logger.info({ worker: "hold-expiry", expired }, "released expired holds");
        return expired === EXPIRY_BATCH;
      },
    }),
    webhooks,
    steps,
    startWorker({
      name: "reconciliation",
      intervalMs: 60_000,
      logger,
      round: async () => {
        const report = await services.reconcile();
        services.metrics?.recordReconciliation(report.mismatches.length);
        if (!report.ok)
          logger.warn(
            { worker: "reconciliation", mismatches: report.mismatches.length, checked: report.checked },
            "the ledger disagrees with the providers",
          );
        return false;
      },
    }),
    startWorker({
      name: "purge",
      intervalMs: 60_000,
      logger,
      round: async () => {
        await purgeExpiredIdempotencyKeys(db);
        await purgeExpiredSignatures(db);
        await purgeExpiredUserTokens(db);
        await purgeOldUsage(db);
        await services.logins.purgeExpired();
        await services.adminAuthenticator.purgeExpired();
        await services.sandbox.notifier.purge(new Date(Date.now() - 7 * 24 * 3600 * 1000));
        return false;
      },
    }),
  ];
}
