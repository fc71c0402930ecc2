/**
 * HTTP benchmark of the money paths, measured the way an integrator loads Ferry: `ferry serve` in a
 * process of its own on a fresh database (DATABASE_URL → a new PostgreSQL database, dropped after;
 * otherwise PGlite in a temporary directory), a load generator in another process sending signed
 * requests (bench/http-load.ts), and on PostgreSQL a plain-SQL reference run by pgbench against
 * the same server in the same run (one transaction per transfer: insert it, update two balances).
 *
 * Prints, per workload: operations/s, p50/p99, answers by status, database queries per operation
 * (Ferry's own count, `ferry_db_queries` on /metrics), the server's RSS; then the ledger
 * invariants and reconciliation with the providers.
 *
 *   npm run bench:http -- [--users 200] [--concurrency 32] [--seconds 15] [--workloads transfer,payment,deposit,withdrawal]
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { exportJWK, generateKeyPair } from "jose";
import pg from "pg";
import { signRequest } from "../src/sdk/signing.ts";
import { germanIban, withLuhnDigit } from "../test/funding.ts";
import { repoRoot, startFerryProcess } from "../test/process.ts";

const { values: args } = parseArgs({
  options: {
    users: { type: "string", default: "200" },
    concurrency: { type: "string", default: "32" },
    seconds: { type: "string", default: "15" },
    workloads: { type: "string", default: "transfer,payment,deposit,withdrawal" },
    "pgbench-clients": { type: "string", default: "16" },
  },
});
const userCount = Number(args.users);
const concurrency = Number(args.concurrency);
const seconds = Number(args.seconds);
const workloads = String(args.workloads).split(",") as ("transfer" | "payment" | "deposit" | "withdrawal")[];
const baseUrl = process.env.DATABASE_URL || undefined;
const PASSWORD = randomBytes(12).toString("hex");
const admin = { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString("base64")}` };

async function main() {
  let dbName: string | undefined;
  let dataDir: string | undefined;
  const env: Record<string, string> = {
    FERRY_ADMIN_PASSWORD: PASSWORD,
    FERRY_MASTER_KEY: randomBytes(32).toString("base64"),
    FERRY_SANDBOX_KYC_DELAY_MS: "0",
    FERRY_SANDBOX_PAYOUT_DELAY_MS: "500",
    LOG_LEVEL: "warn",
  };
  if (baseUrl) {
    dbName = `ferry_bench_http_${Date.now().toString(36)}`;
    await adminQuery(`CREATE DATABASE ${dbName}`);
    const url = new URL(baseUrl);
    url.pathname = `/${dbName}`;
    env.DATABASE_URL = url.toString();
  } else {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-bench-http-"));
    env.DATABASE_URL = "";
    env.FERRY_DATA_DIR = dataDir;
  }
  // The server as `npm start` runs it: the bundle, built first.
  execFileSync(process.execPath, [path.join(repoRoot, "bin/build.js")]);
  const started = Date.now();
  const ferry = await startFerryProcess(env);
  const startSeconds = (Date.now() - started) / 1000;
  const pid = ferry.child.pid ?? 0;
  try {
    const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
    const privateJwk = { ...(await exportJWK(privateKey)), alg: "ES256" };
    const created = await json(
      await fetch(`${ferry.url}/admin/clients`, {
        method: "POST",
        headers: { ...admin, "content-type": "application/json" },
        body: JSON.stringify({
          name: "Bench",
          signingKeys: [await exportJWK(publicKey)],
          settings: {
            rateLimitPerMinute: 1_000_000,
            monitoring: {
              singleAmountReviewUsd: 1e9,
              dailyTotalReviewUsd: 1e12,
              velocityCount: 1e9,
              newUserFirstAmountReviewUsd: 1e9,
            },
            kyc: {
              scenarios: [
                {
                  id: "bench",
                  brackets: Object.fromEntries(
                    ["DEPOSIT", "WITHDRAWAL", "TRANSFER", "PAYMENT", "TRADE"].map((t) => [
                      t,
                      [{ upToUsd: null, requiredTier: 0 }],
                    ]),
                  ),
                },
              ],
              defaultScenario: "bench",
            },
          },
        }),
      }),
    );
    const clientId = String(created.clientId);
    const call = async (method: string, target: string, body?: unknown, requestId?: string) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const headers = await signRequest({
        clientId,
        privateJwk,
        alg: "ES256",
        method,
        target,
        body: payload,
        requestId,
      });
      return json(
        await fetch(ferry.url + target, {
          method,
          headers,
          body: payload,
        }),
      );
    };
    const person = (id: string, type = "PERSON") => ({
      id,
      type,
      ...(type === "PERSON"
        ? { name: { firstName: "Bench", lastName: `User${id}` } }
        : { businessName: `Bench Shop ${id}` }),
      emails: [`${id}@example.com`],
      addresses: [{ street: "1 Main St", city: "Berlin", postalCode: "10115", country: "DE" }],
      ...(type === "PERSON" ? { dateOfBirth: "1990-01-01" } : {}),
    });
    process.stdout.write(`setting up ${userCount} funded users…`);
    const users: { id: string; card?: string; bank?: string }[] = [];
    for (let i = 0; i < userCount; i++) {
      const id = `bench-${i}`;
      await call("POST", "/v1/users", person(id));
      const deposit = await call(
        "POST",
        "/v1/transactions/deposits",
        {
          userId: id,
          amount: "900.00",
          currency: "EUR",
          sourceMethod: {
            paymentMethodType: "CREDIT_CARD",
            cardNumber: withLuhnDigit(`411111${String(i).padStart(9, "0")}`),
            expirationMonth: 12,
            expirationYear: 2031,
          },
        },
        `fund-${id}`,
      );
      if (deposit.status !== "CAPTURED") throw new Error(`funding ${id}: ${JSON.stringify(deposit)}`);
      const saved = await call("GET", `/v1/users/${id}/payment-information`);
      const card = (saved.records as { id: string; type: string }[]).find(
        (m) => m.type === "CREDIT_CARD",
      )?.id;
      const bank = await call("POST", `/v1/users/${id}/payment-information`, {
        type: "BANK_ACCOUNT",
        iban: germanIban(String(1_000 + i)),
        accountHolderName: `Bench User${i}`,
      });
      users.push({ id, card, bank: String(bank.id) });
    }
    await call("POST", "/v1/users", person("bench-shop", "BUSINESS"));
    process.stdout.write(" done\n");
    const idleRss = rssOf(pid);

    console.log(
      `\nFerry on ${baseUrl ? "PostgreSQL" : "PGlite"} — ${userCount} users, concurrency ${concurrency}, ${seconds} s per workload; started in ${startSeconds.toFixed(2)} s; idle RSS ${idleRss} MB\n`,
    );
    console.log(
      "| workload | ops/s | p50 ms | p99 ms | queries/op | CPU ms/op: Ferry | database | load generator | peak RSS MB | answers |",
    );
    console.log("|---|---|---|---|---|---|---|---|---|---|");
    for (const kind of workloads) {
      const before = await queries(ferry.url);
      const cpuBefore = { ferry: cpuSecondsOf([pid]), database: cpuSecondsOf(databasePids()) };
      let peak = rssOf(pid);
      const sampler = setInterval(() => {
        peak = Math.max(peak, rssOf(pid));
      }, 250);
      const result = await runLoad({
        url: ferry.url,
        clientId,
        privateJwk,
        alg: "ES256",
        kind,
        users,
        merchant: "bench-shop",
        concurrency,
        seconds,
      });
      clearInterval(sampler);
      const after = await queries(ferry.url);
      const perOp = result.requests > 0 ? (after - before) / result.requests : 0;
      const msPerOp = (seconds: number) =>
        (result.requests > 0 ? (seconds * 1000) / result.requests : 0).toFixed(2);
      const cpu = {
        ferry: msPerOp(cpuSecondsOf([pid]) - cpuBefore.ferry),
        // PGlite runs inside Ferry's process: its share is in Ferry's column.
        database: baseUrl ? msPerOp(cpuSecondsOf(databasePids()) - cpuBefore.database) : "in Ferry",
        load: msPerOp(result.cpuSeconds),
      };
      console.log(
        `| ${kind} | ${result.perSecond.toFixed(0)} | ${result.p50.toFixed(1)} | ${result.p99.toFixed(1)} | ${perOp.toFixed(1)} | ${cpu.ferry} | ${cpu.database} | ${cpu.load} | ${peak} | ${Object.entries(
          result.statuses,
        )
          .map(([k, v]) => `${k}: ${v}`)
          .join(", ")} |`,
      );
      if (result.signedLive > 0)
        console.log(
          `|   | ${result.signedLive} requests signed during the run (the presigned ones ran out) |`,
        );
      for (const [status, message] of Object.entries(result.errors ?? {}))
        console.log(`|   | ${status}: ${message} |`);
    }
    if (baseUrl && env.DATABASE_URL) {
      const tps = pgbenchReference(env.DATABASE_URL, Number(args["pgbench-clients"]), seconds);
      console.log(
        `\nplain-SQL reference (pgbench, ${args["pgbench-clients"]} connections, same server): ${tps.toFixed(0)} transfers/s`,
      );
    }
    // Let payouts settle and steps drain before checking.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const invariants = await json(
      await fetch(`${ferry.url}/admin/ledger/invariants?clientId=${clientId}`, { headers: admin }),
    );
    const reconciliation = await json(
      await fetch(`${ferry.url}/admin/reconciliation?clientId=${clientId}`, { headers: admin }),
    );
    console.log(
      `\ninvariants ok: ${invariants.ok}; reconciliation ok: ${reconciliation.ok} (checked ${reconciliation.checked}, in flight ${reconciliation.inFlight}, mismatches ${(reconciliation.mismatches as unknown[]).length})`,
    );
  } finally {
    await ferry.stop();
    if (dbName) await adminQuery(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

async function json(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}

async function queries(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^ferry_db_queries (\d+)/m.exec(text)?.[1] ?? 0);
}

function rssOf(pid: number): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
  } catch {
    return 0;
  }
}

/** CPU seconds (user + system) the processes have used, from /proc (0 where unreadable). */
function cpuSecondsOf(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
      ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0); // utime, stime (fields 14 and 15)
    } catch {
      // gone
    }
  }
  return ticks / 100; // USER_HZ
}

