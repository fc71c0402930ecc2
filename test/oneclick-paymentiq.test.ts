import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../src/db/database.ts";
import { migrate, readMigrations } from "../src/db/migrate.ts";
import * as statuses from "../src/modules/oneclick/statuses.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import {
  decide,
  finish,
  type Operator,
  pagePath,
  REDIRECT_URI,
  setUpOneClick,
  startOperator,
} from "./oneclick.ts";

/**
 * PaymentIQ's documented 1-Click exchanges (its public 1-Click API and integration API pages),
 * replayed against Ferry as the pages show them — the requests with the parameters they send and
 * no more, the answers and callbacks checked field by field against the types the pages document.
 * Written from the pages' tables; no text of theirs is copied. Only the base URL and credentials
 * differ from PaymentIQ's examples (and `identity_provider`, Ferry's sandbox provider).
 */

let t: TestApp;
let operator: Operator;
let client: { clientId: string; clientSecret: string; basic: string };

beforeAll(async () => {
  t = await startTestApp({ workers: true });
  operator = await startOperator();
  client = await setUpOneClick(t, operator);
});
afterAll(async () => {
  await operator.close();
  await t.close();
});

// The documented schemas, as checks: each names its field in the failure.
type Check = (v: unknown) => boolean;
const str: Check = (v) => typeof v === "string";
const int: Check = (v) => typeof v === "number" && Number.isInteger(v);
const bool: Check = (v) => typeof v === "boolean";
const obj: Check = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
const arr: Check = (v) => Array.isArray(v);
const strArr: Check = (v) => Array.isArray(v) && v.every((x) => typeof x === "string");
const amount: Check = (v) => typeof v === "string" && /^-?\d+\.\d{2}$/.test(v);
const currency: Check = (v) => typeof v === "string" && /^[A-Z]{3}$/.test(v);
const numericString: Check = (v) => typeof v === "string" && /^\d+$/.test(v);
const optional =
  (check: Check): Check =>
  (v) =>
    v === undefined || check(v);

function conforms(body: Record<string, unknown>, schema: Record<string, Check>) {
  const wrong = Object.entries(schema)
    .filter(([field, check]) => !check(body[field]))
    .map(([field]) => `${field}=${JSON.stringify(body[field])}`);
  expect(wrong, JSON.stringify(body)).toEqual([]);
}

/** The iframe answer (`redirectOutput`) both authorize pages document. */
const REDIRECT_OUTPUT: Record<string, Check> = {
  url: str,
  method: str,
  container: str,
  height: int,
  width: int,
};

/** Token retrieval's and check_token's documented claims (merchantId: see the compatibility notes). */
const CLAIMS: Record<string, Check> = {
  scope: strArr,
  userId: str,
  merchantId: (v) => str(v) || int(v),
  clientId: str,
  txRefId: (v) => typeof v === "string" && /^.+A\d+$/.test(v),
  name: str,
  firstName: str,
  lastName: str,
  personid: str,
  street: str,
  city: str,
  zip: str,
  country: (v) => typeof v === "string" && /^[A-Z]{3}$/.test(v),
  dob: (v) => typeof v === "string" && /^\d{4}-\d{2}-\d{2}$/.test(v),
  ip: str,
  identityProvider: str,
  exp: int,
  jti: str,
  aud: (v) => strArr(v) && (v as string[]).includes("identity_api"),
};

/** "Authorization" page: client_id, identity_provider, country, redirect_uri, locale, attributes — nothing else. */
async function authorizeAsDocumented(extra: Record<string, string> = {}, clientId = client.clientId) {
  const query = new URLSearchParams({
    client_id: clientId,
    identity_provider: "sandbox-bankid",
    country: "SE",
    redirect_uri: REDIRECT_URI,
    locale: "sv_SE",
    "attributes[user_type]": "beginner",
    ...extra,
  });
  return t.app.inject({ method: "GET", url: `/oauth/authorize?${query}` });
}

