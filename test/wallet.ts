import type { Response as LightMyRequestResponse } from "light-my-request";
import { expect } from "vitest";
import * as ledger from "../src/modules/ledger/service.ts";
import type { TestApp } from "./harness.ts";
import { createTestClient } from "./platform.ts";

/** Wallet API test helpers: a client with its first administrator, customers registered by OTP. */

export const PASSWORD = "Str0ng#Pass";

let counter = 0;
export const uniqueLogin = (prefix = "user") =>
  `${prefix}-${++counter}-${Date.now().toString(36)}@example.com`;

export interface WalletCaller {
  clientId: string;
  token: string;
  userId: string;
  login: string;
  call(
    method: string,
    url: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<LightMyRequestResponse>;
}

export function caller(
  t: TestApp,
  clientId: string,
  token: string,
  userId: string,
  login: string,
): WalletCaller {
  return {
    clientId,
    token,
    userId,
    login,
    call(method, url, body, headers = {}) {
      return t.app.inject({
        method: method as "GET",
        url,
        headers: { authorization: `Bearer ${token}`, ...headers },
        ...(body === undefined ? {} : { payload: body as object }),
      });
    },
  };
}

/** Logs in with a password (X-Client-Id), expecting a token. */
export async function logIn(
  t: TestApp,
  clientId: string,
  login: string,
  password = PASSWORD,
): Promise<WalletCaller> {
  const response = await t.app.inject({
    method: "POST",
    url: "/api/v1/authorization",
    headers: { "x-client-id": clientId },
    payload: { login, password },
  });
  expect(response.statusCode, response.body).toBe(200);
  const body = response.json();
  expect(body.action).toBe("TOKEN_CREATED");
  return caller(t, clientId, body.authorizationToken.token, body.members[0].user.id, login);
}

/** A client (sandbox) with its first administrator, made by the platform admin, logged in. */
export async function walletClient(
  t: TestApp,
  options: { settings?: Record<string, unknown> } = {},
): Promise<{ clientId: string; admin: WalletCaller }> {
  const { clientId } = await createTestClient(t, { settings: options.settings });
  const login = uniqueLogin("admin");
  const made = await t.app.inject({
    method: "POST",
    url: `/admin/clients/${clientId}/staff`,
    headers: t.adminAuth,
    payload: { login, role: "administrator", password: PASSWORD },
  });
  expect(made.statusCode, made.body).toBe(201);
  return { clientId, admin: await logIn(t, clientId, login) };
}

/** A staff member of `role`, made by the administrator, logged in. */
export async function staff(t: TestApp, admin: WalletCaller, role: string): Promise<WalletCaller> {
  const login = uniqueLogin(role);
  const made = await admin.call("POST", "/api/v1/users", { login, role, password: PASSWORD });
  expect(made.statusCode, made.body).toBe(201);
  return logIn(t, admin.clientId, login);
}

/** The newest code the sandbox notifier sent to `login`. */
export async function lastOtp(t: TestApp, clientId: string, login: string): Promise<string> {
  const response = await t.app.inject({
    method: "GET",
    url: `/sandbox/outbox?to=${encodeURIComponent(login)}&clientId=${clientId}`,
    headers: t.adminAuth,
  });
  expect(response.statusCode, response.body).toBe(200);
  const otp = response.json().records.find((r: { otp?: string }) => r.otp)?.otp;
  expect(otp).toMatch(/^[0-9]{6}$/);
  return otp;
}

/** A customer registered the way an end user does: registration, the OTP from the outbox, confirm. */
export async function registerCustomer(
  t: TestApp,
  clientId: string,
  role: "individual" | "merchant" = "individual",
): Promise<WalletCaller> {
  const login = uniqueLogin(role);
  const started = await t.app.inject({
    method: "POST",
    url: "/api/v1/registration",
    headers: { "x-client-id": clientId },
    payload: { login, role },
  });
  expect(started.statusCode, started.body).toBe(200);
  const otp = await lastOtp(t, clientId, login);
  const confirmed = await t.app.inject({
    method: "POST",
    url: "/api/v1/registration/confirm",
    headers: { "x-client-id": clientId },
    payload: { login, otp, password: PASSWORD },
  });
  expect(confirmed.statusCode, confirmed.body).toBe(200);
  const body = confirmed.json();
  return caller(t, clientId, body.authorizationToken.token, body.members[0].user.id, login);
}

/** Client settings under which new users may move money at tier 0 (tests that are not about KYC). */
export const NO_KYC_LIMITS = {
  kyc: {
    scenarios: [
      {
        id: "wallet-tests",
        brackets: Object.fromEntries(
          ["DEPOSIT", "WITHDRAWAL", "TRANSFER", "TRADE", "PAYMENT"].map((type) => [
            type,
            [{ upToUsd: null, requiredTier: 0 }],
          ]),
        ),
      },
    ],
    defaultScenario: "wallet-tests",
  },
};

/** The customer's account in `currency`, opened now; returns its serial. */
export async function openCoin(customer: WalletCaller, currency = "USD", name = "Main"): Promise<string> {
  const response = await customer.call("POST", "/api/v1/coins", { name, currencyCode: currency });
  expect(response.statusCode, response.body).toBe(201);
  return response.json().coin.serial;
}

/** Staff record a bank payment for `serial` (credited at once). */
export async function topUp(staffCaller: WalletCaller, bankId: string, serial: string, amount: string) {
  const response = await staffCaller.call("POST", "/api/v1/bank-top-ups/with-bank", {
    coinSerial: serial,
    amount,
    bankId,
    iban: "DE89370400440532013000",
    fullName: "Ada Lovelace",
  });
  expect(response.statusCode, response.body).toBe(200);
  expect(response.json().status).toBe("processed");
  return response.json();
}

/** The administrator sets up USD (scale 2), an issuer and a bank. */
export async function setUpUsd(admin: WalletCaller): Promise<{ bankId: string }> {
  const currency = await admin.call("POST", "/api/v1/currencies", {
    code: "USD",
    digitalCode: "840",
    symbol: "$",
    name: "US dollar",
    fraction: 2,
  });
  expect(currency.statusCode, currency.body).toBe(201);
  const issuer = await admin.call("POST", "/api/v1/issuers", {
    currencyCode: "USD",
    name: "Main issuer",
    snPrefix: "44",
  });
  expect(issuer.statusCode, issuer.body).toBe(201);
  const bank = await admin.call("POST", "/api/v1/bank-catalog", {
    name: "Test Bank",
    bic: `TEST${"DE"}${String(++counter % 100).padStart(2, "0")}`,
    swift: `SWFT${"DE"}${String(counter % 100).padStart(2, "0")}XXX`,
  });
  expect(bank.statusCode, bank.body).toBe(201);
  return { bankId: bank.json().bankId };
}

export async function balances(customer: WalletCaller, serial: string) {
  const response = await customer.call("GET", "/api/v1/coins");
  expect(response.statusCode, response.body).toBe(200);
  const coin = response.json().coins.find((c: { serial: string }) => c.serial === serial);
  return { amount: coin.amount, available: coin.availableAmount, held: coin.heldAmount };
}

/** The ledger balances with itself and agrees with the providers (reconciliation) for the client. */
export async function invariantsHold(t: TestApp, clientId: string) {
  expect((await ledger.checkInvariants(t.database.db, clientId)).ok).toBe(true);
  const report = await t.services.reconcile(clientId);
  expect(report.ok, JSON.stringify(report)).toBe(true);
}
