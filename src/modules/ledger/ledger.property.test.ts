import fc from "fast-check";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase } from "../../../test/database.ts";
import type { FerryDatabase } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import { createClient } from "../clients/service.ts";
import { applyOperations } from "./engine.ts";
import * as ledger from "./service.ts";
import type { Account, Leg, Operation } from "./types.ts";

/**
 * Random sequences of transfers, holds, partial posts, voids, expiries, retries and two-leg
 * operations over several accounts and two currencies, applied in random batches. A plain model
 * kept by the test predicts every result; after each sequence every balance must equal the model
 * and the ledger's invariants must hold.
 */

let database: FerryDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.close();
});

const CURRENCIES = ["USD", "JPY"] as const;
const ACCOUNTS_PER_CURRENCY = 5; // 0 issuing (unbounded), 1–3 wallets (non-negative), 4 wallet with credit limit 500
const CREDIT_LIMIT = 500n;

type Command =
  | {
      kind: "transfer";
      currency: number;
      from: number;
      to: number;
      amount: bigint;
      hold: boolean;
      ttl: number | null;
    }
  | { kind: "withFee"; currency: number; from: number; to: number; amount: bigint; fee: bigint }
  | { kind: "post"; hold: number; part: number | null }
  | { kind: "void"; hold: number }
  | { kind: "retry"; earlier: number }
  | { kind: "tick"; ms: number };

const account = fc.integer({ min: 0, max: ACCOUNTS_PER_CURRENCY - 1 });
const amount = fc.bigInt({ min: 1n, max: 3_000n });
const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("transfer" as const),
      currency: fc.integer({ min: 0, max: 1 }),
      from: account,
      to: account,
      amount,
      hold: fc.boolean(),
      ttl: fc.option(fc.integer({ min: 1, max: 3 }), { nil: null }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("withFee" as const),
      currency: fc.integer({ min: 0, max: 1 }),
      from: account,
      to: account,
      amount,
      fee: fc.bigInt({ min: 1n, max: 100n }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("post" as const),
      hold: fc.nat(),
      part: fc.option(fc.integer({ min: 1, max: 100 }), { nil: null }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("void" as const), hold: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("retry" as const), earlier: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("tick" as const), ms: fc.integer({ min: 1, max: 3 }) }),
  },
);

interface ModelAccount {
  limit: "UNBOUNDED" | "NON_NEGATIVE" | "CREDIT_LIMIT";
  dp: bigint;
  cp: bigint;
  dpe: bigint;
  cpe: bigint;
}
interface ModelHold {
  id: string;
  debit: string;
  credit: string;
  amount: bigint;
  status: "PENDING" | "POSTED" | "VOIDED" | "EXPIRED";
  expiresAt: number | null;
}

let run = 0;
const outcomes = { accepted: 0, refused: 0 };

