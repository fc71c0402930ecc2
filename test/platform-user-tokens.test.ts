import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { issueUserToken } from "../src/modules/tokens/service.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient, createUser, type TestClient } from "./platform.ts";

let t: TestApp;
let client: TestClient;
const ORIGIN = "https://shop.example.com";

beforeAll(async () => {
  t = await startTestApp();
  client = await createTestClient(t, { allowedOrigins: [ORIGIN] });
  await createUser(t, client, "tok-user");
  await createUser(t, client, "tok-other");
});
afterAll(async () => {
  await t.close();
});

async function token(body: { url: string; method: string; userId?: string }) {
  const response = await client.request("POST", "/v1/auth/userToken", body);
  expect(response.statusCode, response.body).toBe(201);
  const json = response.json();
  expect(json.tokenType).toBe("JWT");
  expect(json.expiresAt).toBeGreaterThan(Date.now() / 1000 + 200);
  return json.accessToken as string;
}

const withToken = (
  accessToken: string,
  method: string,
  url: string,
  payload?: unknown,
  headers: Record<string, string> = {},
) =>
  t.app.inject({
    method: method as "GET",
    url,
    headers: {
      "x-client-id": client.clientId,
      "x-user-token": accessToken,
      ...(payload ? { "content-type": "application/json" } : {}),
      ...headers,
    },
    payload: payload === undefined ? undefined : JSON.stringify(payload),
  });

describe("user tokens", () => {
  it("work once for their method and path; a second use is 401 TOKEN_USED", async () => {
    const accessToken = await token({ url: "/v1/users/tok-user", method: "GET", userId: "tok-user" });
    const first = await withToken(accessToken, "GET", "/v1/users/tok-user");
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json().id).toBe("tok-user");
    const second = await withToken(accessToken, "GET", "/v1/users/tok-user");
    expect(second.statusCode).toBe(401);
    expect(second.json()).toMatchObject({ type: "TOKEN_USED", code: 2002 });
  });

  it("of 20 concurrent uses, exactly one succeeds; the others get TOKEN_USED", async () => {
    const accessToken = await token({ url: "/v1/users/tok-user", method: "PATCH", userId: "tok-user" });
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        withToken(accessToken, "PATCH", "/v1/users/tok-user", { sourceOfFunds: `attempt ${i}` }),
      ),
    );
    expect(responses.filter((r) => r.statusCode === 200)).toHaveLength(1);
    const used = responses.filter((r) => r.statusCode === 401);
    expect(used).toHaveLength(19);
    for (const r of used) expect(r.json().type).toBe("TOKEN_USED");
  });

  it("refuse another method, path or user with 403, without being spent", async () => {
    const accessToken = await token({ url: "/v1/users/tok-user", method: "GET", userId: "tok-user" });
    expect(
      (await withToken(accessToken, "PATCH", "/v1/users/tok-user", { sourceOfFunds: "x" })).statusCode,
    ).toBe(403);
    expect((await withToken(accessToken, "GET", "/v1/users/tok-other")).statusCode).toBe(403);
    expect((await withToken(accessToken, "GET", "/v1/users/tok-user")).statusCode).toBe(200);

    const bound = await token({ url: "/v1/transactions/validations", method: "POST", userId: "tok-user" });
    const otherUser = await withToken(bound, "POST", "/v1/transactions/validations", {
      transactionType: "DEPOSIT",
      userId: "tok-other",
      amount: "10",
      currency: "USD",
    });
    expect(otherUser.statusCode).toBe(403);
    expect(otherUser.json().message).toMatch(/another user/);
    const ownUser = await withToken(bound, "POST", "/v1/transactions/validations", {
      transactionType: "DEPOSIT",
      userId: "tok-user",
      amount: "10",
      currency: "USD",
    });
    expect(ownUser.statusCode, "a refused binding does not spend the token").toBe(200);
  });

  it("cannot call routes that need a signature", async () => {
    const accessToken = await token({ url: "/v1/users", method: "GET" });
    const response = await withToken(accessToken, "GET", "/v1/users");
    expect(response.statusCode).toBe(403);
  });

  it("expire: an expired token is 401 TOKEN_EXPIRED", async () => {
    const expired = await issueUserToken(t.database.db, t.services.signingKeys, {
      clientId: client.clientId,
      method: "GET",
      path: "/v1/users/tok-user",
      ttlSeconds: -5,
    });
    const response = await withToken(expired.accessToken, "GET", "/v1/users/tok-user");
    expect(response.statusCode).toBe(401);
    expect(response.json()).toMatchObject({ type: "TOKEN_EXPIRED", code: 2003 });
  });

  it("are refused for another client, and when forged", async () => {
    const other = await createTestClient(t);
    const accessToken = await token({ url: "/v1/users/tok-user", method: "GET" });
    const wrongClient = await t.app.inject({
      method: "GET",
      url: "/v1/users/tok-user",
      headers: { "x-client-id": other.clientId, "x-user-token": accessToken },
    });
    expect(wrongClient.statusCode).toBe(401);
    const [h, p] = accessToken.split(".");
    const forged = await withToken(`${h}.${p}.${"A".repeat(86)}`, "GET", "/v1/users/tok-user");
    expect(forged.statusCode).toBe(401);
  });
});

