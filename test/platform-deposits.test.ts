import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as ledger from "../src/modules/ledger/service.ts";
import { TEST_CARDS } from "../src/providers/acquirer/sandbox.ts";
import type { FerryWebhookEvent } from "../src/sdk/webhook-receiver.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { formTokenOf, tokenFor } from "./page-forms.ts";
import { createTestClient, createUser, startWebhookReceiver, type TestClient } from "./platform.ts";

/**
 * Deposits end to end over HTTP, through the sandbox acquirer, with the webhook events a real
 * loopback receiver got, and the balances on the ledger.
 */
let t: TestApp;
let client: TestClient;
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
let counter = 0;

beforeAll(async () => {
  t = await startTestApp({ workers: true });
  receiver = await startWebhookReceiver(t.url ?? "");
  client = await createTestClient(t, {
    webhookUrl: receiver.url(),
    webhookEncryptionKey: receiver.encryptionJwk,
    settings: { fees: [{ transactionType: "DEPOSIT", percent: "1.5" }] },
  });
});
afterAll(async () => {
  await receiver.stop();
  await t.close();
});

/**
 * A user of a fresh client: a card belongs to one user of a client, and the sandbox's test cards
 * are shared by every test.
 */
async function newUser(lastName = "Doe", extra: Record<string, unknown> = {}) {
  client = await createTestClient(t, {
    webhookUrl: receiver.url(),
    webhookEncryptionKey: receiver.encryptionJwk,
    settings: { fees: [{ transactionType: "DEPOSIT", percent: "1.5" }] },
  });
  const id = `dep-${++counter}`;
  await createUser(t, client, id, lastName, extra);
  // Old enough not to trip the new-user rule in tests that are not about it.
  await t.database.db
    .updateTable("users")
    .set({ created_at: new Date(Date.now() - 7 * 86_400_000) } as never)
    .where("id", "=", id)
    .execute();
  return id;
}

const deposit = (userId: string, cardNumber: string, amount = "100.00", requestId = `r-${++counter}`) =>
  client.request(
    "POST",
    "/v1/transactions/deposits",
    {
      userId,
      amount,
      currency: "EUR",
      sourceMethod: {
        paymentMethodType: "CREDIT_CARD",
        cardNumber,
        expirationMonth: 12,
        expirationYear: 2031,
        cvv: "123",
      },
    },
    { "x-request-id": requestId },
  );

async function walletOf(userId: string) {
  const wallets = (await client.request("GET", `/v1/users/${userId}/wallets`)).json().records as {
    totalBalance: string;
    currency: string;
  }[];
  return wallets.find((w) => w.currency === "EUR")?.totalBalance ?? "none";
}

const eventsOf = (requestId: string, type?: string) =>
  receiver.events.filter((e) => e.data.requestId === requestId && (!type || e.type === type));
async function waitForEvent(match: (e: FerryWebhookEvent) => boolean) {
  return vi.waitFor(
    () => {
      const found = receiver.events.find(match);
      if (!found) throw new Error("not yet");
      return found;
    },
    { timeout: 8000, interval: 50 },
  );
}

