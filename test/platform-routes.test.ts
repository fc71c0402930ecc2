import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordEvent } from "../src/modules/webhooks/service.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient, createUser, startWebhookReceiver, type TestClient } from "./platform.ts";

/**
 * Every /v1 route: tenancy (client B never reaches client A's users: 404) and bad input (400 in the
 * envelope, never 500). A test fails if a /v1 route has no cases here.
 */
let t: TestApp;
let a: TestClient;
let b: TestClient;
let deliveryOfA = "";
let walletOfA = "";

beforeAll(async () => {
  t = await startTestApp();
  const receiver = await startWebhookReceiver("http://localhost:3000");
  a = await createTestClient(t, { webhookUrl: receiver.url(), webhookEncryptionKey: receiver.encryptionJwk });
  b = await createTestClient(t);
  await createUser(t, a, "shared-id");
  await createUser(t, a, "only-a");
  await createUser(t, b, "shared-id", "Other");
  await t.database.db
    .transaction()
    .execute((tx) => recordEvent(tx, { clientId: a.clientId, type: "TEST", data: { n: 1 } }));
  const row = await t.database.db
    .selectFrom("webhook_deliveries")
    .select("id")
    .where("client_id", "=", a.clientId)
    .executeTakeFirstOrThrow();
  deliveryOfA = row.id;
  walletOfA = (await a.request("POST", "/v1/users/only-a/wallets", { currency: "EUR" })).json().id;
  const captured = await a.request("POST", "/v1/transactions/deposits", deposit("only-a"), {
    "x-request-id": "deposit-of-a",
  });
  expect(captured.statusCode, captured.body).toBe(201);
  await receiver.stop();
});
afterAll(async () => {
  await t.close();
});

type Case = { method: string; url: string; body?: unknown; headers?: Record<string, string> };
const rid = () => `req-${Math.random().toString(36).slice(2)}`;
const bank = { paymentMethodType: "ACH", iban: "DE89370400440532013000", accountHolderName: "Ada Lovelace" };
const deposit = (userId: string) => ({
  userId,
  amount: "10.00",
  currency: "EUR",
  sourceMethod: {
    paymentMethodType: "CREDIT_CARD",
    cardNumber: "5555555555554444",
    expirationMonth: 12,
    expirationYear: 2031,
  },
});
const oversize = "x".repeat(300);

