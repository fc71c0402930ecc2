import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import * as ledger from "../src/modules/ledger/service.ts";
import { TEST_CARDS } from "../src/providers/acquirer/sandbox.ts";
import {
  balances,
  cardDeposit,
  distinctCard,
  drainSteps,
  driveUntil,
  fundedClient,
  GOOD_IBAN,
  statusOf,
  withdrawal,
} from "./funding.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { tokenFor } from "./page-forms.ts";
import { createTestClient, createUser, type TestClient } from "./platform.ts";

/**
 * Regression tests of the money the core used to lose (issue 7), each reproduced the way it was
 * found: a provider call in flight (held by the sandbox gate, not by table locks) while the client
 * cancels or a staff member decides, an answer lost before a crash, one failing step among many.
 * After each: the ledger's invariants, the balances, and reconciliation with the providers.
 */
let t: TestApp;
const OTHER_IBAN = "DE62370400440532013001";

beforeAll(async () => {
  t = await startTestApp({ settings: { sandboxPayoutDelayMs: 100 } });
});
afterAll(async () => {
  await t.close();
});
afterEach(() => {
  t.services.sandboxGate.releaseAll();
});

async function expectConsistent(client: TestClient) {
  await drainSteps(t, client.clientId);
  expect((await ledger.checkInvariants(t.database.db, client.clientId)).ok).toBe(true);
  const report = await t.services.reconcile(client.clientId);
  expect(report.mismatches).toEqual([]);
  expect(report.ok).toBe(true);
}

const bankPayouts = (clientId: string) =>
  t.database.db
    .selectFrom("sandbox_bank_payouts")
    .select(["idempotency_key", "outcome"])
    .where("idempotency_key", "like", `${clientId}:%`)
    .execute();

const charges = (clientId: string) =>
  t.database.db
    .selectFrom("sandbox_acquirer_charges")
    .select(["idempotency_key", "outcome"])
    .where("idempotency_key", "like", `${clientId}:%`)
    .execute();

describe("a cancel never races a provider call", () => {
  it("DELETE while the bank payout is in flight: 409 retryable, then the payout completes and is booked", async () => {
    const client = await fundedClient(t, { users: [["user-1", "100.00"]] });
    const held = t.services.sandboxGate.hold("bank.payout");
    const pending = withdrawal(client, "user-1", "40.00", "wd-race");
    await vi.waitFor(() => expect(held.waiting()).toBe(1));
    for (const attempt of [
      client.request("DELETE", "/v1/transactions/wd-race"),
      client.request("POST", "/v1/transactions/wd-race/feedback", { feedback: "ERROR" }),
      client.request("POST", "/v1/transactions/wd-race/feedback", { feedback: "CANCELLED" }),
    ]) {
      const response = await attempt;
      expect(response.statusCode, response.body).toBe(409);
      expect(response.json()).toMatchObject({ retryable: true });
    }
    held.release();
    expect((await pending).json().status).toBe("AUTHORIZED");
    await driveUntil(t, client, "wd-race", "CAPTURED");
    expect(await balances(client, "user-1")).toEqual({ EUR: "60.00/60.00" });
    expect(await bankPayouts(client.clientId)).toEqual([
      { idempotency_key: `${client.clientId}:wd-race`, outcome: "ACCEPTED" },
    ]);
    await expectConsistent(client);
  });

  it("a payout the bank accepted just before a crash: cancel refused, recovery books it", async () => {
    const client = await fundedClient(t, { users: [["user-1", "100.00"]] });
    // The request's process dies after the bank accepted the payout and before it recorded the answer.
    t.services.sandboxGate.loseAnswers("bank.payout", 1);
    const response = await withdrawal(client, "user-1", "30.00", "wd-crash");
    expect(response.json().status).toBe("PENDING");
    expect(await bankPayouts(client.clientId)).toHaveLength(1);
    const cancel = await client.request("DELETE", "/v1/transactions/wd-crash");
    expect(cancel.statusCode).toBe(409);
    await driveUntil(t, client, "wd-crash", "CAPTURED");
    expect(await balances(client, "user-1")).toEqual({ EUR: "70.00/70.00" });
    await expectConsistent(client);
  });

  it("staff APPROVE racing a cancel on a reviewed withdrawal: one wins, never both", async () => {
    for (let trial = 0; trial < 6; trial++) {
      const client = await fundedClient(t, {
        settings: { monitoring: { singleAmountReviewUsd: 10 } },
        users: [["user-1", "9.00"]],
      });
      // A user-funded wallet big enough for a reviewed withdrawal: top up below the review threshold.
      for (let i = 0; i < 3; i++)
        expect((await cardDeposit(client, "user-1", "9.00", `top-${i}`, distinctCard())).statusCode).toBe(
          201,
        );
      const reviewed = await withdrawal(client, "user-1", "20.00", "wd-review");
      expect(reviewed.json().status).toBe("MANUAL_REVIEW");
      const held = t.services.sandboxGate.hold("bank.payout");
      const approve = t.app.inject({
        method: "POST",
        url: `/admin/clients/${client.clientId}/transactions/wd-review/review`,
        headers: t.adminAuth,
        payload: { decision: "APPROVE" },
      });
      const cancel = client.request("DELETE", "/v1/transactions/wd-review");
      const cancelled = await cancel;
      if (cancelled.statusCode === 200) {
        held.release();
        // The approval lost the race, or won it and the cancel came before the payout was tried.
        const approved = await approve;
        // (Its answer shows the status at its moment: PENDING if it read before the cancel committed.)
        if (approved.statusCode === 200) expect(["PENDING", "CANCELED"]).toContain(approved.json().status);
        else expect(approved.statusCode).toBe(409);
        expect(await statusOf(client, "wd-review")).toBe("CANCELED");
        expect(await bankPayouts(client.clientId)).toEqual([]);
        expect(await balances(client, "user-1")).toEqual({ EUR: "36.00/36.00" });
      } else {
        expect(cancelled.statusCode).toBe(409);
        await vi.waitFor(() => expect(held.waiting()).toBe(1));
        held.release();
        expect((await approve).statusCode).toBe(200);
        await driveUntil(t, client, "wd-review", "CAPTURED");
        expect(await balances(client, "user-1")).toEqual({ EUR: "16.00/16.00" });
      }
      await expectConsistent(client);
    }
  });
});

