import type { InjectOptions } from "fastify";
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addSigningKey, createClient, updateClient } from "../src/modules/clients/service.ts";
import * as ledger from "../src/modules/ledger/service.ts";
import { basic, startTestApp, type TestApp } from "./harness.ts";
import { authorize, decide, type Operator, pagePath, setUpOneClick, startOperator } from "./oneclick.ts";
import { createUser } from "./platform.ts";

let t: TestApp;
const adminRoutes: { method: string; url: string }[] = [];
let walletId = "";
let revocableKid = "";
let freshKey: Record<string, unknown> = {};
const failedStepId = "01900000-0000-7000-8000-000000000001";
const failedRefundId = "01900000-0000-7000-8000-000000000002";

beforeAll(async () => {
  t = await startTestApp();
  adminRoutes.push(...t.app.routeTable.filter((r) => r.url.startsWith("/admin")));
  await createClient(t.database.db, { id: "acme", name: "Acme" });
  await ledger.createCurrency(t.database.db, { clientId: "acme", code: "EUR", scale: 2 });
  // Acme's own points: the rates provider does not price them.
  await ledger.createCurrency(t.database.db, { clientId: "acme", code: "PTS", scale: 0 });
  const issuing = await ledger.openAccount(t.database.db, {
    clientId: "acme",
    currency: "EUR",
    kind: "ISSUING",
  });
  const wallet = await ledger.openAccount(t.database.db, {
    clientId: "acme",
    currency: "EUR",
    kind: "USER_WALLET",
    ownerId: "u-1",
  });
  walletId = wallet.id;
  const keyA = await generateKeyPair("ES256", { extractable: true });
  const keyB = await generateKeyPair("ES256", { extractable: true });
  const jwkA = await exportJWK(keyA.publicKey);
  freshKey = { ...(await exportJWK(keyB.publicKey)) };
  revocableKid = await calculateJwkThumbprint(jwkA);
  await addSigningKey(t.database.db, "acme", jwkA);
  await createUser(t, "acme", "reviewed-user", "Review");
  await t.services.kyc.start({ clientId: "acme", userId: "reviewed-user", requestId: "review-1" });
  await t.services.kyc.complete("acme", "review-1", { status: "UNDER_REVIEW" });
  // A deposit held for review: every amount above 5 USD is reviewed for this client.
  await updateClient(t.database.db, "acme", { settings: { monitoring: { singleAmountReviewUsd: 5 } } });
  const held = await t.services.transactions.deposit({
    clientId: "acme",
    userId: "reviewed-user",
    requestId: "review-dep-1",
    amount: "10.00",
    currency: "EUR",
    sourceMethod: {
      paymentMethodType: "CREDIT_CARD",
      cardNumber: "4242424242424242",
      expirationMonth: 12,
      expirationYear: 2031,
    },
  });
  expect(held.status).toBe("MANUAL_REVIEW");
  const funded = await t.ledger.submit({
    clientId: "acme",
    legs: [
      {
        type: "SINGLE",
        id: "fund-1",
        debitAccountId: issuing.id,
        creditAccountId: wallet.id,
        amount: 12_345n,
        currency: "EUR",
      },
    ],
  });
  expect(funded.ok).toBe(true);
  // A refund step that never got an answer, for staff to retry.
  await t.database.db
    .insertInto("steps")
    .values({
      id: failedStepId,
      client_id: "acme",
      kind: "CARD_REFUND",
      process_type: "transaction",
      process_id: "review-dep-1",
      idempotency_key: "review-dep-1:refund",
      status: "FAILED",
      input: JSON.stringify({ requestId: "review-dep-1" }),
      attempts: 10,
      max_attempts: 10,
      last_error: "SandboxProviderError: the acquirer did not answer",
    })
    .execute();
  await t.database.db
    .insertInto("steps")
    .values({
      id: failedRefundId,
      client_id: "acme",
      kind: "CARD_REFUND",
      process_type: "transaction",
      process_id: "review-dep-1",
      idempotency_key: "review-dep-1:refund-again",
      status: "FAILED",
      input: JSON.stringify({ requestId: "review-dep-1" }),
      attempts: 10,
      max_attempts: 10,
    })
    .execute();
});
afterAll(async () => {
  await t.close();
});

