import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../src/modules/clients/service.ts";
import {
  allowPrivateWebhookDestinations,
  type DeliverySettings,
  deliverDueWebhooks,
} from "../src/modules/webhooks/service.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient, startWebhookReceiver, type TestClient } from "./platform.ts";

// Issue 7.5: a live client's webhook may not point at loopback, link-local or private addresses
// (checked when configured, and at every delivery on the resolved addresses) unless the
// installation allows it; sandbox clients may. The delivery list shows status code and timing,
// never what the receiver answered.

let t: TestApp;
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;

beforeAll(async () => {
  t = await startTestApp({ listen: true });
  receiver = await startWebhookReceiver(t.url ?? "");
});
afterAll(async () => {
  await receiver.stop();
  await t.close();
});
afterEach(() => allowPrivateWebhookDestinations(false));

const admin = (method: "POST" | "PATCH", url: string, payload: Record<string, unknown>) =>
  t.app.inject({ method, url, headers: t.adminAuth, payload });

/** A name resolver that answers every name with one address (what a hostile DNS zone can do). */
const resolvingTo =
  (address: string): DeliverySettings["lookup"] =>
  (_hostname, callback) =>
    callback(null, [{ address, family: address.includes(":") ? 6 : 4 }]);

const deliver = (lookup?: DeliverySettings["lookup"], timeoutMs = 2000) =>
  deliverDueWebhooks(t.database.db, t.services.signingKeys, {
    retrySchedule: [60],
    timeoutMs,
    publicUrl: t.url ?? "",
    lookup,
  });

/** Sends a TEST event and runs one delivery round; answers the client's view of the delivery. */
async function testEventDelivered(client: TestClient, lookup?: DeliverySettings["lookup"]) {
  const sent = await client.request("POST", "/v1/webhooks/test");
  expect(sent.statusCode, sent.body).toBe(202);
  await deliver(lookup);
  const list = await client.request("GET", "/v1/webhooks/deliveries");
  const delivery = list.json().records.find((d: { eventId: string }) => d.eventId === sent.json().eventId);
  return { delivery, listing: list.body };
}

describe("configuring a webhook URL", () => {
  const refused = [
    "http://127.0.0.1:4000/hooks",
    "http://127.8.9.10/hooks",
    "http://10.0.0.5/hooks",
    "http://172.16.3.4/hooks",
    "http://192.168.1.1/hooks",
    "http://169.254.169.254/latest/meta-data",
    "http://0.0.0.0:8080/",
    "http://[::1]:4000/hooks",
    "http://[fd12:3456::1]/hooks",
    "http://[fe80::1]/hooks",
    "http://[::ffff:127.0.0.1]/hooks",
    "http://2130706433/hooks", // 127.0.0.1 written as a number
    "http://localhost:4000/hooks",
    "http://api.localhost./hooks",
  ];

  it.each(refused)("refuses %s for a live client (400 naming webhookUrl)", async (webhookUrl) => {
    const response = await admin("POST", "/admin/clients", { name: "Live", mode: "live", webhookUrl });
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json().errors).toEqual([
      { field: "webhookUrl", message: expect.stringMatching(/private address for a live client/) },
    ]);
  });

  it("accepts a public destination for a live client, and any for a sandbox client", async () => {
    const live = await admin("POST", "/admin/clients", {
      name: "Live",
      mode: "live",
      webhookUrl: "https://hooks.example.com/ferry",
    });
    expect(live.statusCode, live.body).toBe(201);
    const sandbox = await admin("POST", "/admin/clients", {
      name: "Sandbox",
      webhookUrl: "http://127.0.0.1:4000/hooks",
    });
    expect(sandbox.statusCode, sandbox.body).toBe(201);
    expect(sandbox.json()).toMatchObject({ mode: "sandbox", webhookUrl: "http://127.0.0.1:4000/hooks" });
  });

  it("refuses to take a client live while its webhook is private, and a private URL for a live client", async () => {
    const created = await admin("POST", "/admin/clients", {
      name: "Going live",
      webhookUrl: "http://10.1.2.3/hooks",
    });
    const clientId = created.json().clientId as string;
    const goLive = await admin("PATCH", `/admin/clients/${clientId}`, { mode: "live" });
    expect(goLive.statusCode, goLive.body).toBe(400);
    expect(goLive.json().errors[0].field).toBe("webhookUrl");
    const both = await admin("PATCH", `/admin/clients/${clientId}`, {
      mode: "live",
      webhookUrl: "https://hooks.example.com/ferry",
    });
    expect(both.statusCode, both.body).toBe(200);
    const back = await admin("PATCH", `/admin/clients/${clientId}`, { webhookUrl: "http://192.168.0.10/" });
    expect(back.statusCode).toBe(400);
  });

  it("accepts private destinations for live clients where the installation allows them", async () => {
    allowPrivateWebhookDestinations(true);
    const response = await admin("POST", "/admin/clients", {
      name: "Live on a private network",
      mode: "live",
      webhookUrl: "http://10.0.0.5/hooks",
    });
    expect(response.statusCode, response.body).toBe(201);
  });
});