const routes: Record<string, { foreign: () => Case[]; invalid: () => Case[] }> = {
  "POST /v1/users": {
    foreign: () => [],
    invalid: () => [
      { method: "POST", url: "/v1/users", body: {} },
      { method: "POST", url: "/v1/users", body: { id: "u-new", type: "ROBOT" } },
      { method: "POST", url: "/v1/users", body: { id: 42, type: "PERSON" } },
      { method: "POST", url: "/v1/users", body: { id: "no", type: "PERSON" } },
      { method: "POST", url: "/v1/users", body: { id: "u-new", type: "PERSON", emails: ["not-an-email"] } },
      {
        method: "POST",
        url: "/v1/users",
        body: { id: "u-new", type: "PERSON", name: { firstName: oversize } },
      },
      { method: "POST", url: "/v1/users", body: { id: "u-new", type: "PERSON", dateOfBirth: "1990-13-45" } },
      {
        method: "POST",
        url: "/v1/users",
        body: { id: "u-new", type: "PERSON", piis: [{ type: "PASSPORT", value: "1" }] },
      },
      { method: "POST", url: "/v1/users", body: { id: "u-new", type: "PERSON", surprise: true } },
      { method: "POST", url: "/v1/users", body: '{"id": "u-new",' },
    ],
  },
  "GET /v1/users": {
    foreign: () => [],
    invalid: () => [
      { method: "GET", url: "/v1/users?page=-1" },
      { method: "GET", url: "/v1/users?size=0" },
      { method: "GET", url: "/v1/users?size=1000" },
      { method: "GET", url: "/v1/users?page=abc" },
    ],
  },
  "GET /v1/users/:userId": {
    foreign: () => [{ method: "GET", url: "/v1/users/only-a" }],
    invalid: () => [
      { method: "GET", url: "/v1/users/x" },
      { method: "GET", url: `/v1/users/${"y".repeat(256)}` },
    ],
  },
  "PUT /v1/users/:userId": {
    foreign: () => [{ method: "PUT", url: "/v1/users/only-a", body: { type: "PERSON" } }],
    invalid: () => [
      { method: "PUT", url: "/v1/users/shared-id", body: {} },
      { method: "PUT", url: "/v1/users/shared-id", body: { type: "PERSON", addresses: [{ street: "x" }] } },
      {
        method: "PUT",
        url: "/v1/users/shared-id",
        body: { type: "PERSON", addresses: [{ street: "x", city: "y", country: "Germany" }] },
      },
    ],
  },
  "PATCH /v1/users/:userId": {
    foreign: () => [{ method: "PATCH", url: "/v1/users/only-a", body: { sourceOfFunds: "salary" } }],
    invalid: () => [
      { method: "PATCH", url: "/v1/users/shared-id", body: { name: "Ada" } },
      { method: "PATCH", url: "/v1/users/shared-id", body: { phones: ["call me"] } },
      { method: "PATCH", url: "/v1/users/shared-id", body: { type: "PERSON" } },
      { method: "PATCH", url: "/v1/users/shared-id", body: "[" },
    ],
  },
  "POST /v1/users/:userId/assessments": {
    foreign: () => [
      { method: "POST", url: "/v1/users/only-a/assessments", headers: { "x-request-id": rid() } },
    ],
    invalid: () => [
      { method: "POST", url: "/v1/users/shared-id/assessments" },
      { method: "POST", url: "/v1/users/shared-id/assessments", headers: { "x-request-id": "no" } },
      {
        method: "POST",
        url: "/v1/users/shared-id/assessments",
        headers: { "x-request-id": rid() },
        body: { intendedTransactionUsdValue: "abc" },
      },
      {
        method: "POST",
        url: "/v1/users/shared-id/assessments",
        headers: { "x-request-id": rid() },
        body: { intendedTransactionUsdValue: "1.001" },
      },
      {
        method: "POST",
        url: "/v1/users/shared-id/assessments",
        headers: { "x-request-id": rid() },
        body: { color: "blue" },
      },
    ],
  },
  "GET /v1/users/:userId/assessments": {
    foreign: () => [{ method: "GET", url: "/v1/users/only-a/assessments" }],
    invalid: () => [{ method: "GET", url: "/v1/users/%20%20/assessments" }],
  },
  "POST /v1/transactions/validations": {
    foreign: () => [
      {
        method: "POST",
        url: "/v1/transactions/validations",
        body: { transactionType: "DEPOSIT", userId: "only-a", amount: "10", currency: "USD" },
      },
    ],
    invalid: () => [
      { method: "POST", url: "/v1/transactions/validations", body: {} },
      {
        method: "POST",
        url: "/v1/transactions/validations",
        body: { transactionType: "GIFT", userId: "shared-id", amount: "10", currency: "USD" },
      },
      {
        method: "POST",
        url: "/v1/transactions/validations",
        body: { transactionType: "DEPOSIT", userId: "shared-id", amount: "-10", currency: "USD" },
      },
      {
        method: "POST",
        url: "/v1/transactions/validations",
        body: { transactionType: "DEPOSIT", userId: "shared-id", amount: "10.001", currency: "USD" },
      },
      {
        method: "POST",
        url: "/v1/transactions/validations",
        body: { transactionType: "DEPOSIT", userId: "shared-id", amount: "1e5", currency: "USD" },
      },
      {
        method: "POST",
        url: "/v1/transactions/validations",
        body: { transactionType: "DEPOSIT", userId: "shared-id", amount: "9".repeat(40), currency: "USD" },
      },
      {
        method: "POST",
        url: "/v1/transactions/validations",
        body: { transactionType: "DEPOSIT", userId: "shared-id", amount: "10", currency: "XYZ" },
      },
      {
        method: "POST",
        url: "/v1/transactions/validations",
        body: { transactionType: "DEPOSIT", userId: "shared-id", amount: "10", currency: "usd" },
      },
      {
        method: "POST",
        url: "/v1/transactions/validations",
        headers: { "x-scenario-id": "no-such-scenario" },
        body: { transactionType: "DEPOSIT", userId: "shared-id", amount: "10", currency: "USD" },
      },
    ],
  },
  "POST /v1/auth/userToken": {
    foreign: () => [
      {
        method: "POST",
        url: "/v1/auth/userToken",
        body: { url: "/v1/users/only-a", method: "GET", userId: "only-a" },
      },
    ],
    invalid: () => [
      { method: "POST", url: "/v1/auth/userToken", body: {} },
      {
        method: "POST",
        url: "/v1/auth/userToken",
        body: { url: "https://evil.example.com/", method: "POST" },
      },
      {
        method: "POST",
        url: "/v1/auth/userToken",
        body: { url: "/v1/transactions/deposits", method: "FETCH" },
      },
      {
        method: "POST",
        url: "/v1/auth/userToken",
        body: { url: "/v1/transactions/deposits?x=1", method: "POST" },
      },
    ],
  },
  "GET /v1/webhooks/deliveries": {
    foreign: () => [],
    invalid: () => [{ method: "GET", url: "/v1/webhooks/deliveries?size=500" }],
  },
  "POST /v1/webhooks/deliveries/:deliveryId/redeliver": {
    foreign: () => [{ method: "POST", url: `/v1/webhooks/deliveries/${deliveryOfA}/redeliver` }],
    invalid: () => [{ method: "POST", url: "/v1/webhooks/deliveries/12/redeliver" }],
  },
  "POST /v1/webhooks/test": {
    foreign: () => [],
    invalid: () => [{ method: "POST", url: "/v1/webhooks/test", body: "{oops" }],
  },
  "GET /v1/users/:userId/wallets": {
    foreign: () => [{ method: "GET", url: "/v1/users/only-a/wallets" }],
    invalid: () => [{ method: "GET", url: "/v1/users/a/wallets" }],
  },
  "POST /v1/users/:userId/wallets": {
    foreign: () => [{ method: "POST", url: "/v1/users/only-a/wallets", body: { currency: "EUR" } }],
    invalid: () => [
      { method: "POST", url: "/v1/users/shared-id/wallets", body: {} },
      { method: "POST", url: "/v1/users/shared-id/wallets", body: { currency: "eur" } },
      { method: "POST", url: "/v1/users/shared-id/wallets", body: { currency: "ZZZ" } },
      { method: "POST", url: "/v1/users/shared-id/wallets", body: { currency: "EUR", label: oversize } },
    ],
  },
  "GET /v1/users/:userId/wallets/:walletId/history": {
    foreign: () => [
      { method: "GET", url: `/v1/users/only-a/wallets/${walletOfA}/history` },
      { method: "GET", url: `/v1/users/shared-id/wallets/${walletOfA}/history` },
    ],
    invalid: () => [
      { method: "GET", url: "/v1/users/shared-id/wallets/not-a-uuid/history" },
      { method: "GET", url: `/v1/users/shared-id/wallets/${walletOfA}/history?size=0` },
    ],
  },
  "GET /v1/users/:userId/payment-information": {
    foreign: () => [{ method: "GET", url: "/v1/users/only-a/payment-information" }],
    invalid: () => [{ method: "GET", url: `/v1/users/${oversize}/payment-information` }],
  },
  "POST /v1/users/:userId/payment-information": {
    foreign: () => [
      {
        method: "POST",
        url: "/v1/users/only-a/payment-information",
        body: {
          type: "CREDIT_CARD",
          cardNumber: "4242424242424242",
          expirationMonth: 12,
          expirationYear: 2030,
        },
      },
    ],
    invalid: () => [
      { method: "POST", url: "/v1/users/shared-id/payment-information", body: {} },
      { method: "POST", url: "/v1/users/shared-id/payment-information", body: { type: "PAYPAL" } },
      {
        method: "POST",
        url: "/v1/users/shared-id/payment-information",
        body: {
          type: "CREDIT_CARD",
          cardNumber: "4242424242424241",
          expirationMonth: 12,
          expirationYear: 2030,
        },
      },
      {
        method: "POST",
        url: "/v1/users/shared-id/payment-information",
        body: {
          type: "CREDIT_CARD",
          cardNumber: "4242424242424242",
          expirationMonth: 13,
          expirationYear: 2030,
        },
      },
      {
        method: "POST",
        url: "/v1/users/shared-id/payment-information",
        body: {
          type: "CREDIT_CARD",
          cardNumber: "4242424242424242",
          expirationMonth: 1,
          expirationYear: 2020,
        },
      },
      {
        method: "POST",
        url: "/v1/users/shared-id/payment-information",
        body: {
          type: "CREDIT_CARD",
          cardNumber: "4242424242424242",
          expirationMonth: 12,
          expirationYear: 2030,
          cvv: "12",
        },
      },
      {
        method: "POST",
        url: "/v1/users/shared-id/payment-information",
        body: {
          type: "CREDIT_CARD",
          cardNumber: "4242424242424242",
          expirationMonth: "12",
          expirationYear: 2030,
        },
      },
      {
        method: "POST",
        url: "/v1/users/shared-id/payment-information",
        body: { type: "BANK_ACCOUNT", iban: "DE89370400440532013001", accountHolderName: "A" },
      },
      {
        method: "POST",
        url: "/v1/users/shared-id/payment-information",
        body: { type: "BANK_ACCOUNT", accountHolderName: "A" },
      },
      {
        method: "POST",
        url: "/v1/users/shared-id/payment-information",
        body: { type: "BANK_ACCOUNT", bankAccountNumber: "12345678", accountHolderName: "A" },
      },
      {
        method: "POST",
        url: "/v1/users/shared-id/payment-information",
        body: { type: "CRYPTO", currency: "BTC", address: "short" },
      },
    ],
  },
  "POST /v1/transactions/deposits": {
    foreign: () => [
      {
        method: "POST",
        url: "/v1/transactions/deposits",
        headers: { "x-request-id": rid() },
        body: deposit("only-a"),
      },
    ],
    invalid: () => [
      { method: "POST", url: "/v1/transactions/deposits", body: deposit("shared-id") },
      { method: "POST", url: "/v1/transactions/deposits", headers: { "x-request-id": rid() }, body: {} },
      {
        method: "POST",
        url: "/v1/transactions/deposits",
        headers: { "x-request-id": rid() },
        body: { ...deposit("shared-id"), amount: "ten" },
      },
      {
        method: "POST",
        url: "/v1/transactions/deposits",
        headers: { "x-request-id": rid() },
        body: { ...deposit("shared-id"), amount: "10.001" },
      },
      {
        method: "POST",
        url: "/v1/transactions/deposits",
        headers: { "x-request-id": rid() },
        body: { ...deposit("shared-id"), currency: "XYZ" },
      },
      {
        method: "POST",
        url: "/v1/transactions/deposits",
        headers: { "x-request-id": rid() },
        body: { ...deposit("shared-id"), sourceMethod: { paymentMethodType: "CHEQUE" } },
      },
      {
        method: "POST",
        url: "/v1/transactions/deposits",
        headers: { "x-request-id": rid() },
        body: { ...deposit("shared-id"), sourceMethod: { paymentMethodType: "CREDIT_CARD" } },
      },
      {
        method: "POST",
        url: "/v1/transactions/deposits",
        headers: { "x-request-id": rid() },
        body: {
          ...deposit("shared-id"),
          sourceMethod: { ...deposit("shared-id").sourceMethod, cardNumber: "4242424242424241" },
        },
      },
      {
        method: "POST",
        url: "/v1/transactions/deposits",
        headers: { "x-request-id": rid() },
        body: {
          ...deposit("shared-id"),
          sourceMethod: { ...deposit("shared-id").sourceMethod, expirationYear: 2019 },
        },
      },
      {
        method: "POST",
        url: "/v1/transactions/deposits",
        headers: { "x-request-id": rid() },
        body: { ...deposit("shared-id"), pii: { name: "x" } },
      },
      {
        method: "POST",
        url: "/v1/transactions/deposits",
        headers: { "x-request-id": rid() },
        body: { ...deposit("shared-id"), destinationWalletId: "w-1" },
      },
    ],
  },
  "POST /v1/transactions/withdrawals": {
    foreign: () => [
      {
        method: "POST",
        url: "/v1/transactions/withdrawals",
        headers: { "x-request-id": rid() },
        body: { userId: "only-a", amount: "1", currency: "EUR", destinationMethod: bank },
      },
    ],
    invalid: () => [
      {
        method: "POST",
        url: "/v1/transactions/withdrawals",
        headers: { "x-request-id": rid() },
        body: { userId: "shared-id", amount: "1", currency: "EUR" },
      },
      {
        method: "POST",
        url: "/v1/transactions/withdrawals",
        headers: { "x-request-id": rid() },
        body: {
          userId: "shared-id",
          amount: "1",
          currency: "EUR",
          destinationMethod: { ...bank, paymentMethodType: "CARRIER_PIGEON" },
        },
      },
      {
        method: "POST",
        url: "/v1/transactions/withdrawals",
        headers: { "x-request-id": rid() },
        body: {
          userId: "shared-id",
          amount: "1",
          currency: "EUR",
          destinationMethod: { ...bank, iban: "DE00000000000000000000" },
        },
      },
      {
        method: "POST",
        url: "/v1/transactions/withdrawals",
        headers: { "x-request-id": rid() },
        body: { userId: "shared-id", amount: "0", currency: "EUR", destinationMethod: bank },
      },
    ],
  },
  "POST /v1/transactions/transfers": {
    foreign: () => [
      {
        method: "POST",
        url: "/v1/transactions/transfers",
        headers: { "x-request-id": rid() },
        body: { userId: "only-a", destinationUserId: "shared-id", amount: "1", currency: "EUR" },
      },
      {
        method: "POST",
        url: "/v1/transactions/transfers",
        headers: { "x-request-id": rid() },
        body: { userId: "shared-id", destinationUserId: "only-a", amount: "1", currency: "EUR" },
      },
    ],
    invalid: () => [
      {
        method: "POST",
        url: "/v1/transactions/transfers",
        headers: { "x-request-id": rid() },
        body: { userId: "shared-id", amount: "1", currency: "EUR" },
      },
      {
        method: "POST",
        url: "/v1/transactions/transfers",
        headers: { "x-request-id": rid() },
        body: { userId: "shared-id", destinationUserId: "shared-id", amount: "1", currency: "EUR" },
      },
      {
        method: "POST",
        url: "/v1/transactions/transfers",
        headers: { "x-request-id": rid() },
        body: { userId: "shared-id", destinationUserId: "x", amount: "1", currency: "EUR" },
      },
    ],
  },
  "POST /v1/transactions/payments": {
    foreign: () => [
      {
        method: "POST",
        url: "/v1/transactions/payments",
        headers: { "x-request-id": rid() },
        body: { userId: "shared-id", merchantUserId: "only-a", amount: "1", currency: "EUR" },
      },
    ],
    invalid: () => [
      {
        method: "POST",
        url: "/v1/transactions/payments",
        headers: { "x-request-id": rid() },
        body: {
          userId: "shared-id",
          merchantUserId: "shared-id",
          amount: "1",
          currency: "EUR",
          sourceMethod: { paymentMethodType: "CASH" },
        },
      },
      {
        method: "POST",
        url: "/v1/transactions/payments",
        headers: { "x-request-id": rid() },
        body: { userId: "shared-id", amount: "1", currency: "EUR" },
      },
    ],
  },
  "POST /v1/transactions/trades": {
    foreign: () => [
      {
        method: "POST",
        url: "/v1/transactions/trades",
        headers: { "x-request-id": rid() },
        body: { userId: "only-a", amount: "1", currency: "EUR", targetCurrency: "USD" },
      },
    ],
    invalid: () => [
      {
        method: "POST",
        url: "/v1/transactions/trades",
        headers: { "x-request-id": rid() },
        body: { userId: "shared-id", amount: "1", currency: "EUR" },
      },
      {
        method: "POST",
        url: "/v1/transactions/trades",
        headers: { "x-request-id": rid() },
        body: { userId: "shared-id", amount: "1", currency: "EUR", targetCurrency: "EUR" },
      },
      {
        method: "POST",
        url: "/v1/transactions/trades",
        headers: { "x-request-id": rid() },
        body: { userId: "shared-id", amount: "1", currency: "EUR", targetCurrency: "DOGE" },
      },
    ],
  },
  "DELETE /v1/transactions/:requestId": {
    foreign: () => [{ method: "DELETE", url: "/v1/transactions/deposit-of-a" }],
    invalid: () => [{ method: "DELETE", url: "/v1/transactions/%20" }],
  },
  "POST /v1/transactions/:requestId/feedback": {
    foreign: () => [
      { method: "POST", url: "/v1/transactions/deposit-of-a/feedback", body: { feedback: "SETTLED" } },
    ],
    invalid: () => [
      { method: "POST", url: "/v1/transactions/deposit-of-a/feedback", body: {} },
      { method: "POST", url: "/v1/transactions/deposit-of-a/feedback", body: { feedback: "MAYBE" } },
      {
        method: "POST",
        url: "/v1/transactions/deposit-of-a/feedback",
        body: { feedback: "SETTLED", date: "yesterday" },
      },
    ],
  },
  "GET /v1/transactions/:requestId": {
    foreign: () => [{ method: "GET", url: "/v1/transactions/deposit-of-a" }],
    invalid: () => [{ method: "GET", url: "/v1/transactions/x" }],
  },
  "OPTIONS /v1/*": { foreign: () => [], invalid: () => [] },
};

