import type { LightMyRequestResponse } from "fastify";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerPageSecurity } from "../src/http/page-security.ts";
import { STATUS } from "../src/modules/oneclick/statuses.ts";
import { SandboxKycVerifications } from "../src/providers/kyc/sandbox-verification.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import {
  authorize,
  type Operator,
  pagePath,
  REDIRECT_URI,
  setUpOneClick,
  startOperator,
} from "./oneclick.ts";
import { formTokenOf, tokenFor } from "./page-forms.ts";
import { createTestClient, createUser, type TestClient } from "./platform.ts";

/**
 * Issue 23 item 5: every HTML page Ferry serves states who may frame it, with a strict
 * Content-Security-Policy (no script but by hash or from 'self', base-uri 'none', form-action
 * limited, frame-ancestors), X-Frame-Options DENY where nobody may, nosniff and no Referer; and the
 * decision pages (3-D Secure, KYC, the 1-Click identity page) take their decision by POST with the
 * page's token, refused from another site. Before the change the 3-D Secure and KYC pages sent no
 * policy at all, and a decision needed no token.
 */

let t: TestApp;
let operator: Operator;
let counter = 0;
const FERRY = "http://localhost:3000"; // the harness's publicUrl

beforeAll(async () => {
  t = await startTestApp();
  operator = await startOperator();
});
afterAll(async () => {
  await operator?.close();
  await t?.close();
});

async function clientWithUser(): Promise<{ client: TestClient; userId: string }> {
  const client = await createTestClient(t);
  const userId = `pg-${++counter}`;
  await createUser(t, client, userId);
  return { client, userId };
}

/** A card deposit waiting on the sandbox 3-D Secure challenge → the page's path. */
async function challenge(client: TestClient, userId: string) {
  const response = await client.request(
    "POST",
    "/v1/transactions/deposits",
    {
      userId,
      amount: "10.00",
      currency: "EUR",
      sourceMethod: {
        paymentMethodType: "CREDIT_CARD",
        cardNumber: "4000000000003220",
        expirationMonth: 12,
        expirationYear: 2031,
        cvv: "123",
      },
    },
    { "x-request-id": `pg-card-${++counter}` },
  );
  expect(response.statusCode, response.body).toBe(202);
  const body = response.json() as { requestId: string; redirectUrl: string };
  return { requestId: body.requestId, path: new URL(body.redirectUrl).pathname };
}

const statusOf = async (client: TestClient, requestId: string) =>
  (await client.request("GET", `/v1/transactions/${requestId}`)).json().status as string;

/** An open sandbox KYC verification → its page's path. */
async function verification(client: TestClient, userId: string) {
  const pages = new SandboxKycVerifications(t.database.db, FERRY);
  const opened = await pages.open(t.database.db, client.clientId, userId);
  return { id: opened.id, path: `/sandbox/kyc/verification/${opened.id}`, pages };
}

/** A 1-Click flow waiting on the sandbox identity provider → its page's path and tx id. */
async function identity() {
  const { clientId } = await setUpOneClick(t, operator);
  const started = await authorize(t, clientId);
  expect(started.statusCode, started.body).toBe(200);
  return { clientId, path: pagePath(started.json()), txId: String(started.json().txId) };
}

const get = (url: string) => t.app.inject({ method: "GET", url, headers: { accept: "text/html" } });
const post = (url: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
  t.app.inject({
    method: "POST",
    url,
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    payload: new URLSearchParams(form).toString(),
  });

/** Parses a Content-Security-Policy into its directives. */
function directives(csp: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const part of csp.split(";")) {
    const [name, ...values] = part.trim().split(/\s+/);
    if (name) out.set(name.toLowerCase(), values);
  }
  return out;
}

/** The headers every HTML page must carry; `framers`: the origins that may frame it (none: nobody). */
function expectStrictPage(response: LightMyRequestResponse, what: string, framers: string[] = []) {
  expect(response.headers["content-type"], what).toMatch(/^text\/html/);
  const csp = response.headers["content-security-policy"];
  expect(typeof csp, `${what}: a Content-Security-Policy`).toBe("string");
  const d = directives(String(csp));
  expect(d.get("frame-ancestors"), `${what}: frame-ancestors in ${csp}`).toEqual(
    framers.length ? framers : ["'none'"],
  );
  const scripts = d.get("script-src") ?? d.get("default-src") ?? [];
  expect(scripts, `${what}: script-src in ${csp}`).not.toContain("'unsafe-inline'");
  expect(scripts, `${what}: script-src in ${csp}`).not.toContain("'unsafe-eval'");
  expect(
    scripts.some((s) => s === "*" || /^(https?|data|blob):?$/.test(s)),
    `${what}: ${csp}`,
  ).toBe(false);
  expect(["'none'", "'self'"], `${what}: default-src in ${csp}`).toContain(d.get("default-src")?.[0]);
  expect(d.get("base-uri"), `${what}: base-uri in ${csp}`).toEqual(["'none'"]);
  const forms = d.get("form-action") ?? [];
  expect(forms.length > 0 && !forms.includes("*"), `${what}: form-action in ${csp}`).toBe(true);
  expect(
    forms.every((s) => s === "'self'" || s === "'none'" || /^https?:\/\/[^*]+$/.test(s)),
    what,
  ).toBe(true);
  expect(response.headers["x-frame-options"], what).toBe(framers.length ? undefined : "DENY");
  expect(response.headers["x-content-type-options"], what).toBe("nosniff");
  expect(response.headers["referrer-policy"], what).toBe("no-referrer");
  // Inline styles only by hash: no 'unsafe-inline' anywhere in Ferry's own pages.
  if (!what.startsWith("/docs")) expect(String(csp), what).not.toContain("unsafe-inline");
}