/** A whole sign-up with a deposit, started as the Authorization page shows it; the code it ends with. */
async function signedUp(clientId = client.clientId): Promise<{ code: string; txId: string }> {
  const res = await authorizeAsDocumented({ amount: "100.00", currency: "EUR" }, clientId);
  expect(res.statusCode, res.body).toBe(200);
  const answer = res.json();
  const decided = await decide(t, pagePath(answer), "approve");
  expect(decided.statusCode, decided.body).toBe(302);
  const back = await finish(t, String(decided.headers.location));
  const code = back.searchParams.get("code");
  expect(code, back.toString()).toBeTruthy();
  return { code: String(code), txId: String(answer.txId) };
}

/** "Token Retrieval": POST with the parameters in the query string and HTTP Basic, no body. */
function tokenAsDocumented(code: string) {
  const query = new URLSearchParams({
    grant_type: "authorization_code",
    code,
    redirect_uri: REDIRECT_URI,
    client_id: client.clientId,
  });
  return t.app.inject({
    method: "POST",
    url: `/oauth/token?${query}`,
    headers: { authorization: client.basic },
  });
}

describe("PaymentIQ 1-Click: GET /oauth/authorize", () => {
  it("the Authorization page's request (no response_type, no scope, no state) starts a flow: success, redirectOutput, message", async () => {
    const res = await authorizeAsDocumented();
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    conforms(body, { success: bool, redirectOutput: obj, message: arr });
    expect(body.success).toBe(true);
    conforms(body.redirectOutput, REDIRECT_OUTPUT);
    expect(body.redirectOutput.container).toBe("iframe");
  });

  it("the Authorization Code Grant Flow page's request (response_type, iframe, state, scope) answers success, redirectOutput, messages, links.statusUrl", async () => {
    const query = new URLSearchParams({
      identity_provider: "sandbox-bankid",
      iframe: "true",
      mock_user: "TEST_EUR",
      country: "SE",
      response_type: "code",
      state: "1234213123",
      client_id: client.clientId,
      scope: "default",
      redirect_uri: REDIRECT_URI,
    });
    const res = await t.app.inject({ method: "GET", url: `/oauth/authorize?${query}` });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    conforms(body, { success: bool, redirectOutput: obj, messages: arr, links: obj });
    expect(body.success).toBe(true);
    conforms(body.redirectOutput, REDIRECT_OUTPUT);
    conforms(body.links, { statusUrl: str });
  });

  it("a request the server refuses answers success: false with errors (one or more messages) and message, and the error for the redirect_uri", async () => {
    const res = await authorizeAsDocumented({ identity_provider: "gii-bankid-se" });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    conforms(body, { success: bool, redirectOutput: obj, message: arr, errors: strArr });
    expect(body.success).toBe(false);
    expect(body.errors.length).toBeGreaterThan(0);
    expect(new URL(body.redirectOutput.url).searchParams.get("error")).toBe("invalid_request");
  });

  it("a refusal by the user comes back as the Error Responses page shows: access_denied, err_cancelled_by_user", async () => {
    const res = await authorizeAsDocumented({ state: "xyz" });
    const decided = await decide(t, pagePath(res.json()), "deny");
    expect(decided.statusCode, decided.body).toBe(302);
    const back = await finish(t, String(decided.headers.location));
    expect(back.searchParams.get("error")).toBe("access_denied");
    expect(back.searchParams.get("error_description")).toBe("err_cancelled_by_user");
    expect(back.searchParams.get("state")).toBe("xyz");
  });
});