/** The PostgreSQL server's processes on this machine (all of them: the bench cannot tell its backends apart cheaply). */
function databasePids(): number[] {
  return fs
    .readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "postgres";
      } catch {
        return false;
      }
    });
}

function runLoad(config: Record<string, unknown>): Promise<{
  cpuSeconds: number;
  signedLive: number;
  requests: number;
  perSecond: number;
  p50: number;
  p99: number;
  statuses: Record<string, number>;
  errors: Record<string, string>;
}> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "bench/http-load.ts")], {
      cwd: repoRoot,
      env: { ...process.env, FERRY_LOAD: JSON.stringify(config) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += String(chunk);
    });
    child.on("exit", (code) => {
      if (code !== 0) reject(new Error(`the load generator exited with ${code}`));
      else resolve(JSON.parse(out.trim().split("\n").pop() ?? "{}"));
    });
  });
}

/** pgbench's transfers/s for the plain double-entry SQL on the same server, in the bench database. */
function pgbenchReference(databaseUrl: string, clients: number, duration: number): number {
  const script = path.join(os.tmpdir(), `ferry-pgbench-${process.pid}.sql`);
  fs.writeFileSync(
    script,
    `\\set a random(1, 10000)
\\set b random(1, 10000)
BEGIN;
INSERT INTO bench_transfers (debit, credit, amount) VALUES (:a, :b, 1);
UPDATE bench_accounts SET balance = balance - 1 WHERE id = :a;
UPDATE bench_accounts SET balance = balance + 1 WHERE id = :b;
COMMIT;
`,
  );
  execFileSync("psql", [
    databaseUrl,
    "-qc",
    "CREATE TABLE bench_accounts (id int PRIMARY KEY, balance numeric(38,0) NOT NULL); CREATE TABLE bench_transfers (id bigserial PRIMARY KEY, debit int NOT NULL, credit int NOT NULL, amount numeric(38,0) NOT NULL); INSERT INTO bench_accounts SELECT g, 1000000 FROM generate_series(1, 10000) g;",
  ]);
  const out = execFileSync(
    "pgbench",
    ["-n", "-c", String(clients), "-j", "2", "-T", String(duration), "-f", script, databaseUrl],
    {
      encoding: "utf8",
    },
  );
  fs.rmSync(script, { force: true });
  return Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? 0);
}

async function adminQuery(sql: string) {
  const client = new pg.Client({ connectionString: baseUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

await main();
