import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { updateClient } from "../src/modules/clients/service.ts";
import * as ledger from "../src/modules/ledger/service.ts";
import { TEST_CARDS } from "../src/providers/acquirer/sandbox.ts";
import { withLuhnDigit } from "./funding.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient, createUser, startWebhookReceiver, type TestClient } from "./platform.ts";

/** Withdrawals, transfers, payments, trades, cancel and feedback over HTTP, with balances and events. */
let t: TestApp;
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
let counter = 0;

const RETURNED_IBAN = "DE94370400440532010000"; // last four digits 0000: the sandbox bank returns it
const GOOD_IBAN = "DE89370400440532013000";

beforeAll(async () => {
  t = await startTestApp({ workers: true });
  receiver = await startWebhookReceiver(t.url ?? "");
});
afterAll(async () => {
  await receiver.stop();
  await t.close();
});

/** A fresh client (test cards belong to one user per client) with users funded by card deposits. */
async function setup(options: { settings?: Record<string, unknown>; users?: [string, string?][] } = {}) {
  const client = await createTestClient(t, {
    webhookUrl: receiver.url(),
    webhookEncryptionKey: receiver.encryptionJwk,
    settings: options.settings,
  });
  for (const [userId, funding] of options.users ?? []) {
    await createUser(t, client, userId, "Doe");
    await t.database.db
      .updateTable("users")
      .set({ tier: 2, created_at: new Date(Date.now() - 7 * 86_400_000) } as never)
      .where("client_id", "=", client.clientId)
      .where("id", "=", userId)
      .execute();
    if (funding) {
      const card = `${4_000_000_000_000_000n + BigInt(++counter) * 10n}`; // a distinct approved card per user
      const luhn = withLuhnDigit(card.slice(0, 15));
      const response = await client.request(
        "POST",
        "/v1/transactions/deposits",
        {
          userId,
          amount: funding,
          currency: "EUR",
          sourceMethod: {
            paymentMethodType: "CREDIT_CARD",
            cardNumber: luhn,
            expirationMonth: 12,
            expirationYear: 2031,
          },
        },
        { "x-request-id": `fund-${userId}` },
      );
      expect(response.statusCode, response.body).toBe(201);
    }
  }
  return client;
}

async function balances(client: TestClient, userId: string) {
  const records = (await client.request("GET", `/v1/users/${userId}/wallets`)).json().records as {
    currency: string;
    totalBalance: string;
    availableBalance: string;
  }[];
  return Object.fromEntries(records.map((w) => [w.currency, `${w.totalBalance}/${w.availableBalance}`]));
}

const status = async (client: TestClient, requestId: string) =>
  (await client.request("GET", `/v1/transactions/${requestId}`)).json().status;

describe("withdrawals", () => {
  it("hold at once, payout to the bank, posted when it settles", async () => {
    const client = await setup({
      settings: { fees: [{ transactionType: "WITHDRAWAL", fixed: "1.00" }] },
      users: [["wd-1", "100.00"]],
    });
    const response = await client.request(
      "POST",
      "/v1/transactions/withdrawals",
      {
        userId: "wd-1",
        amount: "40.00",
        currency: "EUR",
        destinationMethod: { paymentMethodType: "ACH", iban: GOOD_IBAN, accountHolderName: "Ada Doe" },
      },
      { "x-request-id": "wd-1-a" },
    );
    expect(response.statusCode, response.body).toBe(202);
    expect(response.json()).toMatchObject({
      status: "AUTHORIZED",
      amount: "40.00",
      fee: "1.00",
      paymentMethod: { type: "ACH", last4: "3000" },
    });
    expect(await balances(client, "wd-1")).toEqual({ EUR: "100.00/59.00" });
    await vi.waitFor(async () => expect(await status(client, "wd-1-a")).toBe("CAPTURED"), {
      timeout: 5000,
      interval: 100,
    });
    expect(await balances(client, "wd-1")).toEqual({ EUR: "59.00/59.00" });
    await vi.waitFor(
      () =>
        expect(
          receiver.events.some((e) => e.data.requestId === "wd-1-a" && e.data.status === "CAPTURED"),
        ).toBe(true),
      { timeout: 5000 },
    );
  });

  it("a payout the bank returns: the hold is voided, the money back in the wallet", async () => {
    const client = await setup({ users: [["wd-2", "50.00"]] });
    const response = await client.request(
      "POST",
      "/v1/transactions/withdrawals",
      {
        userId: "wd-2",
        amount: "30.00",
        currency: "EUR",
        destinationMethod: { paymentMethodType: "WIRE", iban: RETURNED_IBAN, accountHolderName: "Ada Doe" },
      },
      { "x-request-id": "wd-2-a" },
    );
    expect(response.statusCode, response.body).toBe(202);
    expect(await balances(client, "wd-2")).toEqual({ EUR: "50.00/20.00" });
    await vi.waitFor(async () => expect(await status(client, "wd-2-a")).toBe("ERROR"), {
      timeout: 5000,
      interval: 100,
    });
    expect(await balances(client, "wd-2")).toEqual({ EUR: "50.00/50.00" });
    const stored = (await client.request("GET", "/v1/transactions/wd-2-a")).json();
    expect(stored.statusDetail).toMatchObject({ responseCategory: "RETURNED" });
  });

  it("more than the available balance: 402, nothing recorded, nothing held", async () => {
    const client = await setup({ users: [["wd-3", "10.00"]] });
    const response = await client.request(
      "POST",
      "/v1/transactions/withdrawals",
      {
        userId: "wd-3",
        amount: "10.01",
        currency: "EUR",
        destinationMethod: { paymentMethodType: "ACH", iban: GOOD_IBAN, accountHolderName: "Ada Doe" },
      },
      { "x-request-id": "wd-3-a" },
    );
    expect(response.statusCode).toBe(402);
    expect(response.json().type).toBe("INSUFFICIENT_FUNDS");
    expect((await client.request("GET", "/v1/transactions/wd-3-a")).statusCode).toBe(404);
    expect(await balances(client, "wd-3")).toEqual({ EUR: "10.00/10.00" });
  });
});