describe("card deposits", () => {
  it.each([
    ["Visa", TEST_CARDS.APPROVED_VISA],
    ["Mastercard", TEST_CARDS.APPROVED_MASTERCARD],
  ])(
    "an approved %s: 201 CAPTURED, the wallet credited net of the fee, the fee to the fees account",
    async (brand, card) => {
      const userId = await newUser();
      const requestId = `ok-${brand}`;
      const response = await deposit(userId, card, "100.00", requestId);
      expect(response.statusCode, response.body).toBe(201);
      expect(response.json()).toMatchObject({
        requestId,
        type: "DEPOSIT",
        status: "CAPTURED",
        amount: "100.00",
        fee: "1.50",
        total: "100.00",
        paymentMethod: { type: "CREDIT_CARD", last4: card.slice(-4) },
        monitoring: { status: "ACCEPT", risk: "LOW", reasons: [] },
      });
      expect(await walletOf(userId)).toBe("98.50");
      const fees = await ledger.openAccount(t.database.db, {
        clientId: client.clientId,
        currency: "EUR",
        kind: "FEES",
      });
      expect((await ledger.getAccount(t.database.db, fees.id)).creditsPosted).toBeGreaterThanOrEqual(150n);
      await waitForEvent((e) => e.type === "WALLET_BALANCE" && e.data.userId === userId);
      // A user's deliveries run side by side: the monitoring event may arrive after the balance.
      await waitForEvent((e) => e.data.requestId === requestId && e.type === "TRANSACTION_MONITORING");
      expect(eventsOf(requestId, "TRANSACTION_MONITORING")[0]?.data).toMatchObject({
        status: "ACCEPT",
        transactionType: "DEPOSIT",
        amount: "100.00",
      });
      await waitForEvent((e) => e.data.requestId === requestId && e.type === "TRANSACTION_STATUS");
      expect(eventsOf(requestId, "TRANSACTION_STATUS")[0]?.data).toMatchObject({
        status: "CAPTURED",
        fee: "1.50",
        total: "100.00",
        paymentMethod: { type: "CREDIT_CARD", last4: card.slice(-4) },
        statusDetail: { responseCode: "00", responseCategory: "APPROVED" },
      });
      const get = await client.request("GET", `/v1/transactions/${requestId}`);
      expect(get.json().status).toBe("CAPTURED");
    },
  );

  it("3-D Secure: AWAITING_PAYMENT with a redirect to the hosted page; Complete captures, Fail refuses", async () => {
    for (const [button, expected, balance] of [
      ["complete", "CAPTURED", "98.50"],
      ["fail", "REFUSED", "0.00"],
    ] as const) {
      const userId = await newUser();
      const response = await deposit(userId, TEST_CARDS.CHALLENGE, "100.00", `3ds-${button}`);
      expect(response.statusCode, response.body).toBe(202);
      const body = response.json();
      expect(body.status).toBe("AWAITING_PAYMENT");
      const path = new URL(body.redirectUrl).pathname;
      const pageHtml = await t.app.inject({ method: "GET", url: path });
      expect(pageHtml.statusCode).toBe(200);
      expect(pageHtml.body).toContain('id="complete"');
      expect(pageHtml.body).toContain('id="fail"');
      const clicked = await t.app.inject({
        method: "POST",
        url: path,
        headers: { "content-type": "application/x-www-form-urlencoded" },
        payload: `decision=${button}&csrf=${formTokenOf(pageHtml.body)}`,
      });
      expect(clicked.statusCode).toBe(200);
      expect((await client.request("GET", `/v1/transactions/3ds-${button}`)).json().status).toBe(expected);
      expect(await walletOf(userId)).toBe(balance);
      // A second click changes nothing.
      await t.app.inject({
        method: "POST",
        url: path,
        headers: { "content-type": "application/x-www-form-urlencoded" },
        payload: `decision=complete&csrf=${formTokenOf(pageHtml.body)}`,
      });
      expect((await client.request("GET", `/v1/transactions/3ds-${button}`)).json().status).toBe(expected);
    }
  });

  it("a 3-D Secure deposit canceled before the challenge is finished is never charged", async () => {
    const userId = await newUser();
    const response = await deposit(userId, TEST_CARDS.CHALLENGE, "70.00", "3ds-canceled");
    const path = new URL(response.json().redirectUrl).pathname;
    expect((await client.request("DELETE", "/v1/transactions/3ds-canceled")).json().status).toBe("CANCELED");
    const clicked = await t.app.inject({
      method: "POST",
      url: path,
      headers: { "content-type": "application/x-www-form-urlencoded" },
      payload: `decision=complete&csrf=${tokenFor(t, path)}`,
    });
    expect(clicked.body).toContain("Payment declined");
    expect((await client.request("GET", "/v1/transactions/3ds-canceled")).json().status).toBe("CANCELED");
    const charge = await t.database.db
      .selectFrom("sandbox_acquirer_charges")
      .select("outcome")
      .where("idempotency_key", "=", `${client.clientId}:3ds-canceled`)
      .executeTakeFirst();
    expect(charge?.outcome).toBe("CHALLENGE_FAILED");
    expect(await walletOf(userId)).toBe("0.00");
  });

  it.each([
    ["do-not-honour", TEST_CARDS.DO_NOT_HONOUR, "PAYMENT_FAILED", "Do not honour"],
    ["insufficient", TEST_CARDS.INSUFFICIENT_FUNDS, "INSUFFICIENT_FUNDS", "Insufficient funds"],
  ])("a declined card (%s): 402 %s, REFUSED, no money moves", async (name, card, type, message) => {
    const userId = await newUser();
    const requestId = `declined-${name}`;
    const response = await deposit(userId, card, "100.00", requestId);
    expect(response.statusCode).toBe(402);
    expect(response.json()).toMatchObject({ type, message });
    const stored = (await client.request("GET", `/v1/transactions/${requestId}`)).json();
    expect(stored).toMatchObject({
      status: "REFUSED",
      statusDetail: { responseCategory: type === "PAYMENT_FAILED" ? "DO_NOT_HONOUR" : "INSUFFICIENT_FUNDS" },
    });
    const wallets = (await client.request("GET", `/v1/users/${userId}/wallets`)).json().records;
    expect(wallets.every((w: { totalBalance: string }) => w.totalBalance === "0.00")).toBe(true);
    const again = await deposit(userId, card, "100.00", requestId);
    expect(again.statusCode).toBe(402);
    expect(again.headers["idempotent-replayed"]).toBe("true");
  });

  it("the acquirer timing out once: retried with the same key, charged once, credited once", async () => {
    const userId = await newUser();
    const response = await deposit(userId, TEST_CARDS.TIMEOUT_ONCE, "50.00", "timeout-1");
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json().status).toBe("CAPTURED");
    const charges = await t.database.db
      .selectFrom("sandbox_acquirer_charges")
      .selectAll()
      .where("idempotency_key", "=", `${client.clientId}:timeout-1`)
      .execute();
    expect(charges).toHaveLength(1);
    expect(charges[0]).toMatchObject({ outcome: "APPROVED", attempts: 2 });
    expect(await walletOf(userId)).toBe("49.25");
  });

  it("the same X-Request-Id 20 times at once: one charge, one credit; the rest replays or 409s", async () => {
    const userId = await newUser();
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => deposit(userId, TEST_CARDS.APPROVED_VISA, "20.00", "burst-1")),
    );
    const created = responses.filter((r) => r.statusCode === 201);
    const retry = responses.filter((r) => r.statusCode === 409);
    expect(created.length + retry.length, responses.map((r) => r.statusCode).join(",")).toBe(20);
    expect(created.filter((r) => r.headers["idempotent-replayed"] !== "true")).toHaveLength(1);
    const charges = await t.database.db
      .selectFrom("sandbox_acquirer_charges")
      .selectAll()
      .where("idempotency_key", "=", `${client.clientId}:burst-1`)
      .execute();
    expect(charges).toHaveLength(1);
    expect(await walletOf(userId)).toBe("19.70");
    expect((await ledger.checkInvariants(t.database.db, client.clientId)).ok).toBe(true);
  });
});

