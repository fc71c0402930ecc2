import type { LightMyRequestResponse } from "fastify";
import { type CryptoKey, generateKeyPair, SignJWT } from "jose";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FERRY_SIGNING_ALG } from "../src/modules/keys/service.ts";
import * as ledger from "../src/modules/ledger/service.ts";
import { STATUS } from "../src/modules/oneclick/statuses.ts";
import { basic, startTestApp, type TestApp } from "./harness.ts";
import {
  decide,
  exchange,
  finish,
  type Operator,
  pagePath,
  REDIRECT_URI,
  setUpOneClick,
  startOperator,
} from "./oneclick.ts";
import { tokenFor } from "./page-forms.ts";
import { createTestClient } from "./platform.ts";

/**
 * Every 1-Click route (`/oauth`, the sandbox identity provider's page, the authorization server
 * metadata) with bad input: a clear 4xx in the face's shape — the authorize endpoint's 400 page or
 * the RFC 6749 error sent back to the redirect_uri, `{error, error_description}` elsewhere — never
 * a 500, and nothing changed. Client B never sees client A's flows, codes or tokens. A test fails
 * when a route has no cases here, or when this file names a route that is gone.
 */

let t: TestApp;
let operator: Operator;

interface OneClickClient {
  clientId: string;
  clientSecret: string;
  basic: string;
}
let A: OneClickClient;
let B: OneClickClient;
/** A's finished flow, its token (exchanged), and a live client's flow. */
let done: { txId: string; sessionId: string; token: string };

const served: string[] = [];
const FACES = ["/oauth/", "/sandbox/identity/", "/.well-known/oauth-authorization-server"];
const COVERED = [
  "GET /oauth/authorize",
  "POST /oauth/token",
  "GET /oauth/check_token",
  "GET /oauth/transactions/:txId",
  "GET /oauth/wait/:sessionId",
  "GET /.well-known/oauth-authorization-server",
  "GET /sandbox/identity/:sessionId",
  "POST /sandbox/identity/:sessionId",
];

const GOOD: Record<string, string> = {
  redirect_uri: REDIRECT_URI,
  response_type: "code",
  state: "st-1",
  scope: "default",
  identity_provider: "sandbox-bankid",
  amount: "100.00",
  currency: "EUR",
};

/** The authorize URL: the good parameters, `changes` applied (null: left out), `extra` appended as they are. */
function authorizeUrl(
  clientId: string | null,
  changes: Record<string, string | null> = {},
  extra: [string, string][] = [],
): string {
  const query = new URLSearchParams();
  if (clientId !== null) query.append("client_id", clientId);
  for (const [key, value] of Object.entries({ ...GOOD, ...changes }))
    if (value !== null) query.append(key, value);
  for (const [key, value] of extra) query.append(key, value);
  return `/oauth/authorize?${query}`;
}

const get = (url: string, headers: Record<string, string> = {}) =>
  t.app.inject({ method: "GET", url, headers });

/** Runs a flow for `who` to its end: the txId, the session and a fresh one-time code. */
async function runFlow(who: OneClickClient) {
  const started = await get(authorizeUrl(who.clientId));
  expect(started.statusCode, started.body).toBe(200);
  const answer = started.json();
  const path = pagePath(answer);
  const decided = await decide(t, path, "approve");
  expect(decided.statusCode, decided.body).toBe(302);
  const back = await finish(t, String(decided.headers.location));
  const code = back.searchParams.get("code");
  expect(code, back.toString()).toBeTruthy();
  return { txId: String(answer.txId), sessionId: path.split("/").pop() as string, code: code as string };
}

/** What bad input must leave as it was: every 1-Click row, the steps, the audit trail, the ledger, the users, the events. */
async function fingerprint(): Promise<Record<string, unknown>> {
  const { rows } = await sql<Record<string, string>>`
    SELECT
      (SELECT concat_ws('/', count(*), string_agg(concat_ws(',', tx_id, client_id, status_code, user_id,
                          code_hash, code_expires_at, code_used_at, token_jti, token_revoked_at, updated_at),
                          ';' ORDER BY tx_id)) FROM oneclick_transactions) AS flows,
      (SELECT concat_ws('/', count(*), string_agg(concat_ws(',', id, status, attempts), ';' ORDER BY id))
         FROM steps) AS steps,
      (SELECT count(*)::text FROM audit_log) AS audit,
      (SELECT string_agg(concat_ws(',', client_id, code), ';' ORDER BY client_id, code) FROM ledger_currencies)
        AS currencies,
      (SELECT count(*)::text FROM ledger_accounts) AS accounts,
      (SELECT count(*)::text FROM ledger_transfers) AS transfers,
      (SELECT string_agg(concat_ws(',', client_id, id, tier, updated_at), ';' ORDER BY client_id, id) FROM users)
        AS users,
      (SELECT count(*)::text FROM outbox_events) AS events,
      (SELECT string_agg(concat_ws(',', client_id, secret_hash), ';' ORDER BY client_id) FROM oauth_client_secrets)
        AS secrets,
      (SELECT string_agg(concat_ws(',', id, status, mode, updated_at), ';' ORDER BY id) FROM clients) AS clients
  `.execute(t.database.db);
  return rows[0] ?? {};
}

const isJson = (r: LightMyRequestResponse) =>
  String(r.headers["content-type"] ?? "").startsWith("application/json");
const isHtml = (r: LightMyRequestResponse) => String(r.headers["content-type"] ?? "").startsWith("text/html");
const show = (r: LightMyRequestResponse) =>
  `${r.statusCode} ${r.headers.location ?? ""} ${r.body.slice(0, 300)}`;

/** `{error, error_description}` with this status and error code, kept out of caches. */
function expectOAuthError(r: LightMyRequestResponse, status: number, error: string | string[], what: string) {
  expect(r.statusCode, `${what}: ${show(r)}`).toBe(status);
  expect(isJson(r), `${what}: ${show(r)}`).toBe(true);
  const body = r.json();
  expect(body, what).toEqual({ error: expect.any(String), error_description: expect.any(String) });
  expect([error].flat(), `${what}: ${show(r)}`).toContain(body.error);
  if (status === 401) expect(r.headers["www-authenticate"], what).toMatch(/^Basic realm="ferry-oauth"/);
  if (status !== 404) expect(r.headers["cache-control"], what).toBe("no-store");
}

