import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient, createUser, type TestClient } from "./platform.ts";

// Issue 7.3: a NUL character (\u0000) in a JSON string that ends in a text column answered 500
// (PostgreSQL stores no NUL in text, and no \u0000 in jsonb). It is bad input: a 400 naming the field.

let t: TestApp;
let client: TestClient;

beforeAll(async () => {
  t = await startTestApp((app, database) => {
    // Routes that hand the database a value the JSON parser never saw: the error handler's safety net.
    app.get("/test/nul-in-text", async () => {
      await sql`SELECT ${"a\u0000b"}::text AS x`.execute(database.db);
      return { ok: true };
    });
    app.get("/test/nul-in-jsonb", async () => {
      await sql`SELECT ${JSON.stringify({ a: "a\u0000b" })}::jsonb AS x`.execute(database.db);
      return { ok: true };
    });
  });
  client = await createTestClient(t);
  await createUser(t, client, "u-nul");
});
afterAll(async () => {
  await t.close();
});

function expect400(response: { statusCode: number; body: string; json(): unknown }, field: string) {
  expect(response.statusCode, response.body).toBe(400);
  const body = response.json() as { type: string; errors: { field: string; message: string }[] };
  expect(body.type).toBe("INVALID_REQUEST");
  expect(body.errors).toContainEqual({ field, message: expect.stringMatching(/NUL/) });
}

describe("NUL characters in JSON strings", () => {
  it("refuses a wallet label with \\u0000 (a text column) with a 400 naming the field", async () => {
    const response = await client.request("POST", "/v1/users/u-nul/wallets", {
      currency: "EUR",
      label: "savings\u0000",
    });
    expect400(response, "label");
    // Nothing was opened.
    const wallets = await client.request("GET", "/v1/users/u-nul/wallets");
    expect(wallets.json().records).toEqual([]);
  });

  it("refuses a client name with \\u0000 on the admin face", async () => {
    const response = await t.app.inject({
      method: "POST",
      url: "/admin/clients",
      headers: t.adminAuth,
      payload: { name: "Acme\u0000Corp" },
    });
    expect400(response, "name");
  });

  it("names nested fields and array members, and keys", async () => {
    const nested = await client.request("PATCH", "/v1/users/u-nul", {
      name: { firstName: "Ada\u0000" },
      emails: ["ada@example.com"],
    });
    expect400(nested, "name.firstName");
    const inArray = await client.request("PATCH", "/v1/users/u-nul", {
      addresses: [
        { street: "1 Main St", city: "Berlin", country: "DE" },
        { street: "\u0000", city: "B" },
      ],
    });
    expect400(inArray, "addresses.1.street");
    const inKey = await client.request("PATCH", "/v1/users/u-nul", { "na\u0000me": "x" });
    expect400(inKey, "na\\u0000me");
  });

  it("refuses unpaired surrogates too (PostgreSQL's jsonb refuses them)", async () => {
    const response = await client.request("POST", "/v1/users/u-nul/wallets", {
      currency: "EUR",
      label: "a\ud800b",
    });
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json().errors).toContainEqual({
      field: "label",
      message: expect.stringMatching(/surrogate/),
    });
  });

  it("still accepts other control characters and any well-formed Unicode", async () => {
    const response = await client.request("POST", "/v1/users/u-nul/wallets", {
      currency: "EUR",
      label: "tab\there · 💶 — ok",
    });
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json().label).toBe("tab\there · 💶 — ok");
  });
});

describe("the error handler's safety net", () => {
  it("answers PostgreSQL's invalid byte sequence (22021) with a 400, not a 500", async () => {
    const response = await t.app.inject({ method: "GET", url: "/test/nul-in-text" });
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json()).toMatchObject({ type: "INVALID_REQUEST", errors: [{ field: "body" }] });
  });

  it("answers PostgreSQL's unsupported Unicode escape (22P05) with a 400, not a 500", async () => {
    const response = await t.app.inject({ method: "GET", url: "/test/nul-in-jsonb" });
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json()).toMatchObject({ type: "INVALID_REQUEST", errors: [{ field: "body" }] });
  });
});
