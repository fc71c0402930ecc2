import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FerryDatabase, openDatabase } from "../src/db/database.ts";
import { inTransaction } from "../src/db/transaction.ts";
import { createClient } from "../src/modules/clients/service.ts";
import * as ledger from "../src/modules/ledger/service.ts";
import { accountFigures, type OperationResult } from "../src/modules/ledger/types.ts";
import { createTestDatabase } from "./database.ts";
import { openFundedWallet } from "./fixtures.ts";

/**
 * Concurrency on the ledger. On PostgreSQL (DATABASE_URL set) the callers are spread over two
 * connection pools with a Ledger each — two Ferry processes on one database. On PGlite they
 * share the one embedded connection.
 */
let primary: FerryDatabase & { url: string | undefined };
let secondary: FerryDatabase | undefined;
let ledgers: ledger.Ledger[];

beforeAll(async () => {
  primary = await createTestDatabase({ poolSize: 20 });
  if (primary.url) secondary = await openDatabase({ databaseUrl: primary.url, poolSize: 20 });
  ledgers = [primary.db, secondary?.db ?? primary.db].map(
    (db) => new ledger.Ledger(db, { maxBatchSize: 16, maxInFlight: 4 }),
  );
  await createClient(primary.db, { id: "acme", name: "Acme" });
  await ledger.createCurrency(primary.db, { clientId: "acme", code: "USD", scale: 2 });
});
afterAll(async () => {
  await secondary?.close();
  await primary.close();
});

async function walletWith(amount: bigint) {
  const { wallet } = await openFundedWallet(primary.db, {
    clientId: "acme",
    currency: "USD",
    amount,
    ownerId: "payer",
  });
  const sink = await ledger.openAccount(primary.db, {
    clientId: "acme",
    currency: "USD",
    kind: "USER_WALLET",
    ownerId: "payee",
  });
  return { wallet, sink };
}

const dbs = () => [primary.db, secondary?.db ?? primary.db];

describe.each([
  ["batched through two ledgers", "batched"],
  ["one transaction each, no batching", "direct"],
] as const)("50 concurrent debits exceeding the balance (%s)", (_, mode) => {
  it("lets exactly those that fit succeed and never goes below zero", async () => {
    const { wallet, sink } = await walletWith(10_00n);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i): Promise<OperationResult> => {
        const operation = {
          clientId: "acme",
          legs: [
            {
              type: "SINGLE" as const,
              id: `debit-${mode}-${wallet.id}-${i}`,
              debitAccountId: wallet.id,
              creditAccountId: sink.id,
              amount: 37n,
              currency: "USD",
            },
          ],
        };
        if (mode === "batched")
          return ledgers[i % 2]?.submit(operation) ?? Promise.reject(new Error("no ledger"));
        const db = dbs()[i % 2] ?? primary.db;
        return inTransaction(db, (tx) => ledger.applyInTransaction(tx, operation));
      }),
    );
    const accepted = results.filter((r) => r.ok).length;
    const refused = results.filter((r) => !r.ok && r.code === "EXCEEDS_LIMIT").length;
    expect(accepted).toBe(27); // 27 × 0.37 = 9.99 ≤ 10.00 < 28 × 0.37
    expect(refused).toBe(23);
    const after = await ledger.getAccount(primary.db, wallet.id);
    expect(accountFigures(after).balance).toBe(1n);
    expect((await ledger.getAccount(primary.db, sink.id)).creditsPosted).toBe(27n * 37n);
    expect((await ledger.checkInvariants(primary.db)).ok).toBe(true);
  });
});

describe.each([
  ["batched through two ledgers", "batched"],
  ["one transaction each, no batching", "direct"],
] as const)("the same transfer id sent 20 times at once (%s)", (_, mode) => {
  it("makes one transfer; the others are replays of it", async () => {
    const { wallet, sink } = await walletWith(10_00n);
    const operation = {
      clientId: "acme",
      legs: [
        {
          type: "SINGLE" as const,
          id: `once-${mode}-${wallet.id}`,
          debitAccountId: wallet.id,
          creditAccountId: sink.id,
          amount: 1_00n,
          currency: "USD",
        },
      ],
    };
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        if (mode === "batched")
          return ledgers[i % 2]?.submit(operation) ?? Promise.reject(new Error("no ledger"));
        return inTransaction(dbs()[i % 2] ?? primary.db, (tx) => ledger.applyInTransaction(tx, operation));
      }),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    expect(results.filter((r) => r.ok && !r.replayed)).toHaveLength(1);
    const ids = new Set(
      results.flatMap((r) => (r.ok ? r.transfers.map((t) => `${t.id}@${t.createdAt.toISOString()}`) : [])),
    );
    expect(ids.size).toBe(1);
    expect(accountFigures(await ledger.getAccount(primary.db, wallet.id)).balance).toBe(9_00n);
    const entries = await ledger.listEntries(primary.db, wallet.id, { offset: 0, limit: 100 });
    expect(entries.total).toBe(2); // the funding and the one transfer
    expect((await ledger.checkInvariants(primary.db)).ok).toBe(true);
  });
});

describe("holds under concurrency", () => {
  it("posts or voids a hold exactly once when both race", async () => {
    const { wallet, sink } = await walletWith(10_00n);
    const hold = await ledgers[0]?.submit({
      clientId: "acme",
      legs: [
        {
          type: "PENDING",
          id: `race-hold-${wallet.id}`,
          debitAccountId: wallet.id,
          creditAccountId: sink.id,
          amount: 4_00n,
          currency: "USD",
        },
      ],
    });
    expect(hold?.ok).toBe(true);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        ledgers[i % 2]?.submit({
          clientId: "acme",
          legs: [
            i % 2 === 0
              ? { type: "POST", id: `race-post-${wallet.id}-${i}`, pendingId: `race-hold-${wallet.id}` }
              : { type: "VOID", id: `race-void-${wallet.id}-${i}`, pendingId: `race-hold-${wallet.id}` },
          ],
        }),
      ),
    );
    expect(results.filter((r) => r?.ok)).toHaveLength(1);
    const figures = accountFigures(await ledger.getAccount(primary.db, wallet.id));
    expect(figures.held).toBe(0n);
    expect([6_00n, 10_00n]).toContain(figures.balance);
    expect((await ledger.checkInvariants(primary.db)).ok).toBe(true);
  });
});
