import pino from "pino";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { type FerryDatabase, openDatabase } from "../src/db/database.ts";
import { recordEvent } from "../src/modules/webhooks/service.ts";
import { createServices } from "../src/services.ts";
import { startWorkers } from "../src/workers/index.ts";
import type { Worker } from "../src/workers/worker.ts";
import { createTestDatabase } from "./database.ts";
import { startTestApp, type TestApp, testSettings } from "./harness.ts";
import { createTestClient, startWebhookReceiver } from "./platform.ts";

/**
 * Two Ferry "processes" — on PostgreSQL, two connection pools with a worker set each; on PGlite,
 * two worker sets over the one embedded connection — deliver the same outbox. No event may be
 * sent twice for one attempt.
 */
let t: TestApp;
let second: FerryDatabase | undefined;
let secondWorkers: Worker[] = [];

beforeAll(async () => {
  const database = await createTestDatabase();
  t = await startTestApp({ workers: true, database });
  const url = (database as FerryDatabase & { url?: string }).url;
  second = url ? await openDatabase({ databaseUrl: url, poolSize: 10 }) : undefined;
  // The signing key is sealed under the first process's master key; the second needs the same key.
  const services = createServices(second ?? database, t.services.sealer, testSettings);
  secondWorkers = startWorkers(
    services,
    {
      holdExpiryIntervalMs: 100,
      webhookIntervalMs: 20,
      publicUrl: t.url ?? "",
      webhookRetrySchedule: [1, 1, 1],
      webhookTimeoutMs: 2000,
      recoveryIntervalMs: 200,
      shutdownTimeoutMs: 4000,
    },
    pino({ level: "silent" }),
  );
});
afterAll(async () => {
  await Promise.all(secondWorkers.map((w) => w.stop()));
  await second?.close();
  await t.close();
});

it("delivers each event once when two processes deliver side by side", async () => {
  const receiver = await startWebhookReceiver(t.url ?? "");
  const client = await createTestClient(t, {
    webhookUrl: receiver.url(),
    webhookEncryptionKey: receiver.encryptionJwk,
  });
  const ids: string[] = [];
  for (let batch = 0; batch < 6; batch++) {
    await t.database.db.transaction().execute(async (tx) => {
      for (let i = 0; i < 10; i++)
        ids.push(
          await recordEvent(tx, { clientId: client.clientId, type: "TEST", data: { n: batch * 10 + i } }),
        );
    });
  }
  await vi.waitFor(() => expect(new Set(receiver.received.map((r) => r.id)).size).toBe(ids.length), {
    timeout: 20_000,
    interval: 100,
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const perEvent = new Map<string, number>();
  for (const r of receiver.received) perEvent.set(r.id, (perEvent.get(r.id) ?? 0) + 1);
  expect([...perEvent.values()].every((n) => n === 1)).toBe(true);
  expect(receiver.events).toHaveLength(ids.length);
  const attempts = await t.database.db.selectFrom("webhook_attempts").select("delivery_id").execute();
  expect(attempts).toHaveLength(ids.length);
  await receiver.stop();
});
