/**
 * HTTP benchmark of the Wallet API (/api/v1), the way its users load it: `ferry serve` in a process
 * of its own on a fresh database (DATABASE_URL → a new PostgreSQL database, dropped after;
 * otherwise PGlite in a temporary directory); customers with access tokens; C concurrent loops on
 * kept-alive connections sending one kind of request for S seconds.
 *
 * Workloads:
 *   transfer  POST /api/v1/transfers between random customers, priced by a commission profile
 *   coins     GET /api/v1/coins (a customer's accounts with their balances)
 *   login     POST /api/v1/authorization (scrypt: CPU-bound by design)
 *   purchase  Pay-in: POST /v3/payin/offer then POST /v3/payin/pay (20.00 EUR of USDC by an approved
 *             card; customers brought to KYC_1 by their client's backend through /v1), one op each
 *
 * Prints per workload: operations/s, p50/p99 latency, answers by status, database statements per
 * operation (`ferry_db_queries` on /metrics); then the ledger invariants and reconciliation.
 *
 *   npm run bench:wallet -- [--users 100] [--concurrency 32] [--seconds 10] [--workloads transfer,coins,login]
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { exportJWK, generateKeyPair } from "jose";
import pg from "pg";
import { signRequest } from "../src/sdk/signing.ts";
import { repoRoot, startFerryProcess } from "../test/process.ts";

const { values: args } = parseArgs({
  options: {
    users: { type: "string", default: "100" },
    concurrency: { type: "string", default: "32" },
    seconds: { type: "string", default: "10" },
    workloads: { type: "string", default: "transfer,coins,login" },
  },
});
const userCount = Number(args.users);
const concurrency = Number(args.concurrency);
const seconds = Number(args.seconds);
const workloads = String(args.workloads).split(",");
const baseUrl = process.env.DATABASE_URL || undefined;
const ADMIN_PASSWORD = randomBytes(12).toString("hex");
const PASSWORD = "Bench#Pass1";
const admin = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString("base64")}` };

interface Customer {
  login: string;
  token: string;
  serial: string;
  userId: string;
  cardId?: string;
}

async function main() {
  let dbName: string | undefined;
  let dataDir: string | undefined;
  const env: Record<string, string> = {
    FERRY_ADMIN_PASSWORD: ADMIN_PASSWORD,
    FERRY_MASTER_KEY: randomBytes(32).toString("base64"),
    FERRY_DEMO_CLIENT: "false",
    FERRY_LOGIN_SLOW_STEP_MS: "0",
    FERRY_SANDBOX_KYC_DELAY_MS: "0",
    FERRY_ACCESS_TOKEN_TTL_SECONDS: "86400",
    LOG_LEVEL: "warn",
  };
  if (baseUrl) {
    dbName = `ferry_bench_wallet_${Date.now().toString(36)}`;
    await adminQuery(`CREATE DATABASE ${dbName}`);
    const url = new URL(baseUrl);
    url.pathname = `/${dbName}`;
    env.DATABASE_URL = url.toString();
  } else {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-bench-wallet-"));
    env.DATABASE_URL = "";
    env.FERRY_DATA_DIR = dataDir;
  }
  execFileSync(process.execPath, [path.join(repoRoot, "bin/build.js")]);
  const ferry = await startFerryProcess(env);
  const base = ferry.url;
  try {
    const call = async (
      method: string,
      url: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ) => {
      const response = await fetch(`${base}${url}`, {
        method,
        headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      if (response.status >= 300) throw new Error(`${method} ${url}: ${response.status} ${text}`);
      return JSON.parse(text) as Record<string, unknown> & { json?: never };
    };
    // A client whose users may move money at tier 0 and whose monitoring does not hold a burst.
    const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
    const privateJwk = await exportJWK(privateKey);
    const client = (await call(
      "POST",
      "/admin/clients",
      {
        name: "Wallet bench",
        signingKeys: [await exportJWK(publicKey)],
        settings: {
          kyc: {
            scenarios: [
              {
                id: "bench",
                brackets: Object.fromEntries(
                  ["DEPOSIT", "WITHDRAWAL", "TRANSFER", "TRADE", "PAYMENT"].map((t) => [
                    t,
                    [{ upToUsd: null, requiredTier: 0 }],
                  ]),
                ),
              },
            ],
            defaultScenario: "bench",
          },
          monitoring: {
            singleAmountReviewUsd: 1_000_000_000,
            velocityCount: 1_000_000,
            dailyTotalReviewUsd: 1_000_000_000,
            newUserFirstAmountReviewUsd: 1_000_000_000,
          },
        },
      },
      admin,
    )) as { clientId: string };
    const clientId = client.clientId;
    await call(
      "POST",
      `/admin/clients/${clientId}/staff`,
      { login: "admin@bench.example", role: "administrator", password: PASSWORD },
      admin,
    );
    const login = async (who: string) =>
      (
        (await call(
          "POST",
          "/api/v1/authorization",
          { login: who, password: PASSWORD },
          { "x-client-id": clientId },
        )) as {
          authorizationToken: { token: string };
        }
      ).authorizationToken.token;
    const adminToken = { authorization: `Bearer ${await login("admin@bench.example")}` };
    await call("POST", "/api/v1/currencies", { code: "EUR", name: "Euro", fraction: 2 }, adminToken);
    await call(
      "POST",
      "/api/v1/issuers",
      { currencyCode: "EUR", name: "Bench issuer", snPrefix: "77" },
      adminToken,
    );
    const bank = (await call(
      "POST",
      "/api/v1/bank-catalog",
      { name: "Bench bank", bic: "BENCDEFF", swift: "BENCDEFFXXX" },
      adminToken,
    )) as {
      bankId: string;
    };
    await call(
      "POST",
      "/api/v1/commission-profiles",
      {
        operation: "TRANSFER",
        currency: "EUR",
        feeDirection: "OUT",
        rules: [{ beginAmount: "0", type: "percent", valuePercent: "0.5" }],
      },
      adminToken,
    );
    const customers: Customer[] = [];
    for (let i = 0; i < userCount; i++) {
      const who = `customer-${i}@bench.example`;
      await call("POST", "/api/v1/users", { login: who, role: "individual", password: PASSWORD }, adminToken);
      const token = await login(who);
      const coin = (await call(
        "POST",
        "/api/v1/coins",
        { name: "Main", currencyCode: "EUR" },
        { authorization: `Bearer ${token}` },
      )) as {
        coin: { serial: string };
      };
      await call(
        "POST",
        "/api/v1/bank-top-ups/with-bank",
        {
          coinSerial: coin.coin.serial,
          amount: "1000000.00",
          bankId: bank.bankId,
          iban: "DE89370400440532013000",
          fullName: "Bench",
        },
        adminToken,
      );
      const userId = (
        (await call(
          "POST",
          "/api/v1/authorization",
          { login: who, password: PASSWORD },
          { "x-client-id": clientId },
        )) as {
          members: { user: { id: string } }[];
        }
      ).members[0]?.user.id as string;
      customers.push({ login: who, token, serial: coin.coin.serial, userId });
    }
    if (workloads.includes("purchase")) {
      // KYC_1 through the client's backend (/v1, signed), then a card each (Pay-in).
      for (const [i, c] of customers.entries()) {
        const target = `/v1/users/${c.userId}/assessments`;
        const body = JSON.stringify({
          name: { firstName: "Bench", lastName: `Buyer${i}` },
          dateOfBirth: "1990-01-01",
          addresses: [{ street: "1 Main St", city: "Berlin", postalCode: "10115", country: "DE" }],
          idDocument: { type: "PASSPORT", number: `B${1_000_000 + i}`, country: "DE" },
        });
        const signed = await signRequest({
          clientId,
          privateJwk,
          method: "POST",
          target,
          body,
          requestId: `kyc-${i}`,
        });
        const started = await fetch(`${base}${target}`, {
          method: "POST",
          headers: signed,
          body,
        });
        if (started.status !== 202) throw new Error(`assessment: ${started.status} ${await started.text()}`);
      }
      for (const [i, c] of customers.entries()) {
        for (let tries = 0; ; tries++) {
          const level = (await call("GET", "/v2/customer/kyc/data", undefined, {
            authorization: `Bearer ${c.token}`,
          })) as { kycLevel: string | null };
          if (level.kycLevel === "KYC_1") break;
          if (tries > 200) throw new Error("KYC_1 did not arrive");
          await new Promise((r) => setTimeout(r, 50));
        }
        const card = (await call(
          "POST",
          "/v3/payin/card",
          {
            cardNumber: luhn(`41111122${String(i).padStart(7, "0")}`),
            cardHolder: `Bench Buyer`,
            cardExpirationMonth: 12,
            cardExpirationYear: 2031,
            billingAddress: { address: "1 Main St", city: "Berlin", countryCode: "DE", zip: "10115" },
          },
          { authorization: `Bearer ${c.token}` },
        )) as { cardId: string };
        c.cardId = card.cardId;
      }
    }
    console.log(
      `Wallet API bench: ${baseUrl ? "PostgreSQL" : "PGlite"}, ${userCount} customers, concurrency ${concurrency}, ${seconds} s per workload, ${os.cpus().length} CPUs`,
    );
    for (const workload of workloads) {
      const before = await queries(base);
      const result = await load(base, workload, customers, clientId);
      const statements = (await queries(base)) - before;
      console.log(
        `${workload.padEnd(9)} ${result.perSecond.toFixed(0).padStart(6)} ops/s  p50 ${result.p50.toFixed(1)} ms  p99 ${result.p99.toFixed(1)} ms  ` +
          `${(statements / Math.max(1, result.requests)).toFixed(1)} statements/op  statuses ${JSON.stringify(result.statuses)}`,
      );
    }
    const invariants = (await call(
      "GET",
      `/admin/ledger/invariants?clientId=${clientId}`,
      undefined,
      admin,
    )) as { ok: boolean };
    const reconciliation = (await call(
      "GET",
      `/admin/reconciliation?clientId=${clientId}`,
      undefined,
      admin,
    )) as { ok: boolean };
    console.log(`ledger invariants ok: ${invariants.ok}; reconciliation ok: ${reconciliation.ok}`);
  } finally {
    await ferry.stop();
    if (dbName) await adminQuery(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

async function load(base: string, workload: string, customers: Customer[], clientId: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const url = new URL(base);
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const pick = () => customers[Math.floor(Math.random() * customers.length)] as Customer;
  const send = (method: string, pathname: string, headers: Record<string, string>, body?: string) =>
    new Promise<number>((resolve, reject) => {
      const request = http.request(
        {
          host: url.hostname,
          port: url.port,
          method,
          path: pathname,
          agent,
          headers: {
            ...headers,
            ...(body
              ? { "content-type": "application/json", "content-length": Buffer.byteLength(body) }
              : {}),
          },
        },
        (response) => {
          response.resume();
          response.on("end", () => resolve(response.statusCode ?? 0));
        },
      );
      request.on("error", reject);
      request.end(body);
    });
  const one = () => {
    const from = pick();
    if (workload === "transfer") {
      let to = pick();
      while (to === from) to = pick();
      return send(
        "POST",
        "/api/v1/transfers",
        { authorization: `Bearer ${from.token}` },
        JSON.stringify({
          paymentTool: { type: "COIN", srcValue: from.serial, destValue: to.serial },
          amount: "1.00",
        }),
      );
    }
    if (workload === "coins") return send("GET", "/api/v1/coins", { authorization: `Bearer ${from.token}` });
    if (workload === "purchase") return purchase(from);
    return send(
      "POST",
      "/api/v1/authorization",
      { "x-client-id": clientId },
      JSON.stringify({ login: from.login, password: PASSWORD }),
    );
  };
  /** An offer, then its payment: the pay's status (or the offer's when it failed). */
  const purchase = async (from: Customer) => {
    const auth = { authorization: `Bearer ${from.token}` };
    const offerBody = JSON.stringify({
      cardId: from.cardId,
      fromCurrency: "EUR",
      toCurrency: "USDC",
      amount: "20.00",
      operation: "PAYIN",
    });
    const offered = await fetch(`${base}/v3/payin/offer`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: offerBody,
    });
    if (offered.status !== 200) return offered.status;
    const { offerId } = (await offered.json()) as { offerId: string };
    const paid = await fetch(`${base}/v3/payin/pay/${offerId}`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ cardCVV: "123" }),
    });
    const answer = (await paid.json()) as { transactionStatus?: string };
    return paid.status === 200 && answer.transactionStatus !== "Approved" ? 299 : paid.status;
  };
  const until = Date.now() + seconds * 1000;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < until) {
        const t0 = performance.now();
        const status = await one();
        latencies.push(performance.now() - t0);
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }),
  );
  const elapsed = (Date.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return {
    requests: latencies.length,
    perSecond: latencies.length / elapsed,
    p50: at(0.5),
    p99: at(0.99),
    statuses,
  };
}

/** `partial` (15 digits) with its Luhn check digit. */
function luhn(partial: string): string {
  for (let d = 0; d <= 9; d++) {
    const n = `${partial}${d}`;
    let sum = 0;
    for (let i = 0; i < n.length; i++) {
      let digit = Number(n[n.length - 1 - i]);
      if (i % 2 === 1) digit = digit * 2 > 9 ? digit * 2 - 9 : digit * 2;
      sum += digit;
    }
    if (sum % 10 === 0) return n;
  }
  throw new Error(`no Luhn digit for ${partial}`);
}

async function queries(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^ferry_db_queries (\d+)/m.exec(text)?.[1] ?? 0);
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

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