it("keeps every balance equal to the model and the invariants true", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(command, { minLength: 5, maxLength: 40 }),
      fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 40, maxLength: 40 }),
      async (commands, batchSizes) => {
        const clientId = `prop-${++run}-${Date.now()}`;
        await createClient(database.db, { id: clientId, name: clientId });
        const accounts: Account[][] = [];
        const model = new Map<string, ModelAccount>();
        for (const [c, code] of CURRENCIES.entries()) {
          await ledger.createCurrency(database.db, { clientId, code, scale: code === "JPY" ? 0 : 2 });
          const row: Account[] = [
            await ledger.openAccount(database.db, { clientId, currency: code, kind: "ISSUING" }),
          ];
          for (let i = 1; i < ACCOUNTS_PER_CURRENCY; i++) {
            const credit = i === ACCOUNTS_PER_CURRENCY - 1;
            row.push(
              await ledger.openAccount(database.db, {
                clientId,
                currency: code,
                kind: "USER_WALLET",
                ownerId: `u${c}${i}`,
                limitRule: credit ? "CREDIT_LIMIT" : "NON_NEGATIVE",
                creditLimit: credit ? CREDIT_LIMIT : 0n,
              }),
            );
          }
          for (const a of row) model.set(a.id, { limit: a.limitRule, dp: 0n, cp: 0n, dpe: 0n, cpe: 0n });
          accounts.push(row);
          // Every wallet starts with 5,000 minor units from the issuing account.
          const [issuing, ...wallets] = row;
          const funding = await ledger.submitBatch(
            database.db,
            wallets.map((w) => ({
              clientId,
              legs: [
                {
                  type: "SINGLE" as const,
                  id: `fund-${w.id}`,
                  debitAccountId: issuing?.id ?? "",
                  creditAccountId: w.id,
                  amount: 5_000n,
                  currency: code,
                },
              ],
            })),
          );
          expect(funding.every((r) => r.ok)).toBe(true);
          for (const w of wallets) {
            const m = model.get(w.id);
            const i = model.get(issuing?.id ?? "");
            if (m && i) {
              m.cp += 5_000n;
              i.dp += 5_000n;
            }
          }
        }
        const holds: ModelHold[] = [];
        const issued: { op: Operation; ok: boolean }[] = [];
        const usedIds = new Set<string>();
        let clock = Date.parse("2030-01-01T00:00:00Z");
        let seq = 0;
        const nextId = () => `t${++seq}`;

        const exposureOk = (a: ModelAccount) =>
          a.limit === "UNBOUNDED" || a.dp + a.dpe <= a.cp + (a.limit === "CREDIT_LIMIT" ? CREDIT_LIMIT : 0n);

        /** The model's verdict on one operation, applied to the model when it succeeds. */
        const predict = (op: Operation, now: number): boolean => {
          if (op.legs.every((l) => usedIds.has(l.id))) return true; // replay of an earlier success
          const draft = new Map([...model].map(([k, v]) => [k, { ...v }]));
          const holdChanges: [ModelHold, ModelHold["status"]][] = [];
          for (const leg of op.legs) {
            if (leg.type === "SINGLE" || leg.type === "PENDING") {
              if (leg.debitAccountId === leg.creditAccountId) return false;
              const d = draft.get(leg.debitAccountId);
              const c = draft.get(leg.creditAccountId);
              if (!d || !c) return false;
              if (leg.type === "SINGLE") {
                d.dp += leg.amount;
                c.cp += leg.amount;
              } else {
                d.dpe += leg.amount;
                c.cpe += leg.amount;
              }
              if (!exposureOk(d)) return false;
            } else {
              const hold = holds.find((h) => h.id === leg.pendingId);
              if (hold?.status !== "PENDING" || (hold.expiresAt !== null && hold.expiresAt <= now))
                return false;
              if (leg.type === "POST" && (leg.amount ?? hold.amount) > hold.amount) return false;
              const d = draft.get(hold.debit);
              const c = draft.get(hold.credit);
              if (!d || !c) return false;
              d.dpe -= hold.amount;
              c.cpe -= hold.amount;
              if (leg.type === "POST") {
                const posted = leg.amount ?? hold.amount;
                d.dp += posted;
                c.cp += posted;
              }
              holdChanges.push([hold, leg.type === "POST" ? "POSTED" : "VOIDED"]);
            }
          }
          for (const [k, v] of draft) model.set(k, v);
          for (const [hold, status] of holdChanges) hold.status = status;
          for (const leg of op.legs) {
            usedIds.add(leg.id);
            if (leg.type === "PENDING") {
              holds.push({
                id: leg.id,
                debit: leg.debitAccountId,
                credit: leg.creditAccountId,
                amount: leg.amount,
                status: "PENDING",
                expiresAt: leg.expiresAt?.getTime() ?? null,
              });
            }
          }
          return true;
        };

        // Turn commands into operations (or clock ticks), then apply them in random batch sizes.
        type Step = { op: Operation; ttl: number | null } | { tick: number };
        const steps: Step[] = [];
        const pendingIds: string[] = [];
        for (const cmd of commands) {
          if (cmd.kind === "tick") {
            steps.push({ tick: cmd.ms * 1000 });
            continue;
          }
          let legs: Leg[];
          if (cmd.kind === "transfer" || cmd.kind === "withFee") {
            const row = accounts[cmd.currency] ?? [];
            const from = row[cmd.from]?.id ?? "";
            const to = row[cmd.to]?.id ?? "";
            const currency = CURRENCIES[cmd.currency] ?? "USD";
            if (cmd.kind === "transfer") {
              const id = nextId();
              if (cmd.hold) pendingIds.push(id);
              legs = [
                {
                  type: cmd.hold ? "PENDING" : "SINGLE",
                  id,
                  debitAccountId: from,
                  creditAccountId: to,
                  amount: cmd.amount,
                  currency,
                },
              ];
            } else {
              const fees = row[0]?.id ?? "";
              legs = [
                {
                  type: "SINGLE",
                  id: nextId(),
                  debitAccountId: from,
                  creditAccountId: to,
                  amount: cmd.amount,
                  currency,
                },
                {
                  type: "SINGLE",
                  id: nextId(),
                  debitAccountId: from,
                  creditAccountId: fees,
                  amount: cmd.fee,
                  currency,
                },
              ];
            }
            steps.push({ op: { clientId, legs }, ttl: cmd.kind === "transfer" && cmd.hold ? cmd.ttl : null });
            continue;
          }
          if (cmd.kind === "retry") {
            const earlier = steps.filter((s) => "op" in s);
            const target = earlier[cmd.earlier % Math.max(1, earlier.length)];
            if (target) steps.push({ ...target });
            continue;
          }
          const pendingId = pendingIds[cmd.hold % Math.max(1, pendingIds.length)] ?? "missing";
          if (cmd.kind === "post") {
            legs = [
              {
                type: "POST",
                id: nextId(),
                pendingId,
                amount: cmd.part === null ? undefined : BigInt(cmd.part),
              },
            ];
          } else {
            legs = [{ type: "VOID", id: nextId(), pendingId }];
          }
          steps.push({ op: { clientId, legs }, ttl: null });
        }

        let cursor = 0;
        let batchNo = 0;
        while (cursor < steps.length) {
          const step = steps[cursor];
          if (step && "tick" in step) {
            clock += step.tick;
            const now = new Date(clock);
            await ledger.expirePendingTransfers(database.db, { now });
            for (const h of holds)
              if (h.status === "PENDING" && h.expiresAt !== null && h.expiresAt <= clock)
                h.status = "EXPIRED";
            // Pending balances are what the holds still pending add up to.
            for (const a of model.values()) {
              a.dpe = 0n;
              a.cpe = 0n;
            }
            for (const h of holds) {
              if (h.status !== "PENDING") continue;
              const d = model.get(h.debit);
              const c = model.get(h.credit);
              if (d && c) {
                d.dpe += h.amount;
                c.cpe += h.amount;
              }
            }
            cursor++;
            continue;
          }
          const size = batchSizes[batchNo++ % batchSizes.length] ?? 1;
          const batch: Operation[] = [];
          while (batch.length < size && cursor < steps.length) {
            const next = steps[cursor];
            if (!next || "tick" in next) break;
            // A hold with a ttl expires that many seconds after the clock of its batch.
            const { ttl } = next;
            batch.push(
              ttl === null
                ? next.op
                : {
                    ...next.op,
                    legs: next.op.legs.map((l) =>
                      l.type === "PENDING" ? { ...l, expiresAt: new Date(clock + ttl * 1000) } : l,
                    ),
                  },
            );
            cursor++;
          }
          const now = new Date(clock);
          const results = await inTransaction(database.db, (tx) => applyOperations(tx, batch, now));
          for (const [i, op] of batch.entries()) {
            const expected = predict(op, clock);
            const result = results[i];
            expect(
              result?.ok,
              `${JSON.stringify(op, (_, v) => (typeof v === "bigint" ? v.toString() : v))} → ${JSON.stringify(result && !result.ok ? result : "ok")}`,
            ).toBe(expected);
            issued.push({ op, ok: expected });
          }
        }

        for (const [id, expected] of model) {
          const actual = await ledger.getAccount(database.db, id);
          expect({
            dp: actual.debitsPosted,
            cp: actual.creditsPosted,
            dpe: actual.debitsPending,
            cpe: actual.creditsPending,
          }).toEqual({
            dp: expected.dp,
            cp: expected.cp,
            dpe: expected.dpe,
            cpe: expected.cpe,
          });
        }
        const report = await ledger.checkInvariants(database.db, clientId);
        expect(report.ok, JSON.stringify(report)).toBe(true);
        for (const { ok } of issued) outcomes[ok ? "accepted" : "refused"]++;
      },
    ),
    { numRuns: 40 },
  );
  // The sequences exercised both paths, not only refusals or only successes.
  console.info(`ledger property: ${outcomes.accepted} operations accepted, ${outcomes.refused} refused`);
  expect(outcomes.accepted).toBeGreaterThan(100);
  expect(outcomes.refused).toBeGreaterThan(20);
});
