/**
 * Ledger benchmark: C concurrent callers drive the ledger service for a fixed time on the configured
 * database (DATABASE_URL → PostgreSQL, in a fresh database it drops afterwards; otherwise PGlite
 * in a temporary directory), over two workloads:
 *
 *   uniform  each transfer between two wallets picked at random among N
 *   hot      every transfer debits the same wallet
 *
 * and prints transfers/s and p50/p99 latency for each. `--baseline` (PostgreSQL only) also runs the
 * plain-SQL reference: one transaction per transfer = insert the transfer + update two balances.
 *
 *   npm run bench:ledger -- [--concurrency 64] [--seconds 10] [--accounts 10000] [--workload both] [--baseline]
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { type FerryDatabase, openDatabase } from "../src/db/database.ts";
import { migrate } from "../src/db/migrate.ts";
import { newId } from "../src/lib/ids.ts";
import { createClient } from "../src/modules/clients/service.ts";
import * as ledger from "../src/modules/ledger/service.ts";

const { values: args } = parseArgs({
  options: {
    concurrency: { type: "string", default: "64" },
    seconds: { type: "string", default: "10" },
    accounts: { type: "string", default: "10000" },
    workload: { type: "string", default: "both" },
    "batch-size": { type: "string" },
    "in-flight": { type: "string" },
    baseline: { type: "boolean", default: false },
    "baseline-connections": { type: "string", default: "16" },
  },
});
const concurrency = Number(args.concurrency);
const seconds = Number(args.seconds);
const accountCount = Number(args.accounts);
const baseUrl = process.env.DATABASE_URL || undefined;

async function openBenchDatabase(): Promise<{
  database: FerryDatabase;
  url?: string;
  cleanup: () => Promise<void>;
}> {
  if (baseUrl) {
    const name = `ferry_bench_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
    const admin = new pg.Client({ connectionString: baseUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = new URL(baseUrl);
    url.pathname = `/${name}`;
    const database = await openDatabase({
      databaseUrl: url.toString(),
      poolSize: Number(process.env.FERRY_DB_POOL_SIZE ?? 16),
    });
    return {
      database,
      url: url.toString(),
      cleanup: async () => {
        await database.close();
        const c = new pg.Client({ connectionString: baseUrl });
        await c.connect();
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await c.end();
      },
    };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-bench-"));
  const database = await openDatabase({ dataDir: dir });
  return {
    database,
    cleanup: async () => {
      await database.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

interface Outcome {
  name: string;
  transfers: number;
  refused: number;
  seconds: number;
  latencies: Float64Array;
  batches?: number;
}

function report(o: Outcome) {
  const sorted = o.latencies.slice().sort();
  const line = [
    o.name.padEnd(22),
    `${Math.round(o.transfers / o.seconds)
      .toLocaleString("en-US")
      .padStart(8)} transfers/s`,
    `p50 ${percentile(sorted, 50).toFixed(1).padStart(6)} ms`,
    `p99 ${percentile(sorted, 99).toFixed(1).padStart(6)} ms`,
    `${o.transfers.toLocaleString("en-US")} ok`,
    `${o.refused} refused`,
    o.batches ? `avg batch ${(o.transfers / o.batches).toFixed(1)}` : "",
  ];
  console.log(line.join("  "));
}

/** Runs `call` from `concurrency` loops for `seconds`; records each call's latency. */
async function drive(
  name: string,
  call: (caller: number) => Promise<boolean>,
  batches?: () => number,
): Promise<Outcome> {
  const latencies: number[] = [];
  let refused = 0;
  const batchesBefore = batches?.() ?? 0;
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, caller) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        const ok = await call(caller);
        latencies.push(performance.now() - t0);
        if (!ok) refused++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return {
    name,
    transfers: latencies.length - refused,
    refused,
    seconds: elapsed,
    latencies: Float64Array.from(latencies),
    batches: batches ? batches() - batchesBefore : undefined,
  };
}

