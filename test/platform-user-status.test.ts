import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { FerryWebhookEvent } from "../src/sdk/webhook-receiver.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient, createUser, startWebhookReceiver, type TestClient } from "./platform.ts";

// Issue 7.2: the USER event was declared and never sent, and a user could not be blocked. Now
// PATCH /v1/users/{id} takes `status` (ACTIVE, INACTIVE, BLOCKED) and `statusReason`; creation and
// every change of status write a USER event (no PII) in the transaction of the change, and a
// blocked user's money-moving requests are refused.

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

const userEvents = (userId: string) =>
  receiver.events
    .filter((e) => e.type === "USER" && e.data.userId === userId)
    .sort((a, b) => (a.sequence ?? 0) - (b.sequence ?? 0));

async function waitForUserEvents(userId: string, count: number): Promise<FerryWebhookEvent[]> {
  await vi.waitFor(() => expect(userEvents(userId).length).toBeGreaterThanOrEqual(count), {
    timeout: 8000,
    interval: 50,
  });
  return userEvents(userId);
}

const patch = (userId: string, body: Record<string, unknown>) =>
  client.request("PATCH", `/v1/users/${userId}`, body);

describe("the USER event", () => {
  it("is sent when a user is created: ACTIVE, no PII", async () => {
    await createUser(t, client, "st-created");
    const [created] = await waitForUserEvents("st-created", 1);
    expect(created?.data).toEqual({ userId: "st-created", status: "ACTIVE", date: expect.any(String) });
    expect(created?.sequence).toBeGreaterThan(0);
    for (const pii of ["Ada", "Doe", "ada@example.com", "Main St", "1990-01-01"])
      expect(JSON.stringify(created)).not.toContain(pii);
  });

  it("is sent when the user is blocked and unblocked, with the reason; the same status again sends nothing", async () => {
    await createUser(t, client, "st-block");
    const blocked = await patch("st-block", { status: "BLOCKED", statusReason: "FRAUD_SUSPECTED" });
    expect(blocked.statusCode, blocked.body).toBe(200);
    expect(blocked.json()).toMatchObject({ status: "BLOCKED", statusReason: "FRAUD_SUSPECTED" });
    expect((await client.request("GET", "/v1/users/st-block")).json()).toMatchObject({
      status: "BLOCKED",
      statusReason: "FRAUD_SUSPECTED",
    });
    const again = await patch("st-block", { status: "BLOCKED", statusReason: "FRAUD_SUSPECTED" });
    expect(again.statusCode).toBe(200);
    const unblocked = await patch("st-block", { status: "ACTIVE" });
    expect(unblocked.json()).toMatchObject({ status: "ACTIVE", statusReason: null });
    const events = await waitForUserEvents("st-block", 3);
    await new Promise((resolve) => setTimeout(resolve, 300)); // nothing more comes
    expect(userEvents("st-block").map((e) => e.data)).toEqual([
      { userId: "st-block", status: "ACTIVE", date: expect.any(String) },
      { userId: "st-block", status: "BLOCKED", statusReason: "FRAUD_SUSPECTED", date: expect.any(String) },
      { userId: "st-block", status: "ACTIVE", date: expect.any(String) },
    ]);
    expect(events).toHaveLength(3);
  });

  it("is written in the transaction of the change: no event, no change", async () => {
    await createUser(t, client, "st-atomic");
    // Make the outbox refuse this user's next event: the status change must roll back with it.
    await sql
      .raw(`CREATE FUNCTION refuse_st_atomic() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.user_id = 'st-atomic' AND NEW.type = 'USER' THEN RAISE EXCEPTION 'outbox down'; END IF; RETURN NEW; END $$`)
      .execute(t.database.db);
    await sql
      .raw(
        "CREATE TRIGGER refuse_st_atomic BEFORE INSERT ON outbox_events FOR EACH ROW EXECUTE FUNCTION refuse_st_atomic()",
      )
      .execute(t.database.db);
    try {
      const response = await patch("st-atomic", { status: "BLOCKED" });
      expect(response.statusCode).toBe(500);
    } finally {
      await sql.raw("DROP TRIGGER refuse_st_atomic ON outbox_events").execute(t.database.db);
    }
    expect((await client.request("GET", "/v1/users/st-atomic")).json().status).toBe("ACTIVE");
  });

  it("honours X-Disable-Webhook: recorded, not sent", async () => {
    await createUser(t, client, "st-quiet");
    const response = await client.request(
      "PATCH",
      "/v1/users/st-quiet",
      { status: "INACTIVE" },
      { "x-disable-webhook": "true" },
    );
    expect(response.statusCode).toBe(200);
    const recorded = await t.database.db
      .selectFrom("outbox_events")
      .select(["id", "data"])
      .where("client_id", "=", client.clientId)
      .where("user_id", "=", "st-quiet")
      .where("type", "=", "USER")
      .execute();
    expect(recorded).toHaveLength(2);
    const deliveries = await t.database.db
      .selectFrom("webhook_deliveries")
      .select("event_id")
      .where(
        "event_id",
        "in",
        recorded.map((r) => r.id),
      )
      .execute();
    expect(deliveries).toHaveLength(1); // the creation's, not the quiet change's
  });
});

