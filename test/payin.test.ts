import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as ledger from "../src/modules/ledger/service.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { tokenFor } from "./page-forms.ts";
import { invariantsHold, registerCustomer, type WalletCaller, walletClient } from "./wallet.ts";

/** The Pay-in API through HTTP: cards, data, offers, payment (approved, declined, 3-D Secure), chain. */

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ workers: true, settings: { sandboxKycDelayMs: 20, sandboxChainConfirmMs: 300 } });
});
afterAll(() => t.close());

/** The core's id of an offer the face named by its number. */
async function offerRef(number: number): Promise<string> {
  const { rows } = await sql<{ ref: string }>`
    SELECT ref FROM payin_numbers WHERE kind = 'OFFER' AND number = ${number}`.execute(t.database.db);
  if (!rows[0]) throw new Error(`no offer ${number}`);
  return rows[0].ref;
}

let cards = 0;
/** A Luhn-valid card number the sandbox approves, distinct per call (a card belongs to one user). */
function approvedCard(): string {
  const body = `41111100${String(++cards).padStart(7, "0")}`;
  for (let d = 0; d <= 9; d++) {
    const n = `${body}${d}`;
    let sum = 0;
    for (let i = 0; i < n.length; i++) {
      let digit = Number(n[n.length - 1 - i]);
      if (i % 2 === 1) digit = digit * 2 > 9 ? digit * 2 - 9 : digit * 2;
      sum += digit;
    }
    if (sum % 10 === 0) return n;
  }
  throw new Error("no Luhn digit");
}

const billingAddress = { address: "12 Rue de Rivoli", city: "Paris", countryCode: "FR", zip: "75001" };

/** A customer at KYC_1 (tier 2): their information through the core, assessed by the sandbox KYC. */
async function verifiedCustomer(
  clientId: string,
  extra: Record<string, unknown> = {},
): Promise<WalletCaller> {
  const customer = await registerCustomer(t, clientId);
  await t.services.users.update({ clientId, actor: { kind: "user", id: customer.userId } }, customer.userId, {
    mode: "merge",
    info: {
      name: { firstName: "Marie", lastName: "Curie" },
      dateOfBirth: "1990-01-01",
      addresses: [{ street: "12 Rue de Rivoli", city: "Paris", postalCode: "75001", country: "FR" }],
      idDocument: { type: "PASSPORT", number: "X1234567", country: "FR" },
      ...extra,
    },
  });
  await t.services.kyc.start({ clientId, userId: customer.userId });
  await expect
    .poll(async () => (await t.services.users.get(t.database.db, clientId, customer.userId)).tier, {
      timeout: 5000,
    })
    .toBeGreaterThanOrEqual(2);
  return customer;
}

async function addCard(customer: WalletCaller, cardNumber = approvedCard()) {
  const added = await customer.call("POST", "/v3/payin/card", {
    cardNumber,
    cardHolder: "Marie Curie",
    cardExpirationMonth: 12,
    cardExpirationYear: 2031,
    billingAddress,
  });
  expect(added.statusCode, added.body).toBe(200);
  return added.json().cardId as string;
}

async function offer(customer: WalletCaller, cardId: string, more: Record<string, unknown> = {}) {
  const made = await customer.call("POST", "/v3/payin/offer", {
    cardId,
    fromCurrency: "EUR",
    toCurrency: "USDC",
    amount: "100.00",
    operation: "PAYIN",
    ...more,
  });
  expect(made.statusCode, made.body).toBe(200);
  return made.json();
}

async function balanceOf(clientId: string, accountId: string) {
  const account = await ledger.getAccount(t.database.db, accountId, clientId);
  return account.creditsPosted - account.debitsPosted;
}

async function chargesOf(clientId: string) {
  return t.database.db
    .selectFrom("sandbox_acquirer_charges")
    .select(["outcome", "amount"])
    .where("idempotency_key", "like", `${clientId}:%`)
    .execute();
}

