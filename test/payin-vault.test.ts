import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { startTestApp, type TestApp } from "./harness.ts";
import { caller, lastOtp, PASSWORD, registerCustomer, type WalletCaller, walletClient } from "./wallet.ts";

/**
 * Vault's documented Pay-in requests (public repository Vault-ist/api: Authorization/signin.md,
 * Profile/*.md + Profile.json, KYC/*.md, PayIn/*.md), sent as the documentation writes them, and the
 * answers checked against schemas written here from those documents (their field lists, types and
 * examples; nothing of theirs is copied). Offline: the documents were read once, the schemas are ours.
 */

let t: TestApp;
let clientId: string;
beforeAll(async () => {
  t = await startTestApp({ workers: true, settings: { sandboxKycDelayMs: 20, sandboxChainConfirmMs: 300 } });
  ({ clientId } = await walletClient(t));
});
afterAll(() => t.close());

/** Parses `value` with `schema`; on failure the issues are the assertion's message. */
function conforms(schema: z.ZodType, value: unknown) {
  const parsed = schema.safeParse(value);
  expect(parsed.success, parsed.success ? "" : JSON.stringify(parsed.error.issues, null, 1)).toBe(true);
}

// Vault's error body (every document's 4xx): error, errorId, message, systemId; field when one is to blame.
const vaultError = z.object({
  error: z.string(),
  errorId: z.number().int(),
  message: z.string(),
  systemId: z.string(),
  field: z.string().optional(),
});

// Authorization/signin.md, 200.
const signInAnswer = z.object({
  access_token: z.string().min(1),
  token_type: z.string().regex(/^bearer$/i),
  refresh_token: z.string().optional(),
  expires_in: z.number().int().positive(),
  scope: z.string(),
});

let phones = 0;
/** A customer whose login is a phone number (as Vault's are), registered through the Wallet API. */
async function phoneCustomer(): Promise<{ number: string; customer: WalletCaller }> {
  const digits = `4478${String(Date.now() % 1e6).padStart(6, "0")}${++phones}`;
  const started = await t.app.inject({
    method: "POST",
    url: "/api/v1/registration",
    headers: { "x-client-id": clientId },
    payload: { login: digits, role: "individual" },
  });
  expect(started.statusCode, started.body).toBe(200);
  const otp = await lastOtp(t, clientId, digits);
  const confirmed = await t.app.inject({
    method: "POST",
    url: "/api/v1/registration/confirm",
    headers: { "x-client-id": clientId },
    payload: { login: digits, otp, password: PASSWORD },
  });
  expect(confirmed.statusCode, confirmed.body).toBe(200);
  const body = confirmed.json();
  return {
    number: `+${digits}`,
    customer: caller(t, clientId, body.authorizationToken.token, body.members[0].user.id, digits),
  };
}

/** Vault's sign-in as signin.md writes it: form body, X-Merchant-ID naming the client. */
function signIn(form: Record<string, string>, merchant = clientId) {
  return t.app.inject({
    method: "POST",
    url: "/oauth/token",
    headers: {
      accept: "application/json",
      "content-type": "application/x-www-form-urlencoded",
      "x-merchant-id": merchant,
    },
    payload: new URLSearchParams(form).toString(),
  });
}

