import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { FerryWebhookEvent } from "../src/sdk/webhook-receiver.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient, createUser, startWebhookReceiver, type TestClient } from "./platform.ts";

/**
 * Assessments end to end: the API, the sandbox KYC provider, the workers, and a real webhook
 * receiver on loopback that decrypts and verifies every event with the exported function.
 */
let t: TestApp;
let client: TestClient;
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;

beforeAll(async () => {
  t = await startTestApp({ workers: true });
  receiver = await startWebhookReceiver(t.url ?? "");
  client = await createTestClient(t, {
    webhookUrl: receiver.url(),
    webhookEncryptionKey: receiver.encryptionJwk,
  });
});
afterAll(async () => {
  await receiver.stop();
  await t.close();
});

const eventsFor = (requestId: string) => receiver.events.filter((e) => e.data.requestId === requestId);
async function waitForEvent(match: (e: FerryWebhookEvent) => boolean, timeout = 8000) {
  return vi.waitFor(
    () => {
      const found = receiver.events.find(match);
      if (!found) throw new Error("not yet");
      return found;
    },
    { timeout, interval: 50 },
  );
}

describe("assessments", () => {
  it("202 at once, then PENDING and ACCEPTED on the webhook; the user's tier rises", async () => {
    await createUser(t, client, "kyc-ok");
    const response = await client.request("POST", "/v1/users/kyc-ok/assessments", undefined, {
      "x-request-id": "assess-ok-1",
    });
    expect(response.statusCode, response.body).toBe(202);
    expect(response.json()).toEqual({ requestId: "assess-ok-1", status: "PENDING" });
    const final = await waitForEvent(
      (e) => e.data.requestId === "assess-ok-1" && e.data.status === "ACCEPTED",
    );
    // Deliveries run in parallel and may arrive in any order; the per-user sequence orders them.
    const events = [...eventsFor("assess-ok-1")].sort((x, y) => (x.sequence ?? 0) - (y.sequence ?? 0));
    expect(events.map((e) => e.data.status)).toEqual(["PENDING", "ACCEPTED"]);
    expect(final).toMatchObject({
      type: "USER_ASSESSMENT",
      clientId: client.clientId,
      data: { userId: "kyc-ok", tier: 1 },
    });
    expect((await client.request("GET", "/v1/users/kyc-ok")).json().tier).toBe(1);
    expect((await client.request("GET", "/v1/users/kyc-ok/assessments")).json()).toMatchObject({
      requestId: "assess-ok-1",
      status: "ACCEPTED",
      tier: 1,
      refusalReason: null,
    });
    expect(receiver.failures).toEqual([]);
  });

  it("is idempotent on X-Request-Id: a replay answers the same, a different body is a 409", async () => {
    await createUser(t, client, "kyc-idem");
    const first = await client.request(
      "POST",
      "/v1/users/kyc-idem/assessments",
      { sourceOfFunds: "salary" },
      { "x-request-id": "assess-idem" },
    );
    const again = await client.request(
      "POST",
      "/v1/users/kyc-idem/assessments",
      { sourceOfFunds: "salary" },
      { "x-request-id": "assess-idem" },
    );
    expect(again.statusCode).toBe(202);
    expect(again.body).toBe(first.body);
    expect(again.headers["idempotent-replayed"]).toBe("true");
    const other = await client.request(
      "POST",
      "/v1/users/kyc-idem/assessments",
      { sourceOfFunds: "gift" },
      { "x-request-id": "assess-idem" },
    );
    expect(other.statusCode).toBe(409);
    const rows = await t.database.db
      .selectFrom("user_assessments")
      .selectAll()
      .where("request_id", "=", "assess-idem")
      .execute();
    expect(rows).toHaveLength(1);
  });

  it.each([
    ["Refuse", "REFUSED", "DOCUMENT_INVALID"],
    ["Moreinfo", "REQUESTED_MORE_INFORMATION", undefined],
    ["Error", "ERROR", undefined],
  ])("last name %s → %s", async (lastName, status, refusalReason) => {
    const userId = `kyc-${lastName.toLowerCase()}`;
    await createUser(t, client, userId, lastName);
    await client.request("POST", `/v1/users/${userId}/assessments`, undefined, {
      "x-request-id": `assess-${userId}`,
    });
    const final = await waitForEvent(
      (e) => e.data.requestId === `assess-${userId}` && e.data.status !== "PENDING",
    );
    expect(final.data).toMatchObject({ status, tier: 0 });
    expect(final.data.refusalReason).toBe(refusalReason);
    expect((await client.request("GET", `/v1/users/${userId}`)).json().tier).toBe(0);
  });

  it("last name Review waits UNDER_REVIEW until staff decide", async () => {
    await createUser(t, client, "kyc-review", "Review", {
      idDocument: { type: "PASSPORT", number: "X1", country: "DE" },
    });
    await client.request("POST", "/v1/users/kyc-review/assessments", undefined, {
      "x-request-id": "assess-review",
    });
    await waitForEvent((e) => e.data.requestId === "assess-review" && e.data.status === "UNDER_REVIEW");
    const decision = await t.app.inject({
      method: "POST",
      url: `/admin/clients/${client.clientId}/assessments/assess-review/decision`,
      headers: t.adminAuth,
      payload: { decision: "ACCEPT" },
    });
    expect(decision.statusCode, decision.body).toBe(200);
    expect(decision.json()).toMatchObject({ status: "ACCEPTED", tier: 2 });
    await waitForEvent((e) => e.data.requestId === "assess-review" && e.data.status === "ACCEPTED");
    const twice = await t.app.inject({
      method: "POST",
      url: `/admin/clients/${client.clientId}/assessments/assess-review/decision`,
      headers: t.adminAuth,
      payload: { decision: "REFUSE" },
    });
    expect(twice.statusCode).toBe(409);
  });

  it("sends an unsolicited assessment when new information raises the tier", async () => {
    await createUser(t, client, "kyc-raise");
    await client.request("POST", "/v1/users/kyc-raise/assessments", undefined, {
      "x-request-id": "assess-raise",
    });
    await waitForEvent((e) => e.data.requestId === "assess-raise" && e.data.status === "ACCEPTED");
    const before = receiver.events.length;
    await client.request("PATCH", "/v1/users/kyc-raise", {
      idDocument: { type: "ID_CARD", number: "D123", country: "DE" },
    });
    const unsolicited = await waitForEvent((e) => e.data.userId === "kyc-raise" && e.data.tier === 2);
    expect(String(unsolicited.data.requestId)).toMatch(/^kyc-refresh-/);
    expect(receiver.events.slice(before).filter((e) => e.data.userId === "kyc-raise")).toHaveLength(1); // no PENDING for a refresh
    expect((await client.request("GET", "/v1/users/kyc-raise")).json().tier).toBe(2);
  });

  it("never puts PII in a webhook", () => {
    const all = JSON.stringify(receiver.events);
    expect(receiver.events.length).toBeGreaterThan(5);
    for (const pii of ["Ada", "ada@example.com", "1 Main St", "Berlin", "1990-01-01", "D123", "X1"])
      expect(all).not.toContain(pii);
  });

  it("X-Disable-Webhook: true records the events without sending them", async () => {
    await createUser(t, client, "kyc-quiet");
    await client.request("POST", "/v1/users/kyc-quiet/assessments", undefined, {
      "x-request-id": "assess-quiet",
      "x-disable-webhook": "true",
    });
    await vi.waitFor(
      async () => expect((await client.request("GET", "/v1/users/kyc-quiet")).json().tier).toBe(1),
      { timeout: 5000 },
    );
    const recorded = await t.database.db
      .selectFrom("outbox_events")
      .select("id")
      .where("user_id", "=", "kyc-quiet")
      .execute();
    expect(recorded.length).toBeGreaterThanOrEqual(1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(eventsFor("assess-quiet").filter((e) => e.data.status === "PENDING")).toEqual([]);
  });
});

describe("validations", () => {
  it("answers NO_ERROR, MIN_INFO_MISSING or MIN_ASSESSMENT_MISSING from the scenario, information and tier", async () => {
    await t.database.db
      .transaction()
      .execute((tx) =>
        t.services.users.create(tx, { clientId: client.clientId, id: "val-bare", type: "PERSON", info: {} }),
      );
    await createUser(t, client, "val-info");
    const check = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
      client.request("POST", "/v1/transactions/validations", body, headers).then((r) => {
        expect(r.statusCode, r.body).toBe(200);
        return r.json();
      });
    expect(
      await check({ transactionType: "DEPOSIT", userId: "val-bare", amount: "500.00", currency: "USD" }),
    ).toEqual({ type: "NO_ERROR", code: 0 });
    expect(
      await check({ transactionType: "WITHDRAWAL", userId: "val-bare", amount: "500", currency: "USD" }),
    ).toEqual({
      type: "MIN_INFO_MISSING",
      code: 1001,
      fields: ["FULL_NAME", "EMAIL_ADDRESS", "PHYSICAL_ADDRESS", "BIRTH_DATE"],
    });
    expect(
      await check({ transactionType: "WITHDRAWAL", userId: "val-info", amount: 500, currency: "USD" }),
    ).toEqual({
      type: "MIN_ASSESSMENT_MISSING",
      code: 1002,
      assessment: { requiredTier: 1, currentTier: 0 },
    });
    // 5,000 EUR is 5,400 USD: tier 2, which needs an ID document first.
    expect(
      await check({ transactionType: "DEPOSIT", userId: "val-info", amount: "5000", currency: "EUR" }),
    ).toEqual({
      type: "MIN_INFO_MISSING",
      code: 1001,
      fields: ["ID_DOCUMENT"],
    });
    // Above 10,000 USD: tier 4.
    expect(
      (await check({ transactionType: "DEPOSIT", userId: "val-info", amount: "0.2", currency: "BTC" }))
        .fields,
    ).toEqual(["ID_DOCUMENT", "TOKEN_ADDRESS", "NATIONAL_ID"]);
  });

  it("uses the client's own scenarios when asked by X-Scenario-Id", async () => {
    const strict = await createTestClient(t, {
      settings: {
        kyc: { scenarios: [{ id: "strict", brackets: { DEPOSIT: [{ upToUsd: null, requiredTier: 3 }] } }] },
      },
    });
    await createUser(t, strict, "val-strict");
    const body = { transactionType: "DEPOSIT", userId: "val-strict", amount: "1", currency: "USD" };
    expect((await strict.request("POST", "/v1/transactions/validations", body)).json()).toEqual({
      type: "NO_ERROR",
      code: 0,
    });
    const scenario = await strict.request("POST", "/v1/transactions/validations", body, {
      "x-scenario-id": "strict",
    });
    expect(scenario.json()).toEqual({
      type: "MIN_INFO_MISSING",
      code: 1001,
      fields: ["ID_DOCUMENT", "TOKEN_ADDRESS"],
    });
  });
});

describe("webhook delivery", () => {
  it("delivers to a receiver that was down once it is back", async () => {
    await receiver.stop();
    await createUser(t, client, "hook-late");
    await client.request("POST", "/v1/users/hook-late/assessments", undefined, {
      "x-request-id": "assess-late",
    });
    await vi.waitFor(
      async () => {
        const deliveries = (await client.request("GET", "/v1/webhooks/deliveries?size=100")).json();
        const failed = deliveries.records.filter(
          (d: { attempts: unknown[]; status: string }) => d.status === "PENDING" && d.attempts.length > 0,
        );
        expect(failed.length).toBeGreaterThan(0);
      },
      { timeout: 5000, interval: 100 },
    );
    await receiver.start();
    await vi.waitFor(() => expect(eventsFor("assess-late")).toHaveLength(2), {
      timeout: 10_000,
      interval: 50,
    });
    // Retries may arrive out of order; the per-user sequence tells the receiver the real order.
    const ordered = [...eventsFor("assess-late")].sort((x, y) => (x.sequence ?? 0) - (y.sequence ?? 0));
    expect(ordered.map((e) => e.data.status)).toEqual(["PENDING", "ACCEPTED"]);
  });

  it("lists deliveries with attempts, redelivers one, and sends a test event", async () => {
    const page = (await client.request("GET", "/v1/webhooks/deliveries?size=5")).json();
    expect(page.records.length).toBe(5);
    const delivered = page.records.find((d: { status: string }) => d.status === "SUCCEEDED");
    expect(delivered.attempts.at(-1)).toMatchObject({ statusCode: 204, error: null });
    const before = receiver.events.filter((e) => e.id === delivered.eventId).length;
    const again = await client.request("POST", `/v1/webhooks/deliveries/${delivered.id}/redeliver`);
    expect(again.statusCode).toBe(202);
    await vi.waitFor(
      () => expect(receiver.events.filter((e) => e.id === delivered.eventId).length).toBe(before + 1),
      { timeout: 5000 },
    );

    const test = await client.request("POST", "/v1/webhooks/test");
    expect(test.statusCode).toBe(202);
    await waitForEvent((e) => e.id === test.json().eventId && e.type === "TEST");
  });

  it("marks a delivery FAILED after the last retry", async () => {
    const broken = await createTestClient(t, {
      webhookUrl: "http://127.0.0.1:9/unreachable",
      webhookEncryptionKey: receiver.encryptionJwk,
    });
    await broken.request("POST", "/v1/webhooks/test");
    await vi.waitFor(
      async () => {
        const [delivery] = (await broken.request("GET", "/v1/webhooks/deliveries")).json().records;
        expect(delivery.status).toBe("FAILED");
        expect(delivery.attempts).toHaveLength(4); // the first attempt and three retries
      },
      { timeout: 15_000, interval: 200 },
    );
  });
});