describe("every HTML page states who may frame it, with a strict policy", () => {
  it("the sandbox 3-D Secure challenge page and its outcome page: nobody frames them", async () => {
    const { client, userId } = await clientWithUser();
    const { path } = await challenge(client, userId);
    const page = await get(path);
    expect(page.statusCode, page.body).toBe(200);
    expectStrictPage(page, "3-D Secure page");
    expect(page.body).not.toContain("<script");
    const done = await post(path, { decision: "complete", csrf: formTokenOf(page.body) });
    expect(done.statusCode, done.body).toBe(200);
    expectStrictPage(done, "3-D Secure outcome");
  });

  it("the sandbox KYC verification page, its outcome and its already-decided page", async () => {
    const { client, userId } = await clientWithUser();
    const { path } = await verification(client, userId);
    const page = await get(path);
    expect(page.statusCode, page.body).toBe(200);
    expectStrictPage(page, "KYC page");
    const csrf = formTokenOf(page.body);
    const done = await post(path, { decision: "cancel", csrf });
    expect(done.statusCode, done.body).toBe(200);
    expectStrictPage(done, "KYC outcome");
    const again = await post(path, { decision: "submit", csrf });
    expect(again.statusCode, again.body).toBe(409);
    expectStrictPage(again, "KYC already decided");
  });

  it("the 1-Click pages: the identity page is framed by the client's registered origin only; the others by nobody", async () => {
    const { clientId, path } = await identity();
    const page = await get(path);
    expect(page.statusCode, page.body).toBe(200);
    expectStrictPage(page, "identity page", [new URL(REDIRECT_URI).origin, "http://127.0.0.1:9"]);
    const forms = directives(String(page.headers["content-security-policy"])).get("form-action");
    expect(forms).toEqual(["'self'", "https://operator.example", "http://127.0.0.1:9", FERRY]);
    const unknown = await post(path, { decision: "approve", personid: "123", csrf: formTokenOf(page.body) });
    expect(unknown.statusCode, unknown.body).toBe(400);
    expectStrictPage(unknown, "identity page with an error", [
      new URL(REDIRECT_URI).origin,
      "http://127.0.0.1:9",
    ]);
    expectStrictPage(await get(`/sandbox/identity/${"a".repeat(43)}`), "identity 404 page");
    const sessionId = path.split("/").pop();
    const wait = await get(`/oauth/wait/${sessionId}`);
    expect(wait.statusCode, wait.body).toBe(200);
    expectStrictPage(wait, "waiting page", [new URL(REDIRECT_URI).origin, "http://127.0.0.1:9"]);
    expectStrictPage(await get(`/oauth/wait/${"a".repeat(43)}`), "waiting 404 page");
    const bad = await authorize(t, clientId, { redirect_uri: "https://evil.example/return" });
    expect(bad.statusCode).toBe(400);
    expectStrictPage(bad, "authorize error page");
  });

  it("/docs (Swagger UI): its own scripts from 'self', nothing inline, nobody frames it", async () => {
    for (const url of ["/docs", "/docs/", "/docs/static/oauth2-redirect.html"]) {
      const page = await get(url);
      expect(page.statusCode, `${url}: ${page.body.slice(0, 200)}`).toBe(200);
      expectStrictPage(page, `/docs ${url}`);
      const scripts = directives(String(page.headers["content-security-policy"])).get("script-src");
      expect(scripts, url).toEqual(["'self'"]);
    }
  });

  it("an HTML answer whose route set no policy gets the strict default (a new page cannot forget)", async () => {
    const app = Fastify();
    registerPageSecurity(app);
    app.get("/forgot", async (_request, reply) => reply.type("text/html").send("<p>hello</p>"));
    app.get("/partial", async (_request, reply) =>
      reply
        .type("text/html")
        .header("Content-Security-Policy", "default-src 'none'; base-uri 'none'; form-action 'self'")
        .send("<p>hi</p>"),
    );
    app.get("/json", async () => ({ ok: true }));
    try {
      expectStrictPage(await app.inject({ method: "GET", url: "/forgot" }), "a page that set nothing");
      expectStrictPage(
        await app.inject({ method: "GET", url: "/partial" }),
        "a page without frame-ancestors",
      );
      const json = await app.inject({ method: "GET", url: "/json" });
      expect(json.headers["x-content-type-options"]).toBe("nosniff");
      expect(json.headers["content-security-policy"]).toBeUndefined();
    } finally {
      await app.close();
    }
  });
});