describe("monitoring and the KYC gate on deposits", () => {
  it("a sanctioned name, despite case, accents and spacing: DENY, 402, no ledger effect", async () => {
    await newUser();
    const userId = `dep-sanctioned-${++counter}`;
    await t.database.db.transaction().execute((tx) =>
      t.services.users.create(tx, {
        clientId: client.clientId,
        id: userId,
        type: "PERSON",
        info: { name: { firstName: "josé", middleName: "EMBARGO", lastName: "pérez  " } },
      }),
    );
    const before = await ledger.checkInvariants(t.database.db, client.clientId);
    const response = await deposit(userId, TEST_CARDS.APPROVED_VISA, "10.00", "sanctioned-1");
    expect(response.statusCode).toBe(402);
    expect(response.json().message).toMatch(/SANCTIONS_MATCH/);
    expect((await client.request("GET", "/v1/transactions/sanctioned-1")).json()).toMatchObject({
      status: "REFUSED",
      monitoring: { status: "DENY", risk: "HIGH", reasons: ["SANCTIONS_MATCH"] },
    });
    const charges = await t.database.db
      .selectFrom("sandbox_acquirer_charges")
      .select("idempotency_key")
      .where("idempotency_key", "=", `${client.clientId}:sanctioned-1`)
      .execute();
    expect(charges).toHaveLength(0);
    const after = await ledger.checkInvariants(t.database.db, client.clientId);
    expect(after.transfers).toBe(before.transfers);
    await waitForEvent((e) => e.data.requestId === "sanctioned-1" && e.type === "TRANSACTION_MONITORING");
    expect(eventsOf("sanctioned-1", "TRANSACTION_MONITORING")[0]?.data).toMatchObject({
      status: "DENY",
      reasons: ["SANCTIONS_MATCH"],
    });
  });

  it("a new user's first large deposit waits in MANUAL_REVIEW (202) until staff approve it", async () => {
    await newUser();
    const userId = `dep-new-${++counter}`;
    await createUser(t, client, userId, "Newman", {
      idDocument: { type: "PASSPORT", number: "P1", country: "DE" },
    });
    await t.database.db.updateTable("users").set({ tier: 2 }).where("id", "=", userId).execute();
    const response = await deposit(userId, TEST_CARDS.APPROVED_VISA, "1000.00", "review-new-1");
    expect(response.statusCode, response.body).toBe(202);
    expect(response.json()).toMatchObject({
      status: "MANUAL_REVIEW",
      monitoring: { status: "MANUAL_REVIEW", reasons: ["NEW_USER_LARGE_FIRST_AMOUNT"] },
    });
    const approve = await t.app.inject({
      method: "POST",
      url: `/admin/clients/${client.clientId}/transactions/review-new-1/review`,
      headers: t.adminAuth,
      payload: { decision: "APPROVE" },
    });
    expect(approve.json()).toEqual({ requestId: "review-new-1", status: "CAPTURED" });
    expect(await walletOf(userId)).toBe("985.00");
  });

  it("answers 422 with the validation body when the user's tier is too low", async () => {
    const userId = await newUser();
    const response = await deposit(userId, TEST_CARDS.APPROVED_VISA, "2000.00", "gate-1");
    expect(response.statusCode).toBe(422);
    expect(response.json(), response.body).toMatchObject({
      type: "MIN_INFO_MISSING",
      code: 1001,
      fields: ["ID_DOCUMENT"],
    });
    const missing = await client.request("GET", "/v1/transactions/gate-1");
    expect(missing.statusCode).toBe(404);
  });

  it("never puts card numbers or PII in webhooks, and the ledger stays balanced", async () => {
    const all = JSON.stringify(receiver.events);
    for (const secret of [TEST_CARDS.APPROVED_VISA, "Ada", "ada@example.com", "josé", "Berlin"])
      expect(all).not.toContain(secret);
    expect((await ledger.checkInvariants(t.database.db)).ok).toBe(true);
  });
});

