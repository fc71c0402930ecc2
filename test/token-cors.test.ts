import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient } from "./platform.ts";
import { PASSWORD, registerCustomer } from "./wallet.ts";

/** CORS on the faces browsers call with a bearer token: a client's allowedOrigins may read the answers. */

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

const SHOP = "https://shop.example";
const OTHER = "https://elsewhere.example";

describe("CORS on the Wallet and Pay-in APIs", () => {
  it("preflights are answered for an origin some client allows; answers name it only for the request's own client", async () => {
    const { clientId } = await createTestClient(t, { allowedOrigins: [SHOP] });
    const other = await createTestClient(t);
    for (const url of ["/api/v1/coins", "/v3/payin/data", "/v2/customer/profile", "/api/v1/authorization"]) {
      const allowed = await t.app.inject({
        method: "OPTIONS",
        url,
        headers: {
          origin: SHOP,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type",
        },
      });
      expect(allowed.statusCode, url).toBe(204);
      expect(allowed.headers["access-control-allow-origin"], url).toBe(SHOP);
      expect(String(allowed.headers["access-control-allow-headers"])).toContain("authorization");
      const refused = await t.app.inject({
        method: "OPTIONS",
        url,
        headers: { origin: OTHER, "access-control-request-method": "POST" },
      });
      expect(refused.headers["access-control-allow-origin"], url).toBeUndefined();
    }

    // Before a token: the client named by X-Client-Id decides.
    const customer = await registerCustomer(t, clientId);
    const login = (client: string, origin: string) =>
      t.app.inject({
        method: "POST",
        url: "/api/v1/authorization",
        headers: { "x-client-id": client, origin },
        payload: { login: customer.login, password: PASSWORD },
      });
    const mine = await login(clientId, SHOP);
    expect(mine.statusCode).toBe(200);
    expect(mine.headers["access-control-allow-origin"]).toBe(SHOP);
    expect((await login(clientId, OTHER)).headers["access-control-allow-origin"]).toBeUndefined();
    // The same origin with another client (which does not allow it): not named, even on the 401.
    expect((await login(other.clientId, SHOP)).headers["access-control-allow-origin"]).toBeUndefined();

    // With a token: its client decides, errors included (a browser can read a 422 or a 403).
    const token = mine.json().authorizationToken.token;
    const coins = await t.app.inject({
      method: "GET",
      url: "/api/v1/coins",
      headers: { authorization: `Bearer ${token}`, origin: SHOP },
    });
    expect(coins.statusCode).toBe(200);
    expect(coins.headers["access-control-allow-origin"]).toBe(SHOP);
    const data = await t.app.inject({
      method: "GET",
      url: "/v3/payin/data",
      headers: { authorization: `Bearer ${token}`, origin: SHOP },
    });
    expect(data.statusCode).toBe(422);
    expect(data.headers["access-control-allow-origin"]).toBe(SHOP);
    const elsewhere = await t.app.inject({
      method: "GET",
      url: "/api/v1/coins",
      headers: { authorization: `Bearer ${token}`, origin: OTHER },
    });
    expect(elsewhere.statusCode).toBe(200);
    expect(elsewhere.headers["access-control-allow-origin"]).toBeUndefined();
    // Without an Origin (a server, curl) nothing changes.
    const plain = await t.app.inject({
      method: "GET",
      url: "/api/v1/coins",
      headers: { authorization: `Bearer ${token}` },
    });
    expect(plain.headers["access-control-allow-origin"]).toBeUndefined();
  });
});
