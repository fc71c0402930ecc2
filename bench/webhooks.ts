/**
 * Webhook delivery benchmark (issue 8): how many signed and encrypted events per second Ferry
 * delivers to a loopback receiver, and whether each user's events arrive in their order.
 *
 * Ferry runs in this process (its delivery worker as `ferry serve` runs it); the receiver runs in a
 * process of its own (bench/webhook-receiver.ts) and answers 204 at once. U users × E events each
 * are recorded in one database transaction (as transactions record them: the outbox), the clock
 * starts at its commit and stops when the receiver holds them all. Afterwards the receiver opens
 * every body (decrypts it, checks Ferry's signature) and counts events that arrived after a later
 * event of the same user.
 *
 *   npm run bench:webhooks -- [--users 200] [--events 25]      (DATABASE_URL → PostgreSQL, else PGlite)
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { exportJWK, generateKeyPair } from "jose";
import { loadConfig } from "../src/config.ts";
import { inTransaction } from "../src/db/transaction.ts";
import { createClient } from "../src/modules/clients/service.ts";
import { type NewEvent, recordEvents } from "../src/modules/webhooks/service.ts";
import { createLogger, startFerry } from "../src/server.ts";
import { adminQuery } from "../test/database.ts";

const { values: args } = parseArgs({
  options: { users: { type: "string", default: "200" }, events: { type: "string", default: "25" } },
});
const users = Number(args.users);
const perUser = Number(args.events);
const baseUrl = process.env.DATABASE_URL || undefined;

async function main() {
  let dbName: string | undefined;
  let dataDir: string | undefined;
  const env: NodeJS.ProcessEnv = {
    PORT: "0",
    LOG_LEVEL: "warn",
    FERRY_ADMIN_PASSWORD: randomBytes(12).toString("hex"),
    FERRY_MASTER_KEY: randomBytes(32).toString("base64"),
    FERRY_WEBHOOK_INTERVAL_MS: "50",
    // The delivery worker's settings may be tried from the command line's environment.
    ...Object.fromEntries(
      Object.entries(process.env).filter(([name]) =>
        /^FERRY_WEBHOOK_(CONCURRENCY|CONCURRENCY_PER_CLIENT|LEASE_SECONDS|TIMEOUT_MS)$/.test(name),
      ),
    ),
  };
  if (baseUrl) {
    dbName = `ferry_bench_webhooks_${Date.now().toString(36)}`;
    await adminQuery(`CREATE DATABASE ${dbName}`);
    const url = new URL(baseUrl);
    url.pathname = `/${dbName}`;
    env.DATABASE_URL = url.toString();
  } else {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-bench-webhooks-"));
    env.FERRY_DATA_DIR = dataDir;
  }
  const config = loadConfig(env);
  const ferry = await startFerry(config, createLogger(config));
  const { publicKey, privateKey } = await generateKeyPair("RSA-OAEP-256", {
    modulusLength: 2048,
    extractable: true,
  });
  const receiver = spawn(
    process.execPath,
    ["--import", "tsx", path.join(import.meta.dirname, "webhook-receiver.ts")],
    {
      env: {
        ...process.env,
        FERRY_RECEIVER: JSON.stringify({
          decryptionKey: await exportJWK(privateKey),
          ferryKeys: `${ferry.url}/.well-known/jwks.json`,
        }),
      },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  try {
    const port = await new Promise<number>((resolve) =>
      receiver.stdout.once("data", (chunk) => resolve(Number(String(chunk).trim()))),
    );
    const receiverUrl = `http://127.0.0.1:${port}`;
    const client = await createClient(ferry.database.db, {
      name: "Bench webhooks",
      webhookUrl: `${receiverUrl}/hooks`,
      webhookEncryptionKey: { ...(await exportJWK(publicKey)), kid: "bench-enc" },
    });
    const events: NewEvent[] = [];
    for (let e = 1; e <= perUser; e++)
      for (let u = 0; u < users; u++)
        events.push({ clientId: client.id, userId: `u${u}`, type: "USER", data: { userId: `u${u}`, n: e } });
    const total = events.length;
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    await inTransaction(ferry.database.db, async (tx) => {
      for (let i = 0; i < events.length; i += 1000) await recordEvents(tx, events.slice(i, i + 1000));
    });
    let received = 0;
    while (received < total) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      received = Number(
        ((await (await fetch(`${receiverUrl}/stats`)).json()) as { received: number }).received,
      );
      if (performance.now() - started > 300_000) break;
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const verified = (await (await fetch(`${receiverUrl}/verify`, { method: "POST" })).json()) as Record<
      string,
      number
    >;
    console.log(
      `\nWebhooks on ${baseUrl ? "PostgreSQL" : "PGlite"} — ${users} users × ${perUser} events, signed (RS512) and encrypted (RSA-OAEP-256/A256CBC-HS512)\n`,
    );
    console.log(
      "| events | delivered | seconds | events/s | Ferry CPU ms/event | opened | invalid | out of order |",
    );
    console.log("|---|---|---|---|---|---|---|---|");
    console.log(
      `| ${total} | ${received} | ${seconds.toFixed(2)} | ${(received / seconds).toFixed(0)} | ${((cpu.user + cpu.system) / 1000 / received).toFixed(2)} | ${verified.opened} | ${verified.invalid} | ${verified.outOfOrder} |`,
    );
  } finally {
    receiver.kill("SIGTERM");
    await ferry.stop();
    if (dbName) await adminQuery(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
