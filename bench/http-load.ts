/**
 * The load generator of `bench/http.ts`, run in a process of its own (as an integrator's backend
 * would be): C concurrent loops send signed requests of one kind for S seconds and report counts by
 * status and latency percentiles as one JSON line on stdout.
 *
 * The requests are signed before the clock starts (`presign` of them; more are signed on the way if
 * the run needs them) and sent with node:http on kept-alive connections: on a 2-core machine shared
 * with Ferry and its database, the generator's own CPU would otherwise be what is measured.
 *
 *   tsx bench/http-load.ts   (configured by the FERRY_LOAD environment variable, a JSON object)
 */
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { JWK } from "jose";
import { signRequest } from "../src/sdk/signing.ts";

interface LoadConfig {
  url: string;
  clientId: string;
  privateJwk: JWK;
  alg: string;
  kind: "transfer" | "deposit" | "withdrawal" | "payment";
  users: { id: string; card?: string; bank?: string }[];
  /** The merchant that receives every payment (the hot account). */
  merchant?: string;
  concurrency: number;
  seconds: number;
  /** Requests signed before the clock starts (default: 800 per second of the run). */
  presign?: number;
}

const config = JSON.parse(process.env.FERRY_LOAD ?? "{}") as LoadConfig;
const run = randomBytes(3).toString("hex");
let sequence = 0;

function pick<T>(items: T[]): T {
  const item = items[Math.floor(Math.random() * items.length)];
  if (item === undefined) throw new Error("nothing to pick from");
  return item;
}

function request(): { path: string; body: Record<string, unknown> } {
  const from = pick(config.users);
  switch (config.kind) {
    case "transfer": {
      let to = pick(config.users);
      while (to.id === from.id) to = pick(config.users);
      return {
        path: "/v1/transactions/transfers",
        body: { userId: from.id, destinationUserId: to.id, amount: "0.01", currency: "EUR" },
      };
    }
    case "payment":
      return {
        path: "/v1/transactions/payments",
        body: { userId: from.id, merchantUserId: config.merchant, amount: "0.01", currency: "EUR" },
      };
    case "deposit":
      return {
        path: "/v1/transactions/deposits",
        body: {
          userId: from.id,
          amount: "1.00",
          currency: "EUR",
          sourceMethod: { paymentMethodType: "CREDIT_CARD", paymentInformationId: from.card },
        },
      };
    case "withdrawal":
      return {
        path: "/v1/transactions/withdrawals",
        body: {
          userId: from.id,
          amount: "0.01",
          currency: "EUR",
          destinationMethod: { paymentMethodType: "ACH", paymentInformationId: from.bank },
        },
      };
  }
}

interface Signed {
  path: string;
  payload: string;
  headers: Record<string, string>;
}

async function sign(): Promise<Signed> {
  const { path, body } = request();
  const payload = JSON.stringify(body);
  const headers = await signRequest({
    clientId: config.clientId,
    privateJwk: config.privateJwk,
    alg: config.alg as "ES256",
    method: "POST",
    target: path,
    body: payload,
    requestId: `ld-${run}-${++sequence}`,
  });
  return { path, payload, headers };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: config.concurrency });

function post(signed: Signed): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      config.url + signed.path,
      {
        method: "POST",
        agent,
        headers: { ...signed.headers, "content-length": Buffer.byteLength(signed.payload) },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => {
          body += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(signed.payload);
  });
}

const presigned: Signed[] = [];
let signedLive = 0;

async function loop(deadline: number, latencies: number[], statuses: Map<string, number>) {
  while (Date.now() < deadline) {
    let signed = presigned.pop();
    if (!signed) {
      signed = await sign();
      signedLive++;
    }
    const started = performance.now();
    let key: string;
    try {
      const response = await post(signed);
      const answer = JSON.parse(response.body) as { status?: string; type?: string; message?: string };
      key = `${response.status} ${answer.status ?? answer.type ?? ""}`.trim();
      if (response.status >= 400 && !firstErrors.has(key)) firstErrors.set(key, answer.message ?? "");
    } catch (error) {
      key = `network ${(error as Error).name}`;
    }
    latencies.push(performance.now() - started);
    statuses.set(key, (statuses.get(key) ?? 0) + 1);
  }
}

/** The first message of each error answer, so a refused workload says why. */
const firstErrors = new Map<string, string>();
const latencies: number[] = [];
const statuses = new Map<string, number>();
for (let i = config.presign ?? config.seconds * 800; i > 0; i--) presigned.push(await sign());
const started = Date.now();
const deadline = started + config.seconds * 1000;
const cpuBefore = process.cpuUsage();
await Promise.all(Array.from({ length: config.concurrency }, () => loop(deadline, latencies, statuses)));
const elapsed = (Date.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
process.stdout.write(
  `${JSON.stringify({
    requests: latencies.length,
    seconds: elapsed,
    perSecond: latencies.length / elapsed,
    p50: at(0.5),
    p99: at(0.99),
    statuses: Object.fromEntries(statuses),
    errors: Object.fromEntries(firstErrors),
    signedLive,
    cpuSeconds: (() => {
      const used = process.cpuUsage(cpuBefore);
      return (used.user + used.system) / 1e6;
    })(),
  })}\n`,
);
agent.destroy();