describe("changing a user's status", () => {
  it("refuses a status change made with a user token (the front end cannot unblock its user)", async () => {
    await createUser(t, client, "st-token");
    // Issued while the user is active (a blocked user is issued none: blocked-users.test.ts).
    const issued = await client.request("POST", "/v1/auth/userToken", {
      url: "/v1/users/st-token",
      method: "PATCH",
      userId: "st-token",
    });
    expect(issued.statusCode).toBe(201);
    await patch("st-token", { status: "BLOCKED" });
    const response = await t.app.inject({
      method: "PATCH",
      url: "/v1/users/st-token",
      headers: { "x-client-id": client.clientId, "x-user-token": issued.json().accessToken },
      payload: { status: "ACTIVE" },
    });
    expect(response.statusCode, response.body).toBe(403);
    expect((await client.request("GET", "/v1/users/st-token")).json().status).toBe("BLOCKED");
  });

  it("refuses an unknown status, a free-text reason, and a reason without a status (400)", async () => {
    await createUser(t, client, "st-bad");
    const cases: [Record<string, unknown>, string][] = [
      [{ status: "BANNED" }, "status"],
      [{ status: "BLOCKED", statusReason: "Ada Doe stole a card" }, "statusReason"],
      [{ statusReason: "FRAUD_SUSPECTED" }, "statusReason"],
    ];
    for (const [body, field] of cases) {
      const response = await patch("st-bad", body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json().errors[0].field).toBe(field);
    }
    expect((await client.request("GET", "/v1/users/st-bad")).json().status).toBe("ACTIVE");
  });

  it("keeps the information and the status apart: PUT still replaces information only", async () => {
    await createUser(t, client, "st-put");
    const response = await client.request("PUT", "/v1/users/st-put", { type: "PERSON", status: "BLOCKED" });
    expect(response.statusCode).toBe(400);
  });
});

describe("a blocked user", () => {
  it("has its money-moving requests refused (monitoring DENY, USER_BLOCKED), and moves no money", async () => {
    await createUser(t, client, "st-deposit");
    await patch("st-deposit", { status: "BLOCKED", statusReason: "FRAUD_SUSPECTED" });
    const response = await client.request(
      "POST",
      "/v1/transactions/deposits",
      {
        userId: "st-deposit",
        amount: "10.00",
        currency: "EUR",
        sourceMethod: {
          paymentMethodType: "CREDIT_CARD",
          cardNumber: "4242424242424242",
          expirationMonth: 12,
          expirationYear: 2031,
          cvv: "123",
        },
      },
      { "x-request-id": "st-deposit-1" },
    );
    expect(response.statusCode, response.body).toBe(402);
    const stored = (await client.request("GET", "/v1/transactions/st-deposit-1")).json();
    expect(stored).toMatchObject({ status: "REFUSED", monitoring: { status: "DENY" } });
    expect(stored.monitoring.reasons).toContain("USER_BLOCKED");
    const wallets = (await client.request("GET", "/v1/users/st-deposit/wallets")).json().records as {
      totalBalance: string;
    }[];
    expect(wallets.every((w) => w.totalBalance === "0.00")).toBe(true);
  });
});

