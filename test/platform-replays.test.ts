import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SigningAlgorithm, signRequest } from "../src/sdk/signing.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient, createUser, type TestClient } from "./platform.ts";

// Issue 7.1: RS512 and Ed25519 signatures are deterministic, so two identical requests signed in the
// same second carry the same signature. A replay is only a state-changing request (POST, PUT, PATCH,
// DELETE) whose signature and X-Request-Id (or its absence) Ferry already accepted in the window.

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

/** Signs once; every call sends exactly the same bytes and headers (the same signature). */
async function signedOnce(c: TestClient, method: string, url: string, body?: unknown) {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers = await signRequest({
    clientId: c.clientId,
    privateJwk: c.privateJwk,
    alg: c.alg,
    method,
    target: url,
    body: payload,
  });
  return (extra: Record<string, string> = {}) =>
    t.app.inject({ method: method as "GET", url, headers: { ...headers, ...extra }, payload });
}

describe.each(["RS512", "EdDSA"] as SigningAlgorithm[])("deterministic %s signatures", (alg) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await createTestClient(t, { alg });
    await createUser(t, client, "u-1");
  });

  it("signs two identical requests in the same second alike (the premise)", async () => {
    const date = new Date();
    const sign = () =>
      signRequest({
        clientId: client.clientId,
        privateJwk: client.privateJwk,
        alg,
        method: "GET",
        target: "/v1/users",
        date,
      });
    expect((await sign())["X-Signature"]).toBe((await sign())["X-Signature"]);
  });

  it("reads the same thing twice: a GET is never a replay", async () => {
    const readWallets = await signedOnce(client, "GET", "/v1/users/u-1/wallets");
    for (let i = 0; i < 3; i++) {
      const response = await readWallets();
      expect(response.statusCode, response.body).toBe(200);
    }
    const readUser = await signedOnce(client, "GET", "/v1/users/u-1");
    expect((await readUser()).statusCode).toBe(200);
    expect((await readUser()).statusCode).toBe(200);
  });

  it("issues two user tokens for the same body when their X-Request-Ids differ", async () => {
    const askToken = await signedOnce(client, "POST", "/v1/auth/userToken", {
      url: "/v1/transactions/deposits",
      method: "POST",
      userId: "u-1",
    });
    const first = await askToken({ "x-request-id": "token-a" });
    const second = await askToken({ "x-request-id": "token-b" });
    expect(first.statusCode, first.body).toBe(201);
    expect(second.statusCode, second.body).toBe(201);
    expect(first.json().accessToken).not.toBe(second.json().accessToken);
  });

  it("refuses the same state-changing request with the same X-Request-Id (a replay), saying how to keep them apart", async () => {
    const patch = await signedOnce(client, "PATCH", "/v1/users/u-1", { phones: ["+491701234567"] });
    expect((await patch({ "x-request-id": "patch-1" })).statusCode).toBe(200);
    const replay = await patch({ "x-request-id": "patch-1" });
    expect(replay.statusCode).toBe(401);
    expect(replay.json()).toMatchObject({ type: "UNAUTHORIZED", message: expect.stringMatching(/replay/) });
    expect(replay.json().message).toMatch(/X-Request-Id/);
    // A distinct id is a distinct request.
    expect((await patch({ "x-request-id": "patch-2" })).statusCode).toBe(200);
  });

  it("checks a money route's replay in its idempotency claim; a retry signed anew gets the stored answer", async () => {
    await createUser(t, client, `u-2-${alg}`);
    const body = { userId: "u-1", destinationUserId: `u-2-${alg}`, amount: "1.00", currency: "EUR" };
    const send = await signedOnce(client, "POST", "/v1/transactions/transfers", body);
    const first = await send({ "x-request-id": `tr-${alg}` });
    expect(first.statusCode, first.body).toBe(422); // u-1 has not the tier for it: an answer all the same
    const replay = await send({ "x-request-id": `tr-${alg}` });
    expect(replay.statusCode).toBe(401);
    expect(replay.json().message).toMatch(/replay/);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // a new Date: a new signature
    const retry = await client.request("POST", "/v1/transactions/transfers", body, {
      "x-request-id": `tr-${alg}`,
    });
    expect(retry.statusCode).toBe(422);
    expect(retry.body).toBe(first.body); // the stored answer, trace id included
  });

  it("refuses a replayed validation (a state-changing route without an idempotency claim)", async () => {
    const validate = await signedOnce(client, "POST", "/v1/transactions/validations", {
      userId: "u-1",
      transactionType: "DEPOSIT",
      amount: "10.00",
      currency: "EUR",
    });
    const first = await validate({ "x-request-id": `val-${alg}` });
    expect(first.statusCode, first.body).toBeLessThan(300);
    expect((await validate({ "x-request-id": `val-${alg}` })).statusCode).toBe(401);
  });

  it("refuses the same state-changing request without X-Request-Id twice", async () => {
    const askToken = await signedOnce(client, "POST", "/v1/auth/userToken", {
      url: "/v1/users/u-1",
      method: "GET",
    });
    expect((await askToken()).statusCode).toBe(201);
    const replay = await askToken();
    expect(replay.statusCode).toBe(401);
    expect(replay.json().message).toMatch(/X-Request-Id/);
    // The absence of an id and an id are not the same.
    expect((await askToken({ "x-request-id": "now-with-an-id" })).statusCode).toBe(201);
  });

  it("keeps PUT and DELETE under the rule too", async () => {
    const put = await signedOnce(client, "PUT", "/v1/users/u-1", {
      type: "PERSON",
      name: { firstName: "Ada", lastName: "Doe" },
    });
    expect((await put()).statusCode).toBe(200);
    expect((await put()).statusCode).toBe(401);
    const cancel = await signedOnce(client, "DELETE", "/v1/transactions/no-such-tx");
    expect((await cancel({ "x-request-id": "del-1" })).statusCode).toBe(404);
    expect((await cancel({ "x-request-id": "del-1" })).statusCode).toBe(401);
  });
});

describe("clients", () => {
  it("never collide with each other", async () => {
    const a = await createTestClient(t, { alg: "RS512" });
    const b = await createTestClient(t, { alg: "RS512" });
    for (const c of [a, b]) {
      const response = await (
        await signedOnce(c, "POST", "/v1/users", { id: "same-user", type: "PERSON" })
      )();
      expect(response.statusCode, response.body).toBe(201);
    }
  });
});