async function main() {
  const { database, url, cleanup } = await openBenchDatabase();
  try {
    await migrate(database);
    const db = database.db;
    const clientId = "bench";
    await createClient(db, { id: clientId, name: "Benchmark" });
    await ledger.createCurrency(db, { clientId, code: "USD", scale: 2 });
    const issuing = await ledger.openAccount(db, { clientId, currency: "USD", kind: "ISSUING" });
    const wallets: string[] = [];
    for (let i = 0; i < accountCount; i += 500) {
      const opened = await Promise.all(
        Array.from({ length: Math.min(500, accountCount - i) }, (_, j) =>
          ledger.openAccount(db, {
            clientId,
            currency: "USD",
            kind: "USER_WALLET",
            ownerId: `user-${i + j}`,
          }),
        ),
      );
      wallets.push(...opened.map((a) => a.id));
    }
    const hotWallet = wallets[0] ?? "";
    // Fund every wallet (the hot one with far more), in large batches.
    for (let i = 0; i < wallets.length; i += 1000) {
      const results = await ledger.submitBatch(
        db,
        wallets.slice(i, i + 1000).map((w) => ({
          clientId,
          legs: [
            {
              type: "SINGLE" as const,
              id: `fund-${w}`,
              debitAccountId: issuing.id,
              creditAccountId: w,
              amount: w === hotWallet ? 10n ** 15n : 1_000_000_00n,
              currency: "USD",
            },
          ],
        })),
      );
      if (!results.every((r) => r.ok)) throw new Error("funding failed");
    }

    let batchCount = 0;
    const book = new ledger.Ledger(db, {
      maxBatchSize: Number(args["batch-size"] ?? process.env.FERRY_LEDGER_BATCH_SIZE ?? 512),
      maxInFlight: Number(
        args["in-flight"] ?? process.env.FERRY_LEDGER_BATCHES_IN_FLIGHT ?? (baseUrl ? 2 : 1),
      ),
      onBatch: () => {
        batchCount++;
      },
    });
    const pick = () => wallets[Math.floor(Math.random() * wallets.length)] ?? "";
    const transfer = async (debit: string, credit: string) => {
      const result = await book.submit({
        clientId,
        legs: [
          {
            type: "SINGLE",
            id: newId(),
            debitAccountId: debit,
            creditAccountId: credit,
            amount: 1n + BigInt(Math.floor(Math.random() * 100)),
            currency: "USD",
          },
        ],
      });
      return result.ok;
    };

    console.log(
      `Ferry ledger benchmark — ${database.kind}${url ? "" : " (embedded, temporary directory)"}, ${os.cpus().length} cores, ` +
        `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; ${concurrency} concurrent callers, ` +
        `${seconds} s per workload, ${accountCount.toLocaleString("en-US")} accounts`,
    );
    const workloads = args.workload === "both" ? ["uniform", "hot"] : [String(args.workload)];
    for (const workload of workloads) {
      const outcome = await drive(
        `ledger ${workload}`,
        async () => {
          const debit = workload === "hot" ? hotWallet : pick();
          let credit = pick();
          while (credit === debit) credit = pick();
          return transfer(debit, credit);
        },
        () => batchCount,
      );
      report(outcome);
    }

    if (args.baseline) {
      if (!url) {
        console.log("(--baseline needs PostgreSQL: set DATABASE_URL)");
      } else {
        const pool = new pg.Pool({ connectionString: url, max: Number(args["baseline-connections"]) });
        // One transaction per transfer, as a straightforward implementation would do it.
        const rawTransfer = async (debit: string, credit: string) => {
          const client = await pool.connect();
          try {
            await client.query("BEGIN");
            const amount = String(1 + Math.floor(Math.random() * 100));
            await client.query(
              `INSERT INTO ledger_transfers (client_id, id, operation_id, type, status, debit_account_id, credit_account_id, currency, amount)
               VALUES ($1, $2, $2, 'SINGLE', 'POSTED', $3, $4, 'USD', $5)`,
              [clientId, newId(), debit, credit, amount],
            );
            const debited = await client.query(
              `UPDATE ledger_accounts SET debits_posted = debits_posted + $2
               WHERE id = $1 AND credits_posted - debits_posted - debits_pending >= $2`,
              [debit, amount],
            );
            await client.query(
              "UPDATE ledger_accounts SET credits_posted = credits_posted + $2 WHERE id = $1",
              [credit, amount],
            );
            await client.query(debited.rowCount === 1 ? "COMMIT" : "ROLLBACK");
            return debited.rowCount === 1;
          } catch (error) {
            await client.query("ROLLBACK").catch(() => {});
            // Deadlocks between two transfers touching the same pair in opposite order: count as refused.
            if ((error as { code?: string }).code === "40P01") return false;
            throw error;
          } finally {
            client.release();
          }
        };
        for (const workload of workloads) {
          const outcome = await drive(`raw SQL ${workload}`, async () => {
            const debit = workload === "hot" ? hotWallet : pick();
            let credit = pick();
            while (credit === debit) credit = pick();
            return rawTransfer(debit, credit);
          });
          report(outcome);
        }
        await pool.end();
      }
    }

    const invariants = await ledger.checkInvariants(db, clientId);
    console.log(
      `invariants: ${invariants.ok ? "ok" : "VIOLATED"} (${invariants.accounts.toLocaleString("en-US")} accounts, ${invariants.transfers.toLocaleString("en-US")} transfers)`,
    );
    if (!invariants.ok) process.exitCode = 1;
  } finally {
    await cleanup();
  }
}

await main();
