import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient, createUser, type TestClient } from "./platform.ts";
import { caller, PASSWORD, registerCustomer } from "./wallet.ts";

/**
 * Issue 17.9: validations answered NO_ERROR for a blocked user, and user tokens, wallets and payment
 * information were still issued to blocked (and inactive) users. Now the validations endpoint answers
 * the block (403, as the user's own requests are answered: spec/README.md "403 … user not active"),
 * and no face issues a user token, a wallet or payment information to a user who is not ACTIVE —
 * the rule lives in the modules (users, tokens, wallets, payment-methods, smart-cards, logins).
 */

let t: TestApp;
let client: TestClient;

beforeAll(async () => {
  t = await startTestApp();
  client = await createTestClient(t);
});
afterAll(async () => {
  await t.close();
});

const setStatus = (userId: string, status: "ACTIVE" | "BLOCKED" | "INACTIVE") =>
  client.request("PATCH", `/v1/users/${userId}`, {
    status,
    ...(status === "BLOCKED" ? { statusReason: "FRAUD_SUSPECTED" } : {}),
  });

const notActive = (response: {
  statusCode: number;
  body: string;
  json(): { type: string; code: number };
}) => {
  expect(response.statusCode, response.body).toBe(403);
  expect(response.json()).toMatchObject({ type: "FORBIDDEN", code: 4001 });
};

const card = (cardNumber: string) => ({
  type: "CREDIT_CARD",
  cardNumber,
  expirationMonth: 12,
  expirationYear: 2031,
  cvv: "123",
});

async function paymentMethodsOf(clientId: string, userId: string) {
  return t.database.db
    .selectFrom("payment_methods")
    .select("id")
    .where("client_id", "=", clientId)
    .where("user_id", "=", userId)
    .execute();
}

async function walletsOf(clientId: string, userId: string) {
  return t.database.db
    .selectFrom("ledger_accounts")
    .select("id")
    .where("client_id", "=", clientId)
    .where("owner_id", "=", userId)
    .execute();
}

describe("Platform /v1", () => {
  for (const status of ["BLOCKED", "INACTIVE"] as const) {
    it(`validations answer a ${status} user's block: 403, not NO_ERROR`, async () => {
      const userId = `bu-val-${status.toLowerCase()}`;
      await createUser(t, client, userId);
      const body = { transactionType: "DEPOSIT", userId, amount: "10.00", currency: "EUR" };
      const before = await client.request("POST", "/v1/transactions/validations", body);
      expect(before.json()).toEqual({ type: "NO_ERROR", code: 0 });
      await setStatus(userId, status);
      const answer = await client.request("POST", "/v1/transactions/validations", body);
      notActive(answer);
      expect(answer.json().message).toContain(status);
      expect(answer.json().errors).toEqual([{ field: "userId", message: expect.stringContaining(status) }]);
      expect(answer.body).not.toContain("FRAUD_SUSPECTED");
    });

    it(`issues a ${status} user no user token, no wallet, no payment information (403, nothing written)`, async () => {
      const userId = `bu-issue-${status.toLowerCase()}`;
      await createUser(t, client, userId);
      await setStatus(userId, status);
      notActive(
        await client.request("POST", "/v1/auth/userToken", {
          url: "/v1/transactions/deposits",
          method: "POST",
          userId,
        }),
      );
      expect(
        await t.database.db.selectFrom("user_tokens").select("jti").where("user_id", "=", userId).execute(),
      ).toEqual([]);
      notActive(await client.request("POST", `/v1/users/${userId}/wallets`, { currency: "EUR" }));
      expect(await walletsOf(client.clientId, userId)).toEqual([]);
      notActive(
        await client.request("POST", `/v1/users/${userId}/payment-information`, card("4000056655665556")),
      );
      notActive(
        await client.request("POST", `/v1/users/${userId}/payment-information`, card("4242424242424242")),
      );
      notActive(
        await client.request("POST", `/v1/users/${userId}/payment-information`, {
          type: "BANK_ACCOUNT",
          iban: "DE89370400440532013000",
          accountHolderName: "Ada Doe",
        }),
      );
      expect(await paymentMethodsOf(client.clientId, userId)).toEqual([]);
      // Reactivated: all of it again.
      await setStatus(userId, "ACTIVE");
      expect(
        (
          await client.request("POST", "/v1/auth/userToken", {
            url: "/v1/transactions/deposits",
            method: "POST",
            userId,
          })
        ).statusCode,
      ).toBe(201);
      expect(
        (await client.request("POST", `/v1/users/${userId}/wallets`, { currency: "EUR" })).statusCode,
      ).toBe(201);
      expect(
        (await client.request("POST", `/v1/users/${userId}/payment-information`, card("4242424242424242")))
          .statusCode,
      ).toBe(201);
    });
  }

  it("an unknown user is still a 404 for a token, a wallet and payment information", async () => {
    const token = await client.request("POST", "/v1/auth/userToken", {
      url: "/v1/transactions/deposits",
      method: "POST",
      userId: "bu-nobody",
    });
    expect(token.statusCode).toBe(404);
    expect(
      (await client.request("POST", "/v1/users/bu-nobody/wallets", { currency: "EUR" })).statusCode,
    ).toBe(404);
    expect(
      (await client.request("POST", "/v1/users/bu-nobody/payment-information", card("4242424242424242")))
        .statusCode,
    ).toBe(404);
  });

  it("a blocked user's refused deposit saves no card and opens no wallet", async () => {
    await createUser(t, client, "bu-deposit");
    await setStatus("bu-deposit", "BLOCKED");
    const response = await client.request(
      "POST",
      "/v1/transactions/deposits",
      {
        userId: "bu-deposit",
        amount: "10.00",
        currency: "EUR",
        sourceMethod: { paymentMethodType: "CREDIT_CARD", ...card("4000002500003155"), type: undefined },
      },
      { "x-request-id": "bu-deposit-1" },
    );
    expect(response.statusCode, response.body).toBe(402);
    const stored = (await client.request("GET", "/v1/transactions/bu-deposit-1")).json();
    expect(stored).toMatchObject({
      status: "REFUSED",
      walletId: null,
      paymentMethod: { type: "CREDIT_CARD", last4: "3155" },
    });
    expect(stored.monitoring.reasons).toContain("USER_BLOCKED");
    expect(await paymentMethodsOf(client.clientId, "bu-deposit")).toEqual([]);
    expect(await walletsOf(client.clientId, "bu-deposit")).toEqual([]);
  });

  it("a transfer to a blocked user opens no wallet for them", async () => {
    await createUser(t, client, "bu-payer");
    await createUser(t, client, "bu-payee");
    await t.database.db
      .updateTable("users")
      .set({ tier: 2 })
      .where("client_id", "=", client.clientId)
      .where("id", "=", "bu-payer")
      .execute();
    const funded = await client.request(
      "POST",
      "/v1/transactions/deposits",
      {
        userId: "bu-payer",
        amount: "50.00",
        currency: "EUR",
        sourceMethod: { paymentMethodType: "CREDIT_CARD", ...card("4000000000000077"), type: undefined },
      },
      { "x-request-id": "bu-fund" },
    );
    expect(funded.statusCode, funded.body).toBe(201);
    await setStatus("bu-payee", "BLOCKED");
    const response = await client.request(
      "POST",
      "/v1/transactions/transfers",
      { userId: "bu-payer", destinationUserId: "bu-payee", amount: "10.00", currency: "EUR" },
      { "x-request-id": "bu-transfer-1" },
    );
    expect(response.statusCode, response.body).toBe(402);
    expect(await walletsOf(client.clientId, "bu-payee")).toEqual([]);
  });
});