describe("CORS", () => {
  it("answers a preflight from an allowed origin, and not from another", async () => {
    const allowed = await t.app.inject({
      method: "OPTIONS",
      url: "/v1/users/tok-user",
      headers: {
        origin: ORIGIN,
        "access-control-request-method": "GET",
        "access-control-request-headers": "x-client-id, x-user-token",
      },
    });
    expect(allowed.statusCode).toBe(204);
    expect(allowed.headers["access-control-allow-origin"]).toBe(ORIGIN);
    expect(String(allowed.headers["access-control-allow-headers"])).toContain("x-user-token");
    const denied = await t.app.inject({
      method: "OPTIONS",
      url: "/v1/users/tok-user",
      headers: { origin: "https://evil.example.com" },
    });
    expect(denied.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("lets a browser on an allowed origin call with a token, and refuses another origin before spending it", async () => {
    const accessToken = await token({ url: "/v1/users/tok-user", method: "GET" });
    const evil = await withToken(accessToken, "GET", "/v1/users/tok-user", undefined, {
      origin: "https://evil.example.com",
    });
    expect(evil.statusCode).toBe(403);
    const good = await withToken(accessToken, "GET", "/v1/users/tok-user", undefined, { origin: ORIGIN });
    expect(good.statusCode).toBe(200);
    expect(good.headers["access-control-allow-origin"]).toBe(ORIGIN);
    // The browser can read the error of a second use, too.
    const spent = await withToken(accessToken, "GET", "/v1/users/tok-user", undefined, { origin: ORIGIN });
    expect(spent.statusCode).toBe(401);
    expect(spent.headers["access-control-allow-origin"]).toBe(ORIGIN);
  });
});

describe("rate limiting", () => {
  it("does not count requests whose signature fails against the client's quota", async () => {
    const limited = await createTestClient(t, { settings: { rateLimitPerMinute: 2 } });
    for (let i = 0; i < 5; i++) {
      const forged = await t.app.inject({
        method: "GET",
        url: "/v1/users",
        headers: {
          "x-client-id": limited.clientId,
          date: new Date().toUTCString(),
          "x-signature": "eyJhbGciOiJFUzI1NiJ9..c2ln",
        },
      });
      expect(forged.statusCode).toBe(401);
    }
    expect((await limited.request("GET", "/v1/users")).statusCode).toBe(200);
  });

  it("answers 429 with Retry-After past the client's limit, per client", async () => {
    const limited = await createTestClient(t, { settings: { rateLimitPerMinute: 3 } });
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 5; i++) {
      const response = await limited.request("GET", "/v1/users");
      statuses.push(response.statusCode);
      if (response.statusCode === 429) {
        retryAfter = String(response.headers["retry-after"]);
        expect(response.json()).toMatchObject({ type: "RATE_LIMITED", code: 4029 });
      }
    }
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
    expect(statuses.slice(3)).toEqual([429, 429]);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);
    expect((await client.request("GET", "/v1/users")).statusCode).toBe(200);
  });
});
