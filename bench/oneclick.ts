/**
 * HTTP benchmark of the 1-Click flow (/oauth, oneclick-api.md) as a browser and an operator drive
 * it: `ferry serve` in a process of its own on a fresh database (DATABASE_URL → a new PostgreSQL
 * database, dropped after; otherwise PGlite in a temporary directory), an operator platform in this
 * process (test/oneclick.ts `startOperator`: node:http on loopback, answering Ferry's callbacks as a
 * well-behaved operator, a user id of its own for each person), and C concurrent loops on kept-alive
 * connections for S seconds.
 *
 * Workload "signup-deposit", one operation = one whole flow with a new person:
 *   authorize  GET /oauth/authorize (sandbox-bankid, 20.00 EUR, iframe=true) → redirectOutput.url
 *   approve    GET the provider's page (its form's csrf token), POST it (decision=approve, a distinct personid), then the 302s (and
 *              the waiting page, refreshed as a browser does every second) until redirect_uri?code=
 *   token      POST /oauth/token (Basic client_id:secret, form body) → 200
 *
 * Prints flows/s, p50/p99 of the whole flow and of each phase, answers by outcome, database
 * statements per flow (`ferry_db_queries` on /metrics), operator callbacks per flow (by action);
 * then the ledger invariants and reconciliation.
 *
 *   npm run bench:oneclick -- [--concurrency 16] [--seconds 10]
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { adminQuery, postgresUrl, withDatabase } from "../test/database.ts";
import { accept, OPERATOR_AUTH, REDIRECT_URI, startOperator } from "../test/oneclick.ts";
import { repoRoot, startFerryProcess } from "../test/process.ts";

const { values: args } = parseArgs({
  options: {
    concurrency: { type: "string", default: "16" },
    seconds: { type: "string", default: "10" },
  },
});
const concurrency = Number(args.concurrency);
const seconds = Number(args.seconds);
const ADMIN_PASSWORD = randomBytes(12).toString("hex");
const admin = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString("base64")}` };
/** How long a browser waits before reloading the waiting page (its `<meta http-equiv="refresh">`). */
const REFRESH_MS = 1000;

interface Answer {
  status: number;
  location: string | undefined;
  body: string;
}

