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
    const inexact = await customer.call("POST", "/v3/payin/card", {
      ...VAULT_CARD,
      cardNumber: 4000000000000000002,
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
