import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addSigningKey, revokeSigningKey } from "../src/modules/clients/service.ts";
import { keyId, type SigningAlgorithm, signRequest, stringToSign } from "../src/sdk/signing.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient, createUser, type TestClient } from "./platform.ts";

let t: TestApp;
let client: TestClient;

beforeAll(async () => {
  t = await startTestApp();
  client = await createTestClient(t);
  await createUser(t, client, "u-1");
  await createUser(t, client, "u-2");
});
afterAll(async () => {
  await t.close();
});

async function send(method: string, url: string, headers: Record<string, string>, payload?: string) {
  return t.app.inject({ method: method as "GET", url, headers, payload });
}

describe("signed requests", () => {
  it.each(["RS512", "PS256", "ES256", "EdDSA"] as SigningAlgorithm[])(
    "accepts a valid %s signature",
    async (alg) => {
      const c = await createTestClient(t, { alg });
      const response = await c.request("GET", "/v1/users?page=0&size=5");
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json()).toMatchObject({ records: [], pageNumber: 0, pageSize: 5, totalRecords: 0 });
      const created = await c.request("POST", "/v1/users", { id: "alg-user", type: "PERSON" });
      expect(created.statusCode, created.body).toBe(201);
    },
  );

  it("refuses a request changed by one character in method, path, query, date, client id or body", async () => {
    const body = JSON.stringify({ name: { firstName: "Ada" } });
    const sign = (method: string, target: string, payload?: string, date?: Date, requestId?: string) =>
      signRequest({
        clientId: client.clientId,
        privateJwk: client.privateJwk,
        method,
        target,
        body: payload,
        date,
        requestId,
      });
    /** The signer's headers with X-Request-Id set to `sent` (undefined: left out), whatever was signed. */
    const withRequestId = (headers: Record<string, string>, sent: string | undefined) => {
      const rest = Object.fromEntries(
        Object.entries(headers).filter(([name]) => name.toLowerCase() !== "x-request-id"),
      );
      return sent === undefined ? rest : { ...rest, "X-Request-Id": sent };
    };

    // The untouched request passes (the control).
    const control = await send("PATCH", "/v1/users/u-1", await sign("PATCH", "/v1/users/u-1", body), body);
    expect(control.statusCode, control.body).toBe(200);

    const tampered: [string, () => Promise<Awaited<ReturnType<typeof send>>>][] = [
      ["method", async () => send("PUT", "/v1/users/u-1", await sign("PATCH", "/v1/users/u-1", body), body)],
      ["path", async () => send("PATCH", "/v1/users/u-2", await sign("PATCH", "/v1/users/u-1", body), body)],
      ["query", async () => send("GET", "/v1/users?page=1", await sign("GET", "/v1/users?page=0"))],
      [
        "date",
        async () => {
          const headers = await sign("PATCH", "/v1/users/u-1", body);
          const date = new Date(Date.parse(headers.Date ?? "") + 1000).toUTCString();
          return send("PATCH", "/v1/users/u-1", { ...headers, Date: date }, body);
        },
      ],
      [
        "client id",
        async () => {
          // Another client holding the same public key: the signature names a client, too.
          const twin = await createTestClient(t);
          await addSigningKey(t.database.db, twin.clientId, publicOf(client.privateJwk));
          const headers = await sign("GET", "/v1/users");
          return send("GET", "/v1/users", { ...headers, "X-Client-Id": twin.clientId });
        },
      ],
      [
        "request id",
        async () => {
          const headers = await sign("PATCH", "/v1/users/u-1", body, undefined, "rid-signed");
          return send("PATCH", "/v1/users/u-1", withRequestId(headers, "rid-other"), body);
        },
      ],
      [
        "request id left out",
        async () => {
          const headers = await sign("PATCH", "/v1/users/u-1", body, undefined, "rid-signed-2");
          return send("PATCH", "/v1/users/u-1", withRequestId(headers, undefined), body);
        },
      ],
      [
        "request id added (a six-line signature)",
        async () => {
          const headers = await sign("PATCH", "/v1/users/u-1", body);
          return send("PATCH", "/v1/users/u-1", withRequestId(headers, "rid-added"), body);
        },
      ],
      [
        "request id on a read",
        async () => {
          const headers = await sign("GET", "/v1/users", undefined, undefined, "rid-read");
          return send("GET", "/v1/users", withRequestId(headers, "rid-read-2"));
        },
      ],
      [
        "body",
        async () =>
          send(
            "PATCH",
            "/v1/users/u-1",
            await sign("PATCH", "/v1/users/u-1", body),
            body.replace("Ada", "Adb"),
          ),
      ],
      [
        "signature",
        async () => {
          const headers = await sign("GET", "/v1/users");
          // A character in the middle of the signature (the last one may only carry padding bits).
          const signature = headers["X-Signature"] ?? "";
          const at = signature.length - 20;
          const swapped = signature[at] === "A" ? "B" : "A";
          return send("GET", "/v1/users", {
            ...headers,
            "X-Signature": signature.slice(0, at) + swapped + signature.slice(at + 1),
          });
        },
      ],
    ];
    for (const [what, attempt] of tampered) {
      const response = await attempt();
      expect(response.statusCode, `${what}: ${response.body}`).toBe(401);
      expect(response.json()).toMatchObject({ type: "UNAUTHORIZED", code: 2001 });
    }
  });

  it("signs X-Request-Id as a seventh line, before the request target, only when it is sent", () => {
    const parts = {
      method: "post",
      target: "/v1/transactions/deposits?x=1",
      body: "{}",
      contentType: "application/json",
      date: "Tue, 21 Nov 2026 15:00:00 GMT",
      clientId: "acme",
    };
    const hash = "44136FA355B3678A1146AD16F7E8649E94FB4FC21FE77E8310C060F61CAAFF8A"; // SHA-256 of "{}"
    expect(stringToSign({ ...parts, requestId: "dep-0001" })).toBe(
      [
        "POST",
        hash,
        "content-type:application/json",
        "date:Tue, 21 Nov 2026 15:00:00 GMT",
        "x-client-id:acme",
        "x-request-id:dep-0001",
        "/v1/transactions/deposits?x=1",
      ].join("\n"),
    );
    expect(stringToSign(parts).split("\n")).toHaveLength(6);
  });

  it("signs the request id and sends it: a signed request with X-Request-Id is accepted, a six-line one is not", async () => {
    const body = JSON.stringify({ phones: ["+491701234567"] });
    const signed = await signRequest({
      clientId: client.clientId,
      privateJwk: client.privateJwk,
      method: "PATCH",
      target: "/v1/users/u-2",
      body,
      requestId: "seven-lines-1",
    });
    expect(signed["X-Request-Id"]).toBe("seven-lines-1");
    const accepted = await send("PATCH", "/v1/users/u-2", signed, body);
    expect(accepted.statusCode, accepted.body).toBe(200);
    // The old form (six lines, the id not signed) with the header sent: refused, and told why.
    const sixLines = await signRequest({
      clientId: client.clientId,
      privateJwk: client.privateJwk,
      method: "PATCH",
      target: "/v1/users/u-2",
      body,
    });
    const refused = await send(
      "PATCH",
      "/v1/users/u-2",
      { ...sixLines, "X-Request-Id": "seven-lines-2" },
      body,
    );
    expect(refused.statusCode).toBe(401);
    expect(refused.json().message).toMatch(/x-request-id/i);
  });

  it("refuses a Date more than 300 s away, either way", async () => {
    // 303 s: the Date header has whole seconds (up to 1 s lost) and the request takes a moment to arrive.
    for (const offset of [-303_000, 303_000]) {
      const headers = await signRequest({
        clientId: client.clientId,
        privateJwk: client.privateJwk,
        method: "GET",
        target: "/v1/users",
        date: new Date(Date.now() + offset),
      });
      const response = await send("GET", "/v1/users", headers);
      expect(response.statusCode).toBe(401);
      expect(response.json().message).toMatch(/300 s/);
    }
    const near = await signRequest({
      clientId: client.clientId,
      privateJwk: client.privateJwk,
      method: "GET",
      target: "/v1/users",
      date: new Date(Date.now() - 200_000),
    });
    expect((await send("GET", "/v1/users", near)).statusCode).toBe(200);
  });

  it("refuses a replayed state-changing request (the rule in full: platform-replays.test.ts)", async () => {
    const body = JSON.stringify({ phones: ["+491701234567"] });
    const headers = await signRequest({
      clientId: client.clientId,
      privateJwk: client.privateJwk,
      method: "PATCH",
      target: "/v1/users/u-1",
      body,
    });
    expect((await send("PATCH", "/v1/users/u-1", headers, body)).statusCode).toBe(200);
    const replay = await send("PATCH", "/v1/users/u-1", headers, body);
    expect(replay.statusCode).toBe(401);
    expect(replay.json().message).toMatch(/replay/);
  });

  it("refuses a revoked key, and accepts a second key during rotation", async () => {
    const c = await createTestClient(t);
    const next = await createTestClient(t); // just for a second key pair
    await addSigningKey(t.database.db, c.clientId, publicOf(next.privateJwk));
    const withSecond = await signRequest({
      clientId: c.clientId,
      privateJwk: next.privateJwk,
      method: "GET",
      target: "/v1/users",
    });
    expect((await send("GET", "/v1/users", withSecond)).statusCode).toBe(200);
    await revokeSigningKey(t.database.db, c.clientId, await keyId(c.privateJwk));
    const revoked = await c.request("GET", "/v1/users");
    expect(revoked.statusCode).toBe(401);
    expect(revoked.json().message).toMatch(/revoked/);
  });

  it("answers 401 before looking at the body when the request is not signed", async () => {
    for (const headers of [
      {},
      { "x-client-id": client.clientId },
      { "x-client-id": "nobody-here", date: new Date().toUTCString(), "x-signature": "a..b" },
      { "x-client-id": client.clientId, date: new Date().toUTCString(), "x-signature": "not-a-jws" },
      { "x-client-id": client.clientId, date: "yesterday", "x-signature": "a..b" },
    ]) {
      const response = await t.app.inject({
        method: "POST",
        url: "/v1/users",
        headers: { ...headers, "content-type": "application/json" },
        payload: "{}",
      });
      expect(response.statusCode, JSON.stringify(headers)).toBe(401);
    }
  });

  it("refuses an algorithm outside the whitelist", async () => {
    const headers = await signRequest({
      clientId: client.clientId,
      privateJwk: client.privateJwk,
      method: "GET",
      target: "/v1/users",
    });
    const [protectedB64, , sig] = (headers["X-Signature"] ?? "").split(".");
    const header = JSON.parse(Buffer.from(protectedB64 ?? "", "base64url").toString());
    for (const alg of ["none", "HS256", "ES512"]) {
      const forged = `${Buffer.from(JSON.stringify({ ...header, alg })).toString("base64url")}..${sig}`;
      const response = await send("GET", "/v1/users", { ...headers, "X-Signature": forged });
      expect(response.statusCode, alg).toBe(401);
    }
  });
});

function publicOf(privateJwk: Record<string, unknown>) {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...rest } = privateJwk;
  return rest;
}
