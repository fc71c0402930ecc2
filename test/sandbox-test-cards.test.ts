import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient, createUser, type TestClient } from "./platform.ts";
import { registerCustomer, type WalletCaller } from "./wallet.ts";

/**
 * Issue 17.8: the sandbox's documented test cards (docs/sandbox.md) were bound to the first user of a
 * client who saved them, so after the guides were followed the shipped examples got 409 ("this
 * payment method belongs to another user") and 3-D Secure could not be tried again on that client.
 * Test cards are anyone's in a sandbox client (as in every acquirer's test mode); a real card number
 * stays one user's; a live client takes no test card at all; numbers stay sealed and unshown.
 */

const TEST_PANS = [
  "4242424242424242",
  "5555555555554444",
  "4000000000003220",
  "4000000000000002",
  "4000000000009995",
  "4000000000000119",
];
/** Luhn-valid and not a test card: a real card as far as Ferry knows. */
const REAL_PAN = "4000056655665556";

let t: TestApp;
let client: TestClient;

beforeAll(async () => {
  t = await startTestApp();
  client = await createTestClient(t);
  for (const id of ["tc-ada", "tc-bob", "tc-cy"]) await createUser(t, client, id);
});
afterAll(async () => {
  await t.close();
});

const card = (cardNumber: string) => ({
  type: "CREDIT_CARD",
  cardNumber,
  expirationMonth: 12,
  expirationYear: 2031,
  cvv: "123",
});

const save = (c: TestClient, userId: string, cardNumber: string) =>
  c.request("POST", `/v1/users/${userId}/payment-information`, card(cardNumber));

describe("the sandbox's test cards in a sandbox client", () => {
  it("every documented test card can be saved by any number of users, each getting a card of their own", async () => {
    for (const pan of TEST_PANS) {
      const ids: string[] = [];
      for (const userId of ["tc-ada", "tc-bob", "tc-cy"]) {
        const saved = await save(client, userId, pan);
        expect(saved.statusCode, `${userId} ${pan}: ${saved.body}`).toBe(201);
        expect(saved.json()).toMatchObject({ last4: pan.slice(-4), bin: pan.slice(0, 6) });
        expect(saved.body).not.toContain(pan);
        ids.push(saved.json().id);
        // The same user again: the card they saved (200), not a second one.
        const again = await save(client, userId, pan);
        expect(again.statusCode).toBe(200);
        expect(again.json().id).toBe(saved.json().id);
      }
      expect(new Set(ids).size).toBe(3);
    }
    const listed = (await client.request("GET", "/v1/users/tc-bob/payment-information")).json().records;
    expect(listed).toHaveLength(TEST_PANS.length);
  });

  it("keeps each user's copy sealed at rest: no card number in any row", async () => {
    const rows = await t.database.db
      .selectFrom("payment_methods")
      .selectAll()
      .where("client_id", "=", client.clientId)
      .execute();
    const dump = JSON.stringify(rows);
    for (const pan of TEST_PANS) expect(dump).not.toContain(pan);
  });

  it("a real card number stays one user's: another user gets 409", async () => {
    expect((await save(client, "tc-ada", REAL_PAN)).statusCode).toBe(201);
    const taken = await save(client, "tc-bob", REAL_PAN);
    expect(taken.statusCode).toBe(409);
    expect(taken.json().message).toMatch(/belongs to another user/);
  });

  it("two users deposit with the same inline test card; both are charged, 3-D Secure can be tried again", async () => {
    await createUser(t, client, "tc-dep-1");
    await createUser(t, client, "tc-dep-2");
    for (const userId of ["tc-dep-1", "tc-dep-2"]) {
      const approved = await client.request(
        "POST",
        "/v1/transactions/deposits",
        {
          userId,
          amount: "10.00",
          currency: "EUR",
          sourceMethod: { paymentMethodType: "CREDIT_CARD", ...card("4242424242424242"), type: undefined },
        },
        { "x-request-id": `tc-approved-${userId}` },
      );
      expect(approved.statusCode, approved.body).toBe(201);
      expect(approved.json().status).toBe("CAPTURED");
      const challenged = await client.request(
        "POST",
        "/v1/transactions/deposits",
        {
          userId,
          amount: "10.00",
          currency: "EUR",
          sourceMethod: { paymentMethodType: "CREDIT_CARD", ...card("4000000000003220"), type: undefined },
        },
        { "x-request-id": `tc-3ds-${userId}` },
      );
      expect(challenged.statusCode, challenged.body).toBe(202);
      expect(challenged.json()).toMatchObject({ status: "AWAITING_PAYMENT" });
      expect(challenged.json().redirectUrl).toMatch(/\/sandbox\/acquirer\/challenge\//);
    }
  });

  it("Pay-in customers of one client each add the 3-D Secure test card", async () => {
    const { clientId } = await createTestClient(t);
    const customers: WalletCaller[] = [];
    for (let i = 0; i < 2; i++) {
      const customer = await registerCustomer(t, clientId);
      await t.database.db
        .updateTable("users")
        .set({ tier: 1 })
        .where("client_id", "=", clientId)
        .where("id", "=", customer.userId)
        .execute();
      customers.push(customer);
    }
    const cardIds = [];
    for (const customer of customers) {
      const added = await customer.call("POST", "/v3/payin/card", {
        cardNumber: "4000 0000 0000 3220",
        cardHolder: "Marie Curie",
        cardExpirationMonth: 12,
        cardExpirationYear: 2031,
        billingAddress: { address: "12 Rue de Rivoli", city: "Paris", countryCode: "FR", zip: "75001" },
      });
      expect(added.statusCode, added.body).toBe(200);
      expect(added.json().maskedPan).toBe("400000******3220");
      cardIds.push(added.json().cardId);
    }
    expect(cardIds[0]).not.toBe(cardIds[1]);
  });
});

describe("a live client", () => {
  it("takes no test card as a card (400 naming cardNumber); a real card is saved", async () => {
    const live = await createTestClient(t, { mode: "live" });
    await createUser(t, live, "live-ada");
    for (const pan of TEST_PANS) {
      const refused = await save(live, "live-ada", pan);
      expect(refused.statusCode, `${pan}: ${refused.body}`).toBe(400);
      expect(refused.json().errors).toContainEqual({ field: "cardNumber", message: expect.any(String) });
      expect(refused.body).not.toContain(pan);
    }
    expect((await live.request("GET", "/v1/users/live-ada/payment-information")).json().records).toEqual([]);
    expect((await save(live, "live-ada", REAL_PAN)).statusCode).toBe(201);
  });
});