describe("decisions: POST only, with the page's token, from Ferry's own page", () => {
  /** The forged posts every decision page must refuse (403), each changing nothing. */
  const forgeries = (
    form: Record<string, string>,
    token: string,
  ): { what: string; form: Record<string, string>; headers: Record<string, string> }[] => [
    { what: "no token", form, headers: {} },
    { what: "an empty token", form: { ...form, csrf: "" }, headers: {} },
    { what: "a wrong token", form: { ...form, csrf: `${token.slice(0, -2)}AA` }, headers: {} },
    {
      what: "another page's token",
      form: { ...form, csrf: tokenFor(t, "/sandbox/acquirer/challenge/sbxch_x") },
      headers: {},
    },
    { what: "a foreign Origin", form: { ...form, csrf: token }, headers: { origin: "https://evil.example" } },
    {
      what: "Origin: null from another site",
      form: { ...form, csrf: token },
      headers: { origin: "null", "sec-fetch-site": "cross-site" },
    },
    {
      what: "a foreign Origin, a navigation no page started",
      form: { ...form, csrf: token },
      headers: { origin: "https://evil.example", "sec-fetch-site": "none" },
    },
    {
      what: "Sec-Fetch-Site: cross-site",
      form: { ...form, csrf: token },
      headers: { "sec-fetch-site": "cross-site" },
    },
    {
      what: "Sec-Fetch-Site: same-site",
      form: { ...form, csrf: token },
      headers: { "sec-fetch-site": "same-site" },
    },
    { what: "no token, same origin", form, headers: { origin: FERRY, "sec-fetch-site": "same-origin" } },
  ];

  it("3-D Secure: forged posts → 403, the charge still waits; the page's own form → captured", async () => {
    const { client, userId } = await clientWithUser();
    const { requestId, path } = await challenge(client, userId);
    for (let i = 0; i < 3; i++) expect((await get(path)).statusCode).toBe(200); // a GET decides nothing
    const token = formTokenOf((await get(path)).body);
    for (const forged of forgeries({ decision: "complete" }, token)) {
      const response = await post(path, forged.form, forged.headers);
      expect(response.statusCode, `${forged.what}: ${response.body}`).toBe(403);
      expect(response.headers.location, forged.what).toBeUndefined();
    }
    expect(await statusOf(client, requestId)).toBe("AWAITING_PAYMENT");
    const done = await post(
      path,
      { decision: "complete", csrf: token },
      { origin: FERRY, "sec-fetch-site": "same-origin" },
    );
    expect(done.statusCode, done.body).toBe(200);
    expect(await statusOf(client, requestId)).toBe("CAPTURED");
  });

  it("KYC: forged posts → 403, the verification stays open; the page's own form → cancelled", async () => {
    const { client, userId } = await clientWithUser();
    const { id, path, pages } = await verification(client, userId);
    for (let i = 0; i < 3; i++) expect((await get(path)).statusCode).toBe(200);
    const token = formTokenOf((await get(path)).body);
    for (const forged of forgeries({ decision: "cancel" }, token)) {
      const response = await post(path, forged.form, forged.headers);
      expect(response.statusCode, `${forged.what}: ${response.body}`).toBe(403);
    }
    // JSON is refused the same way.
    const json = await t.app.inject({ method: "POST", url: path, payload: { decision: "cancel" } });
    expect(json.statusCode, json.body).toBe(403);
    expect((await pages.find(id))?.status).toBe("OPEN");
    // What Chromium sends for the page's own form (no-referrer: Origin null).
    const done = await post(
      path,
      { decision: "cancel", csrf: token },
      { origin: "null", "sec-fetch-site": "same-origin" },
    );
    expect(done.statusCode, done.body).toBe(200);
    expect((await pages.find(id))?.status).toBe("ABANDONED");
  });

  it("1-Click identity page: forged posts → 403, the flow still waits; the page's own form → approved", async () => {
    const { path, txId } = await identity();
    for (let i = 0; i < 3; i++) expect((await get(path)).statusCode).toBe(200);
    const token = formTokenOf((await get(path)).body);
    const form = { decision: "approve", personid: "199001011234" };
    for (const forged of forgeries(form, token)) {
      const response = await post(path, forged.form, forged.headers);
      expect(response.statusCode, `${forged.what}: ${response.body}`).toBe(403);
      expect(response.headers.location, forged.what).toBeUndefined();
    }
    expect((await t.services.oneClick.get(txId)).status_code).toBe(STATUS.WAITING_IDENTITY_PROVIDER);
    expect(operator.calls.filter((c) => c.body.txId === txId)).toEqual([]);
    const done = await post(
      path,
      { ...form, csrf: token },
      { origin: FERRY, "sec-fetch-site": "same-origin" },
    );
    expect(done.statusCode, done.body).toBe(302);
    expect((await t.services.oneClick.get(txId)).status_code).not.toBe(STATUS.WAITING_IDENTITY_PROVIDER);
  }, 30_000);
});
