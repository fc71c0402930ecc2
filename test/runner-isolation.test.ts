import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { cardDeposit, distinctCard, fundedClient, GOOD_IBAN, statusOf, withdrawal } from "./funding.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import {
  authorize,
  decide,
  exchange,
  finish,
  type Operator,
  pagePath,
  setUpOneClick,
  startOperator,
} from "./oneclick.ts";
import type { TestClient } from "./platform.ts";

/**
 * Issue 17.2: the step runner isolates every call. Three 1-Click clients' operators are hostile —
 * one never answers, one answers 10 MB, one drips its answer a byte a second — and their flows
 * keep the background runner busy with retries, while other clients' card deposits (one of them
 * recovered by the runner after both in-request tries failed), withdrawals (their settlement
 * polled) and 1-Click flows complete on their own schedule plus a small margin. The hostile steps
 * end with their attempts recorded (timeout, too large), never hung PENDING.
 */

const CALLBACK_TIMEOUT_MS = 3000;
const CALLBACK_ATTEMPTS = 4;
/** How late an operation may finish past its own schedule (CI machines are slow; a hostile call holds 3 s). */
const MARGIN_MS = 1500;
const RECOVERY_INTERVAL_MS = 200; // the harness's worker interval
const PAYOUT_DELAY_MS = 300; // testSettings.sandboxPayoutDelayMs

let t: TestApp;
const servers: http.Server[] = [];
const operators: Operator[] = [];

beforeAll(async () => {
  t = await startTestApp({
    workers: true,
    settings: {
      oneClickCallbackTimeoutMs: CALLBACK_TIMEOUT_MS,
      oneClickCallbackAttempts: CALLBACK_ATTEMPTS,
      oneClickRetryBaseMs: 50,
      // Eight slots, two per client: the three hostile clients can hold six of them at most.
      stepConcurrency: 8,
      stepConcurrencyPerClient: 2,
    },
  });
});
afterAll(async () => {
  await Promise.all(operators.map((o) => o.close()));
  for (const server of servers) server.closeAllConnections();
  await t.close();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

type Hostility = "never" | "huge" | "drip";

/** An operator that answers every callback with its hostility (real HTTP on loopback). */
async function hostileOperator(kind: Hostility): Promise<Operator> {
  const drips = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      if (kind === "never") return;
      if (kind === "huge") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(`{"success":true,"userId":"u","pad":"${"x".repeat(10 * 1024 * 1024)}"}`);
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.write("{");
      const timer = setInterval(() => {
        if (res.destroyed) {
          clearInterval(timer);
          drips.delete(timer);
        } else res.write(" ");
      }, 1000);
      drips.add(timer);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls: [],
    behave: () => {},
    callsOf: () => [],
    async close() {
      for (const timer of drips) clearInterval(timer);
    },
  };
}

/** A flow started and approved; the approval's request runs the first callback inline (not awaited here). */
async function startFlow(clientId: string, n: number): Promise<{ approval: Promise<unknown> }> {
  const started = await authorize(t, clientId, { state: `hostile-${n}` });
  expect(started.statusCode, started.body).toBe(200);
  // Wrapped: an async function would otherwise wait for the approval's request itself.
  const approval = decide(t, pagePath(started.json()), "approve", `199001${10 + n}1234`);
  return { approval: approval.catch(() => undefined) };
}

const stepsOfClient = (clientId: string) =>
  t.database.db
    .selectFrom("steps")
    .select(["kind", "status", "attempts", "last_error", "locked_until"])
    .where("client_id", "=", clientId)
    .execute();

/** Waits for `check` to hold, polling; answers how long it took, or undefined after `limitMs`. */
async function within(limitMs: number, check: () => Promise<boolean>): Promise<number | undefined> {
  const started = Date.now();
  while (Date.now() - started < limitMs) {
    if (await check()) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 25));
  }
  return (await check()) ? Date.now() - started : undefined;
}

/** A card deposit both of whose in-request tries fail: only the runner's retry (after its backoff) captures it. */
async function recoveredDeposit(client: TestClient, id: string) {
  t.services.sandboxGate.failNext("acquirer.charge", 2);
  const answered = await cardDeposit(client, "payer", "10.00", id, distinctCard());
  // PENDING (202) as a rule; CAPTURED (201) when the claim loop took the step first and got the answer in time.
  expect([201, 202], answered.body).toContain(answered.statusCode);
  expect(["PENDING", "CAPTURED"], answered.body).toContain(answered.json().status);
  // Due again after one backoff (stepRetryBaseMs, 50 ms), run by the next round of the claim loop.
  return within(
    50 + RECOVERY_INTERVAL_MS + MARGIN_MS,
    async () => (await statusOf(client, id)) === "CAPTURED",
  );
}