describe("PaymentIQ 1-Click: token retrieval and check_token", () => {
  let token: Record<string, unknown>;

  it("POST /oauth/token as the Token Retrieval page sends it answers every documented field with its type", async () => {
    const { code, txId } = await signedUp();
    const res = await tokenAsDocumented(code);
    expect(res.statusCode, res.body).toBe(200);
    token = res.json();
    conforms(token, { access_token: str, token_type: str, expires_in: int, ...CLAIMS });
    expect(token.token_type).toBe("bearer");
    expect(token.scope).toEqual(["default"]);
    expect(token.identityProvider).toBe("sandbox-bankid");
    expect(token.exp as number).toBeGreaterThan(Math.floor(Date.now() / 1000));
    // The browser's address (light-my-request's), kept sealed like the rest of the person's data.
    expect(token.ip).toBe("127.0.0.1");
    const row = await t.database.db
      .selectFrom("oneclick_transactions")
      .select("end_user_ip")
      .where("tx_id", "=", txId)
      .executeTakeFirstOrThrow();
    expect(row.end_user_ip).toBeTruthy();
    expect(row.end_user_ip).not.toContain("127.0.0.1");
  });

  it("GET /oauth/check_token?token=… answers the documented claims with their types", async () => {
    const res = await t.app.inject({
      method: "GET",
      url: `/oauth/check_token?token=${encodeURIComponent(String(token.access_token))}`,
      headers: { authorization: client.basic },
    });
    expect(res.statusCode, res.body).toBe(200);
    const claims = res.json();
    conforms(claims, {
      ...CLAIMS,
      veriff_verification_false: str,
      veriff_verification_failed_reason: str,
    });
    expect(claims.jti).toBe(token.jti);
    expect(claims.exp).toBe(token.exp);
  });

  it("a code that is not valid answers the documented error shape", async () => {
    const res = await tokenAsDocumented("dEd234");
    expect(res.statusCode).toBe(400);
    conforms(res.json(), { error: str, error_description: str });
  });
});

describe("PaymentIQ integration API: the callbacks the operator receives", () => {
  it("signin carries txRefId, name, identityProvider, iat and rat (required), and the optional fields as strings", async () => {
    // A person new to the client: a returning one is not signed in again (verifyuser instead).
    const fresh = await startOperator();
    try {
      await signedUp((await setUpOneClick(t, fresh)).clientId);
    } finally {
      await fresh.close();
    }
    const signin = fresh.callsOf("signin")[0]?.body;
    expect(signin, "a signin callback").toBeDefined();
    conforms(signin ?? {}, {
      txRefId: str,
      name: str,
      identityProvider: str,
      iat: numericString,
      rat: numericString,
      firstName: optional(str),
      lastName: optional(str),
      personid: optional(str),
      street: optional(str),
      zip: optional(str),
      country: optional((v) => typeof v === "string" && /^[A-Z]{3}$/.test(v)),
      dob: optional((v) => typeof v === "string" && /^\d{4}-\d{2}-\d{2}$/.test(v)),
      ip: optional(str),
      attributes: obj,
    });
    // The authorize request's attributes[user_type]=beginner, as the Authorization page says.
    expect(signin?.attributes).toEqual({ user_type: "beginner" });
  });

  it("authorize carries txTypeId as a PaymentIQ type code (a number, as its example); transfer as a string, with txPspAmount and txPspAmountCy", async () => {
    operator.calls.length = 0;
    await signedUp();
    const authorize = operator.callsOf("authorize")[0]?.body ?? {};
    conforms(authorize, {
      userId: str,
      txAmount: amount,
      txAmountCy: currency,
      txId: str,
      txTypeId: (v) => int(v) && (v as number) >= 100,
      txName: str,
      provider: str,
    });
    const transfer = operator.callsOf("transfer")[0]?.body ?? {};
    conforms(transfer, {
      userId: str,
      authCode: str,
      txAmount: amount,
      txAmountCy: currency,
      txPspAmount: amount,
      txPspAmountCy: currency,
      fee: amount,
      feeCy: currency,
      feeMode: optional((v) => v === "A" || v === "D"),
      txId: str,
      txTypeId: (v) => numericString(v) && Number(v) >= 100,
      txName: str,
      provider: str,
      txRefId: (v) => typeof v === "string" && /^.+A\d+$/.test(v),
    });
    expect(transfer.txTypeId).toBe(String(authorize.txTypeId));
  });
});

