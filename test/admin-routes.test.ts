import type { InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../src/modules/clients/service.ts";
import * as ledger from "../src/modules/ledger/service.ts";
import { basic, startTestApp, type TestApp } from "./harness.ts";

let t: TestApp;
const adminRoutes: { method: string; url: string }[] = [];
let walletId = "";

beforeAll(async () => {
  t = await startTestApp();
  // Every route the app serves under /admin, from Fastify's own route table.
  for (const line of t.app.printRoutes({ commonPrefix: false }).split("\n")) {
    const match = /(\/admin\/\S*) \(([A-Z, ]+)\)/.exec(line);
    for (const method of match?.[2]?.split(", ") ?? []) {
      if (match?.[1] && method !== "HEAD") adminRoutes.push({ method, url: match[1] });
    }
  }
  await createClient(t.database.db, { id: "acme", name: "Acme" });
  await ledger.createCurrency(t.database.db, { clientId: "acme", code: "EUR", scale: 2 });
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
});
afterAll(async () => {
  await t.close();
});

/** A valid request for each admin route, and requests that are bad input for it. */
const cases: Record<string, { valid: () => InjectOptions; invalid: () => InjectOptions[] }> = {
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
            const response = await t.app.inject({ ...request, headers });
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

      it("answers 200 to a valid request", async () => {
        const response = await t.app.inject({ ...c.valid(), headers: t.adminAuth });
        expect(response.statusCode, response.body).toBe(200);
      });

      it("answers bad input with 400 in the envelope, never 500", async () => {
        for (const request of c.invalid()) {
          const response = await t.app.inject({ ...request, headers: t.adminAuth });
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

  it("reports the invariants, per client or in all", async () => {
    for (const url of ["/admin/ledger/invariants", "/admin/ledger/invariants?clientId=acme"]) {
      const body = (await t.app.inject({ method: "GET", url, headers: t.adminAuth })).json();
      expect(body).toMatchObject({ ok: true, accounts: 2, transfers: 1, unbalancedCurrencies: [] });
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
