import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { inTransaction } from "../src/db/transaction.ts";
import { type NewEvent, recordEvents } from "../src/modules/webhooks/service.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient, startWebhookReceiver, type TestClient } from "./platform.ts";

/**
 * Issue 23.1: a hostile webhook receiver beside an honest client. Three clients' receivers are
 * hostile — one accepts the connection and never answers, one drips its answer a byte a second,
 * one answers 10 MB — and each has many users' events pending (then retried). Client Y's test
 * event must arrive within a small margin of the time it takes alone, both while the hostile
 * deliveries are first in flight and while they are retried; each hostile client holds only its
 * own slots (at most FERRY_WEBHOOK_CONCURRENCY_PER_CLIENT connections at once), the drip and the
 * silence are cut at the deadline, the 10 MB answer at the drain cap.
 */

const TIMEOUT_MS = 3000; // each hostile delivery holds its chain this long
/** How late Y's event may arrive past its time alone (CI machines are slow). */
const MARGIN_MS = 1500;
const PER_CLIENT = 32; // the default FERRY_WEBHOOK_CONCURRENCY_PER_CLIENT
const USERS = 40;
const EVENTS_PER_USER = 3;

let t: TestApp;
const sockets = new Set<net.Socket>();
const servers: net.Server[] = [];

beforeAll(async () => {
  t = await startTestApp({
    workers: true,
    settings: { webhookTimeoutMs: TIMEOUT_MS, webhookRetrySchedule: [1, 1, 1] },
  });
});
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await t.close();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

type Hostility = "never" | "drip" | "huge";