describe("transfers, payments, trades", () => {
  it("a transfer moves amount to the other user and the fee to the fees account, in one transaction", async () => {
    const client = await setup({
      settings: { fees: [{ transactionType: "TRANSFER", percent: "1" }] },
      users: [["tr-a", "100.00"], ["tr-b"]],
    });
    const response = await client.request(
      "POST",
      "/v1/transactions/transfers",
      { userId: "tr-a", destinationUserId: "tr-b", amount: "50.00", currency: "EUR" },
      { "x-request-id": "tr-1" },
    );
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json()).toMatchObject({
      status: "CAPTURED",
      amount: "50.00",
      fee: "0.50",
      counterpartyUserId: "tr-b",
    });
    expect(await balances(client, "tr-a")).toEqual({ EUR: "49.50/49.50" });
    expect(await balances(client, "tr-b")).toEqual({ EUR: "50.00/50.00" });
    const tooMuch = await client.request(
      "POST",
      "/v1/transactions/transfers",
      { userId: "tr-a", destinationUserId: "tr-b", amount: "49.50", currency: "EUR" },
      { "x-request-id": "tr-2" },
    );
    expect(tooMuch.statusCode).toBe(402);
    expect(await balances(client, "tr-a")).toEqual({ EUR: "49.50/49.50" });
    expect((await client.request("GET", "/v1/transactions/tr-2")).statusCode).toBe(404);
  });

  it("a payment goes to a merchant (BUSINESS) user only", async () => {
    const client = await setup({ users: [["pay-a", "30.00"]] });
    await client.request("POST", "/v1/users", {
      id: "shop-1",
      type: "BUSINESS",
      businessName: "Corner Shop",
    });
    await createUser(t, client, "not-a-shop");
    const paid = await client.request(
      "POST",
      "/v1/transactions/payments",
      { userId: "pay-a", merchantUserId: "shop-1", amount: "12.34", currency: "EUR" },
      { "x-request-id": "pay-1" },
    );
    expect(paid.statusCode, paid.body).toBe(201);
    expect(await balances(client, "shop-1")).toEqual({ EUR: "12.34/12.34" });
    const wrong = await client.request(
      "POST",
      "/v1/transactions/payments",
      { userId: "pay-a", merchantUserId: "not-a-shop", amount: "1", currency: "EUR" },
      { "x-request-id": "pay-2" },
    );
    expect(wrong.statusCode).toBe(400);
  });

  it("a trade exchanges at the rate through the FX accounts, both legs or neither", async () => {
    const client = await setup({ users: [["fx-a", "100.00"]] });
    const response = await client.request(
      "POST",
      "/v1/transactions/trades",
      { userId: "fx-a", amount: "100.00", currency: "EUR", targetCurrency: "USD" },
      { "x-request-id": "fx-1" },
    );
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json()).toMatchObject({
      status: "CAPTURED",
      targetCurrency: "USD",
      targetAmount: "108.00",
      rate: "1.08/1",
    });
    expect(await balances(client, "fx-a")).toEqual({ EUR: "0.00/0.00", USD: "108.00/108.00" });
    const again = await client.request(
      "POST",
      "/v1/transactions/trades",
      { userId: "fx-a", amount: "0.01", currency: "EUR", targetCurrency: "USD" },
      { "x-request-id": "fx-2" },
    );
    expect(again.statusCode).toBe(402);
    expect(await balances(client, "fx-a")).toEqual({ EUR: "0.00/0.00", USD: "108.00/108.00" });
    expect((await ledger.checkInvariants(t.database.db, client.clientId)).ok).toBe(true);
  });
});