async function setUpClient(options: { mode?: "live"; secret?: boolean } = {}): Promise<string> {
  const { clientId } = await createTestClient(t, { mode: options.mode });
  const patched = await t.app.inject({
    method: "PATCH",
    url: `/admin/clients/${clientId}`,
    headers: t.adminAuth,
    payload: {
      oneClick: {
        redirectUris: [REDIRECT_URI, "https://operator.example/other"],
        callbackUrl: "https://operator.example/api/{action}",
        callbackAuth: { type: "bearer", token: "operator-token-1" },
      },
    },
  });
  expect(patched.statusCode, patched.body).toBe(200);
  if (options.secret !== false) {
    const made = await t.app.inject({
      method: "POST",
      url: `/admin/clients/${clientId}/oauth-secret`,
      headers: t.adminAuth,
    });
    expect(made.statusCode, made.body).toBe(201);
  }
  return clientId;
}

let live = "";
let noSecret = "";
let suspended = "";
let plain = "";

beforeAll(async () => {
  t = await startTestApp();
  operator = await startOperator();
  served.push(
    ...t.app.routeTable
      .filter((r) => FACES.some((prefix) => r.url.startsWith(prefix)))
      .map((r) => `${r.method} ${r.url}`),
  );
  A = await setUpOneClick(t, operator);
  B = await setUpOneClick(t, operator);
  // Both run a flow: their EUR is on the ledger, their users exist.
  const first = await runFlow(A);
  const token = await exchange(t, A.basic, first.code);
  expect(token.statusCode, token.body).toBe(200);
  done = { txId: first.txId, sessionId: first.sessionId, token: token.json().access_token };
  await runFlow(B);
  // A points currency A's staff made (on its ledger, scale 2) and never gave a USD rate.
  await ledger.createCurrency(t.database.db, { clientId: A.clientId, code: "PTS", scale: 2 });

  live = await setUpClient({ mode: "live" });
  noSecret = await setUpClient({ secret: false });
  suspended = await setUpClient();
  const suspend = await t.app.inject({
    method: "PATCH",
    url: `/admin/clients/${suspended}`,
    headers: t.adminAuth,
    payload: { status: "SUSPENDED" },
  });
  expect(suspend.statusCode, suspend.body).toBe(200);
  plain = (await createTestClient(t)).clientId;
});
afterAll(async () => {
  await operator?.close();
  await t?.close();
});

describe("every 1-Click route", () => {
  it("has cases here, and every route here exists", () => {
    expect([...served].sort()).toEqual([...COVERED].sort());
  });
});

// ——— GET /oauth/authorize ———

