import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inTransaction } from "../src/db/transaction.ts";
import { deliverDueWebhooks, recordEvents } from "../src/modules/webhooks/service.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient, startWebhookReceiver } from "./platform.ts";

/** Issue 8: deliveries go out many at once, yet each user's events arrive in their order. */
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ listen: true });
});
afterAll(async () => {
  await t?.close();
});

describe("webhook delivery order", () => {
  it("a refused event holds up its user's later events, and nobody else's", async () => {
    let refusals = 0;
    const receiver = await startWebhookReceiver(t.url ?? "", {
      // The receiver refuses u's first event twice.
      refuse: (event) => event.data.userId === "u" && event.sequence === 1 && refusals++ < 2,
    });
    try {
      const client = await createTestClient(t, {
        webhookUrl: receiver.url(),
        webhookEncryptionKey: { ...receiver.encryptionJwk, kid: "enc-1" },
      });
      const event = (userId: string, n: number) => ({
        clientId: client.clientId,
        userId,
        type: "USER" as const,
        data: { userId, n },
      });
      await inTransaction(t.database.db, (tx) =>
        recordEvents(tx, [
          event("u", 1),
          event("v", 1),
          event("u", 2),
          event("v", 2),
          event("u", 3),
          event("v", 3),
        ]),
      );
      const settings = { retrySchedule: [0.05, 0.05, 0.05], timeoutMs: 2000, publicUrl: t.url ?? "" };
      await deliverDueWebhooks(t.database.db, t.services.signingKeys, settings, 100);
      // u1 was refused: u2 and u3 wait for its retry (a backlog is not walked through meanwhile).
      const waiting = await t.database.db
        .selectFrom("webhook_deliveries")
        .select(["user_id", "sequence", "status", "next_attempt_at"])
        .where("client_id", "=", client.clientId)
        .where("user_id", "=", "u")
        .orderBy("sequence")
        .execute();
      expect(waiting.map((d) => d.status)).toEqual(["PENDING", "PENDING", "PENDING"]);
      const [head, ...rest] = waiting.map((d) => new Date(d.next_attempt_at).getTime());
      for (const later of rest) expect(later).toBeGreaterThanOrEqual(head ?? 0);
      for (let round = 0; round < 100 && receiver.events.length < 6; round++) {
        await deliverDueWebhooks(t.database.db, t.services.signingKeys, settings, 100);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const arrived = receiver.events.map((e) => `${e.data.userId}${e.sequence}`);
      expect(receiver.failures).toEqual([]);
      expect(refusals).toBe(3); // two refusals, then accepted (the counter passed 2)
      expect(arrived.filter((e) => e.startsWith("u"))).toEqual(["u1", "u2", "u3"]);
      expect(arrived.filter((e) => e.startsWith("v"))).toEqual(["v1", "v2", "v3"]);
      // v did not wait for u's refused event.
      expect(arrived.indexOf("v3")).toBeLessThan(arrived.indexOf("u1"));
    } finally {
      await receiver.stop();
    }
  });

  it("events recorded while their user's head waits for a retry wait as long (no due backlog for the claim to walk)", async () => {
    const receiver = await startWebhookReceiver(t.url ?? "", {
      refuse: (event) => event.data.userId === "w",
    });
    try {
      const client = await createTestClient(t, {
        webhookUrl: receiver.url(),
        webhookEncryptionKey: { ...receiver.encryptionJwk, kid: "enc-1" },
      });
      const event = (userId: string, n: number) => ({
        clientId: client.clientId,
        userId,
        type: "USER" as const,
        data: { userId, n },
      });
      await inTransaction(t.database.db, (tx) => recordEvents(tx, [event("w", 1)]));
      const settings = { retrySchedule: [3600], timeoutMs: 2000, publicUrl: t.url ?? "" };
      await deliverDueWebhooks(t.database.db, t.services.signingKeys, settings, 100);
      // w1 refused: retried in an hour. Events recorded for w afterwards, and for x (no backlog).
      await inTransaction(t.database.db, (tx) =>
        recordEvents(tx, [event("w", 2), event("x", 1), event("w", 3)]),
      );
      const rows = await t.database.db
        .selectFrom("webhook_deliveries")
        .select(["user_id", "sequence", "next_attempt_at"])
        .where("client_id", "=", client.clientId)
        .orderBy("user_id")
        .orderBy("sequence")
        .execute();
      const due = (d: { next_attempt_at: Date | string } | undefined) =>
        d ? new Date(d.next_attempt_at).getTime() : Number.NaN;
      const [w1, w2, w3, x1] = rows;
      expect(rows.map((d) => `${d.user_id}${d.sequence}`)).toEqual(["w1", "w2", "w3", "x1"]);
      expect(due(w1)).toBeGreaterThan(Date.now() + 3000_000);
      expect(due(w2)).toBe(due(w1));
      expect(due(w3)).toBe(due(w1));
      expect(due(x1)).toBeLessThanOrEqual(Date.now());
    } finally {
      await receiver.stop();
    }
  });
});
