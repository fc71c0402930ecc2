import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyOAuthClient } from "../src/modules/oauth/clients.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient } from "./platform.ts";

/** 1-Click set-up (issue 11, first part): the client's oneClick settings and its OAuth secret. */

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

const oneClick = {
  redirectUris: ["https://operator.example/return"],
  callbackUrl: "https://operator.example/api/{action}",
  callbackAuth: { type: "basic", username: "ferry", password: "operator-secret-123" },
};

const patch = (clientId: string, payload: unknown) =>
  t.app.inject({
    method: "PATCH",
    url: `/admin/clients/${clientId}`,
    headers: t.adminAuth,
    payload: payload as object,
  });

describe("1-Click set-up", () => {
  it("oneClick settings: validated, kept, read back with the operator's credentials masked", async () => {
    const { clientId } = await createTestClient(t);
    const set = await patch(clientId, { oneClick });
    expect(set.statusCode, set.body).toBe(200);
    expect(set.json().settings.oneClick).toEqual({
      ...oneClick,
      callbackAuth: { type: "basic", username: "ferry", password: "***" },
    });
    expect(set.body).not.toContain("operator-secret-123");
    const bearer = await patch(clientId, {
      settings: { oneClick: { ...oneClick, callbackAuth: { type: "bearer", token: "tok-123456" } } },
    });
    expect(bearer.json().settings.oneClick.callbackAuth).toEqual({ type: "bearer", token: "***" });
    for (const bad of [
      { ...oneClick, callbackUrl: "https://operator.example/api/callback" },
      { ...oneClick, callbackUrl: "https://operator.example/api/{action}#frag" },
      { ...oneClick, callbackUrl: "https://ferry:secret@operator.example/api/{action}" },
      { ...oneClick, redirectUris: ["javascript:alert(1)"] },
      { ...oneClick, redirectUris: [] },
      { ...oneClick, callbackAuth: { type: "digest" } },
      { ...oneClick, extra: true },
    ])
      expect((await patch(clientId, { oneClick: bad })).statusCode, JSON.stringify(bad)).toBe(400);
  });

  it("the OAuth secret: shown once, only its hash kept, compared in constant time; a new one replaces it", async () => {
    const { clientId } = await createTestClient(t);
    const other = await createTestClient(t);
    const made = await t.app.inject({
      method: "POST",
      url: `/admin/clients/${clientId}/oauth-secret`,
      headers: t.adminAuth,
    });
    expect(made.statusCode, made.body).toBe(201);
    const { clientSecret } = made.json();
    expect(clientSecret).toMatch(/^fcs_[A-Za-z0-9_-]{43}$/);
    expect(await verifyOAuthClient(t.database.db, clientId, clientSecret)).toBe(true);
    expect(await verifyOAuthClient(t.database.db, clientId, `${clientSecret}x`)).toBe(false);
    expect(await verifyOAuthClient(t.database.db, other.clientId, clientSecret)).toBe(false);
    expect(await verifyOAuthClient(t.database.db, "no-such-client", clientSecret)).toBe(false);
    const stored = await t.database.db
      .selectFrom("oauth_client_secrets")
      .selectAll()
      .where("client_id", "=", clientId)
      .executeTakeFirstOrThrow();
    expect(stored.secret_hash).not.toContain(clientSecret.slice(4));

    const renewed = (
      await t.app.inject({
        method: "POST",
        url: `/admin/clients/${clientId}/oauth-secret`,
        headers: t.adminAuth,
      })
    ).json();
    expect(await verifyOAuthClient(t.database.db, clientId, clientSecret)).toBe(false);
    expect(await verifyOAuthClient(t.database.db, clientId, renewed.clientSecret)).toBe(true);
    expect(
      (
        await t.app.inject({
          method: "POST",
          url: "/admin/clients/no-such-client/oauth-secret",
          headers: t.adminAuth,
        })
      ).statusCode,
    ).toBe(404);
    expect(
      (await t.app.inject({ method: "POST", url: `/admin/clients/${clientId}/oauth-secret` })).statusCode,
    ).toBe(401);
    expect(t.logs.join("\n")).not.toContain(renewed.clientSecret);
  });

  it("a live client's operator callback URL must be public, when created, patched, or switched to live", async () => {
    const privateUrl = "http://127.0.0.1:9/api/{action}";
    const created = await t.app.inject({
      method: "POST",
      url: "/admin/clients",
      headers: t.adminAuth,
      payload: {
        clientId: `live-${Date.now().toString(36)}`,
        name: "Live operator",
        mode: "live",
        settings: { oneClick: { ...oneClick, callbackUrl: privateUrl } },
      },
    });
    expect(created.statusCode, created.body).toBe(400);
    expect(created.body).toContain("oneClick.callbackUrl");
    const live = await createTestClient(t, { mode: "live" });
    expect(
      (await patch(live.clientId, { oneClick: { ...oneClick, callbackUrl: privateUrl } })).statusCode,
    ).toBe(400);
    expect((await patch(live.clientId, { oneClick })).statusCode).toBe(200);
    const sandbox = await createTestClient(t);
    expect(
      (await patch(sandbox.clientId, { oneClick: { ...oneClick, callbackUrl: privateUrl } })).statusCode,
    ).toBe(200);
    expect((await patch(sandbox.clientId, { mode: "live" })).statusCode).toBe(400);
  });
});
