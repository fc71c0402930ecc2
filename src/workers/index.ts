import type { Logger } from "pino";
import type { Config } from "../config.ts";
import type { Db } from "../db/database.ts";
import { purgeExpiredIdempotencyKeys } from "../http/idempotency.ts";
import { expirePendingTransfers } from "../modules/ledger/service.ts";
import { startWorker, type Worker } from "./worker.ts";

const EXPIRY_BATCH = 500;

/** Starts Ferry's background loops. Each is safe to run in several processes at once. */
export function startWorkers(db: Db, config: Pick<Config, "holdExpiryIntervalMs">, logger: Logger): Worker[] {
  return [
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
    startWorker({
      name: "idempotency-purge",
      intervalMs: 10 * 60_000,
      logger,
      round: async () => {
        await purgeExpiredIdempotencyKeys(db);
        return false;
      },
    }),
  ];
}