/** A hostile receiver on loopback: counts connections, and how many are open at once. */
async function hostileReceiver(kind: Hostility) {
  const stats = { connections: 0, open: 0, maxOpen: 0, hugeCut: 0, hugeFinished: 0 };
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    stats.connections++;
    stats.open++;
    stats.maxOpen = Math.max(stats.maxOpen, stats.open);
    socket.on("close", () => {
      stats.open--;
      sockets.delete(socket);
    });
    socket.on("error", () => {});
  };
  let server: net.Server;
  if (kind === "huge") {
    // 10 MB in 1 MB pieces 50 ms apart (so that socket buffers cannot take it all at once): an
    // answer read to its end keeps the connection half a second; one cut at the cap closes first.
    const piece = Buffer.alloc(1024 * 1024, 120);
    server = http.createServer((request, response) => {
      request.resume();
      request.on("end", () => {
        response.on("finish", () => stats.hugeFinished++);
        response.on("close", () => {
          if (!response.writableFinished) stats.hugeCut++;
        });
        response.on("error", () => {});
        response.writeHead(200, { "content-type": "text/plain", "content-length": 10 * piece.length });
        let sent = 0;
        const next = () => {
          if (response.destroyed) return;
          sent++;
          if (sent < 10) response.write(piece, () => setTimeout(next, 50));
          else response.end(piece);
        };
        next();
      });
    });
    server.on("connection", track);
  } else {
    server = net.createServer((socket) => {
      track(socket);
      socket.resume(); // reads the request, and never answers…
      if (kind === "drip") {
        // …or answers one byte a second, never finishing the status line and headers.
        const answer = Buffer.from(
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
        );
        let sent = 0;
        const timer = setInterval(() => {
          if (socket.destroyed || sent >= answer.length) return clearInterval(timer);
          socket.write(answer.subarray(sent, ++sent));
        }, 1000);
        socket.on("close", () => clearInterval(timer));
      }
    });
  }
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/hooks`, stats };
}

/** The time from `POST /v1/webhooks/test` until Y's receiver holds that event. */
async function testEventLatency(
  client: TestClient,
  receiver: Awaited<ReturnType<typeof startWebhookReceiver>>,
): Promise<number> {
  const started = performance.now();
  const sent = await client.request("POST", "/v1/webhooks/test");
  expect(sent.statusCode, sent.body).toBe(202);
  const eventId = sent.json().eventId as string;
  while (!receiver.received.some((r) => r.id === eventId)) {
    if (performance.now() - started > 30_000) throw new Error("Y's test event never arrived");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return performance.now() - started;
}

const waitUntil = async (what: string, condition: () => boolean | Promise<boolean>, ms = 20_000) => {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

it("a hung, dripping or huge receiver of one client does not delay another client's webhooks", async () => {
  const honest = await startWebhookReceiver(t.url ?? "");
  const y = await createTestClient(t, {
    webhookUrl: honest.url(),
    webhookEncryptionKey: { ...honest.encryptionJwk, kid: "y-enc" },
  });
  // Y alone (twice: the first warms the connection and the signing key), then the least of three.
  await testEventLatency(y, honest);
  const alone = Math.min(
    await testEventLatency(y, honest),
    await testEventLatency(y, honest),
    await testEventLatency(y, honest),
  );

  const hostile: Record<Hostility, Awaited<ReturnType<typeof hostileReceiver>> & { clientId: string }> =
    {} as never;
  for (const kind of ["never", "drip", "huge"] as const) {
    const receiver = await hostileReceiver(kind);
    const x = await createTestClient(t, {
      webhookUrl: receiver.url,
      webhookEncryptionKey: { ...honest.encryptionJwk, kid: `x-${kind}` },
    });
    hostile[kind] = { ...receiver, clientId: x.clientId };
    const events: NewEvent[] = [];
    for (let e = 1; e <= EVENTS_PER_USER; e++)
      for (let u = 0; u < USERS; u++)
        events.push({ clientId: x.clientId, userId: `u${u}`, type: "USER", data: { userId: `u${u}`, e } });
    await inTransaction(t.database.db, (tx) => recordEvents(tx, events));
  }
  // The hostile deliveries are in flight: the silent and the dripping receivers hold their chains.
  await waitUntil("the hostile receivers are held", () =>
    [hostile.never, hostile.drip].every((h) => h.stats.open >= PER_CLIENT),
  );
  const whileHeld = await testEventLatency(y, honest);

  // Their first attempts time out and are retried (1 s ± 20 %): held again, and Y once more.
  const firstWave = hostile.never.stats.connections;
  await waitUntil(
    "the silent receiver's deliveries are retried",
    () => hostile.never.stats.connections >= firstWave + PER_CLIENT && hostile.never.stats.open >= PER_CLIENT,
  );
  const whileRetried = await testEventLatency(y, honest);
  console.log(
    `Y's test event: alone ${alone.toFixed(0)} ms; beside three hostile receivers ${whileHeld.toFixed(0)} ms, during their retries ${whileRetried.toFixed(0)} ms`,
  );
  expect(whileHeld).toBeLessThan(alone + MARGIN_MS);
  expect(whileRetried).toBeLessThan(alone + MARGIN_MS);

  // Each hostile client held its own slots only.
  expect(hostile.never.stats.maxOpen).toBeLessThanOrEqual(PER_CLIENT);
  expect(hostile.drip.stats.maxOpen).toBeLessThanOrEqual(PER_CLIENT);
  // The silence and the drip were cut at the deadline: their attempts recorded as timeouts, on time.
  for (const kind of ["never", "drip"] as const) {
    const attempts = await t.database.db
      .selectFrom("webhook_attempts as a")
      .innerJoin("webhook_deliveries as d", "d.id", "a.delivery_id")
      .select(["a.error", "a.duration_ms"])
      .where("d.client_id", "=", hostile[kind].clientId)
      .execute();
    expect(attempts.length).toBeGreaterThanOrEqual(PER_CLIENT);
    for (const a of attempts) {
      expect(a.error).toBe(`no answer within ${TIMEOUT_MS} ms`);
      expect(a.duration_ms).toBeLessThan(TIMEOUT_MS + 1000);
    }
  }
  // The 10 MB answers: each delivery answered 200 (delivered), and no answer was read to its end.
  await waitUntil("the huge receiver's events are delivered", async () => {
    const pending = await t.database.db
      .selectFrom("webhook_deliveries")
      .select((eb) => eb.fn.countAll<string>().as("n"))
      .where("client_id", "=", hostile.huge.clientId)
      .where("status", "!=", "SUCCEEDED")
      .executeTakeFirstOrThrow();
    return Number(pending.n) === 0;
  });
  await waitUntil(
    "every huge answer has closed",
    () => hostile.huge.stats.hugeCut >= USERS * EVENTS_PER_USER,
  );
  expect(hostile.huge.stats.hugeFinished).toBe(0);
  await honest.stop();
}, 60_000);
