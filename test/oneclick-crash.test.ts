import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { type FerryDatabase, openDatabase } from "../src/db/database.ts";
import * as ledger from "../src/modules/ledger/service.ts";
import { createTestDatabase } from "./database.ts";
import { basic } from "./harness.ts";
import { OPERATOR_AUTH, OPERATOR_USER, type Operator, REDIRECT_URI, startOperator } from "./oneclick.ts";
import { formTokenOf } from "./page-forms.ts";
import { type FerryProcess, startFerryProcess } from "./process.ts";

/**
 * A 1-Click deposit whose process is killed (SIGKILL) after the bank payment was booked and while
 * the operator's transfer callback is in flight (the operator holds its first answer): after the
 * restart on the same database the recovery worker sends the transfer again with the same txId,
 * the operator accepts, the flow ends SUCCESS, the browser's waiting page goes on to redirect_uri
 * with a code, and the ledger holds exactly one credit to the operator's settlement account.
 */
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-oneclick-crash-"));
let testDb: (FerryDatabase & { url: string | undefined }) | undefined;
let operator: Operator | undefined;
let ferry: FerryProcess | undefined;

afterAll(async () => {
  if (ferry && ferry.child.exitCode === null && ferry.child.signalCode === null)
    await ferry.stop().catch(() => undefined);
  await operator?.close();
  await testDb?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const ADMIN = "oneclick-crash-password";

/** A free loopback port: Ferry's publicUrl must be known before it starts, and stay the same across the restart. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

it("a crash while the transfer callback is in flight: after restart the same txId is transferred and the deposit is booked once", async () => {
  let env: Record<string, string>;
  if (process.env.DATABASE_URL) {
    testDb = await createTestDatabase();
    env = { DATABASE_URL: testDb.url ?? "" };
  } else {
    env = { DATABASE_URL: "", FERRY_DATA_DIR: dataDir };
  }
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  env = {
    ...env,
    PORT: String(port),
    FERRY_PUBLIC_URL: publicUrl,
    FERRY_ADMIN_PASSWORD: ADMIN,
    FERRY_DEMO_CLIENT: "false",
    FERRY_RECOVERY_INTERVAL_MS: "200",
    FERRY_PROVIDER_LEASE_SECONDS: "2",
    FERRY_ONECLICK_CALLBACK_TIMEOUT_MS: "3000",
    FERRY_ONECLICK_RETRY_BASE_MS: "100",
    FERRY_MASTER_KEY: Buffer.alloc(32, 7).toString("base64"),
    LOG_LEVEL: "warn",
  };
  const admin = { authorization: basic("admin", ADMIN), "content-type": "application/json" };
  const json = async (response: Response, status = 200) => {
    const text = await response.text();
    expect(response.status, text).toBe(status);
    return JSON.parse(text);
  };

  // The operator's first transfer is never answered: the moment it has arrived, the process is
  // killed (the transfer is in flight, the payment booked: the transfer step is scheduled only in
  // the transaction that records the payment). Every later callback is accepted.
  let killed: () => void = () => undefined;
  const crashed = new Promise<void>((resolve) => {
    killed = resolve;
  });
  operator = await startOperator((action, _body, nth) => {
    if (action !== "transfer" || nth > 1) return undefined;
    ferry?.child.kill("SIGKILL");
    killed();
    return { delayMs: Number.POSITIVE_INFINITY };
  });

  ferry = await startFerryProcess(env);
  expect(ferry.url).toBe(publicUrl);

  // The client, set up for 1-Click through the admin API.
  const { clientId } = await json(
    await fetch(`${ferry.url}/admin/clients`, {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ name: "1-Click crash" }),
    }),
    201,
  );
  await json(
    await fetch(`${ferry.url}/admin/clients/${clientId}`, {
      method: "PATCH",
      headers: admin,
      body: JSON.stringify({
        oneClick: {
          redirectUris: [REDIRECT_URI],
          callbackUrl: `${operator.url}/api/{action}`,
          callbackAuth: { type: "basic", ...OPERATOR_AUTH },
        },
      }),
    }),
  );
  const { clientSecret } = await json(
    await fetch(`${ferry.url}/admin/clients/${clientId}/oauth-secret`, {
      method: "POST",
      headers: { authorization: admin.authorization },
    }),
    201,
  );
  const clientAuth = { authorization: basic(clientId, clientSecret) };

  // The browser: authorize (iframe=true) → the provider's page → Approve.
  const query = new URLSearchParams({
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    response_type: "code",
    state: "crash-state",
    scope: "default",
    identity_provider: "sandbox-bankid",
    amount: "100.00",
    currency: "EUR",
  });
  const started = await json(await fetch(`${ferry.url}/oauth/authorize?${query}`));
  expect(started).toMatchObject({ success: true, redirectOutput: { container: "iframe" } });
  const txId = String(started.txId);
  const pageUrl = new URL(started.redirectOutput.url);
  expect(pageUrl.origin).toBe(publicUrl);
  const sessionId = pageUrl.pathname.split("/").pop() ?? "";
  const providerPage = await fetch(pageUrl);
  const html = await providerPage.text();
  expect(html).toContain("Test Testsson");
  expect(html).toContain("100.00 EUR");
  // The decision's answer never comes (the process dies while this request waits for the flow).
  const decided = fetch(pageUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      decision: "approve",
      personid: "199001011234",
      csrf: formTokenOf(html),
    }).toString(),
    redirect: "manual",
  }).catch((error: unknown) => error);

  // The transfer reached the operator, unanswered, and the process was killed at that moment.
  await crashed;
  await ferry.stop().catch(() => undefined);
  expect(ferry.child.signalCode).toBe("SIGKILL");
  expect(await decided).toBeInstanceOf(Error);
  expect(operator.callsOf("transfer")).toHaveLength(1);

  // Restarted on the same database: the recovery worker takes the transfer once its lease ends.
  ferry = await startFerryProcess(env);
  expect(ferry.url).toBe(publicUrl);
  let status: Record<string, unknown> = {};
  for (let i = 0; i < 150; i++) {
    status = await json(await fetch(`${ferry.url}/oauth/transactions/${txId}`, { headers: clientAuth }));
    if (status.txState !== "PROCESSING") break;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(status).toEqual({
    txId,
    txState: "SUCCESSFUL",
    statusCode: 0,
    statusName: "SUCCESS",
    amount: "100.00",
    currency: "EUR",
    userId: OPERATOR_USER,
  });

  // The operator was told twice about one transfer: the same txId, txRefId and amount.
  const transfers = operator.callsOf("transfer");
  expect(transfers).toHaveLength(2);
  expect(transfers[1]?.body).toEqual(transfers[0]?.body);
  expect(transfers[0]?.body).toMatchObject({
    txId,
    txRefId: `${clientId}A${txId}`,
    userId: OPERATOR_USER,
    txAmount: "100.00",
    txAmountCy: "EUR",
    authCode: `auth-${txId}`,
  });
  expect(operator.calls.map((c) => c.action)).toEqual([
    "signin",
    "verifyuser",
    "authorize",
    "transfer",
    "transfer",
  ]);

  // The browser, back on the waiting page (it refreshes), is sent on to redirect_uri with a code.
  const waited = await fetch(`${ferry.url}/oauth/wait/${sessionId}`, { redirect: "manual" });
  expect(waited.status, await waited.clone().text()).toBe(302);
  const back = new URL(String(waited.headers.get("location")));
  expect(`${back.origin}${back.pathname}`).toBe(REDIRECT_URI);
  expect(back.searchParams.get("state")).toBe("crash-state");
  const code = back.searchParams.get("code") ?? "";
  expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);
  const token = await json(
    await fetch(`${ferry.url}/oauth/token`, {
      method: "POST",
      headers: { ...clientAuth, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI }),
    }),
  );
  expect(token).toMatchObject({
    token_type: "bearer",
    userId: OPERATOR_USER,
    txRefId: `${clientId}A${txId}`,
    name: "Test Testsson",
    personid: "199001011234",
  });

  const after = await json(
    await fetch(`${ferry.url}/admin/clients/${clientId}/oneclick/transactions/${txId}`, { headers: admin }),
  );
  // Each callback and the payment once (the payment was recorded before the crash: never asked
  // again); the transfer asked twice under its key (before the crash, then by the recovery), recorded once.
  expect(
    Object.fromEntries(
      after.steps.map((s: { kind: string; status: string; attempts: number }) => [
        s.kind,
        `${s.status}/${s.attempts}`,
      ]),
    ),
  ).toEqual({
    OC_SIGNIN: "SUCCEEDED/1",
    OC_VERIFYUSER: "SUCCEEDED/1",
    OC_KYC_CHECK: "SUCCEEDED/1",
    OC_AUTHORIZE: "SUCCEEDED/1",
    OC_PAYMENT: "SUCCEEDED/1",
    OC_TRANSFER: "SUCCEEDED/2",
  });
  const reconciliation = await json(
    await fetch(`${ferry.url}/admin/reconciliation?clientId=${clientId}`, { headers: admin }),
  );
  // The provider's record of the payment against the bank transit legs: one deposit, checked, equal.
  expect(reconciliation, JSON.stringify(reconciliation)).toMatchObject({
    ok: true,
    checked: 1,
    inFlight: 0,
    mismatches: [],
  });
  const invariants = await json(
    await fetch(`${ferry.url}/admin/ledger/invariants?clientId=${clientId}`, { headers: admin }),
  );
  expect(invariants.ok, JSON.stringify(invariants)).toBe(true);
  expect(await ferry.stop()).toBe(0);

  // The ledger, read from the database itself once the process is gone: one credit, 100.00 EUR.
  const database = testDb ?? (await openDatabase({ dataDir }));
  try {
    const db = database.db;
    const settlement = await ledger.systemAccountId(db, { clientId, currency: "EUR", kind: "SETTLEMENT" });
    const credits = await db
      .selectFrom("ledger_transfers")
      .select(["operation_id", "amount", "status", "debit_account_id"])
      .where("client_id", "=", clientId)
      .where("credit_account_id", "=", settlement)
      .execute();
    expect(credits).toHaveLength(1);
    expect(credits[0]).toMatchObject({ operation_id: `txn:oc-${txId}`, status: "POSTED" });
    expect(BigInt(credits[0]?.amount ?? 0)).toBe(10_000n);
    const transit = await ledger.systemAccountId(db, {
      clientId,
      currency: "EUR",
      kind: "TRANSIT",
      rail: "bank",
    });
    expect(credits[0]?.debit_account_id).toBe(transit);
    const all = await db
      .selectFrom("ledger_transfers")
      .select(["operation_id"])
      .where("client_id", "=", clientId)
      .execute();
    expect(all.map((t) => t.operation_id)).toEqual([`txn:oc-${txId}`]);
    // The bank was asked to pay once (the payment step was never repeated).
    const payments = await db
      .selectFrom("sandbox_idp_payments")
      .select(["amount", "status"])
      .where("idempotency_key", "like", `${clientId}:%`)
      .execute();
    expect(payments).toEqual([{ amount: "10000", status: "PAID" }]);
    const account = await ledger.getAccount(db, settlement, clientId);
    expect(account.creditsPosted - account.debitsPosted).toBe(10_000n);
    expect((await ledger.checkInvariants(db, clientId)).ok).toBe(true);
  } finally {
    if (!testDb) await database.close();
  }
}, 120_000);
