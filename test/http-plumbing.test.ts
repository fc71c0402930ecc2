import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createClient } from "../src/modules/clients/service.ts";
import * as ledger from "../src/modules/ledger/service.ts";
import { startTestApp, type TestApp } from "./harness.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp((app) => {
    app.post(
      "/test/echo",
      { schema: { body: z.object({ amount: z.string().max(20), kind: z.enum(["A", "B"]) }).strict() } },
      async (request) => request.body,
    );
    app.get("/test/crash", async () => {
      throw new Error("database password is hunter2");
    });
  });
});
afterAll(async () => {
  await t.close();
});

describe("the error envelope", () => {
  it("answers an unknown route with 404 in the envelope and a trace id", async () => {
    const response = await t.app.inject({ method: "GET", url: "/nope?x=1" });
    expect(response.statusCode).toBe(404);
    const body = response.json();
    expect(body).toMatchObject({ type: "NOT_FOUND", code: 4004, message: "no route GET /nope" });
    expect(response.headers["x-trace-id"]).toBe(body.traceId);
  });

  it("answers bad bodies with 400, never 500", async () => {
    const bad: [string, string, string | undefined][] = [
      ["broken JSON", '{"amount": ', "application/json"],
      ["empty JSON body", "", "application/json"],
      ["a missing field", JSON.stringify({ kind: "A" }), "application/json"],
      ["a wrong type", JSON.stringify({ amount: 5, kind: "A" }), "application/json"],
      ["an unknown enum value", JSON.stringify({ amount: "5", kind: "C" }), "application/json"],
      ["an oversize string", JSON.stringify({ amount: "9".repeat(21), kind: "A" }), "application/json"],
      ["an unknown field", JSON.stringify({ amount: "5", kind: "A", extra: true }), "application/json"],
      ["an oversize body", JSON.stringify({ amount: "x".repeat(70 * 1024), kind: "A" }), "application/json"],
      [
        "a prototype pollution attempt",
        '{"amount":"1","kind":"A","__proto__":{"admin":true}}',
        "application/json",
      ],
      ["an unsupported media type", "amount=5", "application/x-www-form-urlencoded"],
      ["an array instead of an object", "[]", "application/json"],
    ];
    for (const [what, payload, contentType] of bad) {
      const response = await t.app.inject({
        method: "POST",
        url: "/test/echo",
        payload,
        headers: contentType ? { "content-type": contentType } : {},
      });
      expect(response.statusCode, `${what}: ${response.body}`).toBe(400);
      expect(response.json(), what).toMatchObject({
        type: "INVALID_REQUEST",
        code: 1000,
        traceId: expect.any(String),
      });
    }
    const fieldError = await t.app.inject({
      method: "POST",
      url: "/test/echo",
      payload: { amount: 5, kind: "A" },
    });
    expect(fieldError.json().errors).toEqual([{ field: "amount", message: expect.any(String) }]);
  });

  it("answers an unexpected error with 500, a trace id and no detail, and logs it", async () => {
    const response = await t.app.inject({ method: "GET", url: "/test/crash" });
    expect(response.statusCode).toBe(500);
    const body = response.json();
    expect(body).toMatchObject({ type: "INTERNAL_ERROR", code: 5000 });
    expect(response.body).not.toContain("hunter2");
    expect(t.logs.some((line) => line.includes(body.traceId) && line.includes('"level":50'))).toBe(true);
  });
});

describe("operations endpoints", () => {
  it("reports liveness and readiness", async () => {
    expect((await t.app.inject({ method: "GET", url: "/health/live" })).json()).toEqual({ status: "ok" });
    const ready = await t.app.inject({ method: "GET", url: "/health/ready" });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: "ok", database: t.database.kind });
  });

  it("serves Prometheus metrics with request counts, latencies and ledger transfers", async () => {
    await createClient(t.database.db, { id: "metrics-co", name: "Metrics" });
    await ledger.createCurrency(t.database.db, { clientId: "metrics-co", code: "USD", scale: 2 });
    const issuing = await ledger.openAccount(t.database.db, {
      clientId: "metrics-co",
      currency: "USD",
      kind: "ISSUING",
    });
    const wallet = await ledger.openAccount(t.database.db, {
      clientId: "metrics-co",
      currency: "USD",
      kind: "USER_WALLET",
      ownerId: "u",
    });
    await t.ledger.submit({
      clientId: "metrics-co",
      legs: [
        {
          type: "SINGLE",
          id: "m-1",
          debitAccountId: issuing.id,
          creditAccountId: wallet.id,
          amount: 100n,
          currency: "USD",
        },
      ],
    });
    await t.app.inject({ method: "GET", url: "/health/live" });
    const response = await t.app.inject({ method: "GET", url: "/metrics" });
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^text\/plain/);
    expect(response.body).toMatch(
      /ferry_http_requests_total\{method="GET",route="\/health\/live",status="200"\} [1-9]/,
    );
    expect(response.body).toMatch(/ferry_http_request_duration_seconds_bucket\{.*route="\/health\/live"/);
    expect(response.body).toMatch(/ferry_ledger_transfers_total\{type="SINGLE"\} 1/);
    expect(response.body).toMatch(/ferry_ledger_operations_total\{outcome="accepted"\} 1/);
    expect(response.body).toMatch(/ferry_ledger_batch_size_count [1-9]/);
  });

  it("publishes the OpenAPI document generated from the route schemas, and the interactive reference", async () => {
    const doc = (await t.app.inject({ method: "GET", url: "/openapi.json" })).json();
    expect(doc.openapi).toBe("3.1.0");
    const account = doc.paths["/admin/ledger/accounts/{accountId}"].get;
    expect(account.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(["accountId", "page", "size"]),
    );
    expect(Object.keys(account.responses)).toEqual(expect.arrayContaining(["200", "400", "401", "404"]));
    expect(doc.paths["/admin/ledger/invariants"].get.security).toEqual([{ adminBasic: [] }]);
    const docs = await t.app.inject({ method: "GET", url: "/docs" });
    expect([200, 302]).toContain(docs.statusCode);
    const page = await t.app.inject({ method: "GET", url: "/docs/" });
    expect(page.body).toContain("swagger");
  });
});
