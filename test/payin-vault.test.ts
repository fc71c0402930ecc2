import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { startTestApp, type TestApp } from "./harness.ts";
import { caller, lastOtp, PASSWORD, type WalletCaller, walletClient } from "./wallet.ts";

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
