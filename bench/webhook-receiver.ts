/**
 * The loopback receiver of `bench/webhooks.ts`, in a process of its own (as a client's would be):
 * it answers every delivery 204 at once and keeps the bodies in arrival order. `GET /stats` gives
 * the count; `POST /verify` (after the clock stops) opens every body with the SDK's receiver —
 * decrypts, checks Ferry's signature — and counts, per user, events that arrived after a later one.
 *
 *   tsx bench/webhook-receiver.ts   (FERRY_RECEIVER: JSON {decryptionKey, ferryKeys})
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createWebhookReceiver } from "../src/sdk/webhook-receiver.ts";

const config = JSON.parse(process.env.FERRY_RECEIVER ?? "{}");
const bodies: string[] = [];
const headers: http.IncomingHttpHeaders[] = [];

const server = http.createServer((request, response) => {
  if (request.method === "GET" && request.url === "/stats") {
    response.end(JSON.stringify({ received: bodies.length }));
    return;
  }
  if (request.method === "POST" && request.url === "/verify") {
    request.resume();
    void verify().then((result) => response.end(JSON.stringify(result)));
    return;
  }
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", () => {
    bodies.push(Buffer.concat(chunks).toString("utf8"));
    headers.push(request.headers);
    response.writeHead(204).end();
  });
});

async function verify() {
  const open = createWebhookReceiver({ decryptionKey: config.decryptionKey, ferryKeys: config.ferryKeys });
  const last = new Map<string, number>();
  let outOfOrder = 0;
  let invalid = 0;
  for (const [i, body] of bodies.entries()) {
    try {
      const event = await open(body, headers[i] ?? {});
      const user = String(event.data.userId ?? "");
      const sequence = event.sequence ?? 0;
      if ((last.get(user) ?? 0) > sequence) outOfOrder++;
      last.set(user, Math.max(last.get(user) ?? 0, sequence));
    } catch {
      invalid++;
    }
  }
  return { opened: bodies.length - invalid, invalid, outOfOrder, users: last.size };
}

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