describe("Authorization/signin.md: POST /oauth/token, grant_type=mobile_phone", () => {
  it("signs in with the number and password; the token opens the Pay-in routes", async () => {
    const { number } = await phoneCustomer();
    const answer = await signIn({ password: PASSWORD, number, grant_type: "mobile_phone" });
    expect(answer.statusCode, answer.body).toBe(200);
    expect(answer.headers["content-type"]).toMatch(/^application\/json/);
    expect(answer.headers["cache-control"]).toBe("no-store");
    const body = answer.json();
    conforms(signInAnswer, body);
    const profile = await t.app.inject({
      method: "GET",
      url: "/v2/customer/profile",
      headers: { authorization: `Bearer ${body.access_token}` },
    });
    expect(profile.statusCode, profile.body).toBe(200);
  });

  it("a wrong password, an unknown number, an unknown merchant: 401 in Vault's error body", async () => {
    const { number } = await phoneCustomer();
    for (const [form, merchant] of [
      [{ password: "not-it", number, grant_type: "mobile_phone" }, clientId],
      [{ password: PASSWORD, number: "+15550000000", grant_type: "mobile_phone" }, clientId],
      [{ password: PASSWORD, number, grant_type: "mobile_phone" }, "no-such-merchant"],
    ] as const) {
      const answer = await signIn(form, merchant);
      expect(answer.statusCode, answer.body).toBe(401);
      conforms(vaultError, answer.json());
    }
  });

  it("a missing number: 400 in Vault's error body naming it", async () => {
    const answer = await signIn({ password: PASSWORD, grant_type: "mobile_phone" });
    expect(answer.statusCode, answer.body).toBe(400);
    conforms(vaultError, answer.json());
    expect(answer.json().field).toBe("number");
  });
});

// Profile/update-customer-profile.md's example body, as written (a date-time birth date, alpha-3 country).
const VAULT_PROFILE = {
  lastName: "Schmidt",
  firstName: "Anna",
  dateOfBirth: "1990-05-20T00:00:00.000Z",
  residenceCity: "Munich",
  primaryCurrency: "EUR",
  residenceStreet: "Examplestrasse",
  residenceCountry: "DEU",
  residenceZipCode: "12345",
};

/** A customer (e-mail login) who sent Vault's profile example and reached KYC_0. */
async function kyc0Customer(): Promise<WalletCaller> {
  const customer = await registerCustomer(t, clientId);
  const patched = await customer.call("PATCH", "/v2/customer/profile", VAULT_PROFILE);
  expect(patched.statusCode, patched.body).toBe(204);
  await expect
    .poll(async () => (await t.services.users.get(t.database.db, clientId, customer.userId)).tier, {
      timeout: 5000,
    })
    .toBeGreaterThanOrEqual(1);
  return customer;
}

// PayIn/add-card.md's example body, as written: cardNumber a JSON number, billingAddress.state null.
const VAULT_CARD = {
  cardHolder: "Mara Sanchez Gonzalez",
  cardNumber: 4012888888881881,
  billingAddress: { zip: "8700", city: "tielt", state: null, address: "kasteelstraat 79", countryCode: "BE" },
  cardExpirationYear: 2031,
  cardExpirationMonth: 3,
};

