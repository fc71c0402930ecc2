import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { announceChange } from "../src/db/cache.ts";
import { inTransaction } from "../src/db/transaction.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import {
  authorize,
  decide,
  exchange,
  finish,
  type Operator,
  pagePath,
  REDIRECT_URI,
  setUpOneClick,
  startOperator,
} from "./oneclick.ts";
import { createTestClient } from "./platform.ts";

/**
 * Issue 23 item 4: a client's 1-Click redirect URIs are validated when they are set up (create,
 * patch, a switch to live) and matched exactly at /oauth/authorize and /oauth/token; the origins
 * derived from them (CORS, frame-ancestors) are exact. Before the change, fragments, wildcards,
 * user@ and a live client's plain http were accepted with a 200.
 */

let t: TestApp;
let operator: Operator;

beforeAll(async () => {
  t = await startTestApp();
  operator = await startOperator();
});
afterAll(async () => {
  await operator?.close();
  await t?.close();
});

const oneClick = (redirectUris: string[]) => ({
  redirectUris,
  callbackUrl: "https://operator.example/api/{action}",
  callbackAuth: { type: "bearer", token: "operator-token-1" },
});

const patch = (clientId: string, payload: Record<string, unknown>) =>
  t.app.inject({ method: "PATCH", url: `/admin/clients/${clientId}`, headers: t.adminAuth, payload });

const settingsOf = async (clientId: string) =>
  (await t.app.inject({ method: "GET", url: `/admin/clients/${clientId}`, headers: t.adminAuth })).json();

const BAD = [
  "http://x.example/cb#frag",
  "https://x.example/cb#",
  "http://*.example/cb",
  "https://*/cb",
  "https://x.example/*/cb",
  "https://x.example/cb*",
  "https://x.example/cb/{id}",
  "https://x.example/%2A/cb",
  "cb",
  "/cb",
  "//x.example/cb",
  "https://user:pw@x.example/cb",
  "https://user@x.example/cb",
  "https://@x.example/cb",
  "myapp://cb",
  "com.example.app:/cb",
  "javascript:alert(1)",
  "ftp://x.example/cb",
  "https://X.EXAMPLE/cb",
  "https://x.example",
  "https://x.example:443/cb",
  "https://x.example/c b",
  "https://[fe80::1]/cb",
  "http://[::1]:8080/cb",
];

describe("set-up: PATCH /admin/clients/{id} and POST /admin/clients", () => {
  it.each(BAD)("refuses %s with a 400 naming it; the set-up is unchanged", async (bad) => {
    const { clientId } = await createTestClient(t);
    const good = await patch(clientId, { oneClick: oneClick(["https://operator.example/return"]) });
    expect(good.statusCode, good.body).toBe(200);
    const before = await settingsOf(clientId);
    for (const payload of [
      { oneClick: oneClick(["https://operator.example/return", bad]) },
      { settings: { oneClick: oneClick([bad]) } },
    ]) {
      const response = await patch(clientId, payload);
      expect(response.statusCode, `${bad}: ${response.body}`).toBe(400);
      expect(response.json().type).toBe("INVALID_REQUEST");
      expect(JSON.stringify(response.json().errors), bad).toContain("redirectUris");
    }
    expect(await settingsOf(clientId)).toEqual(before);

    const created = await t.app.inject({
      method: "POST",
      url: "/admin/clients",
      headers: t.adminAuth,
      payload: { name: "Bad URIs", settings: { oneClick: oneClick([bad]) } },
    });
    expect(created.statusCode, `${bad}: ${created.body}`).toBe(400);
  });

  it("accepts exact http(s) URIs, loopback ones with a port, a query", async () => {
    const { clientId } = await createTestClient(t);
    const uris = [
      "https://operator.example/return",
      "https://operator.example/return?from=ferry",
      "https://xn--bcher-kva.example/cb",
      "http://sandbox.operator.example/cb",
      "http://127.0.0.1:8080/cb",
      "http://localhost:5173/cb",
    ];
    const response = await patch(clientId, { oneClick: oneClick(uris) });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json().settings.oneClick.redirectUris).toEqual(uris);
  });
});