describe("GET /oauth/authorize", () => {
  const badPages = (): [string, string][] => [
    ["client_id missing", authorizeUrl(null)],
    ["client_id unknown", authorizeUrl("no-such-client")],
    ["client_id empty", authorizeUrl("")],
    ["client_id malformed", authorizeUrl("a b")],
    ["client_id too short", authorizeUrl("x")],
    ["client_id huge", authorizeUrl("c".repeat(3000))],
    ["client_id twice (the same)", authorizeUrl(A.clientId, {}, [["client_id", A.clientId]])],
    ["client_id twice (two clients)", authorizeUrl(A.clientId, {}, [["client_id", B.clientId]])],
    ["a suspended client", authorizeUrl(suspended)],
    ["a client without oneClick settings", authorizeUrl(plain)],
    ["redirect_uri unregistered", authorizeUrl(A.clientId, { redirect_uri: "https://evil.example/return" })],
    ["redirect_uri with a trailing slash", authorizeUrl(A.clientId, { redirect_uri: `${REDIRECT_URI}/` })],
    ["redirect_uri with a query", authorizeUrl(A.clientId, { redirect_uri: `${REDIRECT_URI}?a=1` })],
    ["redirect_uri in upper case", authorizeUrl(A.clientId, { redirect_uri: REDIRECT_URI.toUpperCase() })],
    ["redirect_uri not a URL", authorizeUrl(A.clientId, { redirect_uri: "javascript:alert(1)" })],
    ["redirect_uri huge", authorizeUrl(A.clientId, { redirect_uri: `${REDIRECT_URI}${"x".repeat(3000)}` })],
    ["redirect_uri missing (two registered)", authorizeUrl(A.clientId, { redirect_uri: null })],
    ["redirect_uri empty (two registered)", authorizeUrl(A.clientId, { redirect_uri: "" })],
    ["redirect_uri twice", authorizeUrl(A.clientId, {}, [["redirect_uri", "https://evil.example/return"]])],
    [
      "redirect_uri twice (both registered)",
      authorizeUrl(A.clientId, {}, [["redirect_uri", "http://127.0.0.1:9/return"]]),
    ],
    // Bad in every other way too: the client and redirect_uri are judged first.
    [
      "unknown client and bad everything",
      authorizeUrl("no-such-client", { response_type: "token", amount: "-1" }),
    ],
  ];

  it("an unknown, missing, repeated, suspended or unconfigured client, or an unregistered redirect_uri → the 400 page, never a redirect; nothing written", async () => {
    const before = await fingerprint();
    const failures: string[] = [];
    for (const [name, url] of badPages())
      for (const iframe of [undefined, "false", "true"]) {
        const response = await get(iframe ? `${url}&iframe=${iframe}` : url, {
          origin: "https://operator.example",
        });
        const what = `${name} (iframe=${iframe}): ${show(response)}`;
        if (
          response.statusCode !== 400 ||
          !isHtml(response) ||
          response.headers.location !== undefined ||
          !response.body.includes('id="error"') ||
          response.body.includes("evil.example") ||
          response.headers["access-control-allow-origin"] !== undefined
        )
          failures.push(what);
      }
    expect(failures, failures.join("\n")).toEqual([]);
    expect(await fingerprint()).toEqual(before);
  });

  interface ErrorCase {
    name: string;
    client?: () => string;
    changes?: Record<string, string | null>;
    extra?: [string, string][];
    error: string;
    /** The state the redirect carries back (default: the one sent). */
    state?: string | null;
  }
  const STATE_501 = "s".repeat(501);
  const STATE_3000 = "s".repeat(3000);
  const CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
  const errorCases = (): ErrorCase[] => [
    { name: "response_type token", changes: { response_type: "token" }, error: "unsupported_response_type" },
    { name: "response_type CODE", changes: { response_type: "CODE" }, error: "unsupported_response_type" },
    {
      name: "response_type code token",
      changes: { response_type: "code token" },
      error: "unsupported_response_type",
    },
    { name: "attributes key", changes: { "attributes[a b]": "x" }, error: "invalid_request" },
    { name: "attributes huge", changes: { "attributes[k]": "x".repeat(501) }, error: "invalid_request" },
    { name: "scope admin", changes: { scope: "admin" }, error: "invalid_scope" },
    { name: "scope default admin", changes: { scope: "default admin" }, error: "invalid_scope" },
    { name: "scope huge", changes: { scope: "x".repeat(3000) }, error: "invalid_scope" },
    { name: "identity_provider missing", changes: { identity_provider: null }, error: "invalid_request" },
    { name: "identity_provider empty", changes: { identity_provider: "" }, error: "invalid_request" },
    { name: "identity_provider unknown", changes: { identity_provider: "bankid" }, error: "invalid_request" },
    {
      name: "identity_provider in upper case",
      changes: { identity_provider: "SANDBOX-BANKID" },
      error: "invalid_request",
    },
    {
      name: "identity_provider huge",
      changes: { identity_provider: "p".repeat(3000) },
      error: "invalid_request",
    },
    { name: "a live client with sandbox-bankid", client: () => live, error: "invalid_request" },
    {
      name: "a live client with sandbox-trustly",
      client: () => live,
      changes: { identity_provider: "sandbox-trustly" },
      error: "invalid_request",
    },
    { name: "amount without currency", changes: { currency: null }, error: "invalid_request" },
    { name: "currency without amount", changes: { amount: null }, error: "invalid_request" },
    { name: "amount empty", changes: { amount: "" }, error: "invalid_request" },
    { name: "amount -1", changes: { amount: "-1" }, error: "invalid_request" },
    { name: "amount 0", changes: { amount: "0" }, error: "invalid_request" },
    { name: "amount 0.00", changes: { amount: "0.00" }, error: "invalid_request" },
    { name: "amount 1.001 EUR", changes: { amount: "1.001" }, error: "invalid_request" },
    { name: "amount 100.50 JPY", changes: { amount: "100.50", currency: "JPY" }, error: "invalid_request" },
    { name: "amount abc", changes: { amount: "abc" }, error: "invalid_request" },
    { name: "amount 1e3", changes: { amount: "1e3" }, error: "invalid_request" },
    { name: "amount 1,00", changes: { amount: "1,00" }, error: "invalid_request" },
    { name: "amount with a space", changes: { amount: " 100" }, error: "invalid_request" },
    { name: "amount +5", changes: { amount: "+5" }, error: "invalid_request" },
    { name: "amount .5", changes: { amount: ".5" }, error: "invalid_request" },
    { name: "amount Infinity", changes: { amount: "Infinity" }, error: "invalid_request" },
    { name: "amount of 40 digits", changes: { amount: "9".repeat(40) }, error: "invalid_request" },
    { name: "amount huge", changes: { amount: "9".repeat(3000) }, error: "invalid_request" },
    { name: "currency XYZ", changes: { currency: "XYZ" }, error: "invalid_request" },
    { name: "a client currency without a USD rate", changes: { currency: "PTS" }, error: "invalid_request" },
    { name: "currency BTC", changes: { currency: "BTC" }, error: "invalid_request" },
    { name: "currency USDC", changes: { currency: "USDC" }, error: "invalid_request" },
    { name: "currency eur", changes: { currency: "eur" }, error: "invalid_request" },
    { name: "currency empty", changes: { currency: "" }, error: "invalid_request" },
    { name: "currency huge", changes: { currency: "E".repeat(3000) }, error: "invalid_request" },
    { name: "locale garbage", changes: { locale: "<script>" }, error: "invalid_request" },
    { name: "locale x", changes: { locale: "x" }, error: "invalid_request" },
    { name: "locale too long", changes: { locale: "en_US_POSIX_extra" }, error: "invalid_request" },
    { name: "locale huge", changes: { locale: "e".repeat(3000) }, error: "invalid_request" },
    { name: "iframe maybe", changes: { iframe: "maybe" }, error: "invalid_request" },
    { name: "iframe TRUE", changes: { iframe: "TRUE" }, error: "invalid_request" },
    { name: "iframe 1", changes: { iframe: "1" }, error: "invalid_request" },
    // An over-long state is not echoed back (the redirect stays a sane length).
    { name: "state of 501 characters", changes: { state: STATE_501 }, state: null, error: "invalid_request" },
    {
      name: "state of 3000 characters",
      changes: { state: STATE_3000 },
      state: null,
      error: "invalid_request",
    },
    {
      name: "code_challenge_method plain",
      changes: { code_challenge: CHALLENGE, code_challenge_method: "plain" },
      error: "invalid_request",
    },
    {
      name: "code_challenge without a method (plain by default)",
      changes: { code_challenge: CHALLENGE },
      error: "invalid_request",
    },
    {
      name: "code_challenge_method s256",
      changes: { code_challenge: CHALLENGE, code_challenge_method: "s256" },
      error: "invalid_request",
    },
    {
      name: "code_challenge_method without code_challenge",
      changes: { code_challenge_method: "S256" },
      error: "invalid_request",
    },
    {
      name: "code_challenge too short",
      changes: { code_challenge: "abc", code_challenge_method: "S256" },
      error: "invalid_request",
    },
    {
      name: "code_challenge not base64url",
      changes: { code_challenge: `${CHALLENGE.slice(0, 42)}+`, code_challenge_method: "S256" },
      error: "invalid_request",
    },
    {
      name: "code_challenge too long",
      changes: { code_challenge: `${CHALLENGE}A`, code_challenge_method: "S256" },
      error: "invalid_request",
    },
    {
      name: "code_challenge huge",
      changes: { code_challenge: "c".repeat(3000), code_challenge_method: "S256" },
      error: "invalid_request",
    },
    { name: "response_type twice", extra: [["response_type", "code"]], error: "invalid_request" },
    { name: "scope twice", extra: [["scope", "default"]], error: "invalid_request" },
    {
      name: "identity_provider twice",
      extra: [["identity_provider", "sandbox-trustly"]],
      error: "invalid_request",
    },
    { name: "amount twice", extra: [["amount", "100.00"]], error: "invalid_request" },
    { name: "currency twice", extra: [["currency", "EUR"]], error: "invalid_request" },
    {
      name: "locale twice",
      extra: [
        ["locale", "en"],
        ["locale", "sv"],
      ],
      error: "invalid_request",
    },
    { name: "state twice", extra: [["state", "st-2"]], error: "invalid_request", state: null },
    {
      name: "an unknown parameter twice",
      extra: [
        ["foo", "1"],
        ["foo", "2"],
      ],
      error: "invalid_request",
    },
    { name: "a client with no OAuth secret", client: () => noSecret, error: "unauthorized_client" },
  ];

  /** The error as it reaches the redirect_uri: its own address, error, error_description, state. */
  function expectSentBack(url: string, c: ErrorCase, what: string) {
    const back = new URL(url);
    expect(`${back.origin}${back.pathname}`, what).toBe(REDIRECT_URI);
    expect(back.searchParams.get("error"), what).toBe(c.error);
    expect(back.searchParams.get("error_description"), what).toMatch(/\w/);
    const state = c.state === undefined ? (c.changes?.state ?? GOOD.state) : c.state;
    expect(back.searchParams.get("state"), what).toBe(state);
    expect(back.searchParams.get("code"), what).toBeNull();
  }

  it("every other bad parameter, iframe=true (the default) → 200 JSON with the error for the redirect_uri; nothing written", async () => {
    const before = await fingerprint();
    for (const c of errorCases()) {
      const response = await get(authorizeUrl((c.client ?? (() => A.clientId))(), c.changes, c.extra));
      const what = `${c.name}: ${show(response)}`;
      expect(response.statusCode, what).toBe(200);
      expect(isJson(response), what).toBe(true);
      expect(response.headers.location, what).toBeUndefined();
      expect(response.headers["cache-control"], what).toBe("no-store");
      const body = response.json();
      expect(body, what).toMatchObject({
        success: false,
        redirectOutput: { url: expect.any(String), method: "GET" },
      });
      expect(body.txId, what).toBeUndefined();
      expectSentBack(body.redirectOutput.url, c, what);
    }
    expect(await fingerprint()).toEqual(before);
  });

  it("every other bad parameter, iframe=false → 302 to the redirect_uri with the error; nothing written", async () => {
    const before = await fingerprint();
    for (const c of errorCases()) {
      if (c.changes?.iframe !== undefined) continue;
      const response = await get(
        authorizeUrl((c.client ?? (() => A.clientId))(), { ...c.changes, iframe: "false" }, c.extra),
      );
      const what = `${c.name}: ${show(response)}`;
      expect(response.statusCode, what).toBe(302);
      expect(response.headers["cache-control"], what).toBe("no-store");
      expectSentBack(String(response.headers.location), c, what);
    }
    expect(await fingerprint()).toEqual(before);
  });

  it("a registered redirect_uri may be left out when it is the only one; an empty optional parameter counts as left out", async () => {
    const only = await setUpClient();
    await t.app.inject({
      method: "PATCH",
      url: `/admin/clients/${only}`,
      headers: t.adminAuth,
      payload: {
        oneClick: {
          redirectUris: [REDIRECT_URI],
          callbackUrl: "https://operator.example/api/{action}",
          callbackAuth: { type: "bearer", token: "operator-token-1" },
        },
      },
    });
    const bad = await get(authorizeUrl(only, { redirect_uri: null, scope: "admin" }));
    expectSentBack(bad.json().redirectOutput.url, { name: "", error: "invalid_scope" }, show(bad));
    // An empty response_type counts as left out, and left out it is `code` (PaymentIQ's requests omit it).
    const good = await get(
      authorizeUrl(only, { redirect_uri: null, state: "", locale: "", iframe: "", response_type: "" }),
    );
    expect(good.statusCode, good.body).toBe(200);
    expect(good.json().success, good.body).toBe(true);
    const row = await t.services.oneClick.get(String(good.json().txId));
    expect(row).toMatchObject({ redirect_uri: REDIRECT_URI, state: null, locale: null, iframe: true });
  });
});