describe("requests as Vault's documents write them", () => {
  it("PATCH /v2/customer/profile with a date-time dateOfBirth: accepted, the date kept", async () => {
    const customer = await kyc0Customer();
    const info = await t.services.users.info(t.database.db, clientId, customer.userId);
    expect(info.dateOfBirth).toBe("1990-05-20");
    const bad = await customer.call("PATCH", "/v2/customer/profile", { dateOfBirth: "1990-05-20T25:00:00Z" });
    expect(bad.statusCode, bad.body).toBe(400);
    conforms(vaultError, bad.json());
  });

  it("POST /v3/payin/card with a numeric cardNumber and state: null; the billing address alone too", async () => {
    const customer = await kyc0Customer();
    const added = await customer.call("POST", "/v3/payin/card", VAULT_CARD);
    expect(added.statusCode, added.body).toBe(200);
    const { cardId } = added.json();
    // PayIn/add-card-billing-address.md's example (no state).
    const address = { zip: "L6P2454", city: "Brampton ", address: "17 mellowood Ave", countryCode: "CA" };
    const changed = await customer.call("POST", `/v3/payin/card/${cardId}/billing-address`, address);
    expect(changed.statusCode, changed.body).toBe(200);
    const withNull = await customer.call("POST", `/v3/payin/card/${cardId}/billing-address`, {
      ...address,
      state: null,
    });
    expect(withNull.statusCode, withNull.body).toBe(200);
    // A number JSON cannot carry exactly: refused, not rounded into another card.
    // A 19-digit number as a client's JSON text carries it (JSON parsing rounds it to 4e18).
    const text = JSON.stringify({ ...VAULT_CARD, cardNumber: 0 }).replace(
      '"cardNumber":0',
      '"cardNumber":4000000000000000002',
    );
    const inexact = await customer.call("POST", "/v3/payin/card", text, {
      "content-type": "application/json",
    });
    expect(inexact.statusCode, inexact.body).toBe(400);
    conforms(vaultError, inexact.json());
  });

  it("PUT /v3/payin/offer/{offerId} with toAmount (update-existing-offer-without.md's body)", async () => {
    const customer = await kyc0Customer();
    const card = await customer.call("POST", "/v3/payin/card", {
      ...VAULT_CARD,
      cardNumber: 4242424242424242,
    });
    expect(card.statusCode, card.body).toBe(200);
    // create-offer-without-charging-customer.md's body (the card's id as this server gave it).
    const made = await customer.call("POST", "/v3/payin/offer", {
      amount: 31,
      cardId: card.json().cardId,
      operation: "PAYIN",
      toCurrency: "USDC",
      fromCurrency: "EUR",
    });
    expect(made.statusCode, made.body).toBe(200);
    const changed = await customer.call("PUT", `/v3/payin/offer/${made.json().offerId}`, {
      amount: 117.99,
      toAmount: 120.24616516,
      operation: "PAYIN",
      toCurrency: "USDT",
      fromCurrency: "EUR",
    });
    expect(changed.statusCode, changed.body).toBe(200);
    expect(changed.json().toCurrency).toBe("USDT");
  });

  it("POST /v4/kyc/start?platform=COMMON (KYC/KYC 1/Start.md): the verification's id", async () => {
    const customer = await kyc0Customer();
    const started = await customer.call("POST", "/v4/kyc/start?platform=COMMON");
    expect(started.statusCode, started.body).toBe(200);
    conforms(z.object({ id: z.string().min(1) }), started.json());
  });
});

// Profile/Profile.json, GET /v2/customer/profile 200: every property a string or boolean, an unset one
// left out (never null); dateOfBirth a date-time. Strict: only the properties Profile.json lists.
const vaultProfile = z
  .object({
    email: z.string(),
    confirmedEmail: z.boolean(),
    phone: z.string(),
    firstName: z.string(),
    lastName: z.string(),
    primaryCurrency: z.string(),
    residenceCountry: z.string(),
    residenceState: z.string(),
    residenceCity: z.string(),
    residenceStreet: z.string(),
    residenceZipCode: z.string(),
    pushEnabled: z.boolean(),
    enabled2FA: z.boolean(),
    dateOfBirth: z.iso.datetime({ offset: true }),
    veroId: z.string(),
  })
  .partial()
  .strict();

// KYC/status.md, 200.
const levelData = z.object({
  status: z.enum(["APPROVED", "UNDEFINED", "UNDER_REVIEW", "DENIED"]),
  reason: z.string().nullable(),
  rejectFormattedMessage: z.string().nullable(),
});
const vaultKycData = z.object({
  kycLevel: z.string().nullable(),
  kyc1ClientData: levelData,
  kyc2ClientData: levelData,
  kyc3ClientData: levelData,
  daysToExpireKyc: z.number().int().optional(),
  remainingAmount: z.object({ value: z.number(), currency: z.string() }).optional(),
  blockedAmount: z.object({ value: z.number(), currency: z.string() }).optional(),
});

describe("answers against the schemas of Vault's documents", () => {
  it("GET /v2/customer/profile: Profile.json's fields and types, nothing null; the login's e-mail or phone", async () => {
    const fresh = await registerCustomer(t, clientId);
    const empty = (await fresh.call("GET", "/v2/customer/profile")).json();
    conforms(vaultProfile, empty);
    expect(empty).toMatchObject({ email: fresh.login, confirmedEmail: true, enabled2FA: false });

    const customer = await kyc0Customer();
    const full = (await customer.call("GET", "/v2/customer/profile")).json();
    conforms(vaultProfile, full);
    expect(full).toMatchObject({ ...VAULT_PROFILE, residenceCountry: "DE" });

    const { number, customer: byPhone } = await phoneCustomer();
    const phoneProfile = (await byPhone.call("GET", "/v2/customer/profile")).json();
    conforms(vaultProfile, phoneProfile);
    expect(phoneProfile.phone).toBe(number);
    expect(phoneProfile.email).toBeUndefined();
  });

  it("GET /v2/customer/kyc/data: KYC/status.md's members", async () => {
    const customer = await kyc0Customer();
    const data = (await customer.call("GET", "/v2/customer/kyc/data")).json();
    conforms(vaultKycData, data);
    expect(data.kycLevel).toBe("KYC_0");
  });
});

