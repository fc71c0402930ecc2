import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as ledger from "../src/modules/ledger/service.ts";
import { readUsage } from "../src/modules/transactions/usage.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import {
  accept,
  type Behaviour,
  decide,
  exchange,
  OPERATOR_AUTH,
  OPERATOR_USER,
  type Operator,
  type OperatorAnswer,
  pagePath,
  REDIRECT_URI,
  setUpOneClick,
  startOperator,
} from "./oneclick.ts";

/**
 * The 1-Click flow end to end against a real operator server on loopback (issue 11): each
 * scenario checks what the operator was called with, where the browser is sent, the status the
 * operator's backend reads, the ledger, reconciliation and the ledger's invariants. Every scenario
 * has its own operator and client, so their callbacks and books are its own.
 */

let t: TestApp;
let operator: Operator;
const operators: Operator[] = [];
beforeAll(async () => {
  t = await startTestApp({ workers: true });
  operator = await startOperator();
  operators.push(operator);
});
afterAll(async () => {
  await Promise.all(operators.map((o) => o.close()));
  await t.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Ctx {
  clientId: string;
  clientSecret: string;
  basic: string;
  operator: Operator;
}

/** A fresh operator (answering as `behaviour` says, else accepting) and a client set up against it. */
async function operatorClient(behaviour?: Behaviour): Promise<Ctx> {
  const op = await startOperator(behaviour);
  operators.push(op);
  return { ...(await setUpOneClick(t, op)), operator: op };
}

/** GET /oauth/authorize (iframe=true) with the defaults of a 100.00 EUR bankid deposit; undefined drops a parameter. */
async function start(ctx: Ctx, params: Record<string, string | undefined> = {}) {
  const all: Record<string, string | undefined> = {
    client_id: ctx.clientId,
    redirect_uri: REDIRECT_URI,
    response_type: "code",
    state: "st-1",
    scope: "default",
    identity_provider: "sandbox-bankid",
    amount: "100.00",
    currency: "EUR",
    ...params,
  };
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(all)) if (v !== undefined) query.set(k, v);
  const res = await t.app.inject({ method: "GET", url: `/oauth/authorize?${query}` });
  expect(res.statusCode, res.body).toBe(200);
  const answer = res.json();
  expect(answer.success, res.body).toBe(true);
  return { txId: String(answer.txId), path: pagePath(answer) };
}

/** Follows the browser (waiting page) until it is sent to redirect_uri; no answer on the way is a 5xx. */
async function follow(location: string, timeoutMs = 20_000): Promise<URL> {
  const end = Date.now() + timeoutMs;
  let at = location;
  while (!at.startsWith(REDIRECT_URI)) {
    if (Date.now() > end) throw new Error(`the flow did not finish: still at ${at}`);
    const url = new URL(at, "http://x");
    const res = await t.app.inject({ method: "GET", url: `${url.pathname}${url.search}` });
    expect(res.statusCode, res.body).toBeLessThan(500);
    if (res.statusCode === 302) at = String(res.headers.location);
    else await sleep(100);
  }
  return new URL(at);
}

/** One whole flow: authorize → the provider page's decision → redirect_uri. */
async function run(
  ctx: Ctx,
  options: {
    params?: Record<string, string | undefined>;
    decision?: "approve" | "deny";
    personid?: string;
  } = {},
) {
  const { txId, path } = await start(ctx, options.params);
  const decided = await decide(t, path, options.decision ?? "approve", options.personid);
  expect(decided.statusCode, decided.body).toBe(302);
  const back = await follow(String(decided.headers.location));
  return { txId, path, back };
}

/** The browser came back with an RFC 6749 error (and the flow's own errCode / errMsg when it has them). */
function expectError(
  back: URL,
  error: string,
  description: string,
  extra: { errCode?: string | null; errMsg?: RegExp | null } = {},
) {
  expect(back.origin + back.pathname).toBe(REDIRECT_URI);
  expect(back.searchParams.get("error")).toBe(error);
  expect(back.searchParams.get("error_description")).toBe(description);
  expect(back.searchParams.get("state")).toBe("st-1");
  expect(back.searchParams.get("code")).toBeNull();
  if (extra.errCode !== undefined) expect(back.searchParams.get("errCode")).toBe(extra.errCode);
  if (extra.errMsg === null) expect(back.searchParams.get("errMsg")).toBeNull();
  else if (extra.errMsg) expect(back.searchParams.get("errMsg")).toMatch(extra.errMsg);
}

function codeOf(back: URL): string {
  expect(back.origin + back.pathname).toBe(REDIRECT_URI);
  expect(back.searchParams.get("error")).toBeNull();
  expect(back.searchParams.get("state")).toBe("st-1");
  const code = back.searchParams.get("code");
  expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);
  return code ?? "";
}

/** GET /oauth/transactions/{txId} as the operator's backend reads it. */
async function expectStatus(
  ctx: Ctx,
  txId: string,
  expected: {
    txState: string;
    statusCode: number;
    statusName: string;
    amount?: string | null;
    currency?: string | null;
    userId?: string | null;
  },
) {
  const res = await t.app.inject({
    method: "GET",
    url: `/oauth/transactions/${txId}`,
    headers: { authorization: ctx.basic },
  });
  expect(res.statusCode, res.body).toBe(200);
  expect(res.json()).toMatchObject({ txId, ...expected });
  return res.json();
}

const db = () => t.database.db;

/** The client's settlement account (the operator's money at Ferry): credits − debits. */
async function settlementOf(clientId: string, currency = "EUR"): Promise<bigint> {
  if (!(await ledger.findCurrency(db(), clientId, currency))) return 0n; // a sign-in-only client has none
  const id = await ledger.systemAccountId(db(), { clientId, currency, kind: "SETTLEMENT" });
  const a = await ledger.getAccount(db(), id, clientId);
  return a.creditsPosted - a.debitsPosted + a.creditsPending - a.debitsPending;
}

/** The bank rail's transit account (money the bank took from users): debits − credits. */
async function bankTransitOf(clientId: string, currency = "EUR"): Promise<bigint> {
  if (!(await ledger.findCurrency(db(), clientId, currency))) return 0n;
  const id = await ledger.systemAccountId(db(), { clientId, currency, kind: "TRANSIT", rail: "bank" });
  const a = await ledger.getAccount(db(), id, clientId);
  return a.debitsPosted - a.creditsPosted + a.debitsPending - a.creditsPending;
}

/** The ledger transfers of one flow. */
async function legsOf(clientId: string, txId: string) {
  return db()
    .selectFrom("ledger_transfers")
    .select(["id", "amount", "status"])
    .where("client_id", "=", clientId)
    .where("operation_id", "like", `txn:oc-${txId}%`)
    .execute();
}

/** The provider's bank payments of one flow (sandbox_idp_payments by Ferry's key). */
async function paymentsOf(clientId: string, txId: string) {
  return db()
    .selectFrom("sandbox_idp_payments")
    .selectAll()
    .where("idempotency_key", "=", `${clientId}:oc-${txId}`)
    .execute();
}

async function stepsOf(clientId: string, txId: string) {
  return db()
    .selectFrom("steps")
    .select(["kind", "status", "attempts", "last_error"])
    .where("client_id", "=", clientId)
    .where("process_id", "=", `oc-${txId}`)
    .orderBy("created_at")
    .execute();
}