describe("a user who is not active, and payments to one", () => {
  const card = (cardNumber: string) => ({
    paymentMethodType: "CREDIT_CARD",
    cardNumber,
    expirationMonth: 12,
    expirationYear: 2031,
  });

  it("an INACTIVE user's request is refused with 403 before anything is recorded", async () => {
    await createUser(t, client, "st-inactive");
    await patch("st-inactive", { status: "INACTIVE" });
    const response = await client.request(
      "POST",
      "/v1/transactions/deposits",
      { userId: "st-inactive", amount: "10.00", currency: "EUR", sourceMethod: card("5555555555554444") },
      { "x-request-id": "st-inactive-1" },
    );
    expect(response.statusCode, response.body).toBe(403);
    expect((await client.request("GET", "/v1/transactions/st-inactive-1")).statusCode).toBe(404);
  });

  it("a blocked user's large deposit is refused (402), not sent to the KYC gate (422), and the form's information is not merged", async () => {
    await createUser(t, client, "st-blocked-pii");
    await patch("st-blocked-pii", { status: "BLOCKED" });
    const response = await client.request(
      "POST",
      "/v1/transactions/deposits",
      {
        userId: "st-blocked-pii",
        amount: "5000.00",
        currency: "EUR",
        sourceMethod: card("4000056655665556"),
        pii: { phones: ["+4915112345678"] },
      },
      { "x-request-id": "st-blocked-pii-1" },
    );
    expect(response.statusCode, response.body).toBe(402);
    expect(response.json().monitoring?.reasons ?? []).not.toContain("COUNTERPARTY_NOT_ACTIVE");
    const user = (await client.request("GET", "/v1/users/st-blocked-pii")).json();
    expect(JSON.stringify(user)).not.toContain("+4915112345678");
  });

  it("a transfer to a blocked user is refused by monitoring (COUNTERPARTY_NOT_ACTIVE); no money moves", async () => {
    await createUser(t, client, "st-sender");
    await createUser(t, client, "st-receiver");
    await t.database.db
      .updateTable("users")
      .set({ tier: 2 } as never)
      .where("client_id", "=", client.clientId)
      .where("id", "=", "st-sender")
      .execute();
    const funded = await client.request(
      "POST",
      "/v1/transactions/deposits",
      { userId: "st-sender", amount: "50.00", currency: "EUR", sourceMethod: card("4000000000000077") },
      { "x-request-id": "st-fund-sender" },
    );
    expect(funded.statusCode, funded.body).toBe(201);
    await patch("st-receiver", { status: "BLOCKED" });
    const response = await client.request(
      "POST",
      "/v1/transactions/transfers",
      { userId: "st-sender", destinationUserId: "st-receiver", amount: "10.00", currency: "EUR" },
      { "x-request-id": "st-transfer-1" },
    );
    expect(response.statusCode, response.body).toBe(402);
    const stored = (await client.request("GET", "/v1/transactions/st-transfer-1")).json();
    expect(stored).toMatchObject({ status: "REFUSED", monitoring: { status: "DENY" } });
    expect(stored.monitoring.reasons).toContain("COUNTERPARTY_NOT_ACTIVE");
    const sender = (await client.request("GET", "/v1/users/st-sender/wallets")).json().records;
    expect(sender[0].totalBalance).toBe("50.00");
  });
});