const send = (client: TestClient, c: Case) => client.request(c.method, c.url, c.body, c.headers);

describe("every /v1 route", () => {
  it("has cases here", () => {
    const served = t.app.routeTable.filter((r) => r.url.startsWith("/v1")).map((r) => `${r.method} ${r.url}`);
    expect(served.sort()).toEqual(Object.keys(routes).sort());
  });

  for (const [name, route] of Object.entries(routes)) {
    it(`${name}: bad input → 400 in the envelope`, async () => {
      for (const c of route.invalid()) {
        const response = await send(b, c);
        expect(response.statusCode, `${c.method} ${c.url} ${JSON.stringify(c.body)}: ${response.body}`).toBe(
          400,
        );
        expect(response.json()).toMatchObject({
          type: "INVALID_REQUEST",
          code: 1000,
          errors: expect.any(Array),
          traceId: expect.any(String),
        });
      }
    });

    it(`${name}: client B cannot reach client A's data (404)`, async () => {
      for (const c of route.foreign()) {
        const response = await send(b, c);
        expect(response.statusCode, `${c.method} ${c.url}: ${response.body}`).toBe(404);
        expect(response.json().type).toBe("NOT_FOUND");
      }
    });
  }

  it("client B's lists and reads never show client A's users, even with the same id", async () => {
    const list = (await b.request("GET", "/v1/users?size=100")).json();
    expect(list.records.map((u: { id: string }) => u.id)).toEqual(["shared-id"]);
    expect(list.totalRecords).toBe(1);
    // Client A changing its shared-id user leaves B's alone.
    await a.request("PATCH", "/v1/users/shared-id", { sourceOfFunds: "salary" });
    const theirs = await b.request("GET", "/v1/users/shared-id");
    expect(theirs.json().updatedAt).toBe((await b.request("GET", "/v1/users/shared-id")).json().updatedAt);
    const deliveries = (await b.request("GET", "/v1/webhooks/deliveries")).json();
    expect(deliveries.totalRecords).toBe(0);
  });

  it("a user id already taken is a 409, within a client only", async () => {
    const again = await a.request("POST", "/v1/users", { id: "only-a", type: "PERSON" });
    expect(again.statusCode).toBe(409);
    const elsewhere = await b.request("POST", "/v1/users", {
      id: "only-a",
      type: "BUSINESS",
      businessName: "B Corp",
    });
    expect(elsewhere.statusCode).toBe(201);
  });

  it("shows users without PII", async () => {
    const response = await a.request("GET", "/v1/users/only-a");
    expect(Object.keys(response.json()).sort()).toEqual([
      "createdAt",
      "id",
      "status",
      "statusReason",
      "tier",
      "type",
      "updatedAt",
    ]);
    expect(response.body).not.toMatch(/Ada|example\.com|Berlin|1990/);
  });
});