/** A withdrawal accepted by the bank in the request: its settlement is polled by the runner after the payout delay. */
async function settledWithdrawal(client: TestClient, id: string) {
  const answered = await withdrawal(client, "payer", "5.00", id, GOOD_IBAN);
  expect(answered.statusCode, answered.body).toBeLessThan(300);
  return within(
    PAYOUT_DELAY_MS + RECOVERY_INTERVAL_MS + MARGIN_MS,
    async () => (await statusOf(client, id)) === "CAPTURED",
  );
}

/** A whole 1-Click flow against a well-behaved operator: the browser gets its code. */
async function oneClickFlow(clientId: string, basic: string, n: number) {
  const started = Date.now();
  const answer = await authorize(t, clientId, { state: `good-${n}` });
  expect(answer.statusCode, answer.body).toBe(200);
  const decided = await decide(t, pagePath(answer.json()), "approve", "198502101234");
  expect(decided.statusCode, decided.body).toBe(302);
  const back = await finish(t, String(decided.headers.location), 10_000);
  const code = back.searchParams.get("code");
  expect(code, back.toString()).toBeTruthy();
  const token = await exchange(t, basic, code ?? "");
  expect(token.statusCode, token.body).toBe(200);
  return Date.now() - started;
}

it("hostile operators (never answering, 10 MB, a byte a second) never delay other clients' steps", async () => {
  // Other clients: one with a funded user for deposits and withdrawals, one 1-Click client with a good operator.
  const payments = await fundedClient(t, {
    // Several deposits and withdrawals in a minute: velocity review is not the subject here.
    settings: { monitoring: { velocityCount: 1_000_000, dailyTotalReviewUsd: 1_000_000_000 } },
    users: [["payer", "500.00"]],
  });
  const good = await startOperator();
  operators.push(good);
  const goodClick = await setUpOneClick(t, good);

  // The hostile clients, three flows each: after the approval's inline attempt, their retries
  // are the background runner's.
  const hostile = new Map<Hostility, string>();
  const approvals: Promise<unknown>[] = [];
  for (const kind of ["never", "huge", "drip"] as const) {
    const operator = await hostileOperator(kind);
    operators.push(operator);
    const { clientId } = await setUpOneClick(t, operator);
    hostile.set(kind, clientId);
    for (let n = 0; n < 3; n++) approvals.push((await startFlow(clientId, n)).approval);
  }
  const settledAll = { done: false };
  void Promise.all(approvals).then(() => {
    settledAll.done = true;
  });
  // Wait (bounded) until the runner itself holds hostile steps: a second attempt under a lease.
  await within(CALLBACK_TIMEOUT_MS * 2 + 2000, async () => {
    for (const clientId of hostile.values()) {
      const steps = await stepsOfClient(clientId);
      if (!steps.some((s) => s.attempts >= 2)) return false;
    }
    return true;
  });

  // While they are busy: each other client's operation within its own schedule plus the margin.
  for (let round = 0; round < 3; round++) {
    const [deposit, payout, flow] = await Promise.all([
      recoveredDeposit(payments, `iso-dep-${round}`),
      settledWithdrawal(payments, `iso-wd-${round}`),
      oneClickFlow(goodClick.clientId, goodClick.basic, round),
    ]);
    expect(deposit, `round ${round}: the card deposit was not recovered in time`).toBeDefined();
    expect(payout, `round ${round}: the withdrawal's settlement was not polled in time`).toBeDefined();
    expect(flow, `round ${round}: the 1-Click flow took ${flow} ms`).toBeLessThan(4000);
  }

  // The hostile steps: every attempt recorded with why it failed, none hung under a lease forever.
  const reasons: Record<Hostility, RegExp> = {
    never: /TIMEOUT/,
    drip: /TIMEOUT/,
    huge: /INVALID_ANSWER: .*too large/,
  };
  for (const [kind, clientId] of hostile) {
    const recorded = await within(CALLBACK_TIMEOUT_MS * CALLBACK_ATTEMPTS + 10_000, async () => {
      const steps = await stepsOfClient(clientId);
      return steps.length > 0 && steps.every((s) => s.status === "FAILED");
    });
    const steps = await stepsOfClient(clientId);
    expect(recorded, `${kind}: ${JSON.stringify(steps)}`).toBeDefined();
    for (const step of steps) {
      expect(step.attempts).toBe(CALLBACK_ATTEMPTS);
      expect(step.last_error).toMatch(reasons[kind]);
      expect(step.locked_until).toBeNull();
    }
  }
  // Every approval's request has answered (none waits on a hung call).
  expect(await within(5000, async () => settledAll.done)).toBeDefined();
}, 120_000);