describe("Pay-in", () => {
  it("card → data → offer → pay: the crypto at the offer's rate even when the market moved; exact balances", async () => {
    const { clientId } = await walletClient(t);
    const marie = await verifiedCustomer(clientId);
    const cardId = await addCard(marie);

    const data = await marie.call("GET", "/v3/payin/data");
    expect(data.statusCode, data.body).toBe(200);
    expect(data.json().cards).toMatchObject([{ cardId, minAmountFrom: 10, maxAmountFrom: 5000 }]);
    expect(data.json().pairs).toContainEqual({
      lock: false,
      currencyFrom: "EUR",
      currencyTo: "USDC",
      rate: 0.92592592,
      amountScaleFrom: 2,
      amountScaleTo: 6,
    });

    const made = await offer(marie, cardId);
    // 100.00 EUR − 1.5 % fee = 98.50 EUR × 1.08 USD/EUR ÷ 1.00 USD/USDC = 106.38 USDC.
    expect(made).toMatchObject({
      amount: 100,
      toAmount: 106.38,
      validSeconds: 20,
      status: "OPEN",
    });
    expect(made.feeInfo[0]).toMatchObject({ value: 1.5, currency: "EUR" });
    for (const amount of ["9.99", "5000.01"])
      expect(
        (
          await marie.call("POST", "/v3/payin/offer", {
            cardId,
            fromCurrency: "EUR",
            toCurrency: "USDC",
            amount,
            operation: "PAYIN",
          })
        ).statusCode,
      ).toBe(400);

    // The market moves before the payment: the offer's rate is the rate paid.
    t.services.sandbox.rates.setPrice("USDC", "1.25");
    try {
      const paid = await marie.call("POST", `/v3/payin/pay/${made.offerId}`, { cardCVV: "123" });
      expect(paid.statusCode, paid.body).toBe(200);
      expect(paid.json()).toMatchObject({
        transactionStatus: "Approved",
        transactionStatusCode: 0,
        authLink: null,
        transactionAmount: "100.00",
      });
    } finally {
      t.services.sandbox.rates.setPrice("USDC", "1.00");
    }
    const status = await marie.call("GET", `/v3/payin/pay-callback?offerId=${made.offerId}`);
    expect(status.json()).toMatchObject({
      status: "SUCCESS",
      amount: 100,
      currency: "EUR",
      cryptoAmount: 106.38,
      cryptoCurrency: "USDC",
    });
    // Numbers written from the exact decimals, digit for digit (never through a float).
    expect(status.body).toContain('"amount":100.00,');
    expect(status.body).toContain('"cryptoAmount":106.380000,');
    const coins = (await marie.call("GET", "/api/v1/coins")).json().coins;
    expect(coins).toMatchObject([{ currency: { code: "USDC" }, amount: "106.380000" }]);

    const account = (kind: "TRANSIT" | "FX" | "FEES", currency: string, rail?: string) =>
      ledger.systemAccountId(t.database.db, { clientId, currency, kind, ...(rail ? { rail } : {}) });
    expect(await balanceOf(clientId, await account("TRANSIT", "EUR", "card"))).toBe(-10000n);
    expect(await balanceOf(clientId, await account("FX", "EUR"))).toBe(9850n);
    expect(await balanceOf(clientId, await account("FEES", "EUR"))).toBe(150n);
    expect(await balanceOf(clientId, await account("FX", "USDC"))).toBe(-106_380_000n);

    // Paid: the offer cannot be changed; paying again is the first result, one charge.
    expect(
      (
        await marie.call("PUT", `/v3/payin/offer/${made.offerId}`, {
          amount: "50",
          fromCurrency: "EUR",
          toCurrency: "USDC",
          operation: "PAYIN",
        })
      ).statusCode,
    ).toBe(409);
    const again = await marie.call("POST", `/v3/payin/pay/${made.offerId}`, { cardCVV: "123" });
    expect(again.json().transactionStatus).toBe("Approved");
    expect(await chargesOf(clientId)).toEqual([{ outcome: "APPROVED", amount: "10000" }]);
    // The purchase's outcome was written as events for the client's webhooks, as on /v1.
    const events = await t.database.db
      .selectFrom("outbox_events")
      .select(["type", "data"])
      .where("client_id", "=", clientId)
      .where("type", "=", "TRANSACTION_STATUS")
      .execute();
    const purchase = events.map(
      (e) =>
        (typeof e.data === "string" ? JSON.parse(e.data) : e.data) as { requestId?: string; status?: string },
    );
    const madeRef = await offerRef(made.offerId);
    expect(purchase.filter((e) => e.requestId === `po-${madeRef}`).map((e) => e.status)).toContain(
      "CAPTURED",
    );
    await invariantsHold(t, clientId);
  });

  it("20 concurrent payments of one offer: one charge, one purchase; an expired offer is a 409 without a charge", async () => {
    const { clientId } = await walletClient(t);
    const marie = await verifiedCustomer(clientId);
    const cardId = await addCard(marie);
    const made = await offer(marie, cardId, { amount: "20.00" });
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        marie.call("POST", `/v3/payin/pay/${made.offerId}`, { cardCVV: "123" }),
      ),
    );
    for (const a of answers) expect(a.statusCode, a.body).toBe(200);
    expect(await chargesOf(clientId)).toHaveLength(1);

    // The worker marks an offer past its time EXPIRED.
    const swept = await offer(marie, cardId, { amount: "25.00" });
    await t.database.db
      .updateTable("payin_offers")
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where("id", "=", await offerRef(swept.offerId))
      .execute();
    await expect
      .poll(
        async () =>
          (
            await t.database.db
              .selectFrom("payin_offers")
              .select("status")
              .where("id", "=", await offerRef(swept.offerId))
              .executeTakeFirstOrThrow()
          ).status,
        { timeout: 10_000, interval: 250 },
      )
      .toBe("EXPIRED");

    const late = await offer(marie, cardId, { amount: "30.00" });
    await t.database.db
      .updateTable("payin_offers")
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where("id", "=", await offerRef(late.offerId))
      .execute();
    const expired = await marie.call("POST", `/v3/payin/pay/${late.offerId}`, { cardCVV: "123" });
    expect(expired.statusCode, expired.body).toBe(409);
    expect(
      (
        await marie.call("PUT", `/v3/payin/offer/${late.offerId}`, {
          amount: "31",
          fromCurrency: "EUR",
          toCurrency: "USDC",
          operation: "PAYIN",
        })
      ).statusCode,
    ).toBe(409);
    expect(await chargesOf(clientId)).toHaveLength(1);
    await invariantsHold(t, clientId);
  });

  it("the platform admin sets a client's limits and fees: offers follow them", async () => {
    const { clientId } = await walletClient(t);
    const set = await t.app.inject({
      method: "PATCH",
      url: `/admin/clients/${clientId}`,
      headers: t.adminAuth,
      payload: {
        settings: {
          payin: { minAmountFrom: "20", maxAmountFrom: "1000", feePercent: "2", feeFixed: "0.50" },
        },
      },
    });
    expect(set.statusCode, set.body).toBe(200);
    const bad = await t.app.inject({
      method: "PATCH",
      url: `/admin/clients/${clientId}`,
      headers: t.adminAuth,
      payload: { settings: { payin: { feePercent: "abc" } } },
    });
    expect(bad.statusCode).toBe(400);
    const marie = await verifiedCustomer(clientId);
    const cardId = await addCard(marie);
    const small = await marie.call("POST", "/v3/payin/offer", {
      cardId,
      fromCurrency: "EUR",
      toCurrency: "USDC",
      amount: "10.00",
      operation: "PAYIN",
    });
    expect(small.statusCode).toBe(400);
    expect(small.json().message).toMatch(/between 20\.00 and 1000\.00 EUR/);
    const made = await offer(marie, cardId);
    expect(made.feeInfo[0].value).toBe(2.5);
    expect(made.rate).toMatchObject({ commissionPercentage: 2, commissionFix: 0.5 });
    expect(made.fees).toMatchObject({ rate: 0.02, transactionFee: 0.5 });
  });

  it("PUT re-quotes an open offer with a new expiry", async () => {
    const { clientId } = await walletClient(t);
    const marie = await verifiedCustomer(clientId);
    const cardId = await addCard(marie);
    const made = await offer(marie, cardId);
    const changed = await marie.call("PUT", `/v3/payin/offer/${made.offerId}`, {
      amount: "200",
      fromCurrency: "USD",
      toCurrency: "BTC",
      operation: "PAYIN",
    });
    expect(changed.statusCode, changed.body).toBe(200);
    expect(changed.json()).toMatchObject({
      offerId: made.offerId,
      amount: 200,
      fromCurrency: "USD",
      toCurrency: "BTC",
    });
    // 197.00 USD ÷ 64,800 USD/BTC = 0.00304012 BTC (rounded down).
    expect(changed.json().toAmount).toBe(0.00304012);
    expect(new Date(changed.json().expirationTime).getTime()).toBeGreaterThanOrEqual(
      new Date(made.expirationTime).getTime(),
    );
  });

  it("a declined card is a 200 with the acquirer's words, the offer FAILURE and nothing moved", async () => {
    const { clientId } = await walletClient(t);
    const marie = await verifiedCustomer(clientId);
    const cardId = await addCard(marie, "4000000000000002");
    const made = await offer(marie, cardId);
    const paid = await marie.call("POST", `/v3/payin/pay/${made.offerId}`, { cardCVV: "123" });
    expect(paid.statusCode, paid.body).toBe(200);
    expect(paid.json()).toMatchObject({ transactionStatus: "Do not honour", transactionStatusCode: 5 });
    const status = await marie.call("GET", `/v3/payin/pay-callback?offerId=${made.offerId}`);
    expect(status.json()).toMatchObject({ status: "FAILURE", transactionStatus: "Do not honour" });
    expect(
      (await marie.call("GET", "/api/v1/coins"))
        .json()
        .coins.every((c: { amount: string }) => Number(c.amount) === 0),
    ).toBe(true);
    await invariantsHold(t, clientId);
  });

  it("3-D Secure: Pending with authLink; completing the page sends the browser to successUrl and settles it", async () => {
    const { clientId } = await walletClient(t);
    const marie = await verifiedCustomer(clientId);
    const cardId = await addCard(marie, "4000000000003220");
    const made = await offer(marie, cardId, {
      successUrl: "https://shop.example/ok",
      failUrl: "https://shop.example/failed",
    });
    const paid = await marie.call("POST", `/v3/payin/pay/${made.offerId}`, { cardCVV: "123" });
    expect(paid.json()).toMatchObject({
      transactionStatus: "Pending",
      authLink: expect.stringContaining("/sandbox/acquirer/challenge/"),
      successUrl: "https://shop.example/ok",
    });
    expect((await marie.call("GET", `/v3/payin/pay-callback?offerId=${made.offerId}`)).json().status).toBe(
      "PENDING",
    );
    const reference = new URL(paid.json().authLink).pathname.split("/").pop();
    const done = await t.app.inject({
      method: "POST",
      url: `/sandbox/acquirer/challenge/${reference}`,
      headers: { "content-type": "application/x-www-form-urlencoded" },
      payload: `decision=complete&csrf=${tokenFor(t, `/sandbox/acquirer/challenge/${reference}`)}`,
    });
    expect(done.statusCode).toBe(303);
    expect(done.headers.location).toBe("https://shop.example/ok");
    expect((await marie.call("GET", `/v3/payin/pay-callback?offerId=${made.offerId}`)).json().status).toBe(
      "SUCCESS",
    );
    await invariantsHold(t, clientId);
  });

  it("with an address: the crypto is sent on the chain (hash at once, confirmed later) and leaves the account", async () => {
    const { clientId } = await walletClient(t);
    const marie = await verifiedCustomer(clientId);
    const cardId = await addCard(marie);
    const address = `0x${"ab".repeat(20)}`;
    expect(
      (
        await marie.call("POST", "/v3/payin/offer", {
          cardId,
          fromCurrency: "EUR",
          toCurrency: "USDC",
          amount: "50",
          operation: "PAYIN",
          walletAddress: "not-an-address",
        })
      ).statusCode,
    ).toBe(400);
    const made = await offer(marie, cardId, { amount: "50.00", walletAddress: address });
    expect(
      (await marie.call("POST", `/v3/payin/pay/${made.offerId}`, { cardCVV: "123" })).json()
        .transactionStatus,
    ).toBe("Approved");
    await expect
      .poll(
        async () =>
          (await marie.call("GET", `/v3/payin/pay-callback?offerId=${made.offerId}`)).json().chainTxHash,
        { timeout: 5000 },
      )
      .toMatch(/^0x[0-9a-f]{64}$/);
    await expect
      .poll(
        async () =>
          (await marie.call("GET", `/v3/payin/pay-callback?offerId=${made.offerId}`)).json().chainStatus,
        { timeout: 5000 },
      )
      .toBe("CONFIRMED");
    const coins = (await marie.call("GET", "/api/v1/coins")).json().coins;
    expect(coins).toMatchObject([{ currency: { code: "USDC" }, amount: "0.000000" }]);
    const chain = await ledger.systemAccountId(t.database.db, {
      clientId,
      currency: "USDC",
      kind: "TRANSIT",
      rail: "chain",
    });
    expect(await balanceOf(clientId, chain)).toBe(53_190_000n);
    await invariantsHold(t, clientId);
  });

  it("KYC levels: offers need KYC_0, paying KYC_1 (422); a card of another user is a 409; monitoring's DENY blocks the payment", async () => {
    const { clientId } = await walletClient(t);
    const fresh = await registerCustomer(t, clientId);
    const data = await fresh.call("GET", "/v3/payin/data");
    expect(data.statusCode).toBe(422);
    expect(data.json().assessment).toEqual({ requiredTier: 1, currentTier: 0 });

    const freshCard = await fresh.call("POST", "/v3/payin/card", {
      cardNumber: approvedCard(),
      cardHolder: "Fresh User",
      cardExpirationMonth: 12,
      cardExpirationYear: 2031,
      billingAddress,
    });
    expect(freshCard.statusCode).toBe(422);

    const marie = await verifiedCustomer(clientId);
    const pierre = await verifiedCustomer(clientId);
    const number = approvedCard();
    await addCard(marie, number);
    const taken = await pierre.call("POST", "/v3/payin/card", {
      cardNumber: number,
      cardHolder: "Pierre Curie",
      cardExpirationMonth: 12,
      cardExpirationYear: 2031,
      billingAddress,
    });
    expect(taken.statusCode).toBe(409);
    const badLuhn = await pierre.call("POST", "/v3/payin/card", {
      cardNumber: "4111111111111112",
      cardHolder: "Pierre Curie",
      cardExpirationMonth: 12,
      cardExpirationYear: 2031,
      billingAddress,
    });
    expect(badLuhn.statusCode).toBe(400);
    // A billing address changes; another user's card is a 404.
    const marieCard = (await marie.call("GET", "/v3/payin/data")).json().cards[0].cardId;
    const moved = await marie.call("POST", `/v3/payin/card/${marieCard}/billing-address`, {
      ...billingAddress,
      address: "1 Place du Tertre",
    });
    expect(moved.statusCode, moved.body).toBe(200);
    expect(
      (await pierre.call("POST", `/v3/payin/card/${marieCard}/billing-address`, billingAddress)).statusCode,
    ).toBe(404);

    // Paying needs KYC_1: a customer at KYC_0 gets a 422 naming the level, and nothing is charged.
    const kyc0 = await registerCustomer(t, clientId);
    await t.services.users.update({ clientId, actor: { kind: "user", id: kyc0.userId } }, kyc0.userId, {
      mode: "merge",
      info: {
        name: { firstName: "Irene", lastName: "Joliot" },
        dateOfBirth: "1990-01-01",
        addresses: [{ street: "1 Rue Pierre", city: "Paris", country: "FR" }],
      },
    });
    await t.services.kyc.start({ clientId, userId: kyc0.userId });
    await expect
      .poll(async () => (await t.services.users.get(t.database.db, clientId, kyc0.userId)).tier, {
        timeout: 5000,
      })
      .toBe(1);
    const kyc0Card = await addCard(kyc0);
    const kyc0Offer = await offer(kyc0, kyc0Card);
    const notYet = await kyc0.call("POST", `/v3/payin/pay/${kyc0Offer.offerId}`, { cardCVV: "123" });
    expect(notYet.statusCode).toBe(422);
    expect(notYet.json().assessment).toEqual({ requiredTier: 2, currentTier: 1 });

    const denied = await verifiedCustomer(clientId, {
      addresses: [{ street: "1 Main St", city: "Pyongyang", country: "KP" }],
    });
    const deniedCard = await addCard(denied);
    const made = await offer(denied, deniedCard);
    const refused = await denied.call("POST", `/v3/payin/pay/${made.offerId}`, { cardCVV: "123" });
    expect(refused.statusCode, refused.body).toBe(409);
    expect(refused.json().message).toMatch(/cannot be paid/);
    expect(await chargesOf(clientId)).toHaveLength(0);
  });
});
