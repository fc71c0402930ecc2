import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as ledger from "../src/modules/ledger/service.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import {
  balances,
  NO_KYC_LIMITS,
  openCoin,
  registerCustomer,
  setUpUsd,
  staff,
  topUp,
  walletClient,
} from "./wallet.ts";

/** Wallet API under concurrency: many accepts of one request, two accountants at once, a crowd of transfers. */

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ workers: true, settings: { sandboxPayoutDelayMs: 100 } });
});
afterAll(() => t.close());

async function setting() {
  const { clientId, admin } = await walletClient(t, {
    settings: { ...NO_KYC_LIMITS, monitoring: { velocityCount: 1000 } },
  });
  const { bankId } = await setUpUsd(admin);
  const accountants = [await staff(t, admin, "accountant"), await staff(t, admin, "accountant")] as const;
  const anna = await registerCustomer(t, clientId);
  const annaCoin = await openCoin(anna);
  await topUp(accountants[0], bankId, annaCoin, "100.00");
  return { clientId, admin, accountants, anna, annaCoin, bankId };
}

const bankDetails = { fullName: "Anna Example", iban: "DE89370400440532013000", bic: "COBADEFFXXX" };

async function legsOf(clientId: string, requestId: string) {
  return ledger.listEntriesOfGroup(t.database.db, clientId, `txn:${requestId}`);
}

describe("Wallet API concurrency", () => {
  it("20 concurrent accepts of one withdrawal: all answer it, one payout, the hold posted once", async () => {
    const s = await setting();
    const asked = await s.anna.call("POST", "/api/v1/bank-withdrawals/with-bank", {
      coinSerial: s.annaCoin,
      amount: "40.00",
      bankDetails,
    });
    expect(asked.statusCode, asked.body).toBe(200);
    const rid = asked.json().requestIdentifier;
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        s.accountants[i % 2]?.call("POST", `/api/v1/bank-withdrawals/${rid}/accept`),
      ),
    );
    for (const a of answers) expect(a?.statusCode, a?.body).toBe(200);
    const payouts = await t.database.db
      .selectFrom("steps")
      .select("id")
      .where("kind", "=", "BANK_PAYOUT")
      .where("client_id", "=", s.clientId)
      .execute();
    expect(payouts).toHaveLength(1);
    await expect
      .poll(async () => (await balances(s.anna, s.annaCoin)).amount, { timeout: 10_000 })
      .toBe("60.00");
    const legs = await legsOf(s.clientId, asked.json().process.id);
    expect(legs.filter((l) => l.type === "POST")).toHaveLength(1);
    expect(legs.filter((l) => l.type === "PENDING")).toHaveLength(1);
    expect((await ledger.checkInvariants(t.database.db, s.clientId)).ok).toBe(true);
  });

  it("two accountants accept and decline the same request at once: exactly one wins, the other is a 409", async () => {
    for (let round = 0; round < 6; round++) {
      const s = await setting();
      const asked = await s.anna.call("POST", "/api/v1/bank-withdrawals/with-bank", {
        coinSerial: s.annaCoin,
        amount: "30.00",
        bankDetails,
      });
      const rid = asked.json().requestIdentifier;
      const [accept, decline] = await Promise.all([
        s.accountants[0]?.call("POST", `/api/v1/bank-withdrawals/${rid}/accept`),
        s.accountants[1]?.call("POST", `/api/v1/bank-withdrawals/${rid}/decline`),
      ]);
      const codes = [accept?.statusCode, decline?.statusCode].sort();
      expect(codes, `${accept?.body} ${decline?.body}`).toEqual([200, 409]);
      const legs = await legsOf(s.clientId, asked.json().process.id);
      if (accept?.statusCode === 200) {
        expect(legs.filter((l) => l.type === "VOID")).toHaveLength(0);
        await expect
          .poll(async () => (await balances(s.anna, s.annaCoin)).amount, { timeout: 10_000 })
          .toBe("70.00");
      } else {
        expect(legs.filter((l) => l.type === "VOID")).toHaveLength(1);
        expect(await balances(s.anna, s.annaCoin)).toEqual({
          amount: "100.00",
          available: "100.00",
          held: "0.00",
        });
      }
      expect((await ledger.checkInvariants(t.database.db, s.clientId)).ok).toBe(true);
    }
  });

  it("50 concurrent transfers out of one account that together exceed it: the balance never goes below zero", async () => {
    const s = await setting();
    const ben = await registerCustomer(t, s.clientId);
    const benCoin = await openCoin(ben);
    // 50 × 3.00 = 150.00 asked of 100.00: at most 33 can pass.
    const answers = await Promise.all(
      Array.from({ length: 50 }, () =>
        s.anna.call("POST", "/api/v1/transfers", {
          paymentTool: { type: "COIN", srcValue: s.annaCoin, destValue: benCoin },
          amount: "3.00",
        }),
      ),
    );
    const ok = answers.filter((a) => a.statusCode === 200 && a.json().process.status === "processed").length;
    const refused = answers.filter((a) => a.statusCode === 402).length;
    expect(ok + refused, answers.map((a) => a.statusCode).join(",")).toBe(50);
    expect(ok).toBe(33);
    expect(await balances(s.anna, s.annaCoin)).toEqual({ amount: "1.00", available: "1.00", held: "0.00" });
    expect(await balances(ben, benCoin)).toMatchObject({ amount: "99.00" });
    expect((await ledger.checkInvariants(t.database.db, s.clientId)).ok).toBe(true);
  });
});