async function main() {
  let dbName: string | undefined;
  let dataDir: string | undefined;
  const env: Record<string, string> = {
    FERRY_ADMIN_PASSWORD: ADMIN_PASSWORD,
    FERRY_MASTER_KEY: randomBytes(32).toString("base64"),
    FERRY_DEMO_CLIENT: "false",
    LOG_LEVEL: "warn",
  };
  if (postgresUrl) {
    dbName = `ferry_bench_oneclick_${Date.now().toString(36)}`;
    await adminQuery(`CREATE DATABASE ${dbName}`);
    env.DATABASE_URL = withDatabase(postgresUrl, dbName);
  } else {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-bench-oneclick-"));
    env.DATABASE_URL = "";
    env.FERRY_DATA_DIR = dataDir;
  }
  // The operator knows each person by their personal id: a user id of its own for each one.
  const operator = await startOperator((action, body) =>
    action === "signin"
      ? { body: { ...(accept(action, body).body as object), userId: `op-${body.personid}` } }
      : undefined,
  );
  execFileSync(process.execPath, [path.join(repoRoot, "bin/build.js")]);
  const ferry = await startFerryProcess(env);
  const base = ferry.url;
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency + 4 });
  const send = (method: string, target: string, headers: Record<string, string> = {}, body?: string) =>
    new Promise<Answer>((resolve, reject) => {
      const request = http.request(
        `${base}${target}`,
        {
          method,
          agent,
          headers: {
            ...headers,
            ...(body === undefined ? {} : { "content-length": Buffer.byteLength(body) }),
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (c: Buffer) => chunks.push(c));
          response.on("end", () =>
            resolve({
              status: response.statusCode ?? 0,
              location: response.headers.location,
              body: Buffer.concat(chunks).toString("utf8"),
            }),
          );
        },
      );
      request.on("error", reject);
      request.end(body);
    });
  const call = async (method: string, target: string, body?: unknown) => {
    const answer = await send(
      method,
      target,
      { ...admin, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body === undefined ? undefined : JSON.stringify(body),
    );
    if (answer.status >= 300) throw new Error(`${method} ${target}: ${answer.status} ${answer.body}`);
    return JSON.parse(answer.body) as Record<string, unknown>;
  };
  const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
  const formType = { "content-type": "application/x-www-form-urlencoded" };
  try {
    // A sandbox client set up for 1-Click against the operator, with its OAuth client secret.
    const { clientId } = (await call("POST", "/admin/clients", { name: "1-Click bench" })) as {
      clientId: string;
    };
    await call("PATCH", `/admin/clients/${clientId}`, {
      oneClick: {
        redirectUris: [REDIRECT_URI],
        callbackUrl: `${operator.url}/api/{action}`,
        callbackAuth: { type: "basic", ...OPERATOR_AUTH },
      },
    });
    const { clientSecret } = (await call("POST", `/admin/clients/${clientId}/oauth-secret`)) as {
      clientSecret: string;
    };
    const basic = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString("base64")}`;

    let sequence = 0;
    let waits = 0;
    /** A distinct valid personal id (YYYYMMDDNNNN) per flow: 10,000 a birthday from 1950-01-01 on. */
    const nextPersonid = () => {
      const n = sequence++;
      const day = new Date(Date.UTC(1950, 0, 1 + Math.floor(n / 10_000)));
      return `${day.toISOString().slice(0, 10).replaceAll("-", "")}${String(n % 10_000).padStart(4, "0")}`;
    };
    /** One whole flow: its outcome ("ok", or where and how it failed) and the phases' durations. */
    const flow = async (): Promise<{ outcome: string; phases?: [number, number, number] }> => {
      const t0 = performance.now();
      const query = new URLSearchParams({
        client_id: clientId,
        redirect_uri: REDIRECT_URI,
        response_type: "code",
        state: `st-${sequence}`,
        scope: "default",
        identity_provider: "sandbox-bankid",
        amount: "20.00",
        currency: "EUR",
        iframe: "true",
      });
      const started = await send("GET", `/oauth/authorize?${query}`);
      const answer = started.status === 200 ? (JSON.parse(started.body) as Record<string, unknown>) : {};
      const url = (answer.redirectOutput as { url?: string } | undefined)?.url;
      if (!answer.success || !url)
        return { outcome: `authorize ${started.status} ${started.body.slice(0, 120)}` };
      const t1 = performance.now();
      // The page as the browser shows it in the iframe: its form carries the anti-CSRF token.
      const shown = await send("GET", new URL(url).pathname);
      const csrf = /name="csrf" value="([^"]+)"/.exec(shown.body)?.[1] ?? "";
      let at = await send(
        "POST",
        new URL(url).pathname,
        formType,
        form({ decision: "approve", personid: nextPersonid(), csrf }),
      );
      // The 302s, and the waiting page reloaded as the browser does, until redirect_uri.
      let page = "";
      const end = Date.now() + 30_000;
      while (!at.location?.startsWith(REDIRECT_URI)) {
        if (Date.now() > end) return { outcome: "approve: the flow did not finish in 30 s" };
        if (at.status === 302 && at.location) page = new URL(at.location, base).pathname;
        else if (at.status === 200 && page && at.body.includes('http-equiv="refresh"')) {
          waits++;
          await new Promise((r) => setTimeout(r, REFRESH_MS));
        } else return { outcome: `approve ${at.status} ${at.body.slice(0, 120)}` };
        at = await send("GET", page);
      }
      const back = new URL(at.location);
      const code = back.searchParams.get("code");
      if (!code) return { outcome: `redirect error=${back.searchParams.get("error")}` };
      const t2 = performance.now();
      const token = await send(
        "POST",
        "/oauth/token",
        { ...formType, authorization: basic },
        form({ grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI }),
      );
      if (token.status !== 200) return { outcome: `token ${token.status} ${token.body.slice(0, 120)}` };
      return { outcome: "ok", phases: [t1 - t0, t2 - t1, performance.now() - t2] };
    };

    // A flow before the clock starts (currency, system accounts and caches made), and the idle rate
    // of statements (workers polling) to read the figures against.
    if ((await flow()).outcome !== "ok") throw new Error("the warm-up flow failed");
    const idleFrom = await queries(base);
    await new Promise((r) => setTimeout(r, 2000));
    const idlePerSecond = ((await queries(base)) - idleFrom) / 2;

    console.log(
      `1-Click bench (signup-deposit): ${postgresUrl ? "PostgreSQL" : "PGlite"}, concurrency ${concurrency}, ${seconds} s, ${os.cpus().length} CPUs, load average ${os.loadavg()[0]?.toFixed(1)} at the start`,
    );
    const before = await queries(base);
    const callbacksBefore = operator.calls.length;
    const wholes: number[] = [];
    const phases: [number[], number[], number[]] = [[], [], []];
    const outcomes: Record<string, number> = {};
    const until = Date.now() + seconds * 1000;
    const startedAt = Date.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (Date.now() < until) {
          const t0 = performance.now();
          const { outcome, phases: took } = await flow().catch((error: Error) => ({
            outcome: `error ${error.message}`,
            phases: undefined,
          }));
          outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
          if (!took) continue;
          wholes.push(performance.now() - t0);
          took.forEach((ms, i) => {
            phases[i as 0 | 1 | 2].push(ms);
          });
        }
      }),
    );
    const elapsed = (Date.now() - startedAt) / 1000;
    const statements = (await queries(base)) - before;
    const flows = Object.values(outcomes).reduce((a, b) => a + b, 0);
    const byAction: Record<string, number> = {};
    for (const c of operator.calls.slice(callbacksBefore)) byAction[c.action] = (byAction[c.action] ?? 0) + 1;
    const perFlow = (n: number) => (n / Math.max(1, flows)).toFixed(2);
    console.log(
      `flows     ${(wholes.length / elapsed).toFixed(1)} /s  ${percentiles(wholes)}  (${wholes.length} completed of ${flows}; ${waits} waiting-page refreshes)`,
    );
    for (const [i, name] of ["authorize", "approve → redirect", "token"].entries())
      console.log(`  ${name.padEnd(19)} ${percentiles(phases[i as 0 | 1 | 2])}`);
    console.log(`outcomes  ${JSON.stringify(outcomes)}`);
    console.log(
      `database  ${perFlow(statements)} statements/flow (${statements} in ${elapsed.toFixed(1)} s; idle ${idlePerSecond.toFixed(1)}/s)`,
    );
    console.log(
      `operator  ${perFlow(operator.calls.length - callbacksBefore)} callbacks/flow ${JSON.stringify(
        Object.fromEntries(Object.entries(byAction).map(([a, n]) => [a, perFlow(n)])),
      )}`,
    );
    const invariants = (await call("GET", `/admin/ledger/invariants?clientId=${clientId}`)) as {
      ok: boolean;
      transfers: number;
    };
    const reconciliation = (await call("GET", `/admin/reconciliation?clientId=${clientId}`)) as {
      ok: boolean;
      checked: number;
      mismatches: unknown[];
    };
    console.log(
      `ledger invariants ok: ${invariants.ok} (${invariants.transfers} transfers); reconciliation ok: ${reconciliation.ok} (${reconciliation.checked} checked, ${reconciliation.mismatches.length} mismatches)`,
    );
  } finally {
    agent.destroy();
    await ferry.stop();
    await operator.close();
    if (dbName) await adminQuery(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** "p50 … ms  p99 … ms" of some durations. */
function percentiles(ms: number[]): string {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return `p50 ${at(0.5).toFixed(1)} ms  p99 ${at(0.99).toFixed(1)} ms`;
}

async function queries(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^ferry_db_queries (\d+)/m.exec(text)?.[1] ?? 0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