// PayIn/get-available-rates-and-cards-payin.md, 200.
const vaultFees = z.object({
  rate: z.number(),
  scale: z.number().int(),
  currency: z.string(),
  feeTable: z.array(z.unknown()).nullable(),
  partnerFee: z.number(),
  insuranceFee: z.number().nullable(),
  additionalFee: z.number(),
  crypteriumGas: z.number(),
  transactionFee: z.number(),
  feeTableEnabled: z.boolean(),
});
const vaultData = z.object({
  fees: vaultFees,
  cards: z.array(
    z.object({
      cardId: z.number().int().positive(),
      cardType: z.string().nullable(),
      maskedPan: z.string(),
      maxAmountFrom: z.number(),
      minAmountFrom: z.number(),
      validationStatus: z.string(),
      billingAddressRequired: z.boolean(),
    }),
  ),
  pairs: z.array(
    z.object({
      lock: z.boolean(),
      rate: z.number(),
      currencyTo: z.string(),
      currencyFrom: z.string(),
      amountScaleTo: z.number().int(),
      amountScaleFrom: z.number().int(),
    }),
  ),
  feeInfo: z.array(z.unknown()).nullable(),
  validTo: z.iso.datetime({ offset: true }),
  feeTable: z.array(z.unknown()).nullable(),
  fiatPairs: z.array(z.unknown()),
  validSeconds: z.number().int(),
  firstPurchase: z.boolean(),
  firstPurchaseLimit: z.object({ value: z.number(), currency: z.string() }),
  defaultMaxAmountFrom: z.number(),
  defaultMinAmountFrom: z.number(),
  freeTransactionsPromo: z.object({ total: z.number().int(), available: z.number().int() }),
  billingAddressRequired: z.boolean(),
});

// PayIn/create-offer-without-charging-customer.md and update-existing-offer-without.md, 200.
const vaultOffer = z.object({
  offerId: z.number().int().positive(),
  expirationTime: z.iso.datetime({ offset: true }),
  validSeconds: z.number().int(),
  fromCurrency: z.string(),
  rate: z.object({
    rate: z.number(),
    currency: z.string(),
    commissionFix: z.number(),
    commissionPercentage: z.number(),
    minCrypto: z.number(),
    maxCrypto: z.number(),
  }),
  feeInfo: z.array(
    z.object({
      name: z.string(),
      value: z.number(),
      valueOld: z.number(),
      scale: z.number().int(),
      currency: z.string(),
    }),
  ),
  limit: z.object({ value: z.number(), currency: z.string() }),
  fees: vaultFees,
});

// PayIn/execute-offer-payment.md, 200 (strings null where the example has null).
const cardFacts = {
  paymentMode: z.string().nullable(),
  maskedPan: z.string(),
  cardBankName: z.string().nullable(),
  cardCountryCode: z.string().nullable(),
  cardCountryName: z.string().nullable(),
  transactionDate: z.string(),
  transactionAmount: z.string(),
  transactionStatus: z.string(),
  transactionStatusCode: z.number().int(),
  originalTransactionStatus: z.string(),
  originalTransactionStatusCode: z.number().int(),
};
const vaultPayment = z.object({
  failUrl: z.string().nullable(),
  offerId: z.number().int().positive(),
  authLink: z.string().nullable(),
  cancelUrl: z.string().nullable(),
  successUrl: z.string().nullable(),
  ...cardFacts,
});

