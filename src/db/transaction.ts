import { setTimeout as sleep } from "node:timers/promises";
import type { Db, Tx } from "./database.ts";
import { isRetryableTransactionError, TransactionConflictError } from "./errors.ts";

export interface TransactionOptions {
  /** Attempts in all, the first included. Serialization failures and deadlocks are retried. */
  attempts?: number;
}

/**
 * Runs `fn` in one database transaction, retrying it a bounded number of times when PostgreSQL
 * reports a serialization failure or a deadlock. `fn` must not call providers: it may run twice.
 */
export async function inTransaction<T>(db: Db, fn: (tx: Tx) => Promise<T>, options: TransactionOptions = {}) {
  const attempts = options.attempts ?? 5;
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction().execute(fn);
    } catch (error) {
      if (!isRetryableTransactionError(error)) throw error;
      if (attempt >= attempts) throw new TransactionConflictError(attempt, { cause: error });
      await sleep(Math.random() * 10 * 2 ** attempt);
    }
  }
}
