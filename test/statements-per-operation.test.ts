import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { databaseQueries } from "../src/db/database.ts";
import { distinctCard, fundedClient, withdrawal } from "./funding.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import type { TestClient } from "./platform.ts";

/**
 * The SQL statements one money movement sends to the database on the request's path (issue 8's
 * budget). Counted with the Kysely log hook that also feeds `ferry_db_queries`; FERRY_TRACE_SQL=1
 * prints them.
 */
let t: TestApp;
let client: TestClient;

async function traced(run: () => Promise<{ statusCode: number; body: string }>) {
  const trace: string[] = [];
  databaseQueries.trace = trace;
  try {
    const response = await run();
    expect(response.statusCode, response.body).toBeLessThan(300);
  } finally {
    databaseQueries.trace = undefined;
  }
  if (process.env.FERRY_TRACE_SQL) console.log(trace.map((s, i) => `${i + 1}. ${s}`).join("\n"));
  return trace;
}

beforeAll(async () => {
  t = await startTestApp();
  client = await fundedClient(t, {
    users: [
      ["alice", "500.00"],
      ["bob", "10.00"],
    ],
    webhookUrl: "https://hooks.example.com/ferry",
  });
  // Warm: the first request of a client fills the process caches.
  await client.request(
    "POST",
    "/v1/transactions/transfers",
    { userId: "alice", destinationUserId: "bob", amount: "1.00", currency: "EUR" },
    { "x-request-id": "warm" },
  );
});
afterAll(async () => {
  await t?.close();
});

describe("statements per operation", () => {
  it("a transfer", async () => {
    const trace = await traced(() =>
      client.request(
        "POST",
        "/v1/transactions/transfers",
        { userId: "alice", destinationUserId: "bob", amount: "2.00", currency: "EUR" },
        { "x-request-id": "t-1" },
      ),
    );
    // Alone: 2 on the request's path (the request id's claim — signed, so no replay check of the
    // signature; users, usage and the request id's state) + 8
    // for its group (a group of one) + storing the answer.
    // Under load the group's 8 are shared (bench:http prints the figure per operation).
    expect(trace.length).toBeLessThanOrEqual(11);
    expect(trace.filter((q) => /from "clients"|client_signing_keys|ledger_currencies/.test(q))).toEqual([]);
  });
  it("a card deposit", async () => {
    const trace = await traced(() =>
      client.request(
        "POST",
        "/v1/transactions/deposits",
        {
          userId: "bob",
          amount: "3.00",
          currency: "EUR",
          sourceMethod: {
            paymentMethodType: "CREDIT_CARD",
            cardNumber: distinctCard(),
            expirationMonth: 12,
            expirationYear: 2031,
          },
        },
        { "x-request-id": "d-1" },
      ),
    );
    expect(trace.length).toBeLessThanOrEqual(25);
  });
  it("a withdrawal", async () => {
    const trace = await traced(() => withdrawal(client, "alice", "4.00", "w-1"));
    expect(trace.length).toBeLessThanOrEqual(26);
  });
});