// PayIn/pay-callback.md, 200.
const vaultCallback = z.object({
  amount: z.number(),
  status: z.enum(["PENDING", "SUCCESS", "FAILURE"]),
  offerId: z.number().int().positive(),
  currency: z.string(),
  cryptoAmount: z.number(),
  cryptoCurrency: z.string(),
  blockedAmount: z.object({ value: z.number(), currency: z.string() }),
  ...cardFacts,
});

/** A customer at KYC_1 (ID document assessed by the sandbox), for the payment routes. */
async function kyc1Customer(): Promise<WalletCaller> {
  const customer = await kyc0Customer();
  await t.services.users.update({ clientId, actor: { kind: "user", id: customer.userId } }, customer.userId, {
    mode: "merge",
    info: { idDocument: { type: "PASSPORT", number: "X1234567", country: "DE" } },
  });
  await t.services.kyc.start({ clientId, userId: customer.userId });
  await expect
    .poll(async () => (await t.services.users.get(t.database.db, clientId, customer.userId)).tier, {
      timeout: 5000,
    })
    .toBeGreaterThanOrEqual(2);
  return customer;
}

describe("Pay-in answers: Vault's fields, numbers as numbers (exact)", () => {
  it("data → offer → PUT offer → pay → pay-callback, each against its document's schema", async () => {
    const customer = await kyc1Customer();
    const card = await customer.call("POST", "/v3/payin/card", {
      ...VAULT_CARD,
      cardNumber: 5555555555554444,
    });
    expect(card.statusCode, card.body).toBe(200);

    const data = await customer.call("GET", "/v3/payin/data");
    expect(data.statusCode, data.body).toBe(200);
    conforms(vaultData, data.json());

    const made = await customer.call("POST", "/v3/payin/offer", {
      amount: 31,
      cardId: card.json().cardId,
      operation: "PAYIN",
      toCurrency: "USDC",
      fromCurrency: "EUR",
    });
    expect(made.statusCode, made.body).toBe(200);
    conforms(vaultOffer, made.json());
    // The exact decimal as the number's digits: 31.00 EUR at scale 2.
    expect(made.body).toContain('"amount":31.00,');

    const changed = await customer.call("PUT", `/v3/payin/offer/${made.json().offerId}`, {
      amount: 117.99,
      toAmount: 120.24616516,
      operation: "PAYIN",
      toCurrency: "USDC",
      fromCurrency: "EUR",
    });
    expect(changed.statusCode, changed.body).toBe(200);
    conforms(vaultOffer, changed.json());
    expect(changed.body).toContain('"amount":117.99,');

    // execute-offer-payment.md's body (a real CVV in place of its "***").
    const paid = await customer.call("POST", `/v3/payin/pay/${made.json().offerId}`, {
      cardCVV: "123",
      fingerprint: {
        acceptContent: "text/html,application/xhtml+x0.8",
        browserLanguage: "en-us",
        browserColorDepth: 32,
        browserJavaEnabled: false,
        browserScreenWidth: 428,
        browserAcceptHeader: "text/html,applicat+xm=0.8",
        browserScreenHeight: 884,
        browserJavascriptEnabled: true,
      },
    });
    expect(paid.statusCode, paid.body).toBe(200);
    conforms(vaultPayment, paid.json());
    expect(paid.json()).toMatchObject({ transactionStatus: "Approved", transactionStatusCode: 0 });

    const callback = await customer.call("GET", `/v3/payin/pay-callback?offerId=${made.json().offerId}`);
    expect(callback.statusCode, callback.body).toBe(200);
    conforms(vaultCallback, callback.json());
  });

  it("a declined card: the acquirer's code as a number", async () => {
    const customer = await kyc1Customer();
    const card = await customer.call("POST", "/v3/payin/card", {
      ...VAULT_CARD,
      cardNumber: 4000000000000002,
    });
    expect(card.statusCode, card.body).toBe(200);
    const made = await customer.call("POST", "/v3/payin/offer", {
      amount: 31,
      cardId: card.json().cardId,
      operation: "PAYIN",
      toCurrency: "USDC",
      fromCurrency: "EUR",
    });
    const paid = await customer.call("POST", `/v3/payin/pay/${made.json().offerId}`, { cardCVV: "123" });
    expect(paid.statusCode, paid.body).toBe(200);
    conforms(vaultPayment, paid.json());
    expect(paid.json()).toMatchObject({ transactionStatus: "Do not honour", transactionStatusCode: 5 });
  });
});