describe("a card charge's outcome is never dropped", () => {
  it("feedback ERROR while the charge is in flight: 409 retryable; the charge is then credited", async () => {
    const client = await fundedClient(t, { users: [["user-1"]] });
    const held = t.services.sandboxGate.hold("acquirer.charge");
    const pending = cardDeposit(client, "user-1", "25.00", "dep-race", distinctCard());
    await vi.waitFor(() => expect(held.waiting()).toBe(1));
    const error = await client.request("POST", "/v1/transactions/dep-race/feedback", { feedback: "ERROR" });
    expect(error.statusCode).toBe(409);
    expect(error.json()).toMatchObject({ retryable: true });
    held.release();
    expect((await pending).json().status).toBe("CAPTURED");
    expect(await balances(client, "user-1")).toEqual({ EUR: "25.00/25.00" });
    await expectConsistent(client);
  });

  it("a charge whose answer is lost until the last attempt: refunded, the deposit ends ERROR", async () => {
    const client = await fundedClient(t, { users: [["user-1"]] });
    t.services.sandboxGate.loseAnswers("acquirer.charge", 50);
    const response = await cardDeposit(client, "user-1", "12.00", "dep-lost", distinctCard());
    expect(response.json().status).toBe("PENDING");
    expect((await client.request("DELETE", "/v1/transactions/dep-lost")).statusCode).toBe(409);
    await driveUntil(t, client, "dep-lost", "ERROR");
    await drainSteps(t, client.clientId);
    expect(await charges(client.clientId)).toEqual([
      { idempotency_key: `${client.clientId}:dep-lost`, outcome: "REFUNDED" },
    ]);
    expect(await balances(client, "user-1")).toEqual({ EUR: "0.00/0.00" });
    await expectConsistent(client);
  });

  it("the timeout card across a lost answer: retried with the same key, charged and credited once", async () => {
    const client = await fundedClient(t, { users: [["user-1"]] });
    t.services.sandboxGate.failNext("acquirer.charge", 2); // both in-request tries fail before the acquirer acts
    const response = await cardDeposit(client, "user-1", "50.00", "dep-timeout", TEST_CARDS.TIMEOUT_ONCE);
    expect(response.json().status).toBe("PENDING");
    expect(
      (await client.request("POST", "/v1/transactions/dep-timeout/feedback", { feedback: "ERROR" }))
        .statusCode,
    ).toBe(409);
    await driveUntil(t, client, "dep-timeout", "CAPTURED");
    expect(await charges(client.clientId)).toEqual([
      { idempotency_key: `${client.clientId}:dep-timeout`, outcome: "APPROVED" },
    ]);
    expect(await balances(client, "user-1")).toEqual({ EUR: "50.00/50.00" });
    await expectConsistent(client);
  });

  it("a 3-D Secure deposit cancelled before the challenge: the challenge fails, nothing charged", async () => {
    const client = await fundedClient(t, { users: [["user-1"]] });
    const response = await cardDeposit(client, "user-1", "70.00", "dep-3ds", TEST_CARDS.CHALLENGE);
    expect(response.json().status).toBe("AWAITING_PAYMENT");
    const reference = String(response.json().redirectUrl).split("/").pop();
    expect((await client.request("DELETE", "/v1/transactions/dep-3ds")).json().status).toBe("CANCELED");
    const page = await t.app.inject({
      method: "POST",
      url: `/sandbox/acquirer/challenge/${reference}`,
      payload: `decision=complete&csrf=${tokenFor(t, `/sandbox/acquirer/challenge/${reference}`)}`,
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(page.statusCode).toBe(200);
    expect(await statusOf(client, "dep-3ds")).toBe("CANCELED");
    expect((await charges(client.clientId)).map((c) => c.outcome)).toEqual(["CHALLENGE_FAILED"]);
    await expectConsistent(client);
  });
});

describe("recovery isolates each step", () => {
  it("a deposit that cannot be booked (balance overflow) does not hold up other clients' payouts", async () => {
    const stuck = await fundedClient(t, { users: [["rich"]] });
    // A wallet one unit short of 38 digits: any credit overflows it.
    const wallet = await t.services.wallets.open(stuck.clientId, "rich", "EUR");
    const issuing = await ledger.openAccount(t.database.db, {
      clientId: stuck.clientId,
      currency: "EUR",
      kind: "ISSUING",
    });
    const seeded = await ledger.applyInTransaction(t.database.db, {
      clientId: stuck.clientId,
      legs: [
        {
          type: "SINGLE",
          id: "seed",
          debitAccountId: issuing.id,
          creditAccountId: wallet.id,
          amount: 10n ** 38n - 2n,
          currency: "EUR",
        },
      ],
    });
    expect(seeded.ok).toBe(true);
    const others = await fundedClient(t, {
      users: [
        ["user-1", "100.00"],
        ["user-2", "100.00"],
      ],
    });
    t.services.sandboxGate.failNext("acquirer.charge", 2);
    const overflow = await cardDeposit(stuck, "rich", "10.00", "overflow", distinctCard());
    expect(overflow.json().status, overflow.body).toBe("PENDING");
    t.services.sandboxGate.failNext("bank.payout", 10); // every payout below starts PENDING, left to recovery
    for (const [user, id] of [
      ["user-1", "pay-1"],
      ["user-2", "pay-2"],
      ["user-1", "pay-3"],
    ] as const) {
      const response = await withdrawal(
        others,
        user,
        "10.00",
        id,
        user === "user-1" ? GOOD_IBAN : OTHER_IBAN,
      );
      expect(response.json().status, response.body).toBe("PENDING");
    }
    for (const id of ["pay-1", "pay-2", "pay-3"]) await driveUntil(t, others, id, "CAPTURED");
    await driveUntil(t, stuck, "overflow", "ERROR");
    await drainSteps(t, stuck.clientId);
    // The card was charged, the credit could not be booked: the charge is refunded.
    expect(
      (await charges(stuck.clientId)).find((c) => c.idempotency_key.endsWith(":overflow"))?.outcome,
    ).toBe("REFUNDED");
    await expectConsistent(others);
    await expectConsistent(stuck);
  });
});

describe("feedback on executed withdrawals and late bank money", () => {
  it("REFUNDED and CHARGED_BACK on captured withdrawals give amount + fee back, booked and reconciled", async () => {
    const client = await fundedClient(t, {
      settings: { fees: [{ transactionType: "WITHDRAWAL", fixed: "1.00" }] },
      users: [["user-1", "100.00"]],
    });
    await withdrawal(client, "user-1", "40.00", "wd-ref");
    await withdrawal(client, "user-1", "20.00", "wd-cb");
    await driveUntil(t, client, "wd-ref", "CAPTURED");
    await driveUntil(t, client, "wd-cb", "CAPTURED");
    expect(await balances(client, "user-1")).toEqual({ EUR: "38.00/38.00" });
    const refunded = await client.request("POST", "/v1/transactions/wd-ref/feedback", {
      feedback: "REFUNDED",
    });
    expect(refunded.json()).toMatchObject({ status: "REFUNDED", total: "41.00" });
    expect(await balances(client, "user-1")).toEqual({ EUR: "79.00/79.00" });
    const chargedBack = await client.request("POST", "/v1/transactions/wd-cb/feedback", {
      feedback: "CHARGED_BACK",
      date: "2026-11-21T10:00:00+00:00",
    });
    expect(chargedBack.statusCode, chargedBack.body).toBe(200);
    expect(await balances(client, "user-1")).toEqual({ EUR: "100.00/100.00" });
    // Said twice: nothing more.
    expect(
      (await client.request("POST", "/v1/transactions/wd-ref/feedback", { feedback: "REFUNDED" })).statusCode,
    ).toBe(200);
    expect(await balances(client, "user-1")).toEqual({ EUR: "100.00/100.00" });
    await expectConsistent(client);
  });

  it("money arriving for a cancelled bank deposit is held apart and sent back", async () => {
    const client = await fundedClient(t, { users: [["user-1"]] });
    const created = await client.request(
      "POST",
      "/v1/transactions/deposits",
      { userId: "user-1", amount: "80.00", currency: "EUR", sourceMethod: { paymentMethodType: "WIRE" } },
      { "x-request-id": "bank-late" },
    );
    const reference = created.json().paymentInstructions.reference as string;
    expect((await client.request("DELETE", "/v1/transactions/bank-late")).json().status).toBe("CANCELED");
    const arrived = await t.app.inject({
      method: "POST",
      url: "/sandbox/bank/incoming",
      headers: t.adminAuth,
      payload: { reference, amount: "80.00", currency: "EUR" },
    });
    expect(arrived.statusCode, arrived.body).toBe(200);
    expect(arrived.json()).toMatchObject({ status: "CANCELED", outcome: "RETURNING" });
    await drainSteps(t, client.clientId);
    const incoming = await t.database.db
      .selectFrom("sandbox_bank_incoming")
      .select(["amount", "return_key"])
      .where("payment_reference", "=", reference)
      .execute();
    expect(incoming).toEqual([
      { amount: "8000", return_key: `${client.clientId}:bank-late:return:${reference}` },
    ]);
    expect(await balances(client, "user-1")).toEqual({ EUR: "0.00/0.00" });
    await expectConsistent(client);
  });
});

describe("reconciliation", () => {
  it("reports a provider record the ledger does not match (the old defects), and is clean otherwise", async () => {
    const client = await fundedClient(t, { users: [["user-1", "10.00"]] });
    await expectConsistent(client);
    // What the old cancel race did: the bank paid a withdrawal whose hold was voided.
    await t.services.bank.payout({
      idempotencyKey: `${client.clientId}:ghost`,
      account: "DE89370400440532013000",
      amount: 500n,
      currency: "EUR",
    });
    const report = await t.services.reconcile(client.clientId);
    expect(report.ok).toBe(false);
    expect(report.mismatches).toEqual([
      expect.objectContaining({
        requestId: "ghost",
        provider: "sandbox-bank",
        providerAmount: "-5.00",
        ledgerAmount: "0.00",
        currency: "EUR",
      }),
    ]);
    const http = await t.app.inject({
      method: "GET",
      url: `/admin/reconciliation?clientId=${client.clientId}`,
      headers: t.adminAuth,
    });
    expect(http.json()).toMatchObject({ ok: false, mismatches: [{ requestId: "ghost" }] });
  });
});

describe("sandbox providers serve sandbox clients only", () => {
  it("a live client's card deposit, bank deposit and withdrawal are refused before anything is recorded", async () => {
    const live = await createTestClient(t, { mode: "live" });
    await createUser(t, live, "live-user", "Doe");
    const card = await cardDeposit(live, "live-user", "10.00", "live-dep", distinctCard());
    expect(card.statusCode, card.body).toBe(409);
    expect(card.json().message).toMatch(/sandbox providers serve sandbox clients only/);
    const bank = await live.request(
      "POST",
      "/v1/transactions/deposits",
      { userId: "live-user", amount: "10.00", currency: "EUR", sourceMethod: { paymentMethodType: "WIRE" } },
      { "x-request-id": "live-bank" },
    );
    expect(bank.statusCode).toBe(409);
    expect((await withdrawal(live, "live-user", "1.00", "live-wd")).statusCode).toBe(409);
    for (const id of ["live-dep", "live-bank", "live-wd"])
      expect((await live.request("GET", `/v1/transactions/${id}`)).statusCode).toBe(404);
    expect(await charges(live.clientId)).toEqual([]);
  });
});

describe("amounts at the edge of NUMERIC(38,0)", () => {
  it("an amount whose USD value would overflow is a 400 naming amount, never a 500, and records nothing", async () => {
    const client = await fundedClient(t, { users: [["user-1"]] });
    for (const [amount, requestId] of [
      ["99999999999999999999999999999999999.99", "huge-1"],
      ["12345678901234567890123456789012345678", "huge-2"],
    ] as const) {
      const response = await cardDeposit(client, "user-1", amount, requestId, distinctCard());
      expect(response.statusCode, response.body).toBe(400);
      expect(response.json().errors).toEqual([expect.objectContaining({ field: "amount" })]);
      expect((await client.request("GET", `/v1/transactions/${requestId}`)).statusCode).toBe(404);
    }
  });
});

describe("staff resolve a payout that never got an answer", () => {
  /** Runs the claim loop, skipping the backoff, until the client's payout step ends FAILED. */
  async function exhaustPayout(clientId: string) {
    for (let i = 0; i < 30; i++) {
      await t.database.db
        .updateTable("steps")
        .set({ next_attempt_at: new Date(Date.now() - 1000) })
        .where("client_id", "=", clientId)
        .where("status", "=", "PENDING")
        .execute();
      await t.services.steps.runDue(50);
      const failed = await t.database.db
        .selectFrom("steps")
        .select("id")
        .where("client_id", "=", clientId)
        .where("kind", "=", "BANK_PAYOUT")
        .where("status", "=", "FAILED")
        .executeTakeFirst();
      if (failed) return failed.id;
    }
    throw new Error("the payout step never ended FAILED");
  }

  const resolve = (stepId: string, body: Record<string, unknown>) =>
    t.app.inject({
      method: "POST",
      url: `/admin/steps/${stepId}/resolve`,
      headers: t.adminAuth,
      payload: body,
    });

  it("the bank never received it: NOT_EXECUTED releases the hold, the withdrawal ends ERROR", async () => {
    const client = await fundedClient(t, { users: [["user-1", "100.00"]] });
    t.services.sandboxGate.failNext("bank.payout", 100);
    expect((await withdrawal(client, "user-1", "40.00", "wd-never")).json().status).toBe("PENDING");
    const stepId = await exhaustPayout(client.clientId);
    t.services.sandboxGate.releaseAll();
    // Unknown outcome: the hold stays, and neither the client nor a cancel can release it.
    expect(await balances(client, "user-1")).toEqual({ EUR: "100.00/60.00" });
    expect((await client.request("DELETE", "/v1/transactions/wd-never")).statusCode).toBe(409);
    expect((await resolve(stepId, { outcome: "NOT_EXECUTED" })).statusCode).toBe(400); // a note is required
    const resolved = await resolve(stepId, { outcome: "NOT_EXECUTED", note: "bank: never received" });
    expect(resolved.statusCode, resolved.body).toBe(200);
    expect(resolved.json().status).toBe("RESOLVED");
    expect(await statusOf(client, "wd-never")).toBe("ERROR");
    expect(await balances(client, "user-1")).toEqual({ EUR: "100.00/100.00" });
    expect((await resolve(stepId, { outcome: "NOT_EXECUTED", note: "twice" })).statusCode).toBe(404);
    await expectConsistent(client);
  });

  it("the bank paid it: EXECUTED with the bank's reference books it as paid", async () => {
    const client = await fundedClient(t, { users: [["user-1", "100.00"]] });
    t.services.sandboxGate.loseAnswers("bank.payout", 100); // the bank pays, Ferry never hears
    expect((await withdrawal(client, "user-1", "25.00", "wd-paid")).json().status).toBe("PENDING");
    const stepId = await exhaustPayout(client.clientId);
    t.services.sandboxGate.releaseAll();
    const [payout] = await t.database.db
      .selectFrom("sandbox_bank_payouts")
      .select("reference")
      .where("idempotency_key", "=", `${client.clientId}:wd-paid`)
      .execute();
    // The hold matches what the bank did: reconciliation agrees while staff find out.
    expect((await t.services.reconcile(client.clientId)).ok).toBe(true);
    expect((await resolve(stepId, { outcome: "EXECUTED", note: "bank statement line 7" })).statusCode).toBe(
      400,
    );
    const resolved = await resolve(stepId, {
      outcome: "EXECUTED",
      note: "bank statement line 7",
      reference: payout?.reference,
    });
    expect(resolved.statusCode, resolved.body).toBe(200);
    await driveUntil(t, client, "wd-paid", "CAPTURED");
    expect(await balances(client, "user-1")).toEqual({ EUR: "75.00/75.00" });
    const trail = await t.app.inject({
      method: "GET",
      url: `/admin/clients/${client.clientId}/transactions/wd-paid/trail`,
      headers: t.adminAuth,
    });
    expect(trail.json().audit).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ action: "step.resolved", actor: { kind: "admin", id: "admin" } }),
        expect.objectContaining({
          action: "transaction.payout_accepted",
          actor: { kind: "admin", id: "admin" },
        }),
      ]),
    );
    await expectConsistent(client);
  });
});