describe("a live client's redirect URIs are https, loopback excepted", () => {
  it("http to a non-loopback host → 400 naming the URI (create and patch); loopback http and https → 200", async () => {
    const { clientId } = await createTestClient(t, { mode: "live" });
    const refused = await patch(clientId, {
      oneClick: oneClick(["https://operator.example/return", "http://operator.example/return"]),
    });
    expect(refused.statusCode, refused.body).toBe(400);
    expect(refused.json().message).toContain("http://operator.example/return");
    expect(refused.json().message).toContain("https");
    expect(refused.json().errors).toEqual([
      {
        field: "oneClick.redirectUris.1",
        message: expect.stringContaining("http://operator.example/return"),
      },
    ]);
    expect((await settingsOf(clientId)).settings.oneClick).toBeUndefined();

    for (const loopback of ["http://127.0.0.1:8080/cb", "http://localhost:8080/cb"]) {
      const ok = await patch(clientId, { oneClick: oneClick(["https://operator.example/return", loopback]) });
      expect(ok.statusCode, `${loopback}: ${ok.body}`).toBe(200);
    }
    for (const other of [
      "http://10.0.0.1/cb",
      "http://127.0.0.2/cb",
      "http://localhost.operator.example/cb",
    ]) {
      const no = await patch(clientId, { oneClick: oneClick([other]) });
      expect(no.statusCode, `${other}: ${no.body}`).toBe(400);
    }

    const created = await t.app.inject({
      method: "POST",
      url: "/admin/clients",
      headers: t.adminAuth,
      payload: {
        name: "Live http",
        mode: "live",
        settings: { oneClick: oneClick(["http://shop.example/cb"]) },
      },
    });
    expect(created.statusCode, created.body).toBe(400);
    expect(created.json().message).toContain("http://shop.example/cb");
  });

  it("a switch to live with an http non-loopback URI → 400 naming it, the client stays in the sandbox", async () => {
    const { clientId } = await createTestClient(t);
    const set = await patch(clientId, {
      oneClick: oneClick(["https://operator.example/return", "http://sandbox.operator.example/cb"]),
    });
    expect(set.statusCode, set.body).toBe(200);
    const golive = await patch(clientId, { mode: "live" });
    expect(golive.statusCode, golive.body).toBe(400);
    expect(golive.json().message).toContain("http://sandbox.operator.example/cb");
    expect((await settingsOf(clientId)).mode).toBe("sandbox");
    // Together with the fix, it goes live.
    const fixed = await patch(clientId, {
      mode: "live",
      oneClick: oneClick(["https://operator.example/return"]),
    });
    expect(fixed.statusCode, fixed.body).toBe(200);
    expect(fixed.json().mode).toBe("live");
  });
});

describe("exact matching", () => {
  it("/oauth/authorize: a URI differing by a trailing slash, case, port, query or fragment → the 400 page", async () => {
    const { clientId } = await setUpOneClick(t, operator);
    const ok = await authorize(t, clientId);
    expect(ok.statusCode, ok.body).toBe(200);
    for (const near of [
      `${REDIRECT_URI}/`,
      "https://operator.example/Return",
      "https://OPERATOR.example/return",
      "https://operator.example:443/return",
      `${REDIRECT_URI}?extra=1`,
      `${REDIRECT_URI}#x`,
      "http://operator.example/return",
      "https://operator.example/return/../return",
      "https://operator.example.evil.example/return",
      "http://127.0.0.1:10/return",
    ]) {
      const response = await authorize(t, clientId, { redirect_uri: near });
      expect(response.statusCode, `${near}: ${response.body}`).toBe(400);
      expect(response.headers.location, near).toBeUndefined();
      expect(response.headers["content-type"]).toMatch(/^text\/html/);
      expect(response.body).toContain("redirect_uri is not registered");
    }
  });

  it("/oauth/token: a redirect_uri differing from the authorization request's → invalid_grant", async () => {
    const { clientId, basic } = await setUpOneClick(t, operator);
    const started = await authorize(t, clientId);
    const decided = await decide(t, pagePath(started.json()), "approve");
    const back = await finish(t, String(decided.headers.location));
    const code = back.searchParams.get("code") ?? "";
    const wrong = await exchange(t, basic, code, { redirect_uri: `${REDIRECT_URI}/` });
    expect(wrong.statusCode, wrong.body).toBe(400);
    expect(wrong.json().error).toBe("invalid_grant");
  }, 30_000);
});