// ——— POST /oauth/token ———

describe("POST /oauth/token", () => {
  const FORM = { "content-type": "application/x-www-form-urlencoded" };
  const form = (params: [string, string][]) => new URLSearchParams(params).toString();
  const token = (options: { headers?: Record<string, string>; payload?: string; url?: string }) =>
    t.app.inject({
      method: "POST",
      url: options.url ?? "/oauth/token",
      headers: options.headers ?? {},
      ...(options.payload === undefined ? {} : { payload: options.payload }),
    });

  it("without valid client credentials → 401 invalid_client with a Basic challenge; the code still works", async () => {
    const flow = await runFlow(A);
    const good = (extra: [string, string][] = []) =>
      form([
        ["grant_type", "authorization_code"],
        ["code", flow.code],
        ["redirect_uri", REDIRECT_URI],
        ...extra,
      ]);
    const b64 = (text: string) => Buffer.from(text).toString("base64");
    const cases: [string, Record<string, string>, string][] = [
      ["no Authorization header", FORM, good()],
      ["Basic, not base64", { ...FORM, authorization: "Basic not-base64!!" }, good()],
      ["Basic without a colon", { ...FORM, authorization: `Basic ${b64(A.clientId)}` }, good()],
      ["Basic, empty", { ...FORM, authorization: "Basic " }, good()],
      ["Bearer", { ...FORM, authorization: `Bearer ${done.token}` }, good()],
      ["a wrong secret", { ...FORM, authorization: basic(A.clientId, "fcs_wrong-secret") }, good()],
      ["an empty secret", { ...FORM, authorization: basic(A.clientId, "") }, good()],
      ["another client's secret", { ...FORM, authorization: basic(A.clientId, B.clientSecret) }, good()],
      ["B's id with A's secret", { ...FORM, authorization: basic(B.clientId, A.clientSecret) }, good()],
      ["an unknown client", { ...FORM, authorization: basic("no-such-client", A.clientSecret) }, good()],
      ["a malformed client id", { ...FORM, authorization: basic("a b", A.clientSecret) }, good()],
      ["a huge client id", { ...FORM, authorization: basic("c".repeat(3000), A.clientSecret) }, good()],
      ["a client without a secret", { ...FORM, authorization: basic(noSecret, "fcs_anything") }, good()],
      ["percent-garbage in Basic", { ...FORM, authorization: basic("%zz", "%zz") }, good()],
      [
        "client_secret_post, wrong secret",
        FORM,
        good([
          ["client_id", A.clientId],
          ["client_secret", "fcs_wrong"],
        ]),
      ],
      ["client_id without a secret", FORM, good([["client_id", A.clientId]])],
      ["client_secret without an id", FORM, good([["client_secret", A.clientSecret]])],
      [
        "Basic A, client_id B in the body",
        { ...FORM, authorization: A.basic },
        good([["client_id", B.clientId]]),
      ],
    ];
    const before = await fingerprint();
    for (const [name, headers, payload] of cases)
      expectOAuthError(await token({ headers, payload }), 401, "invalid_client", name);
    expect(await fingerprint()).toEqual(before);
    const exchanged = await exchange(t, A.basic, flow.code);
    expect(exchanged.statusCode, exchanged.body).toBe(200);
  });

  it("bad parameters → 400 {error, error_description} (RFC 6749 §5.2), never 500; the code still works", async () => {
    const flow = await runFlow(A);
    const auth = { ...FORM, authorization: A.basic };
    const base: [string, string][] = [
      ["grant_type", "authorization_code"],
      ["code", flow.code],
      ["redirect_uri", REDIRECT_URI],
    ];
    const without = (name: string) => base.filter(([k]) => k !== name);
    const withValue = (name: string, value: string): [string, string][] =>
      base.map(([k, v]) => [k, k === name ? value : v]);
    const cases: [string, { headers?: Record<string, string>; payload?: string; url?: string }, string][] = [
      [
        "Basic and client_secret in the body",
        { headers: auth, payload: form([...base, ["client_secret", A.clientSecret]]) },
        "invalid_request",
      ],
      [
        "Basic and client_id + client_secret in the body",
        {
          headers: auth,
          payload: form([...base, ["client_id", A.clientId], ["client_secret", A.clientSecret]]),
        },
        "invalid_request",
      ],
      ["grant_type missing", { headers: auth, payload: form(without("grant_type")) }, "invalid_request"],
      ["grant_type empty", { headers: auth, payload: form(withValue("grant_type", "")) }, "invalid_request"],
      [
        "grant_type password",
        { headers: auth, payload: form(withValue("grant_type", "password")) },
        "unsupported_grant_type",
      ],
      [
        "grant_type client_credentials",
        { headers: auth, payload: form(withValue("grant_type", "client_credentials")) },
        "unsupported_grant_type",
      ],
      [
        "grant_type refresh_token",
        { headers: auth, payload: form(withValue("grant_type", "refresh_token")) },
        "unsupported_grant_type",
      ],
      [
        "grant_type huge",
        { headers: auth, payload: form(withValue("grant_type", "g".repeat(5000))) },
        "unsupported_grant_type",
      ],
      ["code missing", { headers: auth, payload: form(without("code")) }, "invalid_request"],
      ["code empty", { headers: auth, payload: form(withValue("code", "")) }, "invalid_request"],
      ["code unknown", { headers: auth, payload: form(withValue("code", "abc")) }, "invalid_grant"],
      [
        "code of 201 characters",
        { headers: auth, payload: form(withValue("code", "c".repeat(201))) },
        "invalid_grant",
      ],
      [
        "code with a NUL",
        { headers: auth, payload: form(withValue("code", `${flow.code}\u0000`)) },
        "invalid_grant",
      ],
      [
        "code in other case",
        { headers: auth, payload: form(withValue("code", flow.code.toUpperCase())) },
        "invalid_grant",
      ],
      ["redirect_uri missing", { headers: auth, payload: form(without("redirect_uri")) }, "invalid_grant"],
      [
        "redirect_uri, the other registered one",
        { headers: auth, payload: form(withValue("redirect_uri", "http://127.0.0.1:9/return")) },
        "invalid_grant",
      ],
      [
        "redirect_uri unregistered",
        { headers: auth, payload: form(withValue("redirect_uri", "https://evil.example/return")) },
        "invalid_grant",
      ],
      ["code twice", { headers: auth, payload: form([...base, ["code", flow.code]]) }, "invalid_request"],
      [
        "grant_type twice",
        { headers: auth, payload: form([...base, ["grant_type", "authorization_code"]]) },
        "invalid_request",
      ],
      [
        "redirect_uri twice",
        { headers: auth, payload: form([...base, ["redirect_uri", REDIRECT_URI]]) },
        "invalid_request",
      ],
      [
        "code twice in the query string",
        { headers: { authorization: A.basic }, url: `/oauth/token?${form([...base, ["code", "x"]])}` },
        "invalid_request",
      ],
      [
        "a JSON body",
        {
          headers: { authorization: A.basic, "content-type": "application/json" },
          payload: JSON.stringify(Object.fromEntries(base)),
        },
        "invalid_request",
      ],
      [
        "a JSON body with client_secret_post",
        {
          headers: { "content-type": "application/json" },
          payload: JSON.stringify({
            ...Object.fromEntries(base),
            client_id: A.clientId,
            client_secret: A.clientSecret,
          }),
        },
        "invalid_request",
      ],
      [
        "broken JSON",
        { headers: { authorization: A.basic, "content-type": "application/json" }, payload: "{" },
        "invalid_request",
      ],
      [
        "an empty JSON body",
        { headers: { authorization: A.basic, "content-type": "application/json" }, payload: "" },
        "invalid_request",
      ],
      [
        "JSON null",
        { headers: { authorization: A.basic, "content-type": "application/json" }, payload: "null" },
        "invalid_request",
      ],
      [
        "a text/plain body",
        { headers: { authorization: A.basic, "content-type": "text/plain" }, payload: form(base) },
        "invalid_request",
      ],
      [
        "an unknown content type",
        { headers: { authorization: A.basic, "content-type": "application/xml" }, payload: "<a/>" },
        "invalid_request",
      ],
      ["an empty body", { headers: { authorization: A.basic } }, "invalid_request"],
      ["an empty form body", { headers: auth, payload: "" }, "invalid_request"],
      [
        "a body beyond the form limit",
        { headers: auth, payload: form([...base, ["pad", "x".repeat(10_000)]]) },
        "invalid_request",
      ],
      [
        "broken percent-encoding",
        { headers: auth, payload: "grant_type=authorization_code&code=%E0%A4%A" },
        "invalid_grant",
      ],
    ];
    const before = await fingerprint();
    for (const [name, request, error] of cases) expectOAuthError(await token(request), 400, error, name);
    expect(await fingerprint()).toEqual(before);
    // All of that left the code as it was: it works (once).
    const exchanged = await exchange(t, A.basic, flow.code);
    expect(exchanged.statusCode, exchanged.body).toBe(200);
    expect(exchanged.json().txRefId).toBe(`${A.clientId}A${flow.txId}`);
  });

  it("the parameters in the query string (as some operators send them) are accepted", async () => {
    const flow = await runFlow(A);
    const query = form([
      ["grant_type", "authorization_code"],
      ["code", flow.code],
      ["redirect_uri", REDIRECT_URI],
    ]);
    const response = await token({ headers: { authorization: A.basic }, url: `/oauth/token?${query}` });
    expect(response.statusCode, response.body).toBe(200);
  });
});