describe("Wallet /api/v1 and Pay-in", () => {
  it("a blocked customer gets no access token at login, no new account, no smart card, no card", async () => {
    const { clientId } = await createTestClient(t);
    const customer = await registerCustomer(t, clientId);
    for (const currency of ["EUR", "USD"]) await t.services.wallets.ensureCurrency(clientId, currency);
    const coin = await customer.call("POST", "/api/v1/coins", { name: "Main", currencyCode: "EUR" });
    expect(coin.statusCode, coin.body).toBe(201);
    const serial = coin.json().coin.serial;
    await t.database.db
      .updateTable("users")
      .set({ tier: 1 })
      .where("client_id", "=", clientId)
      .where("id", "=", customer.userId)
      .execute();
    await t.services.users.update({ clientId, actor: { kind: "admin", id: "admin" } }, customer.userId, {
      info: {},
      mode: "merge",
      status: "BLOCKED",
      statusReason: "FRAUD_SUSPECTED",
    });

    const login = await t.app.inject({
      method: "POST",
      url: "/api/v1/authorization",
      headers: { "x-client-id": clientId },
      payload: { login: customer.login, password: PASSWORD },
    });
    notActive(login);
    expect(login.body).not.toContain("fwa_");

    // The session the customer held before the block issues nothing either.
    const session = caller(t, clientId, customer.token, customer.userId, customer.login);
    notActive(await session.call("POST", "/api/v1/coins", { name: "Second", currencyCode: "USD" }));
    notActive(
      await session.call("POST", "/api/v1/smart-cards/my", { name: "Card", associatedCoinSerial: serial }),
    );
    notActive(
      await session.call("POST", "/v3/payin/card", {
        cardNumber: "4000 0000 0000 3220",
        cardHolder: "Marie Curie",
        cardExpirationMonth: 12,
        cardExpirationYear: 2031,
        billingAddress: { address: "12 Rue de Rivoli", city: "Paris", countryCode: "FR", zip: "75001" },
      }),
    );
    expect(await walletsOf(clientId, customer.userId)).toHaveLength(1);
    expect(await paymentMethodsOf(clientId, customer.userId)).toEqual([]);
    expect(
      await t.database.db
        .selectFrom("smart_cards")
        .select("id")
        .where("client_id", "=", clientId)
        .where("user_id", "=", customer.userId)
        .execute(),
    ).toEqual([]);

    // Unblocked, the same password logs in again.
    await t.services.users.update({ clientId, actor: { kind: "admin", id: "admin" } }, customer.userId, {
      info: {},
      mode: "merge",
      status: "ACTIVE",
    });
    const again = await t.app.inject({
      method: "POST",
      url: "/api/v1/authorization",
      headers: { "x-client-id": clientId },
      payload: { login: customer.login, password: PASSWORD },
    });
    expect(again.statusCode, again.body).toBe(200);
  });
});
