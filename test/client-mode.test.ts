import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getClient, getClientMode } from "../src/modules/clients/service.ts";
import { startTestApp, type TestApp } from "./harness.ts";

// Issue 7.4: a client is `sandbox` or `live` — set at creation, changed by the platform admin, shown
// in the admin view, readable by the modules (getClientMode) so the transaction flows can refuse
// sandbox providers to live clients.

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

const admin = (method: "POST" | "PATCH" | "GET", url: string, payload?: Record<string, unknown>) =>
  t.app.inject({ method, url, headers: t.adminAuth, ...(payload ? { payload } : {}) });

describe("a client's mode", () => {
  it("is sandbox unless told otherwise, and live when created so", async () => {
    const plain = await admin("POST", "/admin/clients", { clientId: "mode-default", name: "Default" });
    expect(plain.statusCode, plain.body).toBe(201);
    expect(plain.json().mode).toBe("sandbox");
    const live = await admin("POST", "/admin/clients", { clientId: "mode-live", name: "Live", mode: "live" });
    expect(live.statusCode, live.body).toBe(201);
    expect(live.json().mode).toBe("live");
    expect((await admin("GET", "/admin/clients/mode-live")).json().mode).toBe("live");
    expect(await getClientMode(t.database.db, "mode-live")).toBe("live");
    expect((await getClient(t.database.db, "mode-default")).mode).toBe("sandbox");
  });

  it("is changed by the platform admin, both ways", async () => {
    await admin("POST", "/admin/clients", { clientId: "mode-switch", name: "Switch" });
    const live = await admin("PATCH", "/admin/clients/mode-switch", { mode: "live" });
    expect(live.statusCode, live.body).toBe(200);
    expect(live.json().mode).toBe("live");
    expect(await getClientMode(t.database.db, "mode-switch")).toBe("live");
    const back = await admin("PATCH", "/admin/clients/mode-switch", { mode: "sandbox" });
    expect(back.json().mode).toBe("sandbox");
  });

  it("refuses a mode that is neither (400 naming the field)", async () => {
    const response = await admin("POST", "/admin/clients", { name: "Bad", mode: "production" });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toContainEqual({ field: "mode", message: expect.any(String) });
  });

  it("is documented in the OpenAPI document", async () => {
    const document = (await t.app.inject({ method: "GET", url: "/openapi.json" })).json();
    expect(document.components.schemas.Client.properties.mode.enum).toEqual(["sandbox", "live"]);
  });
});