describe("PayIn/get-fiat-rates.md: GET /v3/payin/fiat-rates", () => {
  it("an array of {rate, baseCurrency, symbolCurrency}, rate a number; 1 for the base itself", async () => {
    const customer = await kyc0Customer();
    const answer = await customer.call("GET", "/v3/payin/fiat-rates");
    expect(answer.statusCode, answer.body).toBe(200);
    conforms(
      z.array(z.object({ rate: z.number(), baseCurrency: z.string(), symbolCurrency: z.string() })).min(1),
      answer.json(),
    );
    // The profile's primary currency (EUR) is the base; 1.08 USD per EUR in the sandbox.
    expect(answer.json()).toContainEqual({ rate: 1, baseCurrency: "EUR", symbolCurrency: "EUR" });
    expect(answer.json()).toContainEqual({ rate: 1.08, baseCurrency: "EUR", symbolCurrency: "USD" });
  });
});

describe("integer ids, as Vault's: cards and offers named by numbers", () => {
  it("the card's and offer's numbers work in bodies, paths and the query; another client's are unknown", async () => {
    const customer = await kyc1Customer();
    const card = await customer.call("POST", "/v3/payin/card", {
      ...VAULT_CARD,
      cardNumber: 4242424242424242,
    });
    expect(card.statusCode, card.body).toBe(200);
    const cardId = card.json().cardId;
    expect(Number.isSafeInteger(cardId)).toBe(true);
    const listed = (await customer.call("GET", "/v3/payin/data")).json().cards;
    expect(listed.map((c: { cardId: number }) => c.cardId)).toEqual([cardId]);
    const address = { zip: "8700", city: "tielt", address: "kasteelstraat 79", countryCode: "BE" };
    const moved = await customer.call("POST", `/v3/payin/card/${cardId}/billing-address`, address);
    expect(moved.statusCode, moved.body).toBe(200);
    expect(moved.json().cardId).toBe(cardId);

    const made = await customer.call("POST", "/v3/payin/offer", {
      amount: 31,
      cardId,
      operation: "PAYIN",
      toCurrency: "USDC",
      fromCurrency: "EUR",
    });
    expect(made.statusCode, made.body).toBe(200);
    const offerId = made.json().offerId;
    expect(Number.isSafeInteger(offerId)).toBe(true);
    const again = await customer.call("PUT", `/v3/payin/offer/${offerId}`, {
      amount: 40,
      operation: "PAYIN",
      toCurrency: "USDC",
      fromCurrency: "EUR",
    });
    expect(again.json().offerId).toBe(offerId);
    const paid = await customer.call("POST", `/v3/payin/pay/${offerId}`, { cardCVV: "123" });
    expect(paid.json()).toMatchObject({ offerId, transactionStatusCode: 0 });
    const status = await customer.call("GET", `/v3/payin/pay-callback?offerId=${offerId}`);
    expect(status.json()).toMatchObject({ offerId, status: "SUCCESS" });

    // The same numbers in another client name nothing there.
    const other = await walletClient(t);
    const stranger = await registerCustomer(t, other.clientId);
    await stranger.call("PATCH", "/v2/customer/profile", VAULT_PROFILE);
    await expect
      .poll(async () => (await t.services.users.get(t.database.db, other.clientId, stranger.userId)).tier, {
        timeout: 5000,
      })
      .toBeGreaterThanOrEqual(1);
    const foreign = await stranger.call("POST", `/v3/payin/card/${cardId}/billing-address`, address);
    expect(foreign.statusCode, foreign.body).toBe(404);
    conforms(vaultError, foreign.json());
  });
});