describe("feedback and cancel", () => {
  it("REFUNDED reverses a captured deposit; SETTLED closes one; CHARGED_BACK without the money is a 409", async () => {
    const client = await setup({
      users: [
        ["fb-a", "25.00"],
        ["fb-b", "40.00"],
      ],
    });
    const refunded = await client.request("POST", "/v1/transactions/fund-fb-a/feedback", {
      feedback: "REFUNDED",
    });
    expect(refunded.statusCode, refunded.body).toBe(200);
    expect(refunded.json().status).toBe("REFUNDED");
    expect(await balances(client, "fb-a")).toEqual({ EUR: "0.00/0.00" });
    const twice = await client.request("POST", "/v1/transactions/fund-fb-a/feedback", {
      feedback: "REFUNDED",
    });
    expect(twice.json().status).toBe("REFUNDED");
    expect(await balances(client, "fb-a")).toEqual({ EUR: "0.00/0.00" });

    await client.request(
      "POST",
      "/v1/transactions/transfers",
      { userId: "fb-b", destinationUserId: "fb-a", amount: "30.00", currency: "EUR" },
      { "x-request-id": "fb-move" },
    );
    const chargeback = await client.request("POST", "/v1/transactions/fund-fb-b/feedback", {
      feedback: "CHARGED_BACK",
    });
    expect(chargeback.statusCode).toBe(409);
    expect(await status(client, "fund-fb-b")).toBe("CAPTURED");
    const settled = await client.request("POST", "/v1/transactions/fund-fb-b/feedback", {
      feedback: "SETTLED",
    });
    expect(settled.json().status).toBe("SETTLED");
    const cancelCaptured = await client.request("DELETE", "/v1/transactions/fb-move");
    expect(cancelCaptured.statusCode).toBe(409);
    expect((await ledger.checkInvariants(t.database.db, client.clientId)).ok).toBe(true);
  });

  it("DELETE cancels a deposit awaiting 3-D Secure, and a withdrawal in review releases its hold", async () => {
    const client = await setup({
      settings: { monitoring: { singleAmountReviewUsd: 20 } },
      users: [["cx-a", "15.00"]],
    });
    const pending = await client.request(
      "POST",
      "/v1/transactions/deposits",
      {
        userId: "cx-a",
        amount: "5.00",
        currency: "EUR",
        sourceMethod: {
          paymentMethodType: "CREDIT_CARD",
          cardNumber: TEST_CARDS.CHALLENGE,
          expirationMonth: 12,
          expirationYear: 2031,
        },
      },
      { "x-request-id": "cx-3ds" },
    );
    expect(pending.json().status).toBe("AWAITING_PAYMENT");
    const canceled = await client.request("DELETE", "/v1/transactions/cx-3ds");
    expect(canceled.json().status).toBe("CANCELED");

    await updateClient(t.database.db, client.clientId, {
      settings: { monitoring: { singleAmountReviewUsd: 1 } },
    });
    const review = await client.request(
      "POST",
      "/v1/transactions/withdrawals",
      {
        userId: "cx-a",
        amount: "10.00",
        currency: "EUR",
        destinationMethod: { paymentMethodType: "ACH", iban: GOOD_IBAN, accountHolderName: "Ada Doe" },
      },
      { "x-request-id": "cx-wd" },
    );
    expect(review.statusCode, review.body).toBe(202);
    expect(review.json().status).toBe("MANUAL_REVIEW");
    expect(await balances(client, "cx-a")).toEqual({ EUR: "15.00/5.00" });
    expect((await client.request("DELETE", "/v1/transactions/cx-wd")).json().status).toBe("CANCELED");
    expect(await balances(client, "cx-a")).toEqual({ EUR: "15.00/15.00" });
    expect((await ledger.checkInvariants(t.database.db, client.clientId)).ok).toBe(true);
  });
});

