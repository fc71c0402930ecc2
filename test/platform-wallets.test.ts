import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openAccount } from "../src/modules/ledger/service.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient, createUser, type TestClient } from "./platform.ts";

let t: TestApp;
let client: TestClient;

beforeAll(async () => {
  t = await startTestApp();
  client = await createTestClient(t);
  await createUser(t, client, "w-user");
  await createUser(t, client, "w-other");
});
afterAll(async () => {
  await t.close();
});

const card = {
  type: "CREDIT_CARD",
  cardNumber: "4242 4242 4242 4242",
  expirationMonth: 12,
  expirationYear: 2031,
  cvv: "123",
  cardHolder: "Ada Lovelace",
};

describe("payment information", () => {
  it("saves a card and shows only last4, BIN, brand and expiry", async () => {
    const response = await client.request("POST", "/v1/users/w-user/payment-information", card);
    expect(response.statusCode, response.body).toBe(201);
    const saved = response.json();
    expect(saved).toEqual({
      id: expect.stringMatching(/^pm_/),
      type: "CREDIT_CARD",
      last4: "4242",
      bin: "424242",
      brand: "VISA",
      expirationMonth: 12,
      expirationYear: 2031,
      createdAt: expect.any(String),
    });
    const list = (await client.request("GET", "/v1/users/w-user/payment-information")).json();
    expect(list.records).toEqual([saved]);
    expect(JSON.stringify(list)).not.toContain("4242424242424242");
  });

  it("keeps the card number encrypted at rest and never stores the CVV", async () => {
    const rows = await t.database.db.selectFrom("payment_methods").selectAll().execute();
    const dump = JSON.stringify(rows);
    expect(dump).not.toContain("4242424242424242");
    expect(dump).not.toContain("Ada Lovelace");
    expect(dump).not.toMatch(/"cvv"|123"/);
    const { details } = await t.services.paymentMethods.reveal(client.clientId, "w-user", rows[0]?.id ?? "");
    expect(details).toMatchObject({ cardNumber: "4242424242424242" });
    expect(details).not.toHaveProperty("cvv");
  });

  it("gives a card to one user: the same user again gets it back, another user 409", async () => {
    const again = await client.request("POST", "/v1/users/w-user/payment-information", {
      ...card,
      cardNumber: "4242-4242-4242-4242",
    });
    expect(again.statusCode).toBe(200);
    // A real card (not one of the sandbox's test cards, which are anyone's: sandbox-test-cards.test.ts).
    const real = { ...card, cardNumber: "4000056655665556" };
    expect((await client.request("POST", "/v1/users/w-user/payment-information", real)).statusCode).toBe(201);
    const other = await client.request("POST", "/v1/users/w-other/payment-information", real);
    expect(other.statusCode).toBe(409);
    // Another client's user may hold the same card: clients are separate worlds.
    const elsewhere = await createTestClient(t);
    await createUser(t, elsewhere, "w-user");
    expect((await elsewhere.request("POST", "/v1/users/w-user/payment-information", real)).statusCode).toBe(
      201,
    );
  });

  it("saves bank accounts (IBAN checked by mod 97) and crypto addresses", async () => {
    const iban = await client.request("POST", "/v1/users/w-user/payment-information", {
      type: "BANK_ACCOUNT",
      iban: "DE89 3704 0044 0532 0130 00",
      accountHolderName: "Ada Lovelace",
      bankSwiftCode: "COBADEFFXXX",
    });
    expect(iban.statusCode, iban.body).toBe(201);
    expect(iban.json()).toMatchObject({ type: "BANK_ACCOUNT", last4: "3000", bankCode: "COBADEFFXXX" });
    const us = await client.request("POST", "/v1/users/w-user/payment-information", {
      type: "BANK_ACCOUNT",
      bankAccountNumber: "000123456789",
      bankRoutingNumber: "011000015",
      accountHolderName: "Ada Lovelace",
    });
    expect(us.statusCode).toBe(201);
    const crypto = await client.request("POST", "/v1/users/w-user/payment-information", {
      type: "CRYPTO",
      currency: "BTC",
      address: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
    });
    expect(crypto.json()).toMatchObject({ type: "CRYPTO", currency: "BTC", last4: "5mdq" });
    expect((await client.request("GET", "/v1/users/w-user/payment-information")).json().records).toHaveLength(
      5,
    );
  });
});

describe("wallets", () => {
  it("opens wallets and shows balances as decimal strings at the currency's scale", async () => {
    const eur = await client.request("POST", "/v1/users/w-user/wallets", { currency: "EUR", label: "Main" });
    expect(eur.statusCode, eur.body).toBe(201);
    expect(eur.json()).toMatchObject({
      currency: "EUR",
      label: "Main",
      availableBalance: "0.00",
      pendingBalance: "0.00",
      totalBalance: "0.00",
    });
    const btc = await client.request("POST", "/v1/users/w-user/wallets", { currency: "BTC" });
    expect(btc.json().totalBalance).toBe("0.00000000");
    const list = (await client.request("GET", "/v1/users/w-user/wallets")).json();
    expect(list.records.map((w: { currency: string }) => w.currency).sort()).toEqual(["BTC", "EUR"]);
  });

  it("shows the ledger's entries as the wallet's history, newest first", async () => {
    const wallet = (await client.request("POST", "/v1/users/w-user/wallets", { currency: "USD" })).json();
    const source = await openAccount(t.database.db, {
      clientId: client.clientId,
      currency: "USD",
      kind: "ISSUING",
    });
    for (const [id, amount, type] of [
      ["h-1", 12_50n, "SINGLE"],
      ["h-2", 3_00n, "PENDING"],
    ] as const) {
      const legs =
        type === "SINGLE"
          ? [{ type, id, debitAccountId: source.id, creditAccountId: wallet.id, amount, currency: "USD" }]
          : [{ type, id, debitAccountId: wallet.id, creditAccountId: source.id, amount, currency: "USD" }];
      expect((await t.ledger.submit({ clientId: client.clientId, legs })).ok).toBe(true);
    }
    const shown = (await client.request("GET", "/v1/users/w-user/wallets"))
      .json()
      .records.find((w: { id: string }) => w.id === wallet.id);
    expect(shown).toMatchObject({ totalBalance: "12.50", availableBalance: "9.50", pendingBalance: "0.00" });
    const history = (await client.request("GET", `/v1/users/w-user/wallets/${wallet.id}/history`)).json();
    expect(history.totalRecords).toBe(2);
    expect(
      history.records.map((e: { transferId: string; direction: string; amount: string; status: string }) => [
        e.transferId,
        e.direction,
        e.amount,
        e.status,
      ]),
    ).toEqual([
      ["h-2", "DEBIT", "3.00", "PENDING"],
      ["h-1", "CREDIT", "12.50", "POSTED"],
    ]);
    const otherUsers = await client.request("GET", `/v1/users/w-other/wallets/${wallet.id}/history`);
    expect(otherUsers.statusCode).toBe(404);
  });
});