describe("PaymentIQ's status codes", () => {
  // "Transaction States And Status Codes": the codes Ferry's flow can reach, with PaymentIQ's names.
  const DOCUMENTED: Record<number, string> = {
    0: "SUCCESS",
    100: "REGISTERED",
    200: "PROCESSING_PROVIDER",
    201: "PROCESSING_MERCHANT",
    203: "PROCESSING_USER_VERIFICATION",
    204: "PROCESSING_USER_AUTHORISATION",
    205: "PROCESSING_KYC_VERIFICATION",
    300: "WAITING_INPUT",
    301: "WAITING_3D_SECURE",
    350: "WAITING_DEPOSIT_APPROVAL",
    400: "ERR_READ_TIMEOUT",
    402: "ERR_INCONSISTENT_TRANSACTION",
    405: "ERR_UNKNOWN_RESPONSE",
    500: "ERR_SYSTEM_ERROR",
    503: "ERR_DECLINED_FRAUD",
    504: "ERR_DECLINED_NO_FUNDS",
    509: "ERR_NOT_AUTHENTICATED",
    510: "ERR_INVALID_RESPONSE",
    511: "ERR_DECLINED_REQ_BLOCKED",
    513: "ERR_DECLINED_NOT_AUTHORIZED",
    520: "ERR_MERCHANT_OUT_OF_SERVICE",
    564: "ERR_DECLINED_KYC_BLOCK",
    600: "ERR_CANCELLED_BY_USER",
    601: "ERR_CANCELLED_BY_MERCHANT",
    602: "ERR_CANCELLED_BY_PSP",
  };

  it("every code the flow uses is PaymentIQ's code for what it means, under PaymentIQ's name", () => {
    const nameOf = (statuses as { statusNameOf?: (code: number) => string }).statusNameOf;
    expect(typeof nameOf, "statusNameOf").toBe("function");
    for (const [ferryName, code] of Object.entries(statuses.STATUS))
      expect(nameOf?.(code), `${ferryName} (${code})`).toBe(DOCUMENTED[code]);
    // Waiting at the identity provider is waiting on input, not 3-D Secure; the KYC scenario's
    // refusal is a KYC block, not a blocked request.
    expect(statuses.STATUS.WAITING_IDENTITY_PROVIDER).toBe(300);
    expect(statuses.STATUS.KYC_REQUIRED).toBe(564);
  });

  it("the transaction status the operator reads names its code as PaymentIQ does", async () => {
    const { txId } = await signedUp();
    const res = await t.app.inject({
      method: "GET",
      url: `/oauth/transactions/${txId}`,
      headers: { authorization: client.basic },
    });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(DOCUMENTED[body.statusCode], JSON.stringify(body)).toBe(body.statusName);
    const waiting = (await authorizeAsDocumented()).json();
    const started = await t.app.inject({
      method: "GET",
      url: `/oauth/transactions/${waiting.txId}`,
      headers: { authorization: client.basic },
    });
    expect(started.json()).toMatchObject({ statusCode: 300, statusName: "WAITING_INPUT" });
  });
});

describe("flows stored before PaymentIQ's codes (migration 0021)", () => {
  it("keep their meaning: 301 (at the provider) becomes 300, 511 (the KYC scenario) becomes 564; the state names stay", async () => {
    const database = await openDatabase({ dataDir: "memory://" });
    try {
      const all = readMigrations();
      await migrate(
        database,
        all.filter((m) => m.version < 21),
      );
      await database.withScriptTransaction(async (runner) => {
        await runner.exec("INSERT INTO clients (id, name) VALUES ('old-client', 'Old')");
        const flow = (session: string, code: number, name: string) =>
          runner.query(
            `INSERT INTO oneclick_transactions (client_id, session_id, identity_provider, redirect_uri, scope, iframe, status_code, status_name, expires_at)
             VALUES ('old-client', $1, 'sandbox-bankid', 'https://operator.example/return', 'default', true, $2, $3, now())`,
            [session, code, name],
          );
        await flow("s-waiting", 301, "WAITING_IDENTITY_PROVIDER");
        await flow("s-kyc", 511, "KYC_REQUIRED");
        await flow("s-done", 0, "SUCCESS");
      });
      await migrate(database, all);
      const rows = await database.db
        .selectFrom("oneclick_transactions")
        .select(["session_id", "status_code", "status_name"])
        .orderBy("session_id")
        .execute();
      expect(rows).toEqual([
        { session_id: "s-done", status_code: 0, status_name: "SUCCESS" },
        { session_id: "s-kyc", status_code: statuses.STATUS.KYC_REQUIRED, status_name: "KYC_REQUIRED" },
        {
          session_id: "s-waiting",
          status_code: statuses.STATUS.WAITING_IDENTITY_PROVIDER,
          status_name: "WAITING_IDENTITY_PROVIDER",
        },
      ]);
    } finally {
      await database.close();
    }
  });
});
