import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { inTransaction } from "../src/db/transaction.ts";
import { recordEvents, sendTestEvent, WebhookDispatcher } from "../src/modules/webhooks/service.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient, startWebhookReceiver } from "./platform.ts";

/**
 * Issue 23.3: a webhook chain's lease is short and renewed while its delivery runs (a delivery
 * slower than the lease is not taken over by another process), and its end is a fencing token: a
 * process whose lease ran out (it stalled) never records over the attempt of the process that took
 * the delivery over. On shutdown, the chains in flight get a bounded time, then the delivery in
 * flight is recorded as a failed attempt and the untried rest handed back.
 */

let t: TestApp;
let server: http.Server;
const requests: { id: string; response: http.ServerResponse }[] = [];

beforeAll(async () => {
  t = await startTestApp({ listen: true });
  server = http.createServer((request, response) => {
    request.resume();
    request.on("end", () => requests.push({ id: String(request.headers["webhook-id"]), response }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await t.close();
});

const dispatcher = (leaseSeconds: number) =>
  new WebhookDispatcher(t.database.db, t.services.signingKeys, {
    retrySchedule: [60],
    timeoutMs: 20_000,
    publicUrl: t.url ?? "",
    concurrency: 4,
    perClient: 4,
    leaseSeconds,
  });

const until = async (condition: () => boolean, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

async function clientWithEvent() {
  const keys = await startWebhookReceiver(t.url ?? ""); // only for its encryption key
  await keys.stop();
  const port = (server.address() as AddressInfo).port;
  const client = await createTestClient(t, {
    webhookUrl: `http://127.0.0.1:${port}/hooks`,
    webhookEncryptionKey: { ...keys.encryptionJwk, kid: "enc" },
  });
  const eventId = await sendTestEvent(t.database.db, client.clientId);
  const delivery = await t.database.db
    .selectFrom("webhook_deliveries")
    .select("id")
    .where("event_id", "=", eventId)
    .executeTakeFirstOrThrow();
  return { eventId, deliveryId: delivery.id };
}

const stateOf = (deliveryId: string) =>
  Promise.all([
    t.database.db
      .selectFrom("webhook_deliveries")
      .selectAll()
      .where("id", "=", deliveryId)
      .executeTakeFirstOrThrow(),
    t.database.db.selectFrom("webhook_attempts").selectAll().where("delivery_id", "=", deliveryId).execute(),
  ]);

it("renews the lease while a delivery runs: a delivery three leases long is not taken over", async () => {
  requests.length = 0;
  const { eventId, deliveryId } = await clientWithEvent();
  const a = dispatcher(1);
  const b = dispatcher(1);
  expect(await a.dispatch()).toBe(false);
  await until(() => requests.length === 1);
  // Three leases long, while the other "process" claims over and over.
  const holdUntil = Date.now() + 3000;
  while (Date.now() < holdUntil) {
    await b.dispatch();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  expect(b.inFlight).toBe(0);
  expect(requests.map((r) => r.id)).toEqual([eventId]);
  requests[0]?.response.writeHead(204).end();
  await until(() => a.inFlight === 0);
  const [delivery, attempts] = await stateOf(deliveryId);
  expect(delivery.status).toBe("SUCCEEDED");
  expect(delivery.locked_until).toBeNull();
  expect(attempts.map((x) => [x.attempt, x.status_code, x.error])).toEqual([[1, 204, null]]);
});

it("fences the outcome: a process whose lease ran out never records over the one that took over", async () => {
  requests.length = 0;
  const { eventId, deliveryId } = await clientWithEvent();
  // Long leases (renewed every 10 s): nothing renews during the test, the takeover is made by hand.
  const a = dispatcher(30);
  const b = dispatcher(30);
  await a.dispatch();
  await until(() => requests.length === 1);
  // A stalls past its lease (as if its renewals had not reached the database): B takes it over.
  await t.database.db
    .updateTable("webhook_deliveries")
    .set({ locked_until: new Date(Date.now() - 1000) })
    .where("id", "=", deliveryId)
    .execute();
  await b.dispatch();
  await until(() => requests.length === 2);
  expect(requests.map((r) => r.id)).toEqual([eventId, eventId]); // at-least-once: sent twice
  // A's receiver answers a refusal: A must not record it (it would schedule a retry over B's send).
  requests[0]?.response.writeHead(503).end();
  await until(() => a.inFlight === 0);
  let [delivery, attempts] = await stateOf(deliveryId);
  expect(attempts).toEqual([]);
  expect(delivery.status).toBe("PENDING");
  expect(delivery.last_error).toBeNull();
  expect(delivery.locked_until).not.toBeNull(); // still B's
  requests[1]?.response.writeHead(204).end();
  await until(() => b.inFlight === 0);
  [delivery, attempts] = await stateOf(deliveryId);
  expect(delivery.status).toBe("SUCCEEDED");
  expect(attempts.map((x) => [x.attempt, x.status_code, x.error])).toEqual([[2, 204, null]]);
});

it("drains on shutdown: the delivery in flight is aborted and recorded as a failed attempt, the rest handed back", async () => {
  requests.length = 0;
  const keys = await startWebhookReceiver(t.url ?? "");
  await keys.stop();
  const port = (server.address() as AddressInfo).port;
  const client = await createTestClient(t, {
    webhookUrl: `http://127.0.0.1:${port}/hooks`,
    webhookEncryptionKey: { ...keys.encryptionJwk, kid: "enc" },
  });
  const event = (userId: string, n: number) => ({
    clientId: client.clientId,
    userId,
    type: "USER" as const,
    data: { n },
  });
  const [, , quick] = await inTransaction(t.database.db, (tx) =>
    recordEvents(tx, [event("d", 1), event("d", 2), event("e", 1)]),
  );
  const [first, second] = await t.database.db
    .selectFrom("webhook_deliveries")
    .select("id")
    .where("client_id", "=", client.clientId)
    .where("user_id", "=", "d")
    .orderBy("sequence")
    .execute();
  const a = dispatcher(5);
  await a.dispatch();
  // User e's event is answered at once; user d's first event is held past the grace time.
  await until(() => requests.length === 2);
  requests
    .find((r) => r.id === quick)
    ?.response.writeHead(204)
    .end();
  const started = Date.now();
  await a.drain(300);
  expect(Date.now() - started).toBeLessThan(2000);
  expect(a.inFlight).toBe(0);
  const [head, headAttempts] = await stateOf(first?.id ?? "");
  expect(head.status).toBe("PENDING");
  expect(head.locked_until).toBeNull();
  expect(headAttempts.map((x) => [x.attempt, x.error])).toEqual([[1, "Ferry is stopping"]]);
  expect(new Date(head.next_attempt_at).getTime()).toBeGreaterThan(Date.now() + 40_000); // its retry (60 s ± 20 %)
  const [rest, restAttempts] = await stateOf(second?.id ?? "");
  expect([rest.status, rest.attempts, rest.locked_until, restAttempts]).toEqual(["PENDING", 0, null, []]);
  const [answered] = await t.database.db
    .selectFrom("webhook_deliveries")
    .select("status")
    .where("event_id", "=", quick ?? "")
    .execute();
  expect(answered?.status).toBe("SUCCEEDED");
  expect(await a.dispatch()).toBe(false); // claims nothing once stopping
});