describe("a client stored with a URI these rules refuse (set up before them)", () => {
  async function storedWith(uris: string[]) {
    const { clientId } = await setUpOneClick(t, operator);
    // An operator on a public address (a live client may call no other).
    expect((await patch(clientId, { oneClick: oneClick([REDIRECT_URI]) })).statusCode).toBe(200);
    const current = await settingsOf(clientId);
    const settings = { ...current.settings };
    // Written as an older Ferry did, past today's checks (the operator's credentials as they were set).
    await inTransaction(t.database.db, async (tx) => {
      const row = await tx
        .selectFrom("clients")
        .select("settings")
        .where("id", "=", clientId)
        .executeTakeFirstOrThrow();
      const stored = (typeof row.settings === "string" ? JSON.parse(row.settings) : row.settings) as {
        oneClick: { redirectUris: string[] };
      };
      stored.oneClick.redirectUris = uris;
      await tx
        .updateTable("clients")
        .set({ settings: JSON.stringify(stored) })
        .where("id", "=", clientId)
        .execute();
      await announceChange(tx, "client", clientId);
    });
    return { clientId, settings };
  }

  it("the bad URI no longer matches (a clear 400 page), the good one still works; frame-ancestors holds no wildcard", async () => {
    const { clientId } = await storedWith([
      REDIRECT_URI,
      "http://*.example/cb",
      "https://operator.example/cb#frag",
    ]);
    for (const bad of ["http://*.example/cb", "https://operator.example/cb#frag"]) {
      const response = await authorize(t, clientId, { redirect_uri: bad });
      expect(response.statusCode, response.body).toBe(400);
      expect(response.headers.location).toBeUndefined();
      expect(response.body).toContain("no longer accepted");
    }
    const ok = await authorize(t, clientId);
    expect(ok.statusCode, ok.body).toBe(200);
    const page = await t.app.inject({ method: "GET", url: pagePath(ok.json()) });
    expect(page.statusCode).toBe(200);
    const csp = String(page.headers["content-security-policy"]);
    expect(csp).toMatch(/frame-ancestors https:\/\/operator\.example(;|$)/);
    expect(csp).not.toContain("*");
    // CORS of the authorize answer: the exact origin only.
    const cors = await authorize(t, clientId, {}).then(() =>
      t.app.inject({
        method: "GET",
        url: `/oauth/authorize?${new URLSearchParams({ client_id: clientId, redirect_uri: REDIRECT_URI, response_type: "code", identity_provider: "sandbox-bankid" })}`,
        headers: { origin: "http://evil.example" },
      }),
    );
    expect(cors.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("an unrelated change passes; a change of the 1-Click set-up or the mode names the bad URI", async () => {
    const { clientId } = await storedWith([REDIRECT_URI, "http://*.example/cb"]);
    expect((await patch(clientId, { name: "Renamed" })).statusCode).toBe(200);
    expect((await patch(clientId, { status: "SUSPENDED" })).statusCode).toBe(200);
    const golive = await patch(clientId, { mode: "live" });
    expect(golive.statusCode, golive.body).toBe(400);
    expect(golive.json().message).toContain("http://*.example/cb");
    const same = await patch(clientId, { mode: "sandbox" });
    expect(same.statusCode, same.body).toBe(400);
  });
});
