import type { FastifyInstance } from "fastify";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { databaseQueries } from "../db/database.ts";
import type { OperationResult } from "../modules/ledger/types.ts";

/** Ferry's Prometheus metrics, one registry per app (so tests can build several apps). */
export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: "ferry_http_requests_total",
    help: "HTTP requests answered, by method, route and status",
    labelNames: ["method", "route", "status"] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: "ferry_http_request_duration_seconds",
    help: "HTTP request latency, by method, route and status",
    labelNames: ["method", "route", "status"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly ledgerOperations = new Counter({
    name: "ferry_ledger_operations_total",
    help: "Ledger operations by outcome: accepted, replayed, or the refusal code",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  readonly ledgerTransfers = new Counter({
    name: "ferry_ledger_transfers_total",
    help: "Ledger transfers written (legs of accepted operations), by type",
    labelNames: ["type"] as const,
    registers: [this.registry],
  });
  readonly ledgerBatchSize = new Histogram({
    name: "ferry_ledger_batch_size",
    help: "Operations per ledger database transaction",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [this.registry],
  });
  readonly groupCommitSize = new Histogram({
    name: "ferry_group_commit_size",
    help: "New transactions recorded per database transaction (group commit)",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });
  readonly groupCommitDuration = new Histogram({
    name: "ferry_group_commit_duration_seconds",
    help: "Time to commit one group of new transactions",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  readonly ledgerBatchDuration = new Histogram({
    name: "ferry_ledger_batch_duration_seconds",
    help: "Time to commit one ledger batch",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  readonly stepsFinished = new Counter({
    name: "ferry_steps_finished_total",
    help: "Provider steps that ended, by kind and terminal status (SUCCEEDED, FAILED)",
    labelNames: ["kind", "status"] as const,
    registers: [this.registry],
  });
  readonly reconciliationMismatches = new Gauge({
    name: "ferry_reconciliation_mismatches",
    help: "Provider records that disagree with the ledger, as of the last reconciliation run",
    registers: [this.registry],
  });

  readonly databaseQueries = new Gauge({
    name: "ferry_db_queries",
    help: "Queries this process has sent to its database since it started (BEGIN and COMMIT not counted)",
    registers: [this.registry],
    collect() {
      this.set(databaseQueries.count);
    },
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "ferry_" });
  }

  recordLedgerResult = (result: OperationResult) => {
    if (!result.ok) {
      this.ledgerOperations.inc({ outcome: result.code });
      return;
    }
    this.ledgerOperations.inc({ outcome: result.replayed ? "replayed" : "accepted" });
    if (!result.replayed) for (const t of result.transfers) this.ledgerTransfers.inc({ type: t.type });
  };

  recordStepFinished = (kind: string, status: string) => {
    this.stepsFinished.inc({ kind, status });
  };

  recordReconciliation = (mismatches: number) => {
    this.reconciliationMismatches.set(mismatches);
  };

  recordLedgerBatch = (size: number, seconds: number) => {
    this.ledgerBatchSize.observe(size);
    this.ledgerBatchDuration.observe(seconds);
  };

  recordGroupCommit = (size: number, seconds: number) => {
    this.groupCommitSize.observe(size);
    this.groupCommitDuration.observe(seconds);
  };

  register(app: FastifyInstance) {
    app.addHook("onResponse", async (request, reply) => {
      const labels = {
        method: request.method,
        route: request.routeOptions.url ?? "unmatched",
        status: String(reply.statusCode),
      };
      this.httpRequests.inc(labels);
      this.httpDuration.observe(labels, reply.elapsedTime / 1000);
    });
  }
}