/** Reconciliation finds nothing wrong for the client and the ledger keeps its invariants. */
async function expectBooksAgree(clientId: string) {
  const report = await t.services.reconcile(clientId);
  expect(report.mismatches).toEqual([]);
  const invariants = await ledger.checkInvariants(db());
  expect(invariants.ok, JSON.stringify(invariants)).toBe(true);
}

/** Nothing at all on the books for the flow. */
async function expectNothingBooked(ctx: Ctx, txId: string) {
  expect(await legsOf(ctx.clientId, txId)).toEqual([]);
  expect(await settlementOf(ctx.clientId)).toBe(0n);
  expect(await bankTransitOf(ctx.clientId)).toBe(0n);
  await expectBooksAgree(ctx.clientId);
}

const actionsOf = (op: Operator) => op.calls.map((c) => c.action);

async function eventually<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > end) throw new Error("timed out waiting");
    await sleep(50);
  }
}

const slowAccept = (action: string, body: Record<string, unknown>): OperatorAnswer => ({
  ...accept(action, body),
  delayMs: 1500,
});

describe("1-Click: sign up and deposit", () => {
  it("the happy path: provider page → approve → signin, verifyuser, authorize, payment, transfer → code → token", async () => {
    const ctx = await operatorClient();
    const { txId, path } = await start(ctx);
    const page = await t.app.inject({ method: "GET", url: path });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain("Test Testsson");
    expect(page.body).toContain("100.00 EUR");

    const decided = await decide(t, path, "approve");
    expect(decided.statusCode, decided.body).toBe(302);
    const code = codeOf(await follow(String(decided.headers.location)));

    expect(actionsOf(ctx.operator)).toEqual(["signin", "verifyuser", "authorize", "transfer"]);
    const expectedAuth = `Basic ${Buffer.from(`${OPERATOR_AUTH.username}:${OPERATOR_AUTH.password}`).toString("base64")}`;
    for (const call of ctx.operator.calls) expect(call.authorization).toBe(expectedAuth);
    const signin = ctx.operator.callsOf("signin")[0]?.body ?? {};
    expect(signin).toMatchObject({
      txRefId: `${ctx.clientId}A${txId}`,
      firstName: "Test",
      lastName: "Testsson",
      personid: "199001011234",
      dob: "1990-01-01",
      identityProvider: "sandbox-bankid",
    });
    expect(ctx.operator.callsOf("verifyuser")[0]?.body).toEqual({
      sessionId: "op-session-1",
      userId: OPERATOR_USER,
    });
    expect(ctx.operator.callsOf("authorize")[0]?.body).toMatchObject({
      userId: OPERATOR_USER,
      txAmount: "100.00",
      txAmountCy: "EUR",
      txId,
    });
    const transfer = ctx.operator.callsOf("transfer")[0]?.body ?? {};
    expect(transfer).toMatchObject({
      userId: OPERATOR_USER,
      authCode: `auth-${txId}`,
      txAmount: "100.00",
      txAmountCy: "EUR",
      txId,
      txRefId: `${ctx.clientId}A${txId}`,
      fee: "0.00",
      feeCy: "EUR",
    });

    const token = await exchange(t, ctx.basic, code);
    expect(token.statusCode, token.body).toBe(200);
    expect(token.json()).toMatchObject({
      token_type: "bearer",
      userId: OPERATOR_USER,
      clientId: ctx.clientId,
      txRefId: `${ctx.clientId}A${txId}`,
      name: "Test Testsson",
      personid: "199001011234",
      country: "SWE",
      dob: "1990-01-01",
      identityProvider: "sandbox-bankid",
    });
    await expectStatus(ctx, txId, {
      txState: "SUCCESSFUL",
      statusCode: 0,
      statusName: "SUCCESS",
      amount: "100.00",
      currency: "EUR",
      userId: OPERATOR_USER,
    });

    expect(await settlementOf(ctx.clientId)).toBe(10000n);
    expect(await bankTransitOf(ctx.clientId)).toBe(10000n);
    expect(await legsOf(ctx.clientId, txId)).toHaveLength(1);
    expect(await paymentsOf(ctx.clientId, txId)).toMatchObject([{ status: "PAID" }]);
    await expectBooksAgree(ctx.clientId);
  });

  it("1. deny on the provider page → 600 CANCELLED_BY_USER, access_denied, no callbacks, no legs", async () => {
    const ctx = await operatorClient();
    const { txId, path, back } = await run(ctx, { decision: "deny" });
    expectError(back, "access_denied", "err_cancelled_by_user", { errCode: null, errMsg: null });
    await expectStatus(ctx, txId, {
      txState: "CANCELLED",
      statusCode: 600,
      statusName: "ERR_CANCELLED_BY_USER",
    });
    await sleep(300); // the recovery worker had its chance to run anything scheduled
    expect(ctx.operator.calls).toEqual([]);
    expect(await stepsOf(ctx.clientId, txId)).toEqual([]);
    expect(await paymentsOf(ctx.clientId, txId)).toEqual([]);
    await expectNothingBooked(ctx, txId);
    // A second decision on an ended flow changes nothing.
    const again = await decide(t, path, "approve");
    expect(again.statusCode).toBe(302);
    await expectStatus(ctx, txId, {
      txState: "CANCELLED",
      statusCode: 600,
      statusName: "ERR_CANCELLED_BY_USER",
    });
  });

  it("2. the operator refuses authorize → 513 NOT_AUTHORIZED with its errCode, no payment, no cancel, no legs", async () => {
    const ctx = await operatorClient((action) =>
      action === "authorize"
        ? {
            body: {
              success: false,
              userId: OPERATOR_USER,
              errCode: "LIMIT",
              errMsg: "over the deposit limit",
            },
          }
        : undefined,
    );
    const { txId, back } = await run(ctx);
    expectError(back, "access_denied", "err_declined_not_authorized", {
      errCode: "LIMIT",
      errMsg: /^over the deposit limit$/,
    });
    await expectStatus(ctx, txId, {
      txState: "FAILED",
      statusCode: 513,
      statusName: "ERR_DECLINED_NOT_AUTHORIZED",
      amount: "100.00",
    });
    expect(actionsOf(ctx.operator)).toEqual(["signin", "verifyuser", "authorize"]);
    const kinds = (await stepsOf(ctx.clientId, txId)).map((s) => s.kind);
    expect(kinds).toEqual(["OC_SIGNIN", "OC_VERIFYUSER", "OC_KYC_CHECK", "OC_AUTHORIZE"]);
    expect(await paymentsOf(ctx.clientId, txId)).toEqual([]);
    await expectNothingBooked(ctx, txId);
  });

  it("3. amount 504.00 → the bank refuses after authorize: 504 NO_FUNDS, cancel sent with 504 and the authCode, no legs", async () => {
    const ctx = await operatorClient();
    const { txId, back } = await run(ctx, { params: { amount: "504.00" } });
    expectError(back, "access_denied", "err_declined_no_funds", { errCode: "504", errMsg: /NO_FUNDS/ });
    await expectStatus(ctx, txId, {
      txState: "FAILED",
      statusCode: 504,
      statusName: "ERR_DECLINED_NO_FUNDS",
      amount: "504.00",
    });
    const cancel = await eventually(() => ctx.operator.callsOf("cancel")[0]);
    expect(cancel.body).toMatchObject({
      userId: OPERATOR_USER,
      authCode: `auth-${txId}`,
      txAmount: "504.00",
      txAmountCy: "EUR",
      txId,
      statusCode: 504,
    });
    expect(actionsOf(ctx.operator)).toEqual(["signin", "verifyuser", "authorize", "cancel"]);
    expect(await paymentsOf(ctx.clientId, txId)).toMatchObject([{ status: "NO_FUNDS" }]);
    const delivered = await eventually(() =>
      db()
        .selectFrom("audit_log")
        .select("id")
        .where("client_id", "=", ctx.clientId)
        .where("action", "=", "oneclick.cancel_delivered")
        .where("entity_id", "=", txId)
        .executeTakeFirst(),
    );
    expect(delivered).toBeTruthy();
    await expectNothingBooked(ctx, txId);
  });

  it("4. the operator is down for the first transfers (503, 503) → retried on the same txId, credited once, SUCCESS", async () => {
    const ctx = await operatorClient((action, _body, nth) =>
      action === "transfer" && nth <= 2 ? { status: 503, body: "Service Unavailable" } : undefined,
    );
    const { txId, back } = await run(ctx, { params: { amount: "250.50" } });
    codeOf(back);
    await expectStatus(ctx, txId, {
      txState: "SUCCESSFUL",
      statusCode: 0,
      statusName: "SUCCESS",
      amount: "250.50",
    });
    const transfers = ctx.operator.callsOf("transfer");
    expect(transfers).toHaveLength(3);
    for (const call of transfers) {
      expect(call.body.txId).toBe(txId);
      expect(call.body.txRefId).toBe(`${ctx.clientId}A${txId}`);
      expect(call.body.authCode).toBe(`auth-${txId}`);
    }
    expect(actionsOf(ctx.operator)).toEqual([
      "signin",
      "verifyuser",
      "authorize",
      "transfer",
      "transfer",
      "transfer",
    ]);
    expect(await settlementOf(ctx.clientId)).toBe(25050n);
    expect(await bankTransitOf(ctx.clientId)).toBe(25050n);
    expect(await legsOf(ctx.clientId, txId)).toHaveLength(1);
    expect(await paymentsOf(ctx.clientId, txId)).toHaveLength(1);
    await expectBooksAgree(ctx.clientId);
  });

  it("5. the operator never takes the transfer → INCONSISTENT (400 on timeouts, 402 on errors); staff retry one, resolve the other; audited", async () => {
    const mode = new Map<string, "hang" | "error" | "fixed">();
    const ctx = await operatorClient((action, body) => {
      if (action !== "transfer") return undefined;
      const m = mode.get(String(body.txId));
      if (m === "hang") return { delayMs: Number.POSITIVE_INFINITY };
      if (m === "error") return { status: 500, body: { error: "boom" } };
      return undefined;
    });
    const attempts = t.services.oneClick.deps.config.transferAttempts;

    const flow = async (m: "hang" | "error", amount: string) => {
      const { txId, path } = await start(ctx, { amount });
      mode.set(txId, m);
      const decided = await decide(t, path, "approve");
      expect(decided.statusCode, decided.body).toBe(302);
      return { txId, back: await follow(String(decided.headers.location)) };
    };
    const [hung, failed] = await Promise.all([flow("hang", "10.00"), flow("error", "20.00")]);

    // Paid but not confirmed by the operator: a server-side problem, not the user's refusal.
    expectError(hung.back, "server_error", "err_read_timeout", { errMsg: /did not confirm/ });
    await expectStatus(ctx, hung.txId, {
      txState: "INCONSISTENT",
      statusCode: 400,
      statusName: "ERR_READ_TIMEOUT",
    });
    expectError(failed.back, "server_error", "err_inconsistent_transaction", { errMsg: /did not confirm/ });
    await expectStatus(ctx, failed.txId, {
      txState: "INCONSISTENT",
      statusCode: 402,
      statusName: "ERR_INCONSISTENT_TRANSACTION",
    });
    const transfersOf = (txId: string) =>
      ctx.operator.callsOf("transfer").filter((c) => c.body.txId === txId);
    expect(transfersOf(hung.txId)).toHaveLength(attempts);
    expect(transfersOf(failed.txId)).toHaveLength(attempts);
    expect(ctx.operator.callsOf("transfer")).toHaveLength(2 * attempts);
    // The payments happened: the money is the operator's on Ferry's books, whatever the operator heard.
    expect(await settlementOf(ctx.clientId)).toBe(3000n);
    await expectBooksAgree(ctx.clientId);

    const list = await t.app.inject({
      method: "GET",
      url: `/admin/clients/${ctx.clientId}/oneclick/transactions?state=INCONSISTENT`,
      headers: t.adminAuth,
    });
    expect(list.statusCode, list.body).toBe(200);
    const listed = list.json().records as Array<{ txId: string; statusCode: number; txState: string }>;
    expect(listed.map((r) => r.txId).sort()).toEqual([hung.txId, failed.txId].sort());
    for (const r of listed) expect(r.txState).toBe("INCONSISTENT");

    // Staff retry the hung one once the operator is fixed: the same txId again, SUCCESS.
    mode.set(hung.txId, "fixed");
    const retried = await t.app.inject({
      method: "POST",
      url: `/admin/clients/${ctx.clientId}/oneclick/transactions/${hung.txId}/retry`,
      headers: t.adminAuth,
    });
    expect(retried.statusCode, retried.body).toBe(200);
    expect(retried.json()).toMatchObject({ txId: hung.txId, statusCode: 0, statusName: "SUCCESS" });
    expect(transfersOf(hung.txId)).toHaveLength(attempts + 1);
    for (const call of transfersOf(hung.txId)) expect(call.body.txRefId).toBe(`${ctx.clientId}A${hung.txId}`);
    await expectStatus(ctx, hung.txId, { txState: "SUCCESSFUL", statusCode: 0, statusName: "SUCCESS" });

    // The other is resolved by hand with a note (the operator credited it by other means).
    const note = "operator confirmed the credit by e-mail (ticket 4711)";
    const resolved = await t.app.inject({
      method: "POST",
      url: `/admin/clients/${ctx.clientId}/oneclick/transactions/${failed.txId}/resolve`,
      headers: t.adminAuth,
      payload: { note },
    });
    expect(resolved.statusCode, resolved.body).toBe(200);
    expect(resolved.json()).toMatchObject({
      txId: failed.txId,
      statusCode: 0,
      statusName: "SUCCESS",
      resolution: { note, by: { kind: "admin" } },
    });
    expect(transfersOf(failed.txId)).toHaveLength(attempts); // resolving calls nobody
    await expectStatus(ctx, failed.txId, { txState: "SUCCESSFUL", statusCode: 0, statusName: "SUCCESS" });

    // Neither can be retried or resolved again.
    for (const [txId, what] of [
      [hung.txId, "resolve"],
      [failed.txId, "retry"],
    ] as const) {
      const res = await t.app.inject({
        method: "POST",
        url: `/admin/clients/${ctx.clientId}/oneclick/transactions/${txId}/${what}`,
        headers: t.adminAuth,
        ...(what === "resolve" ? { payload: { note } } : {}),
      });
      expect(res.statusCode, res.body).toBe(409);
    }
    const empty = await t.app.inject({
      method: "GET",
      url: `/admin/clients/${ctx.clientId}/oneclick/transactions?state=INCONSISTENT`,
      headers: t.adminAuth,
    });
    expect(empty.json().records).toEqual([]);

    const audit = await db()
      .selectFrom("audit_log")
      .select(["action", "entity_id", "actor_kind", "after"])
      .where("client_id", "=", ctx.clientId)
      .where("actor_kind", "=", "admin")
      .orderBy("created_at")
      .execute();
    const rows = audit.map((r) => `${r.action} ${r.entity_id}`);
    expect(rows).toContain(`step.retried oc-${hung.txId}`);
    expect(rows).toContain(`oneclick.status_changed ${hung.txId}`);
    expect(rows).toContain(`step.resolved oc-${failed.txId}`);
    expect(rows).toContain(`oneclick.status_changed ${failed.txId}`);
    const resolvedRow = audit.find((r) => r.action === "step.resolved");
    const after = typeof resolvedRow?.after === "string" ? JSON.parse(resolvedRow.after) : resolvedRow?.after;
    expect(after).toMatchObject({ status: "RESOLVED", outcome: "EXECUTED", note });

    // Still credited once each.
    expect(await settlementOf(ctx.clientId)).toBe(3000n);
    expect(await legsOf(ctx.clientId, hung.txId)).toHaveLength(1);
    expect(await legsOf(ctx.clientId, failed.txId)).toHaveLength(1);
    await expectBooksAgree(ctx.clientId);
  });

  it("6. broken callback answers on signin / verifyuser / authorize → 510 or 520, never a 500, nothing booked", async () => {
    const broken: Record<string, { answer: OperatorAnswer | "slow"; code: number; name: string }> = {
      "not JSON": { answer: { body: "<html>oops</html>" }, code: 510, name: "ERR_INVALID_RESPONSE" },
      "no success": { answer: { body: { userId: OPERATOR_USER } }, code: 510, name: "ERR_INVALID_RESPONSE" },
      'success "true"': {
        answer: { body: { userId: OPERATOR_USER, success: "true", sessionId: "s" } },
        code: 510,
        name: "ERR_INVALID_RESPONSE",
      },
      slow: { answer: "slow", code: 520, name: "ERR_MERCHANT_OUT_OF_SERVICE" },
    };
    const attempts = t.services.oneClick.deps.config.callbackAttempts;
    const cases = (["signin", "verifyuser", "authorize"] as const).flatMap((action) =>
      Object.entries(broken).map(([what, expected]) => ({ action, what, ...expected })),
    );
    await Promise.all(
      cases.map(async (c) => {
        const label = `${c.action} answering ${c.what}`;
        const ctx = await operatorClient((action, body) =>
          action === c.action ? (c.answer === "slow" ? slowAccept(action, body) : c.answer) : undefined,
        );
        const { txId, back } = await run(ctx);
        expect(back.searchParams.get("error"), label).toBe(
          c.code === 510 ? "server_error" : "temporarily_unavailable",
        );
        expectError(back, back.searchParams.get("error") ?? "", c.name.toLowerCase(), {
          errMsg: c.code === 520 ? /TIMEOUT/ : /(NOT_JSON|INVALID_ANSWER)/,
        });
        await expectStatus(ctx, txId, { txState: "FAILED", statusCode: c.code, statusName: c.name });
        const before = { signin: [], verifyuser: ["signin"], authorize: ["signin", "verifyuser"] }[c.action];
        const expectedCalls = [...before, ...Array(attempts).fill(c.action)];
        if (c.action === "authorize") {
          // The operator may have reserved the amount unheard: cancel releases it.
          const cancel = await eventually(() => ctx.operator.callsOf("cancel")[0]);
          expect(cancel.body, label).toMatchObject({ txId, statusCode: c.code });
          expectedCalls.push("cancel");
        }
        expect(actionsOf(ctx.operator), label).toEqual(expectedCalls);
        expect(await paymentsOf(ctx.clientId, txId), label).toEqual([]);
        await expectNothingBooked(ctx, txId);
      }),
    );
    expect(t.logs.join("")).not.toContain("1-Click request failed");

    // A userId Ferry cannot keep its user under (a core user id is 3–255 of A–Z a–z 0–9 _ -) is an
    // invalid answer, said so, not an operator "out of service" with a database error in errMsg.
    for (const userId of ["op.user@example.com", "42"]) {
      const ctx = await operatorClient((action) =>
        action === "signin" ? { body: { success: true, userId } } : undefined,
      );
      const { txId, back } = await run(ctx);
      expectError(back, "server_error", "err_invalid_response", { errMsg: /userId/ });
      expect(back.searchParams.get("errMsg")).not.toMatch(/constraint|relation/);
      await expectStatus(ctx, txId, {
        txState: "FAILED",
        statusCode: 510,
        statusName: "ERR_INVALID_RESPONSE",
      });
      expect(actionsOf(ctx.operator)).toEqual(Array(attempts).fill("signin"));
      expect(
        await db().selectFrom("users").select("id").where("client_id", "=", ctx.clientId).execute(),
      ).toEqual([]);
      await expectNothingBooked(ctx, txId);
    }
  });

  it("7. the token endpoint: once, 60 s, the same redirect_uri, the client's own code, the right secret; query string works", async () => {
    const ctx = await operatorClient();
    const other = await operatorClient();
    const flowA = await run(ctx);
    const { path } = flowA;
    const code = codeOf(flowA.back);
    const waitPath = async () => {
      // A new visit of the ended flow's page issues a new code (replacing an unused one).
      const res = await t.app.inject({ method: "GET", url: path });
      expect(res.statusCode, res.body).toBe(302);
      return codeOf(new URL(String(res.headers.location)));
    };

    // A wrong client secret: 401 invalid_client with WWW-Authenticate.
    const wrong = await exchange(
      t,
      `Basic ${Buffer.from(`${ctx.clientId}:not-the-secret`).toString("base64")}`,
      code,
    );
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error).toBe("invalid_client");
    expect(wrong.headers["www-authenticate"]).toMatch(/^Basic /);
    // Another client's code: invalid_grant (and the code is not burnt by it).
    const stolen = await exchange(t, other.basic, code);
    expect(stolen.statusCode).toBe(400);
    expect(stolen.json().error).toBe("invalid_grant");
    // redirect_uri not the authorization request's: invalid_grant.
    const mismatch = await exchange(t, ctx.basic, code, { redirect_uri: "http://127.0.0.1:9/return" });
    expect(mismatch.statusCode).toBe(400);
    expect(mismatch.json().error).toBe("invalid_grant");
    // Older than 60 s: invalid_grant.
    await db()
      .updateTable("oneclick_transactions")
      .set({ code_expires_at: new Date(Date.now() - 1000) })
      .where("tx_id", "=", flowA.txId)
      .execute();
    const expired = await exchange(t, ctx.basic, code);
    expect(expired.statusCode).toBe(400);
    expect(expired.json()).toMatchObject({
      error: "invalid_grant",
      error_description: expect.stringMatching(/expired/),
    });

    // A fresh code, parameters in the query string (PaymentIQ style), no body: works.
    const fresh = await waitPath();
    expect(fresh).not.toBe(code);
    const replaced = await exchange(t, ctx.basic, code);
    expect(replaced.json().error).toBe("invalid_grant");
    const query = new URLSearchParams({
      grant_type: "authorization_code",
      code: fresh,
      redirect_uri: REDIRECT_URI,
    });
    const token = await t.app.inject({
      method: "POST",
      url: `/oauth/token?${query}`,
      headers: { authorization: ctx.basic },
    });
    expect(token.statusCode, token.body).toBe(200);
    expect(token.headers["cache-control"]).toBe("no-store");
    expect(token.json()).toMatchObject({
      token_type: "bearer",
      userId: OPERATOR_USER,
      clientId: ctx.clientId,
    });
    const accessToken = token.json().access_token as string;
    const check = (basic: string) =>
      t.app.inject({
        method: "GET",
        url: `/oauth/check_token?token=${encodeURIComponent(accessToken)}`,
        headers: { authorization: basic },
      });
    const live = await check(ctx.basic);
    expect(live.statusCode, live.body).toBe(200);
    expect(live.json()).toMatchObject({ userId: OPERATOR_USER, txRefId: `${ctx.clientId}A${flowA.txId}` });
    expect((await check(other.basic)).statusCode).toBe(400); // not the other client's token

    // Used: no new code from the page, and a second exchange fails and revokes the first token.
    const visit = await t.app.inject({ method: "GET", url: path });
    expect(String(visit.headers.location ?? "")).not.toContain("code=");
    const twice = await exchange(t, ctx.basic, fresh);
    expect(twice.statusCode).toBe(400);
    expect(twice.json().error).toBe("invalid_grant");
    const revoked = await check(ctx.basic);
    expect(revoked.statusCode).toBe(400);
    expect(revoked.json().error).toBe("invalid_token");
    const reused = await db()
      .selectFrom("audit_log")
      .select("id")
      .where("client_id", "=", ctx.clientId)
      .where("action", "=", "oneclick.code_reused")
      .where("entity_id", "=", flowA.txId)
      .execute();
    expect(reused).toHaveLength(1);
    expect(await settlementOf(ctx.clientId)).toBe(10000n);
    await expectBooksAgree(ctx.clientId);
  });

  it("8. sandbox-trustly: signin refused → 509 NOT_AUTHENTICATED; a returning sandbox-bankid person skips signin", async () => {
    const refusing = await operatorClient((action) =>
      action === "signin"
        ? { body: { success: false, errCode: "NO_ACCOUNT", errMsg: "sign up first" } }
        : undefined,
    );
    const refused = await run(refusing, { params: { identity_provider: "sandbox-trustly" } });
    expectError(refused.back, "access_denied", "err_not_authenticated", {
      errCode: "NO_ACCOUNT",
      errMsg: /^sign up first$/,
    });
    await expectStatus(refusing, refused.txId, {
      txState: "FAILED",
      statusCode: 509,
      statusName: "ERR_NOT_AUTHENTICATED",
    });
    expect(actionsOf(refusing.operator)).toEqual(["signin"]);
    expect(refusing.operator.callsOf("signin")[0]?.body).toMatchObject({
      identityProvider: "sandbox-trustly",
    });
    const users = await db()
      .selectFrom("users")
      .select("id")
      .where("client_id", "=", refusing.clientId)
      .execute();
    expect(users).toEqual([]);
    await expectNothingBooked(refusing, refused.txId);

    // A returning bankid person: the operator's user id is remembered (by the person's fingerprint).
    const personid = "198803034321";
    const ctx = await operatorClient((action, body) =>
      action === "signin"
        ? {
            body: {
              success: true,
              userId: body.personid === personid ? "op-returning-7" : "op-other-8",
              sessionId: "op-s-7",
            },
          }
        : undefined,
    );
    const first = await run(ctx, { personid });
    codeOf(first.back);
    expect(actionsOf(ctx.operator)).toEqual(["signin", "verifyuser", "authorize", "transfer"]);
    const second = await run(ctx, { personid, params: { amount: "20.00" } });
    codeOf(second.back);
    const secondCalls = ctx.operator.calls.slice(4);
    expect(secondCalls.map((c) => c.action)).toEqual(["verifyuser", "authorize", "transfer"]);
    expect(secondCalls[0]?.body).toEqual({ sessionId: "op-s-7", userId: "op-returning-7" });
    expect(secondCalls[2]?.body).toMatchObject({
      userId: "op-returning-7",
      txId: second.txId,
      txAmount: "20.00",
    });
    await expectStatus(ctx, second.txId, {
      txState: "SUCCESSFUL",
      statusCode: 0,
      statusName: "SUCCESS",
      userId: "op-returning-7",
    });
    // Another person at the same client signs in.
    const third = await run(ctx, { personid: "199001011234", params: { amount: "1.00" } });
    codeOf(third.back);
    expect(ctx.operator.calls.slice(7).map((c) => c.action)).toEqual([
      "signin",
      "verifyuser",
      "authorize",
      "transfer",
    ]);
    expect(await settlementOf(ctx.clientId)).toBe(10000n + 2000n + 100n);
    await expectBooksAgree(ctx.clientId);
  });

  it("9. a sanctioned person (198507079876) → 503 FRAUD before any callback, a TRANSACTION_MONITORING DENY event", async () => {
    const ctx = await operatorClient();
    const { txId, back } = await run(ctx, { personid: "198507079876" });
    // Nothing in the browser's URL says why (no tipping off); the reasons go to the operator's backend.
    expectError(back, "access_denied", "err_declined_fraud", { errCode: null, errMsg: null });
    expect(back.toString()).not.toMatch(/SANCTION/i);
    await expectStatus(ctx, txId, { txState: "FAILED", statusCode: 503, statusName: "ERR_DECLINED_FRAUD" });
    await sleep(300);
    // Screened before anything is sent on: the operator never receives a listed person's data,
    // and no core user is made for them.
    expect(actionsOf(ctx.operator)).toEqual([]);
    expect(
      await db().selectFrom("users").select("id").where("client_id", "=", ctx.clientId).execute(),
    ).toEqual([]);
    const events = await db()
      .selectFrom("outbox_events")
      .select(["type", "data"])
      .where("client_id", "=", ctx.clientId)
      .where("type", "=", "TRANSACTION_MONITORING")
      .execute();
    const data = events.map((e) => (typeof e.data === "string" ? JSON.parse(e.data) : e.data));
    expect(data).toHaveLength(1);
    expect(data[0]).toMatchObject({
      requestId: `oc-${txId}`,
      status: "DENY",
      amount: "100.00",
      currency: "EUR",
      transactionType: "DEPOSIT",
    });
    expect(data[0].reasons).toContain("SANCTIONS_MATCH");
    expect(await paymentsOf(ctx.clientId, txId)).toEqual([]);
    await expectNothingBooked(ctx, txId);
  });

  it("10. sign-in only (no amount) → SUCCESS after verifyuser, no authorize or transfer; the token works", async () => {
    const ctx = await operatorClient();
    const { txId, path } = await start(ctx, { amount: undefined, currency: undefined });
    const page = await t.app.inject({ method: "GET", url: path });
    expect(page.body).not.toContain("EUR");
    const decided = await decide(t, path, "approve");
    const code = codeOf(await follow(String(decided.headers.location)));
    await sleep(300);
    expect(actionsOf(ctx.operator)).toEqual(["signin", "verifyuser"]);
    await expectStatus(ctx, txId, {
      txState: "SUCCESSFUL",
      statusCode: 0,
      statusName: "SUCCESS",
      amount: null,
      currency: null,
      userId: OPERATOR_USER,
    });
    const token = await exchange(t, ctx.basic, code);
    expect(token.statusCode, token.body).toBe(200);
    expect(token.json()).toMatchObject({
      userId: OPERATOR_USER,
      name: "Test Testsson",
      personid: "199001011234",
    });
    const check = await t.app.inject({
      method: "GET",
      url: `/oauth/check_token?token=${encodeURIComponent(token.json().access_token)}`,
      headers: { authorization: ctx.basic },
    });
    expect(check.statusCode, check.body).toBe(200);
    expect(check.json()).toMatchObject({ userId: OPERATOR_USER, clientId: ctx.clientId, scope: ["default"] });
    expect((await stepsOf(ctx.clientId, txId)).map((s) => s.kind)).toEqual(["OC_SIGNIN", "OC_VERIFYUSER"]);
    await expectNothingBooked(ctx, txId);
  });

  it("11. concurrency: two approvals of one session → one flow, one credit; two exchanges of one code → one 200", async () => {
    const ctx = await operatorClient();
    const { txId, path } = await start(ctx);
    const [a, b] = await Promise.all([decide(t, path, "approve"), decide(t, path, "approve")]);
    expect([a.statusCode, b.statusCode]).toEqual([302, 302]);
    const backs = await Promise.all([a, b].map((r) => follow(String(r.headers.location))));
    expect(actionsOf(ctx.operator)).toEqual(["signin", "verifyuser", "authorize", "transfer"]);
    await expectStatus(ctx, txId, { txState: "SUCCESSFUL", statusCode: 0, statusName: "SUCCESS" });
    // Both visits land with the same code (issued once, valid 60 s): whichever tab the browser
    // keeps works, and the code still works once only.
    const codes = backs.map(codeOf);
    expect(codes[0]).toBe(codes[1]);
    const exchanged = [];
    for (const code of codes) exchanged.push((await exchange(t, ctx.basic, code)).statusCode);
    expect(exchanged.filter((s) => s === 200)).toHaveLength(1);
    expect(await settlementOf(ctx.clientId)).toBe(10000n);
    expect(await legsOf(ctx.clientId, txId)).toHaveLength(1);
    expect(await paymentsOf(ctx.clientId, txId)).toHaveLength(1);
    // A late third approval (a reload that re-posts the form) changes nothing: the code was
    // exchanged, so the page says it is done.
    const late = await decide(t, path, "approve");
    expect(late.statusCode, late.body).toBe(200);
    expect(late.body).toContain('id="outcome">Done');
    await sleep(300);
    expect(actionsOf(ctx.operator)).toEqual(["signin", "verifyuser", "authorize", "transfer"]);
    await expectStatus(ctx, txId, { txState: "SUCCESSFUL", statusCode: 0, statusName: "SUCCESS" });

    const second = await run(ctx, { params: { amount: "5.00" } });
    const code = codeOf(second.back);
    const both = await Promise.all([exchange(t, ctx.basic, code), exchange(t, ctx.basic, code)]);
    const statuses = both.map((r) => r.statusCode).sort();
    expect(statuses).toEqual([200, 400]);
    expect(both.find((r) => r.statusCode === 400)?.json().error).toBe("invalid_grant");
    expect(await settlementOf(ctx.clientId)).toBe(10500n);
    await expectBooksAgree(ctx.clientId);
  });

  it("12. the core user: the operator's userId, tier 2 (bankid) / 1 (trustly), PII sealed; logs keep no personid or operator password", async () => {
    const ctx = await operatorClient((action) =>
      action === "signin" ? { body: { success: true, userId: "op-bank_user-1" } } : undefined,
    );
    const bank = await run(ctx);
    codeOf(bank.back);
    // The page's "another test person" form puts the personid in the query string.
    const shown = await t.app.inject({
      method: "GET",
      url: `${(await start(ctx)).path}?personid=199001011234`,
    });
    expect(shown.statusCode).toBe(200);

    const trustly = await operatorClient((action) =>
      action === "signin" ? { body: { success: true, userId: "op-trustly-user" } } : undefined,
    );
    const tr = await run(trustly, { params: { identity_provider: "sandbox-trustly" } });
    codeOf(tr.back);

    for (const [c, userId, tier] of [
      [ctx, "op-bank_user-1", 2],
      [trustly, "op-trustly-user", 1],
    ] as const) {
      const user = await db()
        .selectFrom("users")
        .selectAll()
        .where("client_id", "=", c.clientId)
        .where("id", "=", userId)
        .executeTakeFirst();
      expect(user, userId).toBeTruthy();
      expect(Number(user?.tier)).toBe(tier);
      expect(user?.type).toBe("PERSON");
      const pii = await db()
        .selectFrom("user_pii")
        .select("ciphertext")
        .where("client_id", "=", c.clientId)
        .where("user_id", "=", userId)
        .executeTakeFirstOrThrow();
      expect(pii.ciphertext).not.toContain("Testsson");
      expect(pii.ciphertext).not.toContain("199001011234");
      expect(pii.ciphertext).not.toContain(Buffer.from("Testsson").toString("base64").slice(0, 8));
      const info = await t.services.users.info(db(), c.clientId, userId);
      expect(info).toMatchObject({
        name: { firstName: "Test", lastName: "Testsson" },
        dateOfBirth: "1990-01-01",
        piis: [{ type: "NATIONAL_ID", value: "199001011234" }],
      });
      const flows = await db()
        .selectFrom("oneclick_transactions")
        .select(["identity_sealed", "person_fingerprint"])
        .where("client_id", "=", c.clientId)
        .where("identity_sealed", "is not", null)
        .execute();
      for (const f of flows) {
        expect(f.identity_sealed).not.toContain("Testsson");
        expect(f.identity_sealed).not.toContain("199001011234");
        expect(f.person_fingerprint).not.toContain("199001011234");
      }
    }
    await expectBooksAgree(ctx.clientId);
    await expectBooksAgree(trustly.clientId);

    // Everything logged by every scenario of this file so far.
    const logs = t.logs.join("\n");
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain("199001011234");
    expect(logs).not.toContain("198507079876");
    expect(logs).not.toContain(OPERATOR_AUTH.password);
    expect(logs).not.toContain(
      Buffer.from(`${OPERATOR_AUTH.username}:${OPERATOR_AUTH.password}`).toString("base64"),
    );
  });

  it("13. redirect_uri left out of authorize (the client's only registered one is used) → the token request may leave it out too", async () => {
    const ctx = await operatorClient();
    const only = await t.app.inject({
      method: "PATCH",
      url: `/admin/clients/${ctx.clientId}`,
      headers: t.adminAuth,
      payload: {
        oneClick: {
          redirectUris: [REDIRECT_URI],
          callbackUrl: `${ctx.operator.url}/api/{action}`,
          callbackAuth: { type: "basic", ...OPERATOR_AUTH },
        },
      },
    });
    expect(only.statusCode, only.body).toBe(200);
    const first = await run(ctx, { params: { redirect_uri: undefined } });
    const token = await t.app.inject({
      method: "POST",
      url: "/oauth/token",
      headers: { authorization: ctx.basic, "content-type": "application/x-www-form-urlencoded" },
      payload: new URLSearchParams({ grant_type: "authorization_code", code: codeOf(first.back) }).toString(),
    });
    expect(token.statusCode, token.body).toBe(200);
    // Named in authorize → required in the token request (RFC 6749 §4.1.3).
    const second = await run(ctx);
    const without = await t.app.inject({
      method: "POST",
      url: "/oauth/token",
      headers: { authorization: ctx.basic, "content-type": "application/x-www-form-urlencoded" },
      payload: new URLSearchParams({
        grant_type: "authorization_code",
        code: codeOf(second.back),
      }).toString(),
    });
    expect(without.statusCode).toBe(400);
    expect(without.json().error).toBe("invalid_grant");
    expect((await exchange(t, ctx.basic, codeOf(second.back))).statusCode).toBe(200);
  });

  it("14. an operator userId that already stands for another person → 509 NOT_AUTHENTICATED, nothing merged", async () => {
    // The operator answers every signin with one userId, whoever signs in.
    const ctx = await operatorClient();
    const first = await run(ctx);
    expect(first.back.searchParams.get("code")).toBeTruthy();
    const other = await run(ctx, { personid: "198001011111" });
    expectError(other.back, "access_denied", "err_not_authenticated", {
      errMsg: /belongs to another person/,
    });
    await expectStatus(ctx, other.txId, {
      txState: "FAILED",
      statusCode: 509,
      statusName: "ERR_NOT_AUTHENTICATED",
    });
    const info = await t.services.users.info(db(), ctx.clientId, OPERATOR_USER);
    expect(info.piis).toEqual([{ type: "NATIONAL_ID", value: "199001011234" }]);
    expect(info.name).toEqual({ firstName: "Test", lastName: "Testsson" });
    expect(actionsOf(ctx.operator).filter((a) => a === "authorize")).toHaveLength(1);
    expect(await settlementOf(ctx.clientId)).toBe(10000n);
  });

  it("15. the client's KYC scenario: what the provider proved must cover the deposit (30-day totals, 1-Click included) → else 564 ERR_DECLINED_KYC_BLOCK before authorize", async () => {
    const op = await startOperator((action, body) =>
      action === "signin" ? { body: { success: true, userId: `op-${String(body.personid)}` } } : undefined,
    );
    operators.push(op);
    // Monitoring's new-user rule (a first deposit over 1,000 USD waits for review, test 16) is
    // raised here: this test is about the KYC gate alone.
    const ctx: Ctx = {
      ...(await setUpOneClick(t, op, {
        settings: { monitoring: { newUserFirstAmountReviewUsd: 1_000_000 } },
      })),
      operator: op,
    };
    // The default scenario: deposits up to 1,000 USD need tier 0, up to 10,000 tier 2, above tier 4.
    const trustly = await run(ctx, {
      personid: "198504041111",
      params: { identity_provider: "sandbox-trustly", amount: "2000.00" },
    });
    // Tier 2 needs an ID document, which an open-banking login does not hand over: information missing.
    expectError(trustly.back, "access_denied", "err_declined_kyc_block", {
      errCode: "1001",
      errMsg: /needs more information/,
    });
    await expectStatus(ctx, trustly.txId, {
      txState: "FAILED",
      statusCode: 564,
      statusName: "ERR_DECLINED_KYC_BLOCK",
    });
    const big = await run(ctx, { params: { amount: "20000.00" } });
    expectError(big.back, "access_denied", "err_declined_kyc_block", {
      errMsg: /needs more information about the user: /,
    });
    // Bank-ID proves tier 2: 5,000 EUR passes; a second 5,000 within 30 days brings the total over
    // 10,000 USD, which needs tier 4.
    const first = await run(ctx, { params: { amount: "5000.00" } });
    codeOf(first.back);
    const second = await run(ctx, { params: { amount: "5000.00" } });
    expectError(second.back, "access_denied", "err_declined_kyc_block", { errMsg: /needs more information/ });
    expect(ctx.operator.callsOf("authorize").map((c) => c.body.txId)).toEqual([first.txId]);
    expect(await settlementOf(ctx.clientId)).toBe(500000n);
    await expectBooksAgree(ctx.clientId);
  });

  it("16. MANUAL_REVIEW (issue 17): a deposit over the client's review threshold waits at 350 — signed in, nothing authorized, paid or transferred — until staff approve it (→ SUCCESS) or deny it (→ 503)", async () => {
    const op = await startOperator();
    operators.push(op);
    const ctx: Ctx = {
      ...(await setUpOneClick(t, op, { settings: { monitoring: { singleAmountReviewUsd: 20 } } })),
      operator: op,
    };
    // The callbacks that name the flow's txId (signin and verifyuser name the person and the user).
    const callsFor = (txId: string) => op.calls.filter((c) => c.body.txId === txId).map((c) => c.action);
    // 900.00 SEK ≈ 85.50 USD: over the client's 20 USD single-amount threshold.
    const held = await run(ctx, { params: { amount: "900.00", currency: "SEK" } });
    // The person is signed up and signed in (the code is issued); the money waits for staff.
    codeOf(held.back);
    await expectStatus(ctx, held.txId, {
      txState: "WAITING_APPROVAL",
      statusCode: 350,
      statusName: "WAITING_DEPOSIT_APPROVAL",
    });
    expect(actionsOf(op)).toEqual(["signin", "verifyuser"]);
    expect(await legsOf(ctx.clientId, held.txId)).toEqual([]);
    expect(await paymentsOf(ctx.clientId, held.txId)).toEqual([]);
    const shown = await t.app.inject({
      method: "GET",
      url: `/admin/clients/${ctx.clientId}/oneclick/transactions/${held.txId}`,
      headers: t.adminAuth,
    });
    expect(shown.json()).toMatchObject({
      statusCode: 350,
      monitoring: { status: "MANUAL_REVIEW", reasons: ["LARGE_AMOUNT"] },
    });
    const waiting = await t.app.inject({
      method: "GET",
      url: `/admin/clients/${ctx.clientId}/oneclick/transactions?state=WAITING_APPROVAL`,
      headers: t.adminAuth,
    });
    expect(waiting.json().records.map((r: { txId: string }) => r.txId)).toEqual([held.txId]);

    const review = (txId: string, decision: "APPROVE" | "DENY") =>
      t.app.inject({
        method: "POST",
        url: `/admin/clients/${ctx.clientId}/oneclick/transactions/${txId}/review`,
        headers: t.adminAuth,
        payload: { decision, note: "source of funds checked" },
      });
    // Two staff decide at once: one decision counts, the other is told it came too late.
    const [a, b] = await Promise.all([review(held.txId, "APPROVE"), review(held.txId, "DENY")]);
    const statuses = [a.statusCode, b.statusCode].sort();
    expect(statuses, `${a.body} ${b.body}`).toEqual([200, 409]);
    const approved = a.statusCode === 200 ? a : b;
    if (approved === a) {
      await eventually(async () => (await t.services.oneClick.get(held.txId)).status_code === 0);
      expect(callsFor(held.txId)).toEqual(["authorize", "transfer"]);
      expect(await settlementOf(ctx.clientId, "SEK")).toBe(90000n);
    } else {
      await expectStatus(ctx, held.txId, {
        txState: "FAILED",
        statusCode: 503,
        statusName: "ERR_DECLINED_FRAUD",
      });
      expect(callsFor(held.txId)).toEqual([]);
    }
    const decisions = await db()
      .selectFrom("audit_log")
      .select(["action", "after"])
      .where("client_id", "=", ctx.clientId)
      .where("entity_id", "=", held.txId)
      .where("action", "=", "oneclick.status_changed")
      .execute();
    expect(decisions.filter((d) => JSON.stringify(d.after).includes('"event":"APPROVE"')).length).toBe(
      approved === a ? 1 : 0,
    );

    // A denied one: refused, nothing reserved at the operator, no money, and out of the user's usage.
    const other = await run(ctx, { params: { amount: "300.00", currency: "SEK" } });
    codeOf(other.back);
    const userId = (await t.services.oneClick.get(other.txId)).user_id ?? "";
    const before = await readUsage(db(), ctx.clientId, userId, 10);
    expect((await review(other.txId, "DENY")).statusCode).toBe(200);
    await expectStatus(ctx, other.txId, {
      txState: "FAILED",
      statusCode: 503,
      statusName: "ERR_DECLINED_FRAUD",
    });
    expect(callsFor(other.txId)).toEqual([]);
    expect(await legsOf(ctx.clientId, other.txId)).toEqual([]);
    const after = await readUsage(db(), ctx.clientId, userId, 10);
    expect(after.recentCount).toBe(before.recentCount - 1);
    expect((await review(other.txId, "APPROVE")).statusCode).toBe(409);
    await expectBooksAgree(ctx.clientId);
  });

  it("17. 1-Click deposits count in the user's usage like any deposit (issue 17): velocity and the daily total fire, history is kept", async () => {
    const op = await startOperator();
    operators.push(op);
    const ctx: Ctx = {
      ...(await setUpOneClick(t, op, {
        settings: { monitoring: { velocityCount: 2, velocityWindowMinutes: 10, dailyTotalReviewUsd: 500 } },
      })),
      operator: op,
    };
    // 10.00 EUR each: the third within ten minutes is over the velocity of two.
    const first = await run(ctx, { params: { amount: "10.00" } });
    codeOf(first.back);
    const userId = (await t.services.oneClick.get(first.txId)).user_id ?? "";
    const usage = await readUsage(db(), ctx.clientId, userId, 10);
    expect(usage).toMatchObject({ recentCount: 1, hasHistory: true, last24hUsdCents: 1080n });
    expect(usage.prior30dByType.get("DEPOSIT")).toBe(1080n);
    codeOf((await run(ctx, { params: { amount: "10.00" } })).back);
    const third = await run(ctx, { params: { amount: "10.00" } });
    await expectStatus(ctx, third.txId, {
      txState: "WAITING_APPROVAL",
      statusCode: 350,
      statusName: "WAITING_DEPOSIT_APPROVAL",
    });
    expect((await t.services.oneClick.get(third.txId)).monitoring).toMatchObject({
      status: "MANUAL_REVIEW",
      reasons: ["VELOCITY"],
    });
    // The daily total: 450.00 EUR (486 USD) on top of the 30 EUR already today crosses 500 USD.
    const other = await operatorClientWithMonitoring({ dailyTotalReviewUsd: 500 });
    codeOf((await run(other, { params: { amount: "30.00" } })).back);
    const big = await run(other, { params: { amount: "450.00" } });
    expect((await t.services.oneClick.get(big.txId)).monitoring).toMatchObject({
      status: "MANUAL_REVIEW",
      reasons: ["DAILY_TOTAL_EXCEEDED"],
    });
    await expectBooksAgree(ctx.clientId);
  });

  it("18. one retry path (issue 17): POST /admin/steps/{id}/retry on a FAILED OC_TRANSFER ends the flow SUCCESS — one credit at the operator, one audit row; resolving as NOT_EXECUTED is refused", async () => {
    let fixed = false;
    const ctx = await operatorClient((action) =>
      action === "transfer" && !fixed ? { status: 500, body: { error: "boom" } } : undefined,
    );
    const { txId, back } = await run(ctx, { params: { amount: "12.00" } });
    expectError(back, "server_error", "err_inconsistent_transaction");
    const step = await db()
      .selectFrom("steps")
      .select(["id", "status"])
      .where("client_id", "=", ctx.clientId)
      .where("process_id", "=", `oc-${txId}`)
      .where("kind", "=", "OC_TRANSFER")
      .executeTakeFirstOrThrow();
    expect(step.status).toBe("FAILED");
    const notExecuted = await t.app.inject({
      method: "POST",
      url: `/admin/steps/${step.id}/resolve`,
      headers: t.adminAuth,
      payload: { outcome: "NOT_EXECUTED", note: "the operator says it never credited it" },
    });
    expect(notExecuted.statusCode, notExecuted.body).toBe(409);
    fixed = true;
    const accepted = () => ctx.operator.callsOf("transfer").filter((c) => c.body.txId === txId).length;
    const failedCalls = accepted();
    const retried = await t.app.inject({
      method: "POST",
      url: `/admin/steps/${step.id}/retry`,
      headers: t.adminAuth,
    });
    expect(retried.statusCode, retried.body).toBe(200);
    await eventually(async () => (await t.services.oneClick.get(txId)).status_code === 0);
    await expectStatus(ctx, txId, { txState: "SUCCESSFUL", statusCode: 0, statusName: "SUCCESS" });
    expect(accepted()).toBe(failedCalls + 1);
    expect(await settlementOf(ctx.clientId)).toBe(1200n);
    const audit = await db()
      .selectFrom("audit_log")
      .select("action")
      .where("client_id", "=", ctx.clientId)
      .where("action", "=", "step.retried")
      .execute();
    expect(audit).toHaveLength(1);
    // The flow is closed: neither staff route applies any more.
    for (const route of ["retry", "resolve"]) {
      const res = await t.app.inject({
        method: "POST",
        url: `/admin/clients/${ctx.clientId}/oneclick/transactions/${txId}/${route}`,
        headers: t.adminAuth,
        ...(route === "resolve" ? { payload: { note: "credited by hand" } } : {}),
      });
      expect(res.statusCode, res.body).toBe(409);
    }
    await expectBooksAgree(ctx.clientId);
  });
});

async function operatorClientWithMonitoring(monitoring: Record<string, unknown>): Promise<Ctx> {
  const op = await startOperator();
  operators.push(op);
  return { ...(await setUpOneClick(t, op, { settings: { monitoring } })), operator: op };
}