describe("delivering", () => {
  /** A live client whose webhook was accepted while the installation allowed private destinations. */
  async function liveClientAt(webhookUrl: string) {
    allowPrivateWebhookDestinations(true);
    const client = await createTestClient(t, { mode: "live" });
    await admin("PATCH", `/admin/clients/${client.clientId}`, {
      webhookUrl,
      webhookEncryptionKey: receiver.encryptionJwk,
    });
    allowPrivateWebhookDestinations(false);
    return client;
  }

  it("refuses a live client's private destination at delivery, before connecting", async () => {
    const client = await liveClientAt(receiver.url());
    const before = receiver.received.length;
    const { delivery } = await testEventDelivered(client);
    expect(delivery.attempts).toEqual([
      expect.objectContaining({ statusCode: null, error: expect.stringMatching(/private address/) }),
    ]);
    expect(receiver.received.length).toBe(before);
  });

  it("resolves the name at delivery: a public-looking name pointing at 127.0.0.1 is refused", async () => {
    const port = new URL(receiver.url()).port;
    const client = await liveClientAt(`http://hooks.example.com:${port}/hooks`);
    const before = receiver.received.length;
    const { delivery } = await testEventDelivered(client, resolvingTo("127.0.0.1"));
    expect(delivery.attempts[0]).toMatchObject({ statusCode: null, error: expect.stringMatching(/private/) });
    expect(receiver.received.length).toBe(before);
    // The same name and address where the installation allows it: delivered (the resolved address is
    // the one connected to).
    allowPrivateWebhookDestinations(true);
    const again = await client.request("POST", `/v1/webhooks/deliveries/${delivery.id}/redeliver`);
    expect(again.statusCode, again.body).toBe(202);
    await deliver(resolvingTo("127.0.0.1"));
    expect(receiver.received.length).toBe(before + 1);
  });

  it("delivers to loopback for a sandbox client", async () => {
    const client = await createTestClient(t, {
      webhookUrl: receiver.url(),
      webhookEncryptionKey: receiver.encryptionJwk,
    });
    const { delivery } = await testEventDelivered(client);
    expect(delivery).toMatchObject({ status: "SUCCEEDED" });
    expect(delivery.attempts[0]).toMatchObject({ statusCode: 204, error: null });
  });
});

describe("the delivery list", () => {
  it("shows the status code and timing of a failed attempt, never the receiver's answer", async () => {
    const secret = "postgres://admin:hunter2@10.0.0.7/internal root-shell-banner";
    const talkative = http.createServer((_request, response) => {
      response.writeHead(500, { "content-type": "text/plain", "x-internal": secret }).end(secret);
    });
    await new Promise<void>((resolve) => talkative.listen(0, "127.0.0.1", resolve));
    try {
      const port = (talkative.address() as AddressInfo).port;
      const client = await createTestClient(t, {
        webhookUrl: `http://127.0.0.1:${port}/hooks`,
        webhookEncryptionKey: receiver.encryptionJwk,
      });
      const { delivery, listing } = await testEventDelivered(client);
      expect(delivery.attempts[0]).toMatchObject({ statusCode: 500, durationMs: expect.any(Number) });
      expect(listing).not.toContain("hunter2");
      expect(listing).not.toContain("root-shell");
    } finally {
      talkative.close();
    }
  });

  it("says when the receiver did not answer in time", async () => {
    const silent = http.createServer(() => {}); // never answers
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const port = (silent.address() as AddressInfo).port;
      const client = await createTestClient(t, {
        webhookUrl: `http://127.0.0.1:${port}/hooks`,
        webhookEncryptionKey: receiver.encryptionJwk,
      });
      const sent = await client.request("POST", "/v1/webhooks/test");
      await deliver(undefined, 300);
      const list = (await client.request("GET", "/v1/webhooks/deliveries")).json();
      const delivery = list.records.find((d: { eventId: string }) => d.eventId === sent.json().eventId);
      expect(delivery.attempts[0]).toMatchObject({ statusCode: null, error: "no answer within 300 ms" });
      expect(delivery.attempts[0].durationMs).toBeGreaterThanOrEqual(290);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  it("says a connection failed without naming the socket error, host or port", async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const client = await createClient(t.database.db, {
      name: "closed-port",
      webhookUrl: `http://127.0.0.1:${port}/hooks`,
      webhookEncryptionKey: receiver.encryptionJwk,
      signingKeys: [],
    });
    await t.database.db
      .insertInto("outbox_events")
      .values({
        id: `evt_closed_${port}`,
        client_id: client.id,
        type: "TEST",
        data: "{}",
        created_at: new Date(),
      })
      .execute();
    await t.database.db
      .insertInto("webhook_deliveries")
      .values({
        id: `whd_closed_${port}`,
        event_id: `evt_closed_${port}`,
        client_id: client.id,
        status: "PENDING",
      })
      .execute();
    await deliver();
    const attempt = await t.database.db
      .selectFrom("webhook_attempts")
      .selectAll()
      .where("delivery_id", "=", `whd_closed_${port}`)
      .executeTakeFirstOrThrow();
    expect(attempt.error).toBe("the connection to the webhook URL failed");
    expect(attempt.error).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|\d{4,5}/);
  });
});
