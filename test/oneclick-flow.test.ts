import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as ledger from "../src/modules/ledger/service.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import {
  authorize,
  decide,
  exchange,
  finish,
  OPERATOR_USER,
  type Operator,
  pagePath,
  setUpOneClick,
  startOperator,
} from "./oneclick.ts";

/** The 1-Click flow end to end against a real operator server on loopback (issue 11). */

let t: TestApp;
let operator: Operator;
beforeAll(async () => {
  t = await startTestApp({ workers: true });
  operator = await startOperator();
});
afterAll(async () => {
  await operator.close();
  await t.close();
});

describe("1-Click: sign up and deposit", () => {
  it("the happy path: provider page → approve → signin, verifyuser, authorize, payment, transfer → code → token", async () => {
    const { clientId, basic } = await setUpOneClick(t, operator);
    const started = await authorize(t, clientId);
    expect(started.statusCode, started.body).toBe(200);
    const answer = started.json();
    expect(answer).toMatchObject({ success: true, redirectOutput: { method: "GET", container: "iframe" } });
    const page = await t.app.inject({ method: "GET", url: pagePath(answer) });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain("Test Testsson");
    expect(page.body).toContain("100.00 EUR");

    const decided = await decide(t, pagePath(answer), "approve");
    expect(decided.statusCode, decided.body).toBe(302);
    console.log(
      decided.headers.location,
      JSON.stringify(
        await t.database.db
          .selectFrom("steps")
          .select(["kind", "status", "attempts", "last_error"])
          .execute(),
      ),
      JSON.stringify(
        await t.database.db
          .selectFrom("oneclick_transactions")
          .select(["status_code", "status_name", "err_msg"])
          .execute(),
      ),
    );
    const back = await finish(t, String(decided.headers.location));
    expect(back.searchParams.get("state")).toBe("st-1");
    const code = back.searchParams.get("code");
    expect(code).toBeTruthy();

    const actions = operator.calls.map((c) => c.action);
    expect(actions).toEqual(["signin", "verifyuser", "authorize", "transfer"]);
    const transfer = operator.callsOf("transfer")[0]?.body ?? {};
    expect(transfer).toMatchObject({
      userId: OPERATOR_USER,
      txAmount: "100.00",
      txAmountCy: "EUR",
      fee: "0.00",
    });
    expect(transfer.txRefId).toBe(`${clientId}A${transfer.txId}`);

    const token = await exchange(t, basic, code ?? "");
    expect(token.statusCode, token.body).toBe(200);
    expect(token.json()).toMatchObject({
      token_type: "bearer",
      userId: OPERATOR_USER,
      clientId,
      name: "Test Testsson",
      personid: "199001011234",
      country: "SWE",
      dob: "1990-01-01",
      identityProvider: "sandbox-bankid",
    });
    const status = await t.app.inject({
      method: "GET",
      url: `/oauth/transactions/${transfer.txId}`,
      headers: { authorization: basic },
    });
    expect(status.json()).toMatchObject({
      txState: "SUCCESSFUL",
      statusCode: 0,
      statusName: "SUCCESS",
      amount: "100.00",
    });

    const settlement = await ledger.systemAccountId(t.database.db, {
      clientId,
      currency: "EUR",
      kind: "SETTLEMENT",
    });
    const account = await ledger.getAccount(t.database.db, settlement, clientId);
    expect(account.creditsPosted - account.debitsPosted).toBe(10000n);
    const report = await t.services.reconcile(clientId);
    expect(report.mismatches).toEqual([]);
    expect((await ledger.checkInvariants(t.database.db)).ok).toBe(true);
    const user = await t.database.db
      .selectFrom("users")
      .selectAll()
      .where("client_id", "=", clientId)
      .where("id", "=", OPERATOR_USER)
      .executeTakeFirstOrThrow();
    expect(user.tier).toBe(2);

    const again = await exchange(t, basic, code ?? "");
    expect(again.statusCode).toBe(400);
    expect(again.json().error).toBe("invalid_grant");
    const check = await t.app.inject({
      method: "GET",
      url: `/oauth/check_token?token=${token.json().access_token}`,
      headers: { authorization: basic },
    });
    expect(check.statusCode).toBe(400);
  });
});