// ——— GET /oauth/check_token ———

describe("GET /oauth/check_token", () => {
  const check = (query: string, authorization?: string) =>
    get(`/oauth/check_token${query}`, authorization === undefined ? {} : { authorization });

  /** A's token's claims, signed with `key` (Ferry's own when not given), with `changes`. */
  async function forged(
    changes: Record<string, unknown> = {},
    options: {
      key?: CryptoKey | Uint8Array;
      alg?: string;
      kid?: string;
      exp?: number;
      iss?: string;
      aud?: string;
    } = {},
  ): Promise<string> {
    const [, payload = ""] = done.token.split(".");
    const claims = { ...JSON.parse(Buffer.from(payload, "base64url").toString("utf8")), ...changes };
    const { iss, aud, exp, iat: _iat, ...rest } = claims;
    const ferry = await t.services.oneClick.deps.signingKeys.current();
    return new SignJWT(rest)
      .setProtectedHeader({
        alg: options.alg ?? FERRY_SIGNING_ALG,
        kid: options.kid ?? ferry.kid,
        typ: "JWT",
      })
      .setIssuer(options.iss ?? iss)
      .setAudience(options.aud ?? aud)
      .setIssuedAt()
      .setExpirationTime(options.exp ?? exp)
      .sign(options.key ?? ferry.privateKey);
  }

  it("without valid client credentials → 401 invalid_client", async () => {
    for (const [name, authorization] of [
      ["none", undefined],
      ["a wrong secret", basic(A.clientId, "fcs_wrong")],
      ["B's id with A's secret", basic(B.clientId, A.clientSecret)],
      ["Bearer with the token itself", `Bearer ${done.token}`],
      ["garbage", "Basic !!"],
    ] as const)
      expectOAuthError(await check(`?token=${done.token}`, authorization), 401, "invalid_client", name);
  });

  it("a missing, malformed, forged, expired, foreign or revoked token → 400; the real one is still good", async () => {
    const other = await generateKeyPair(FERRY_SIGNING_ALG, { extractable: true });
    const hmac = new TextEncoder().encode(A.clientSecret);
    const [header = "", payload = "", signature = ""] = done.token.split(".");
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${payload}.`;
    const cases: [string, string, string][] = [
      ["token missing", "", "invalid_request"],
      ["token empty", "?token=", "invalid_request"],
      ["token twice", `?token=${done.token}&token=${done.token}`, "invalid_request"],
      ["token beyond 8192 characters", `?token=${"a".repeat(9000)}`, "invalid_request"],
      ["garbage", "?token=abc", "invalid_token"],
      ["three garbage parts", "?token=a.b.c", "invalid_token"],
      ["alg none", `?token=${none}`, "invalid_token"],
      [
        "another signature",
        `?token=${header}.${payload}.${signature.split("").reverse().join("")}`,
        "invalid_token",
      ],
      [
        "other claims under the signature",
        `?token=${header}.${Buffer.from('{"txRefId":"x"}').toString("base64url")}.${signature}`,
        "invalid_token",
      ],
      [
        "signed by another key with Ferry's kid",
        `?token=${await forged({}, { key: other.privateKey })}`,
        "invalid_token",
      ],
      [
        "HS256 with the client secret",
        `?token=${await forged({}, { key: hmac, alg: "HS256" })}`,
        "invalid_token",
      ],
      ["expired", `?token=${await forged({}, { exp: Math.floor(Date.now() / 1000) - 60 })}`, "invalid_token"],
      ["another issuer", `?token=${await forged({}, { iss: "https://evil.example" })}`, "invalid_token"],
      ["for another client (audience B)", `?token=${await forged({}, { aud: B.clientId })}`, "invalid_token"],
      ["another jti (never issued)", `?token=${await forged({ jti: "0".repeat(32) })}`, "invalid_token"],
      ["another txRefId", `?token=${await forged({ txRefId: `${A.clientId}A1` })}`, "invalid_token"],
      ["B's txRefId", `?token=${await forged({ txRefId: `${B.clientId}A${done.txId}` })}`, "invalid_token"],
    ];
    const before = await fingerprint();
    for (const [name, query, error] of cases) expectOAuthError(await check(query, A.basic), 400, error, name);
    expect(await fingerprint()).toEqual(before);
    const good = await check(`?token=${done.token}`, A.basic);
    expect(good.statusCode, good.body).toBe(200);
    expect(good.json()).toMatchObject({ clientId: A.clientId, txRefId: `${A.clientId}A${done.txId}` });
  });
});

// ——— GET /oauth/transactions/:txId ———

describe("GET /oauth/transactions/:txId", () => {
  it("without valid client credentials → 401", async () => {
    for (const [name, authorization] of [
      ["none", undefined],
      ["a wrong secret", basic(A.clientId, "fcs_wrong")],
      ["B's id with A's secret", basic(B.clientId, A.clientSecret)],
    ] as const)
      expectOAuthError(
        await get(`/oauth/transactions/${done.txId}`, authorization === undefined ? {} : { authorization }),
        401,
        "invalid_client",
        name,
      );
  });

  it("credentials are checked before parameters: a bad id or token without them → 401, not 400", async () => {
    expectOAuthError(
      await get(`/oauth/transactions/${"9".repeat(60)}`, {}),
      401,
      "invalid_client",
      "long id",
    );
    expectOAuthError(
      await get(`/oauth/check_token?token=${"x".repeat(9000)}`, {}),
      401,
      "invalid_client",
      "long token",
    );
  });

  it("an id that is not one of the client's → 404 not_found; beyond 40 characters → 400", async () => {
    const before = await fingerprint();
    for (const id of [
      "abc",
      "0",
      "-1",
      "1.5",
      "1e5",
      "%20",
      "0x10",
      "9223372036854775807",
      "9223372036854775808",
      "9".repeat(20),
      "9".repeat(40),
      `${done.txId}%00`,
    ])
      expectOAuthError(
        await get(`/oauth/transactions/${id}`, { authorization: A.basic }),
        404,
        "not_found",
        id,
      );
    expectOAuthError(
      await get(`/oauth/transactions/${"9".repeat(41)}`, { authorization: A.basic }),
      400,
      "invalid_request",
      "41 digits",
    );
    expect(await fingerprint()).toEqual(before);
    const own = await get(`/oauth/transactions/${done.txId}`, { authorization: A.basic });
    expect(own.statusCode, own.body).toBe(200);
    expect(own.json()).toMatchObject({ txId: done.txId, txState: "SUCCESSFUL", statusCode: 0 });
  });
});

// ——— GET /oauth/wait/:sessionId, GET /.well-known/oauth-authorization-server ———

describe("GET /oauth/wait/:sessionId", () => {
  it("an unknown or malformed session → the 404 page", async () => {
    const before = await fingerprint();
    for (const id of [
      "abc",
      "%20",
      "a".repeat(43),
      `${done.sessionId.slice(0, 42)}!`,
      done.sessionId.toLowerCase(),
    ]) {
      if (id === done.sessionId) continue;
      const response = await get(`/oauth/wait/${id}`);
      expect(response.statusCode, `${id}: ${show(response)}`).toBe(404);
      expect(isHtml(response)).toBe(true);
      expect(response.headers.location).toBeUndefined();
    }
    const long = await get(`/oauth/wait/${"a".repeat(101)}`);
    expect(long.statusCode, show(long)).toBe(400);
    expect(await fingerprint()).toEqual(before);
  });
});

describe("GET /.well-known/oauth-authorization-server", () => {
  it("answers the metadata whatever the query", async () => {
    const response = await get("/.well-known/oauth-authorization-server?x=1&x=2");
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      response_types_supported: ["code"],
      code_challenge_methods_supported: ["S256"],
    });
  });
});

// ——— the sandbox identity provider's page ———

describe("/sandbox/identity/:sessionId", () => {
  const post = (path: string, payload: string, contentType = "application/x-www-form-urlencoded") =>
    t.app.inject({ method: "POST", url: path, headers: { "content-type": contentType }, payload });

  async function waitingFlow(who: OneClickClient | string) {
    const clientId = typeof who === "string" ? who : who.clientId;
    const started = await get(authorizeUrl(clientId));
    expect(started.statusCode, started.body).toBe(200);
    const path = pagePath(started.json());
    return { path, txId: String(started.json().txId) };
  }
  const statusOf = async (txId: string) => (await t.services.oneClick.get(txId)).status_code;

  it("an unknown or malformed session → the 404 page (GET and POST)", async () => {
    const before = await fingerprint();
    for (const id of ["abc", "%20", "a".repeat(43), `${done.sessionId.slice(0, 42)}!`, "..%2F..%2Fadmin"]) {
      for (const response of [
        await get(`/sandbox/identity/${id}`),
        await post(`/sandbox/identity/${id}`, "decision=approve&personid=199001011234"),
      ]) {
        expect(response.statusCode, `${id}: ${show(response)}`).toBe(404);
        expect(isHtml(response), id).toBe(true);
      }
    }
    for (const response of [
      await get(`/sandbox/identity/${"a".repeat(101)}`),
      await post(`/sandbox/identity/${"a".repeat(101)}`, "decision=approve"),
    ])
      expect(response.statusCode, show(response)).toBe(400);
    expect(await fingerprint()).toEqual(before);
  });

  it("a bad decision → 400 and nothing changed; the flow still waits for the provider", async () => {
    const { path, txId } = await waitingFlow(A);
    const before = await fingerprint();
    for (const [payload, contentType] of [
      ["decision=maybe&personid=199001011234", undefined],
      ["personid=199001011234", undefined],
      ["", undefined],
      ["decision=APPROVE&personid=199001011234", undefined],
      ["decision=&personid=199001011234", undefined],
      [`decision=approve&personid=${"1".repeat(41)}`, undefined],
      [`decision=${"x".repeat(5000)}`, undefined],
      ["decision=approve&personid=199001011234", "text/plain"],
      ["{", "application/json"],
      [JSON.stringify({ decision: "maybe" }), "application/json"],
    ] as const) {
      const response = await post(path, payload, contentType);
      const what = `${payload.slice(0, 60)} (${contentType ?? "form"}): ${show(response)}`;
      expect(response.statusCode, what).toBe(400);
      expect(response.headers.location, what).toBeUndefined();
    }
    expect(await fingerprint()).toEqual(before);
    expect(await statusOf(txId)).toBe(STATUS.WAITING_IDENTITY_PROVIDER);
  });

  it("approve with a person the sandbox does not know → the 400 page with the error; the flow still waits (300)", async () => {
    const { path, txId } = await waitingFlow(A);
    const before = await fingerprint();
    for (const personid of ["123", "", "<b>1</b>", "000000000000"]) {
      const response = await decide(t, path, "approve", personid);
      const what = `${personid}: ${show(response)}`;
      expect(response.statusCode, what).toBe(400);
      expect(isHtml(response), what).toBe(true);
      expect(response.body, what).toContain('id="error"');
      expect(response.body, what).not.toContain("<b>1</b>");
      expect(response.headers.location, what).toBeUndefined();
    }
    const missing = await post(path, `decision=approve&csrf=${tokenFor(t, path)}`);
    expect(missing.statusCode, show(missing)).toBe(400);
    expect(await fingerprint()).toEqual(before);
    expect(await statusOf(txId)).toBe(STATUS.WAITING_IDENTITY_PROVIDER);
    // The page is still there to decide on.
    const page = await get(path);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('id="approve"');
  });

  it("a GET with a repeated or oversize personid → 400, not the page", async () => {
    const { path } = await waitingFlow(A);
    for (const query of ["?personid=1&personid=2", `?personid=${"1".repeat(41)}`]) {
      const response = await get(`${path}${query}`);
      expect(response.statusCode, `${query}: ${show(response)}`).toBe(400);
    }
  });

  it("a live client's session → 404 (GET and POST); its flow is untouched", async () => {
    const clientId = await setUpClient();
    const { path, txId } = await waitingFlow(clientId);
    const golive = await t.app.inject({
      method: "PATCH",
      url: `/admin/clients/${clientId}`,
      headers: t.adminAuth,
      payload: { mode: "live" },
    });
    expect(golive.statusCode, golive.body).toBe(200);
    const before = await fingerprint();
    const page = await get(path);
    expect(page.statusCode, show(page)).toBe(404);
    expect(page.body).not.toContain(clientId);
    for (const decision of ["approve", "deny"] as const) {
      const response = await decide(t, path, decision);
      expect(response.statusCode, show(response)).toBe(404);
    }
    expect(await fingerprint()).toEqual(before);
    expect(await statusOf(txId)).toBe(STATUS.WAITING_IDENTITY_PROVIDER);
  });

  it("with the sandbox routes switched off → 404 (GET and POST)", async () => {
    const off = await startTestApp({ sandboxRoutes: false });
    try {
      const who = await setUpOneClick(off, operator);
      const started = await off.app.inject({ method: "GET", url: authorizeUrl(who.clientId) });
      // (The authorize endpoint itself is no sandbox route.)
      const path =
        started.statusCode === 200 ? pagePath(started.json()) : `/sandbox/identity/${"a".repeat(43)}`;
      for (const response of [
        await off.app.inject({ method: "GET", url: path }),
        await off.app.inject({
          method: "POST",
          url: path,
          headers: { "content-type": "application/x-www-form-urlencoded" },
          payload: "decision=approve&personid=199001011234",
        }),
      ])
        expect(response.statusCode, show(response)).toBe(404);
      expect(off.app.routeTable.filter((r) => r.url.startsWith("/sandbox"))).toEqual([]);
    } finally {
      await off.close();
    }
  });
});

// ——— tenancy ———

describe("client B and client A's flow", () => {
  it("B cannot see, exchange, check, retry or resolve A's transactions through any route", async () => {
    const flow = await runFlow(A);
    const before = await fingerprint();
    const status = await get(`/oauth/transactions/${flow.txId}`, { authorization: B.basic });
    expectOAuthError(status, 404, "not_found", "B's status of A's txId");
    expect(status.body).not.toContain(A.clientId);

    const stolen = await exchange(t, B.basic, flow.code);
    expectOAuthError(stolen, 400, "invalid_grant", "B exchanging A's code");
    expect(stolen.body).not.toContain(A.clientId);

    const checked = await get(`/oauth/check_token?token=${done.token}`, { authorization: B.basic });
    expectOAuthError(checked, 400, "invalid_token", "B checking A's token");
    expect(checked.body).not.toContain(A.clientId);

    for (const [method, url] of [
      ["GET", `/admin/clients/${B.clientId}/oneclick/transactions/${flow.txId}`],
      ["POST", `/admin/clients/${B.clientId}/oneclick/transactions/${flow.txId}/retry`],
      ["POST", `/admin/clients/${B.clientId}/oneclick/transactions/${flow.txId}/resolve`],
    ] as const) {
      const response = await t.app.inject({
        method,
        url,
        headers: t.adminAuth,
        ...(url.endsWith("resolve") ? { payload: { note: "credited by hand" } } : {}),
      });
      expect(response.statusCode, `${method} ${url}: ${response.body}`).toBe(404);
      expect(response.json()).toMatchObject({ type: "NOT_FOUND" });
    }
    const list = await t.app.inject({
      method: "GET",
      url: `/admin/clients/${B.clientId}/oneclick/transactions?size=100`,
      headers: t.adminAuth,
    });
    expect(list.statusCode, list.body).toBe(200);
    const ids = list.json().records.map((r: { txId: string }) => r.txId);
    expect(ids.length).toBeGreaterThan(0);
    for (const txId of [flow.txId, done.txId]) expect(ids).not.toContain(txId);
    expect(list.body).not.toContain(`${A.clientId}A`);
    expect(await fingerprint()).toEqual(before);

    // A's code survived B's attempt: A exchanges it, and A's status shows its own flow.
    const exchanged = await exchange(t, A.basic, flow.code);
    expect(exchanged.statusCode, exchanged.body).toBe(200);
    const own = await get(`/oauth/transactions/${flow.txId}`, { authorization: A.basic });
    expect(own.json()).toMatchObject({ txId: flow.txId, txState: "SUCCESSFUL" });
  });
});

describe("the log", () => {
  it("no request above was answered with a 500 or logged as an error; no secret or code in it", () => {
    const logs = t.logs.join("\n");
    // The answers are logged with their status (the check below would see a 500).
    expect(logs).toContain('"statusCode":400');
    expect(t.logs.filter((line) => line.includes('"level":50') || /"statusCode":5\d\d/.test(line))).toEqual(
      [],
    );
    for (const secret of [A.clientSecret, B.clientSecret, done.token]) expect(logs).not.toContain(secret);
  });
});