describe("reviews", () => {
  it("an approved transfer in review moves then; a denied withdrawal in review releases its hold", async () => {
    const client = await setup({ users: [["rv-a", "60.00"], ["rv-b"]] });
    await updateClient(t.database.db, client.clientId, {
      settings: { monitoring: { singleAmountReviewUsd: 1 } },
    });
    const review = (requestId: string, decision: string) =>
      t.app.inject({
        method: "POST",
        url: `/admin/clients/${client.clientId}/transactions/${requestId}/review`,
        headers: t.adminAuth,
        payload: { decision },
      });

    const transfer = await client.request(
      "POST",
      "/v1/transactions/transfers",
      { userId: "rv-a", destinationUserId: "rv-b", amount: "20.00", currency: "EUR" },
      { "x-request-id": "rv-tr" },
    );
    expect(transfer.statusCode).toBe(202);
    expect(transfer.json().status).toBe("MANUAL_REVIEW");
    expect(await balances(client, "rv-a")).toEqual({ EUR: "60.00/60.00" });
    expect((await review("rv-tr", "APPROVE")).json()).toEqual({ requestId: "rv-tr", status: "CAPTURED" });
    expect(await balances(client, "rv-a")).toEqual({ EUR: "40.00/40.00" });
    expect(await balances(client, "rv-b")).toEqual({ EUR: "20.00/20.00" });

    const withdrawal = await client.request(
      "POST",
      "/v1/transactions/withdrawals",
      {
        userId: "rv-a",
        amount: "30.00",
        currency: "EUR",
        destinationMethod: { paymentMethodType: "ACH", iban: GOOD_IBAN, accountHolderName: "Ada Doe" },
      },
      { "x-request-id": "rv-wd" },
    );
    expect(withdrawal.json().status).toBe("MANUAL_REVIEW");
    expect(await balances(client, "rv-a")).toEqual({ EUR: "40.00/10.00" });
    expect((await review("rv-wd", "DENY")).json()).toEqual({ requestId: "rv-wd", status: "REFUSED" });
    expect(await balances(client, "rv-a")).toEqual({ EUR: "40.00/40.00" });
    expect((await review("rv-wd", "APPROVE")).statusCode).toBe(409);
    expect((await ledger.checkInvariants(t.database.db, client.clientId)).ok).toBe(true);
  });
});

describe("events", () => {
  it("every transaction above reached the webhook with its monitoring result and final status, without PII", async () => {
    const expected: [string, string][] = [
      ["wd-1-a", "CAPTURED"],
      ["wd-2-a", "ERROR"],
      ["tr-1", "CAPTURED"],
      ["pay-1", "CAPTURED"],
      ["fx-1", "CAPTURED"],
      ["fund-fb-a", "REFUNDED"],
      ["fund-fb-b", "SETTLED"],
      ["cx-3ds", "CANCELED"],
      ["cx-wd", "CANCELED"],
    ];
    await vi.waitFor(
      () => {
        for (const [requestId, final] of expected) {
          const events = receiver.events.filter((e) => e.data.requestId === requestId);
          expect(
            events.some((e) => e.type === "TRANSACTION_MONITORING"),
            requestId,
          ).toBe(true);
          expect(
            events.some((e) => e.type === "TRANSACTION_STATUS" && e.data.status === final),
            `${requestId} ${final}`,
          ).toBe(true);
        }
      },
      { timeout: 8000, interval: 100 },
    );
    const trade = receiver.events.find((e) => e.data.requestId === "fx-1" && e.type === "TRANSACTION_STATUS");
    expect(trade?.data).toMatchObject({
      transactionType: "TRADE",
      amount: "100.00",
      currency: "EUR",
      paymentMethod: { type: "WALLET" },
    });
    expect(
      receiver.events.some(
        (e) => e.type === "WALLET_BALANCE" && e.data.userId === "tr-b" && e.data.totalBalance === "50.00",
      ),
    ).toBe(true);
    const all = JSON.stringify(receiver.events);
    for (const pii of ["Ada", "ada@example.com", GOOD_IBAN, RETURNED_IBAN, "Corner Shop"])
      expect(all).not.toContain(pii);
  });
});