describe("bank deposits", () => {
  it("AWAITING_PAYMENT with instructions; credited once when the transfer arrives with the reference", async () => {
    const userId = await newUser();
    const response = await client.request(
      "POST",
      "/v1/transactions/deposits",
      { userId, amount: "250.00", currency: "EUR", sourceMethod: { paymentMethodType: "WIRE" } },
      { "x-request-id": "bank-1" },
    );
    expect(response.statusCode, response.body).toBe(202);
    const body = response.json();
    expect(body).toMatchObject({
      status: "AWAITING_PAYMENT",
      paymentMethod: { type: "WIRE" },
      paymentInstructions: { iban: "DE02100100100006820101", amount: "250.00" },
    });
    const reference = body.paymentInstructions.reference as string;
    expect(reference).toMatch(/^FRY[A-Z0-9]{10}$/);
    const incoming = (payload: unknown) =>
      t.app.inject({
        method: "POST",
        url: "/sandbox/bank/incoming",
        headers: t.adminAuth, // the sandbox bank needs credentials (test/sandbox-access.test.ts)
        payload: payload as Record<string, unknown>,
      });
    expect((await incoming({ reference, amount: "249.99", currency: "EUR" })).statusCode).toBe(409);
    expect(
      (await incoming({ reference: "FRYZZZZZZZZZZ", amount: "250.00", currency: "EUR" })).statusCode,
    ).toBe(404);
    expect((await incoming({ reference: "nope", amount: "250.00", currency: "EUR" })).statusCode).toBe(400);
    expect(await walletOf(userId)).toBe("0.00");
    const arrived = await incoming({ reference, amount: "250.00", currency: "EUR" });
    expect(arrived.json()).toEqual({ requestId: "bank-1", status: "CAPTURED", outcome: "CREDITED" });
    expect(await walletOf(userId)).toBe("246.25");
    const twice = await incoming({ reference, amount: "250", currency: "EUR" });
    expect(twice.json().status).toBe("CAPTURED");
    expect(await walletOf(userId)).toBe("246.25");
    const stored = (await client.request("GET", "/v1/transactions/bank-1")).json();
    expect(stored).toMatchObject({ status: "CAPTURED", paymentInstructions: null });
    expect((await ledger.checkInvariants(t.database.db, client.clientId)).ok).toBe(true);
  });
});
