import type { Db } from "../../db/database.ts";
import { isRetryableTransactionError, PgErrorCode, pgErrorCode } from "../../db/errors.ts";
import { inTransaction } from "../../db/transaction.ts";
import { applyOperations } from "./engine.ts";
import type { Operation, OperationResult } from "./types.ts";

export interface BatcherOptions {
  /** Most operations in one database transaction. */
  maxBatchSize: number;
  /** Batches committing at once (each on its own connection). */
  maxInFlight: number;
  onBatch?: (size: number, seconds: number) => void;
}

interface Waiting {
  operation: Operation;
  resolve: (result: OperationResult) => void;
  reject: (error: unknown) => void;
}

/**
 * Groups the operations that concurrent callers submit into shared database transactions.
 * No timer: a batch starts as soon as a slot is free and takes everything queued by then, so a
 * lone caller waits for one transaction and a crowd shares a few (natural batching).
 */
export class LedgerBatcher {
  readonly #queue: Waiting[] = [];
  #inFlight = 0;
  readonly #idle: (() => void)[] = [];

  constructor(
    private readonly db: Db,
    private readonly options: BatcherOptions,
  ) {}

  submit(operation: Operation): Promise<OperationResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ operation, resolve, reject });
      this.#pump();
    });
  }

  /** Resolves once every submitted operation has its result (for shutdown). */
  drained(): Promise<void> {
    if (this.#queue.length === 0 && this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #pump() {
    while (this.#inFlight < this.options.maxInFlight && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.options.maxBatchSize);
      this.#inFlight++;
      void this.#run(batch).finally(() => {
        this.#inFlight--;
        this.#pump();
        if (this.#queue.length === 0 && this.#inFlight === 0) for (const done of this.#idle.splice(0)) done();
      });
    }
  }

  async #run(batch: Waiting[]) {
    const started = performance.now();
    try {
      const results = await executeBatch(
        this.db,
        batch.map((w) => w.operation),
      );
      batch.forEach((w, i) => {
        const result = results[i];
        if (result) w.resolve(result);
        else w.reject(new Error("ledger batch returned no result"));
      });
    } catch (error) {
      if (batch.length === 1) {
        batch[0]?.reject(error);
      } else {
        // One operation's database error must not fail its neighbours: run each alone.
        await Promise.all(
          batch.map(async (w) => {
            try {
              const [result] = await executeBatch(this.db, [w.operation]);
              if (result) w.resolve(result);
              else w.reject(new Error("ledger batch returned no result"));
            } catch (single) {
              w.reject(single);
            }
          }),
        );
      }
    } finally {
      this.options.onBatch?.(batch.length, (performance.now() - started) / 1000);
    }
  }
}

/**
 * One transaction applying `operations`. A unique violation means another process inserted one of
 * our transfer ids after we looked: the retry sees it and answers a replay. Serialization failures
 * and deadlocks are retried too, a bounded number of times.
 */
export async function executeBatch(db: Db, operations: Operation[]): Promise<OperationResult[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await inTransaction(db, (tx) => applyOperations(tx, operations, new Date()));
    } catch (error) {
      const retryable =
        pgErrorCode(error) === PgErrorCode.uniqueViolation || isRetryableTransactionError(error);
      if (!retryable || attempt >= 3) throw error;
    }
  }
}