/** A 1-Click client with two INCONSISTENT flows (the operator refused every transfer) and one still waiting. */
let operator: Operator;
const oc = { clientId: "", toRetry: "", toResolve: "", waiting: "", reviewClientId: "", toReview: "" };

async function oneClickFlow(clientId: string, approve: boolean): Promise<string> {
  const started = await authorize(t, clientId);
  expect(started.statusCode, started.body).toBe(200);
  const txId = String(started.json().txId);
  if (!approve) return txId;
  const decided = await decide(t, pagePath(started.json()), "approve");
  expect(decided.statusCode, decided.body).toBe(302);
  // The transfer's retries run out: the payment happened, the operator never took it.
  for (let i = 0; ; i++) {
    const row = await t.services.oneClick.advance(txId, 2000);
    if (row.status_code >= 400 && row.status_code < 500) return txId;
    if (i > 200) throw new Error(`1-Click transaction ${txId} stayed at ${row.status_code}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  operator = await startOperator((action) => (action === "transfer" ? { status: 500 } : undefined));
  oc.clientId = (await setUpOneClick(t, operator)).clientId;
  oc.toRetry = await oneClickFlow(oc.clientId, true);
  oc.toResolve = await oneClickFlow(oc.clientId, true);
  oc.waiting = await oneClickFlow(oc.clientId, false);
  // A client whose monitoring holds every deposit over 1 USD: a flow waiting for review (350).
  oc.reviewClientId = (
    await setUpOneClick(t, operator, { settings: { monitoring: { singleAmountReviewUsd: 1 } } })
  ).clientId;
  const held = await authorize(t, oc.reviewClientId);
  oc.toReview = String(held.json().txId);
  expect((await decide(t, pagePath(held.json()), "approve")).statusCode).toBe(302);
  for (let i = 0; (await t.services.oneClick.advance(oc.toReview, 2000)).status_code !== 350; i++)
    if (i > 200) throw new Error(`1-Click transaction ${oc.toReview} never waited for review`);
  // From now on the operator takes transfers: staff's retry goes through.
  operator.behave(undefined);
});
afterAll(async () => {
  await operator?.close();
});

/** A valid request for each admin route, and requests that are bad input for it. */
let staffCounter = 0;
const json = (method: "POST" | "PATCH", url: string, body: unknown): InjectOptions => ({
  method,
  url,
  headers: { "content-type": "application/json" },
  payload: typeof body === "string" ? body : JSON.stringify(body),
});

const RATES_URL = "/admin/clients/acme/currencies/PTS/rates";

const cases: Record<string, { valid: () => InjectOptions; invalid: () => InjectOptions[] }> = {
  "POST /admin/clients/:clientId/currencies/:code/rates": {
    valid: () => json("POST", RATES_URL, { rate: "0.01" }),
    invalid: () => [
      ...[
        "0",
        "-1",
        "0.000",
        "ten",
        "",
        "1e3",
        "1.0000000000001",
        "1234567890123456",
        0,
        -1,
        1e-7,
        true,
        null,
      ].map((rate) => json("POST", RATES_URL, { rate })),
      json("POST", RATES_URL, {}),
      json("POST", RATES_URL, { rate: "0.01", surprise: 1 }),
      json("POST", RATES_URL, { rate: "0.01", effectiveFrom: "tomorrow" }),
      json("POST", RATES_URL, {
        rate: "0.01",
        effectiveFrom: new Date(Date.now() - 3_600_000).toISOString(),
      }),
      json("POST", RATES_URL, {
        rate: "0.01",
        effectiveFrom: new Date(Date.now() + 400 * 86_400_000).toISOString(),
      }),
      json("POST", RATES_URL, '{"rate": '),
      json("POST", "/admin/clients/acme/currencies/pts/rates", { rate: "0.01" }),
      json("POST", "/admin/clients/x/currencies/PTS/rates", { rate: "0.01" }),
    ],
  },
  "GET /admin/clients/:clientId/currencies/:code/rates": {
    valid: () => ({ method: "GET", url: RATES_URL }),
    invalid: () => [
      { method: "GET", url: `${RATES_URL}?size=101` },
      { method: "GET", url: `${RATES_URL}?page=-1` },
      { method: "GET", url: `${RATES_URL}?surprise=1` },
      { method: "GET", url: "/admin/clients/acme/currencies/P/rates" },
      { method: "GET", url: "/admin/clients/has%20space/currencies/PTS/rates" },
    ],
  },
  "POST /admin/clients": {
    valid: () =>
      json("POST", "/admin/clients", { name: "Route Test", allowedOrigins: ["https://app.example.com"] }),
    invalid: () => [
      json("POST", "/admin/clients", {}),
      json("POST", "/admin/clients", { name: 5 }),
      json("POST", "/admin/clients", { name: "x".repeat(201) }),
      json("POST", "/admin/clients", { name: "x", webhookUrl: "not a url" }),
      json("POST", "/admin/clients", { name: "x", webhookUrl: "ftp://files.example.com" }),
      json("POST", "/admin/clients", { name: "x", signingKeys: [{ kty: "RSA" }] }),
      json("POST", "/admin/clients", { name: "x", signingKeys: [{ ...freshKey, d: "private" }] }),
      json("POST", "/admin/clients", { name: "x", allowedOrigins: ["nope"] }),
      json("POST", "/admin/clients", { name: "x", clientId: "no" }),
      json("POST", "/admin/clients", { name: "x", settings: { rateLimitPerMinute: 0 } }),
      json("POST", "/admin/clients", { name: "x", unknown: 1 }),
      json("POST", "/admin/clients", '{"name": '),
    ],
  },
  "GET /admin/clients/:clientId": {
    valid: () => ({ method: "GET", url: "/admin/clients/acme" }),
    invalid: () => [
      { method: "GET", url: "/admin/clients/x" },
      { method: "GET", url: "/admin/clients/bad%20id" },
    ],
  },
  "PATCH /admin/clients/:clientId": {
    valid: () => json("PATCH", "/admin/clients/acme", { allowedOrigins: ["https://shop.example.com"] }),
    invalid: () => [
      json("PATCH", "/admin/clients/acme", { status: "GONE" }),
      json("PATCH", "/admin/clients/acme", { webhookUrl: "ftp://x" }),
      json("PATCH", "/admin/clients/acme", {
        settings: { kyc: { scenarios: [{ id: "x", brackets: { DEPOSIT: [] } }] } },
      }),
      json("PATCH", "/admin/clients/acme", { webhookEncryptionKey: freshKey }),
      json("PATCH", "/admin/clients/x", {}),
    ],
  },
  "POST /admin/clients/:clientId/signing-keys": {
    valid: () => json("POST", "/admin/clients/acme/signing-keys", { jwk: freshKey }),
    invalid: () => [
      json("POST", "/admin/clients/acme/signing-keys", {}),
      json("POST", "/admin/clients/acme/signing-keys", { jwk: {} }),
      json("POST", "/admin/clients/acme/signing-keys", { jwk: { ...freshKey, crv: "P-384" } }),
      json("POST", "/admin/clients/acme/signing-keys", { jwk: freshKey, expiresAt: "tomorrow" }),
      json("POST", "/admin/clients/acme/signing-keys", { jwk: freshKey, expiresAt: "2001-01-01T00:00:00Z" }),
    ],
  },
  "DELETE /admin/clients/:clientId/signing-keys/:kid": {
    valid: () => ({ method: "DELETE", url: `/admin/clients/acme/signing-keys/${revocableKid}` }),
    invalid: () => [{ method: "DELETE", url: "/admin/clients/acme/signing-keys/short" }],
  },
  "POST /admin/clients/:clientId/assessments/:requestId/decision": {
    valid: () => json("POST", "/admin/clients/acme/assessments/review-1/decision", { decision: "ACCEPT" }),
    invalid: () => [
      json("POST", "/admin/clients/acme/assessments/review-1/decision", { decision: "MAYBE" }),
      json("POST", "/admin/clients/acme/assessments/review-1/decision", { decision: "ACCEPT", tier: 9 }),
      json("POST", "/admin/clients/acme/assessments/r/decision", { decision: "ACCEPT" }),
    ],
  },
  "POST /admin/clients/:clientId/transactions/:requestId/review": {
    valid: () =>
      json("POST", "/admin/clients/acme/transactions/review-dep-1/review", { decision: "APPROVE" }),
    invalid: () => [
      json("POST", "/admin/clients/acme/transactions/review-dep-1/review", { decision: "MAYBE" }),
      json("POST", "/admin/clients/acme/transactions/r/review", { decision: "APPROVE" }),
      json("POST", "/admin/clients/acme/transactions/review-dep-1/review", {}),
    ],
  },
  "GET /admin/reconciliation": {
    valid: () => ({ method: "GET", url: "/admin/reconciliation?clientId=acme" }),
    invalid: () => [
      { method: "GET", url: "/admin/reconciliation?clientId=x" },
      { method: "GET", url: "/admin/reconciliation?unknown=1" },
    ],
  },
  "GET /admin/steps": {
    valid: () => ({ method: "GET", url: "/admin/steps?clientId=acme&status=FAILED" }),
    invalid: () => [
      { method: "GET", url: "/admin/steps?status=LOST" },
      { method: "GET", url: "/admin/steps?size=101" },
      { method: "GET", url: "/admin/steps?clientId=has%20space" },
    ],
  },
  "POST /admin/steps/:stepId/retry": {
    valid: () => ({ method: "POST", url: `/admin/steps/${failedStepId}/retry` }),
    invalid: () => [
      { method: "POST", url: "/admin/steps/not-a-uuid/retry" },
      json("POST", `/admin/steps/${failedStepId}/retry`, "{broken"),
    ],
  },
  "POST /admin/steps/:stepId/resolve": {
    valid: () =>
      json("POST", `/admin/steps/${failedRefundId}/resolve`, {
        outcome: "EXECUTED",
        note: "refunded by the acquirer's support desk",
      }),
    invalid: () => [
      json("POST", `/admin/steps/${failedRefundId}/resolve`, { outcome: "EXECUTED" }),
      json("POST", `/admin/steps/${failedRefundId}/resolve`, { outcome: "MAYBE", note: "x" }),
      json("POST", `/admin/steps/${failedRefundId}/resolve`, { outcome: "EXECUTED", note: "" }),
      json("POST", "/admin/steps/not-a-uuid/resolve", { outcome: "EXECUTED", note: "x" }),
    ],
  },
  "GET /admin/clients/:clientId/transactions/:requestId/trail": {
    valid: () => ({ method: "GET", url: "/admin/clients/acme/transactions/review-dep-1/trail" }),
    invalid: () => [
      { method: "GET", url: "/admin/clients/acme/transactions/r/trail" },
      { method: "GET", url: "/admin/clients/x/transactions/review-dep-1/trail" },
    ],
  },
  "POST /admin/clients/:clientId/staff": {
    valid: () =>
      json("POST", "/admin/clients/acme/staff", {
        login: `staff-${++staffCounter}@acme.example`,
        role: "administrator",
      }),
    invalid: () => [
      json("POST", "/admin/clients/acme/staff", { login: "x", role: "administrator" }),
      json("POST", "/admin/clients/acme/staff", { login: "ok@acme.example", role: "individual" }),
      json("POST", "/admin/clients/acme/staff", {
        login: "ok@acme.example",
        role: "administrator",
        password: "weak",
      }),
      json("POST", "/admin/clients/acme/staff", {
        login: "ok@acme.example",
        role: "administrator",
        extra: 1,
      }),
      json("POST", "/admin/clients/acme/staff", "{broken"),
      json("POST", "/admin/clients/has%20space/staff", { login: "ok@acme.example", role: "administrator" }),
    ],
  },
  "POST /admin/clients/:clientId/oauth-secret": {
    valid: () => ({ method: "POST", url: "/admin/clients/acme/oauth-secret" }),
    invalid: () => [
      { method: "POST", url: "/admin/clients/has%20space/oauth-secret" },
      { method: "POST", url: "/admin/clients/ab/oauth-secret" },
    ],
  },
  "POST /admin/keys/rotate": {
    valid: () => ({ method: "POST", url: "/admin/keys/rotate" }),
    invalid: () => [json("POST", "/admin/keys/rotate", "{broken")],
  },
  "GET /admin/ledger/invariants": {
    valid: () => ({ method: "GET", url: "/admin/ledger/invariants" }),
    invalid: () => [
      { method: "GET", url: "/admin/ledger/invariants?clientId=x" },
      { method: "GET", url: "/admin/ledger/invariants?clientId=has%20space" },
      { method: "GET", url: "/admin/ledger/invariants?unknown=1" },
    ],
  },
  "GET /admin/ledger/accounts/:accountId": {
    valid: () => ({ method: "GET", url: `/admin/ledger/accounts/${walletId}` }),
    invalid: () => [
      { method: "GET", url: "/admin/ledger/accounts/not-a-uuid" },
      { method: "GET", url: `/admin/ledger/accounts/${walletId}?page=-1` },
      { method: "GET", url: `/admin/ledger/accounts/${walletId}?size=101` },
      { method: "GET", url: `/admin/ledger/accounts/${walletId}?size=abc` },
      { method: "GET", url: `/admin/ledger/accounts/${walletId}?page=1.5` },
      { method: "GET", url: `/admin/ledger/accounts/${"9".repeat(5000)}` },
    ],
  },
  "GET /admin/clients/:clientId/oneclick/transactions": {
    valid: () => ({
      method: "GET",
      url: `/admin/clients/${oc.clientId}/oneclick/transactions?state=INCONSISTENT`,
    }),
    invalid: () => [
      { method: "GET", url: "/admin/clients/x/oneclick/transactions" },
      { method: "GET", url: "/admin/clients/has%20space/oneclick/transactions" },
      { method: "GET", url: `/admin/clients/${oc.clientId}/oneclick/transactions?state=LOST` },
      { method: "GET", url: `/admin/clients/${oc.clientId}/oneclick/transactions?state=inconsistent` },
      { method: "GET", url: `/admin/clients/${oc.clientId}/oneclick/transactions?size=101` },
      { method: "GET", url: `/admin/clients/${oc.clientId}/oneclick/transactions?page=-1` },
      { method: "GET", url: `/admin/clients/${oc.clientId}/oneclick/transactions?size=abc` },
      {
        method: "GET",
        url: `/admin/clients/${oc.clientId}/oneclick/transactions?state=SUCCESSFUL&state=FAILED`,
      },
    ],
  },
  "GET /admin/clients/:clientId/oneclick/transactions/:txId": {
    valid: () => ({
      method: "GET",
      url: `/admin/clients/${oc.clientId}/oneclick/transactions/${oc.toResolve}`,
    }),
    invalid: () => [
      { method: "GET", url: `/admin/clients/${oc.clientId}/oneclick/transactions/abc` },
      { method: "GET", url: `/admin/clients/${oc.clientId}/oneclick/transactions/-1` },
      { method: "GET", url: `/admin/clients/${oc.clientId}/oneclick/transactions/1.5` },
      { method: "GET", url: `/admin/clients/${oc.clientId}/oneclick/transactions/${"9".repeat(19)}` },
      { method: "GET", url: `/admin/clients/x/oneclick/transactions/${oc.toResolve}` },
    ],
  },
  "POST /admin/clients/:clientId/oneclick/transactions/:txId/retry": {
    valid: () => ({
      method: "POST",
      url: `/admin/clients/${oc.clientId}/oneclick/transactions/${oc.toRetry}/retry`,
    }),
    invalid: () => [
      { method: "POST", url: `/admin/clients/${oc.clientId}/oneclick/transactions/abc/retry` },
      { method: "POST", url: `/admin/clients/${oc.clientId}/oneclick/transactions/${"9".repeat(19)}/retry` },
      { method: "POST", url: `/admin/clients/has%20space/oneclick/transactions/${oc.toRetry}/retry` },
      json("POST", `/admin/clients/${oc.clientId}/oneclick/transactions/${oc.toRetry}/retry`, "{broken"),
    ],
  },
  "POST /admin/clients/:clientId/oneclick/transactions/:txId/review": {
    valid: () =>
      json("POST", `/admin/clients/${oc.reviewClientId}/oneclick/transactions/${oc.toReview}/review`, {
        decision: "DENY",
        note: "the source of funds was not shown",
      }),
    invalid: () => {
      const url = `/admin/clients/${oc.reviewClientId}/oneclick/transactions/${oc.toReview}/review`;
      return [
        { method: "POST", url },
        json("POST", url, {}),
        json("POST", url, { decision: "APPROVE" }),
        json("POST", url, { decision: "MAYBE", note: "looked at it" }),
        json("POST", url, { decision: "approve", note: "looked at it" }),
        json("POST", url, { decision: "APPROVE", note: "ab" }),
        json("POST", url, { decision: "APPROVE", note: "x".repeat(1001) }),
        json("POST", url, { decision: "APPROVE", note: "looked at it", extra: true }),
        json("POST", url, "{broken"),
        json("POST", `/admin/clients/${oc.reviewClientId}/oneclick/transactions/abc/review`, {
          decision: "APPROVE",
          note: "looked at it",
        }),
        json("POST", `/admin/clients/x/oneclick/transactions/${oc.toReview}/review`, {
          decision: "APPROVE",
          note: "looked at it",
        }),
      ];
    },
  },
  "POST /admin/clients/:clientId/oneclick/transactions/:txId/resolve": {
    valid: () =>
      json("POST", `/admin/clients/${oc.clientId}/oneclick/transactions/${oc.toResolve}/resolve`, {
        note: "the operator credited the user by hand",
      }),
    invalid: () => {
      const url = `/admin/clients/${oc.clientId}/oneclick/transactions/${oc.toResolve}/resolve`;
      return [
        { method: "POST", url },
        json("POST", url, {}),
        json("POST", url, { note: "" }),
        json("POST", url, { note: "ab" }),
        json("POST", url, { note: "     " }),
        json("POST", url, { note: 5 }),
        json("POST", url, { note: "x".repeat(1001) }),
        json("POST", url, { note: "credited by hand", outcome: "EXECUTED" }),
        json("POST", url, { note: "credited\u0000by hand" }),
        json("POST", url, "{broken"),
        json("POST", `/admin/clients/${oc.clientId}/oneclick/transactions/abc/resolve`, { note: "credited" }),
        json("POST", `/admin/clients/x/oneclick/transactions/${oc.toResolve}/resolve`, { note: "credited" }),
      ];
    },
  },
};

describe("admin routes", () => {
  it("every admin route has test cases here", () => {
    expect(adminRoutes.length).toBeGreaterThan(0);
    expect(adminRoutes.map((r) => `${r.method} ${r.url}`).sort()).toEqual(Object.keys(cases).sort());
  });

  for (const [name, c] of Object.entries(cases)) {
    describe(name, () => {
      it("answers 401 without credentials, with wrong ones, or malformed ones", async () => {
        const attempts = [
          {},
          { authorization: basic("admin", "wrong-password-123") },
          { authorization: basic("root", "correct-horse-battery-staple") },
          { authorization: "Basic not-base64!!" },
          { authorization: "Bearer abc" },
          { authorization: basic("admin", "") },
        ];
        for (const headers of attempts) {
          // (An oversize path is refused by the router before any route, so before authentication.)
          for (const request of [c.valid(), ...c.invalid()].filter((r) => String(r.url).length < 1000)) {
            const response = await t.app.inject({ ...request, headers: { ...request.headers, ...headers } });
            expect(response.statusCode, `${request.url} ${JSON.stringify(headers)}`).toBe(401);
            expect(response.headers["www-authenticate"]).toMatch(/^Basic/);
            expect(response.json()).toMatchObject({
              type: "UNAUTHORIZED",
              code: 2001,
              traceId: expect.any(String),
            });
          }
        }
      });

      it("answers a valid request with success", async () => {
        const request = c.valid();
        const response = await t.app.inject({ ...request, headers: { ...request.headers, ...t.adminAuth } });
        expect(response.statusCode, response.body).toBeGreaterThanOrEqual(200);
        expect(response.statusCode, response.body).toBeLessThan(300);
      });

      it("answers bad input with 400 in the envelope, never 500", async () => {
        for (const request of c.invalid()) {
          const response = await t.app.inject({
            ...request,
            headers: { ...request.headers, ...t.adminAuth },
          });
          expect(response.statusCode, `${request.url}: ${response.body}`).toBe(400);
          const body = response.json();
          expect(body).toMatchObject({
            type: "INVALID_REQUEST",
            code: 1000,
            message: expect.any(String),
            traceId: expect.any(String),
          });
          expect(body.errors.length).toBeGreaterThan(0);
        }
      });
    });
  }
});

describe("1-Click admin routes", () => {
  const tx = (clientId: string, txId: string, action = "") =>
    `/admin/clients/${clientId}/oneclick/transactions/${txId}${action}`;
  const admin = (method: "GET" | "POST", url: string, body?: unknown) =>
    t.app.inject({
      method,
      url,
      headers: t.adminAuth,
      ...(body === undefined ? {} : { payload: body as object }),
    });
  const rowOf = (txId: string) => t.services.oneClick.get(txId);

  it("the retried and the resolved transactions are SUCCESSFUL, with the admin's note", async () => {
    expect((await rowOf(oc.toRetry)).status_code).toBe(0);
    const resolved = (await admin("GET", tx(oc.clientId, oc.toResolve))).json();
    expect(resolved).toMatchObject({
      txState: "SUCCESSFUL",
      resolution: { note: "the operator credited the user by hand" },
    });
    expect(resolved.steps.map((s: { kind: string; status: string }) => `${s.kind} ${s.status}`)).toContain(
      "OC_TRANSFER RESOLVED",
    );
  });

  it("an unknown client, an unknown transaction or another client's → 404", async () => {
    for (const [method, url, body] of [
      ["GET", "/admin/clients/no-such-client/oneclick/transactions"],
      ["GET", tx("no-such-client", oc.toResolve)],
      ["POST", tx("no-such-client", oc.toResolve, "/retry")],
      ["POST", tx("no-such-client", oc.toResolve, "/resolve"), { note: "credited" }],
      ["GET", tx(oc.clientId, "999999999")],
      ["POST", tx(oc.clientId, "999999999", "/retry")],
      ["POST", tx(oc.clientId, "999999999", "/resolve"), { note: "credited" }],
      ["GET", tx("acme", oc.toResolve)],
      ["POST", tx("acme", oc.waiting, "/retry")],
      ["POST", tx("acme", oc.waiting, "/resolve"), { note: "credited" }],
    ] as const) {
      const response = await admin(method, url, body);
      expect(response.statusCode, `${method} ${url}: ${response.body}`).toBe(404);
      expect(response.json()).toMatchObject({ type: "NOT_FOUND", code: 4004, traceId: expect.any(String) });
    }
    const acme = (await admin("GET", "/admin/clients/acme/oneclick/transactions")).json();
    expect(acme).toMatchObject({ records: [], totalRecords: 0 });
  });

  it("retry or resolve of a transaction that is not INCONSISTENT → 409, nothing changed", async () => {
    for (const txId of [oc.waiting, oc.toRetry, oc.toResolve]) {
      const before = await rowOf(txId);
      for (const [url, body] of [
        [tx(oc.clientId, txId, "/retry"), undefined],
        [tx(oc.clientId, txId, "/resolve"), { note: "credited by hand" }],
      ] as const) {
        const response = await admin("POST", url, body);
        expect(response.statusCode, `${url}: ${response.body}`).toBe(409);
        expect(response.json()).toMatchObject({ type: "CONFLICT", traceId: expect.any(String) });
      }
      expect(await rowOf(txId)).toEqual(before);
    }
  });
});

describe("ledger reads", () => {
  it("shows an account with its balances as decimal strings and its entries", async () => {
    const response = await t.app.inject({
      method: "GET",
      url: `/admin/ledger/accounts/${walletId}`,
      headers: t.adminAuth,
    });
    const body = response.json();
    expect(body.account).toMatchObject({
      id: walletId,
      clientId: "acme",
      currency: "EUR",
      kind: "USER_WALLET",
      creditsPosted: "123.45",
      balance: "123.45",
      availableBalance: "123.45",
    });
    expect(body.entries).toMatchObject({ pageNumber: 0, pageSize: 20, totalRecords: 1, totalPages: 1 });
    expect(body.entries.records[0]).toMatchObject({
      transferId: "fund-1",
      direction: "CREDIT",
      amount: "123.45",
      status: "POSTED",
    });
  });

  it("answers 404 for an unknown account", async () => {
    const response = await t.app.inject({
      method: "GET",
      url: "/admin/ledger/accounts/01890000-0000-7000-8000-000000000000",
      headers: t.adminAuth,
    });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toMatchObject({ type: "NOT_FOUND", code: 4004 });
  });

  it("lists a FAILED step and retries it from its first attempt", async () => {
    const listed = await t.app.inject({
      method: "GET",
      url: "/admin/steps?clientId=acme",
      headers: t.adminAuth,
    });
    expect(listed.json().records.map((r: { kind: string }) => r.kind)).toContain("CARD_REFUND");
    const again = await t.app.inject({
      method: "POST",
      url: `/admin/steps/${failedStepId}/retry`,
      headers: t.adminAuth,
    });
    // Retried once already by the route cases above: no longer FAILED, so not retried twice.
    expect(again.statusCode).toBe(404);
    const trail = await t.app.inject({
      method: "GET",
      url: "/admin/clients/acme/transactions/review-dep-1/trail",
      headers: t.adminAuth,
    });
    expect(trail.json().steps).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: failedStepId, status: "SUCCEEDED" })]),
    );
    expect(trail.json().audit.map((a: { action: string }) => a.action)).toEqual(
      expect.arrayContaining(["transaction.held_for_review", "transaction.card_refunded"]),
    );
  });

  it("audits every staff action above with the admin as actor, in the trail of what it changed", async () => {
    const rows = await t.database.db
      .selectFrom("audit_log")
      .select(["action", "actor_kind", "actor_id", "client_id"])
      .where("actor_kind", "=", "admin")
      .execute();
    const actions = new Set(rows.map((r) => r.action));
    for (const action of [
      "client.created",
      "client.updated",
      "client.signing_key_added",
      "client.signing_key_revoked",
      "assessment.decided",
      "transaction.approve",
      "ferry.signing_key_rotated",
      "step.retried",
      "step.resolved",
    ])
      expect(actions, action).toContain(action);
    expect(rows.every((r) => r.actor_id === "admin")).toBe(true);
    // No secret or key material in the trail.
    const all = await t.database.db.selectFrom("audit_log").select(["before", "after"]).execute();
    expect(JSON.stringify(all)).not.toMatch(/"(d|x|y|n)":"[A-Za-z0-9_-]{20,}/);
  });

  it("reports the invariants, per client or in all", async () => {
    for (const url of ["/admin/ledger/invariants", "/admin/ledger/invariants?clientId=acme"]) {
      const body = (await t.app.inject({ method: "GET", url, headers: t.adminAuth })).json();
      expect(body).toMatchObject({ ok: true, unbalancedCurrencies: [], accountsNotMatchingEntries: [] });
      expect(body.transfers).toBeGreaterThanOrEqual(1);
    }
  });

  it("reports a broken ledger as broken", async () => {
    // Tamper with a balance behind the ledger's back: the check must notice.
    await t.database.db
      .updateTable("ledger_accounts")
      .set({ credits_posted: "99999" })
      .where("id", "=", walletId)
      .execute();
    try {
      const body = (
        await t.app.inject({ method: "GET", url: "/admin/ledger/invariants", headers: t.adminAuth })
      ).json();
      expect(body.ok).toBe(false);
      expect(body.unbalancedCurrencies).toEqual([
        { clientId: "acme", currency: "EUR", postedSum: expect.any(String), pendingSum: "0" },
      ]);
      expect(body.accountsNotMatchingEntries[0]).toMatchObject({
        accountId: walletId,
        stored: { creditsPosted: "99999" },
        fromEntries: { creditsPosted: "12345" },
      });
    } finally {
      await t.database.db
        .updateTable("ledger_accounts")
        .set({ credits_posted: "12345" })
        .where("id", "=", walletId)
        .execute();
    }
  });
});
