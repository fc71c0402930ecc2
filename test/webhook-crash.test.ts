import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { exportJWK, generateKeyPair } from "jose";
import { afterAll, expect, it } from "vitest";
import type { FerryDatabase } from "../src/db/database.ts";
import { signRequest } from "../src/sdk/signing.ts";
import { createTestDatabase } from "./database.ts";
import { basic } from "./harness.ts";
import { type FerryProcess, startFerryProcess } from "./process.ts";

/**
 * Issue 23.3: a real Ferry process is SIGKILLed while its webhook deliveries are in flight (the
 * receiver holds them without answering); a second process takes over. Every event arrives
 * (at-least-once: those in flight at the kill may arrive twice), and the time from the kill until
 * the last of them arrives is within one short lease (FERRY_WEBHOOK_LEASE_SECONDS) plus the
 * worker's interval and a margin — not the ~130 s a lease tied to 10 × the webhook timeout held.
 * On PGlite the second process starts once the first is dead (one process per data directory);
 * on PostgreSQL both are up before the kill.
 */

const LEASE_SECONDS = 5;
const INTERVAL_MS = 200;
/** Slack for CI machines (a claim, the sealing of every event, the receiver). */
const MARGIN_MS = 3000;
const PER_CLIENT = 32; // the default FERRY_WEBHOOK_CONCURRENCY_PER_CLIENT
const TEST_EVENTS = 40;
const USERS = 4;
const PASSWORD = "webhook-crash-password";

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-webhook-crash-"));
let testDb: (FerryDatabase & { url: string | undefined }) | undefined;
const processes: FerryProcess[] = [];
let receiverServer: http.Server | undefined;

afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) await p.stop();
  receiverServer?.closeAllConnections();
  await new Promise((resolve) => (receiverServer ? receiverServer.close(resolve) : resolve(undefined)));
  await testDb?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** A receiver that holds every request (never answers) until told to answer; then 204 at once. */
async function holdingReceiver() {
  let holding = true;
  const held: http.ServerResponse[] = [];
  const received: { id: string; at: number }[] = [];
  const answered = new Map<string, number>();
  const server = http.createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      const id = String(request.headers["webhook-id"]);
      received.push({ id, at: performance.now() });
      if (holding) {
        held.push(response);
        return;
      }
      response.writeHead(204).end();
      if (!answered.has(id)) answered.set(id, performance.now());
    });
  });
  receiverServer = server;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    held,
    received,
    answered,
    answer() {
      holding = false;
    },
  };
}

const waitUntil = async (
  what: string,
  condition: () => boolean | Promise<boolean>,
  ms: number,
  everyMs = 20,
) => {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
};

it("after a SIGKILL with deliveries in flight, another process delivers the rest within seconds", async () => {
  let env: Record<string, string>;
  if (process.env.DATABASE_URL) {
    testDb = await createTestDatabase();
    env = { DATABASE_URL: testDb.url ?? "" };
  } else {
    env = { DATABASE_URL: "", FERRY_DATA_DIR: dataDir };
  }
  env = {
    ...env,
    FERRY_ADMIN_PASSWORD: PASSWORD,
    FERRY_MASTER_KEY: Buffer.alloc(32, 9).toString("base64"),
    FERRY_WEBHOOK_INTERVAL_MS: String(INTERVAL_MS),
    FERRY_WEBHOOK_LEASE_SECONDS: String(LEASE_SECONDS),
    FERRY_WEBHOOK_TIMEOUT_MS: "10000", // the default: the old lease was 10 × this + 30 s
    FERRY_DEMO_CLIENT: "false",
    LOG_LEVEL: "warn",
  };
  const receiver = await holdingReceiver();
  const first = await startFerryProcess(env);
  processes.push(first);

  const signing = await generateKeyPair("ES256", { extractable: true });
  const privateJwk = await exportJWK(signing.privateKey);
  const encryption = await generateKeyPair("RSA-OAEP-256", { modulusLength: 2048, extractable: true });
  const created = await fetch(`${first.url}/admin/clients`, {
    method: "POST",
    headers: { authorization: basic("admin", PASSWORD), "content-type": "application/json" },
    body: JSON.stringify({
      name: "Crash webhooks",
      signingKeys: [await exportJWK(signing.publicKey)],
      webhookUrl: receiver.url,
      webhookEncryptionKey: { ...(await exportJWK(encryption.publicKey)), kid: "enc-1" },
    }),
  });
  expect(created.status, await created.clone().text()).toBe(201);
  const { clientId } = (await created.json()) as { clientId: string };
  const call = async (ferry: FerryProcess, method: string, target: string, body?: unknown) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = await signRequest({ clientId, privateJwk, method, target, body: payload });
    return fetch(`${ferry.url}${target}`, { method, headers, body: payload });
  };

  // Users' events (each user's in sequence) and TEST events (chains of one), all held by the receiver.
  for (let u = 0; u < USERS; u++) {
    const r = await call(first, "POST", "/v1/users", {
      id: `crash-${u}`,
      type: "PERSON",
      name: { firstName: "Crash", lastName: `Tester${u}` },
      emails: [`crash-${u}@example.com`],
      addresses: [{ street: "1 Main St", city: "Berlin", country: "DE" }],
      dateOfBirth: "1990-01-01",
    });
    expect(r.status, await r.clone().text()).toBe(201);
  }
  for (let i = 0; i < TEST_EVENTS; i++)
    expect((await call(first, "POST", "/v1/webhooks/test")).status).toBe(202);
  // The first process has claimed as many chains as the client may have in flight, and holds them.
  await waitUntil(
    "the first process's deliveries are held",
    () => receiver.held.length >= PER_CLIENT,
    30_000,
  );
  const listed = (await (await call(first, "GET", "/v1/webhooks/deliveries?size=100")).json()) as {
    records: { eventId: string }[];
    totalRecords: number;
  };
  expect(listed.totalRecords).toBeGreaterThanOrEqual(USERS + TEST_EVENTS);
  expect(listed.totalRecords).toBeLessThanOrEqual(100);
  const eventIds = listed.records.map((d) => d.eventId);
  const heldAtKill = new Set(receiver.received.map((r) => r.id));

  let second: FerryProcess | undefined;
  if (process.env.DATABASE_URL) {
    second = await startFerryProcess(env);
    processes.push(second);
  }
  first.child.kill("SIGKILL");
  await new Promise((resolve) => first.child.once("exit", resolve));
  const killedAt = performance.now();
  for (const response of receiver.held) response.destroy();
  receiver.answer();
  if (!second) {
    second = await startFerryProcess(env);
    processes.push(second);
  }
  const secondReadyAfter = performance.now() - killedAt;
  const survivor = second;

  // Every event reached the receiver (answered); then every delivery the client has is SUCCEEDED.
  const deliveries = async (ferry: FerryProcess) =>
    (await (await call(ferry, "GET", "/v1/webhooks/deliveries?size=100")).json()) as {
      records: { eventId: string; status: string }[];
      totalRecords: number;
    };
  await waitUntil(
    "every event has been answered",
    () => eventIds.every((id) => receiver.answered.has(id)),
    60_000,
  );
  await waitUntil(
    "every delivery has succeeded",
    async () => (await deliveries(survivor)).records.every((d) => d.status === "SUCCEEDED"),
    10_000,
    250,
  );
  const lastArrival = Math.max(
    ...eventIds.map((id) => receiver.answered.get(id) ?? Number.POSITIVE_INFINITY),
  );
  const afterKill = lastArrival - killedAt;
  const sentTwice = eventIds.filter((id) => receiver.received.filter((r) => r.id === id).length > 1).length;
  console.log(
    `webhooks after SIGKILL (${process.env.DATABASE_URL ? "PostgreSQL" : "PGlite"}): ${eventIds.length} events, ` +
      `${heldAtKill.size} in flight at the kill; the last arrived ${(afterKill / 1000).toFixed(2)} s after the kill ` +
      `(second process ready ${(secondReadyAfter / 1000).toFixed(2)} s after it); ${sentTwice} sent twice`,
  );
  // Within a lease of the later of the kill and the second process's start, plus the interval.
  expect(afterKill).toBeLessThan(
    Math.max(0, secondReadyAfter) + LEASE_SECONDS * 1000 + INTERVAL_MS + MARGIN_MS,
  );
  // Duplicates bounded: only deliveries in flight at the kill may have been sent twice.
  for (const id of eventIds)
    if (receiver.received.filter((r) => r.id === id).length > 1) expect(heldAtKill.has(id), id).toBe(true);
  await survivor.stop();
}, 120_000);
