import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type SigningAlgorithm, signRequest } from "../src/sdk/signing.ts";
import { balances, distinctCard, fundedClient } from "./funding.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient, createUser, type TestClient } from "./platform.ts";

// Issue 7.1: RS512 and Ed25519 signatures are deterministic, so two identical requests signed in the
// same second carry the same signature. A replay is a state-changing request (POST, PUT, PATCH,
// DELETE) without X-Request-Id whose signature Ferry already accepted in the window.
// Issue 17.7: X-Request-Id is the seventh line of the string to sign. A signed request carrying one
// is idempotent: sent again (the same bytes, or re-signed) it gets the first answer, or 409 in
// progress while the first still runs — never a 401, never a second effect; and its signature is
// good for that id only.

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

/**
 * Signs once (with `requestId` as X-Request-Id, signed); every call sends exactly the same bytes and
 * headers. An override replaces a header (undefined leaves it out), as anyone holding the bytes could.
 */
async function signedOnce(c: TestClient, method: string, url: string, body?: unknown, requestId?: string) {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const signed = await signRequest({
    clientId: c.clientId,
    privateJwk: c.privateJwk,
    alg: c.alg,
    method,
    target: url,
    body: payload,
    requestId,
  });
  const headers = Object.fromEntries(
    Object.entries(signed).map(([name, value]) => [name.toLowerCase(), value]),
  );
  return (override: Record<string, string | undefined> = {}) => {
    const sent: Record<string, string> = {};
    for (const [name, value] of Object.entries({ ...headers, ...override }))
      if (value !== undefined) sent[name] = value;
    return t.app.inject({ method: method as "GET", url, headers: sent, payload });
  };
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

  it("issues two user tokens for the same body when their X-Request-Ids differ (each signed)", async () => {
    const body = { url: "/v1/transactions/deposits", method: "POST", userId: "u-1" };
    const first = await (await signedOnce(client, "POST", "/v1/auth/userToken", body, "token-a"))();
    const second = await (await signedOnce(client, "POST", "/v1/auth/userToken", body, "token-b"))();
    expect(first.statusCode, first.body).toBe(201);
    expect(second.statusCode, second.body).toBe(201);
    expect(first.json().accessToken).not.toBe(second.json().accessToken);
  });

  it("answers the same state-changing request with the same X-Request-Id with its first answer (not a replay)", async () => {
    const patch = await signedOnce(
      client,
      "PATCH",
      "/v1/users/u-1",
      { phones: ["+491701234567"] },
      "patch-1",
    );
    const first = await patch();
    expect(first.statusCode, first.body).toBe(200);
    const again = await patch();
    expect(again.statusCode, again.body).toBe(200);
    expect(again.headers["idempotent-replayed"]).toBe("true");
    expect(again.body).toBe(first.body);
    // A distinct id is a distinct request.
    const other = await (
      await signedOnce(client, "PATCH", "/v1/users/u-1", { phones: ["+491701234567"] }, "patch-2")
    )();
    expect(other.statusCode).toBe(200);
    expect(other.headers["idempotent-replayed"]).toBeUndefined();
    // The same id with another body: 409, nothing changed.
    const reused = await (
      await signedOnce(client, "PATCH", "/v1/users/u-1", { phones: ["+491709999999"] }, "patch-1")
    )();
    expect(reused.statusCode).toBe(409);
    expect(reused.json()).toMatchObject({ type: "IDEMPOTENCY_KEY_REUSED" });
  });

  it("a money route: the same bytes again, or re-signed later with the same id, get the stored answer", async () => {
    await createUser(t, client, `u-2-${alg}`);
    const body = { userId: "u-1", destinationUserId: `u-2-${alg}`, amount: "1.00", currency: "EUR" };
    const send = await signedOnce(client, "POST", "/v1/transactions/transfers", body, `tr-${alg}`);
    const first = await send();
    expect(first.statusCode, first.body).toBe(422); // u-1 has not the tier for it: an answer all the same
    const again = await send();
    expect(again.statusCode).toBe(422);
    expect(again.body).toBe(first.body); // the stored answer, trace id included
    await new Promise((resolve) => setTimeout(resolve, 1100)); // a new Date: a new signature
    const retry = await client.request("POST", "/v1/transactions/transfers", body, {
      "x-request-id": `tr-${alg}`,
    });
    expect(retry.statusCode).toBe(422);
    expect(retry.body).toBe(first.body);
  });

  it("a validation: with its id sent again, the stored answer; without an id, refused as a replay", async () => {
    const body = { userId: "u-1", transactionType: "DEPOSIT", amount: "10.00", currency: "EUR" };
    const validate = await signedOnce(client, "POST", "/v1/transactions/validations", body, `val-${alg}`);
    const first = await validate();
    expect(first.statusCode, first.body).toBeLessThan(300);
    const again = await validate();
    expect(again.statusCode).toBe(first.statusCode);
    expect(again.body).toBe(first.body);
    const anonymous = await signedOnce(client, "POST", "/v1/transactions/validations", body);
    expect((await anonymous()).statusCode).toBeLessThan(300);
    expect((await anonymous()).statusCode).toBe(401);
  });

  it("refuses the same state-changing request without X-Request-Id twice", async () => {
    const body = { url: "/v1/users/u-1", method: "GET" };
    const askToken = await signedOnce(client, "POST", "/v1/auth/userToken", body);
    expect((await askToken()).statusCode).toBe(201);
    const replay = await askToken();
    expect(replay.statusCode).toBe(401);
    expect(replay.json().message).toMatch(/replay/);
    expect(replay.json().message).toMatch(/X-Request-Id/);
    // The bytes with an id added do not verify: the id is signed.
    expect((await askToken({ "x-request-id": "now-with-an-id" })).statusCode).toBe(401);
    // Signed with one, it is a request of its own.
    const withId = await signedOnce(client, "POST", "/v1/auth/userToken", body, "now-with-an-id");
    expect((await withId()).statusCode).toBe(201);
  });

  it("keeps PUT and DELETE under the rule too", async () => {
    const put = await signedOnce(client, "PUT", "/v1/users/u-1", {
      type: "PERSON",
      name: { firstName: "Ada", lastName: "Doe" },
    });
    expect((await put()).statusCode).toBe(200);
    expect((await put()).statusCode).toBe(401);
    const cancel = await signedOnce(client, "DELETE", "/v1/transactions/no-such-tx");
    expect((await cancel()).statusCode).toBe(404);
    expect((await cancel()).statusCode).toBe(401);
    const cancelWithId = await signedOnce(
      client,
      "DELETE",
      "/v1/transactions/no-such-tx",
      undefined,
      "del-1",
    );
    const first = await cancelWithId();
    expect(first.statusCode).toBe(404);
    const again = await cancelWithId();
    expect(again.statusCode).toBe(404);
    expect(again.body).toBe(first.body);
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

/** Adds two EUR amounts ("1.50", "-0.25") in minor units; a missing balance is zero. */
const plus = (a: string | undefined, b: string) => {
  const cents = (s: string) => BigInt(s.replace(".", ""));
  const sum = cents(a?.split("/")[0] ?? "0.00") + cents(b);
  const sign = sum < 0n ? "-" : "";
  const abs = (sum < 0n ? -sum : sum).toString().padStart(3, "0");
  return `${sign}${abs.slice(0, -2)}.${abs.slice(-2)}`;
};

describe("signed retries (X-Request-Id signed)", () => {
  let client: TestClient;
  const transfer = (amount: string) => ({
    userId: "alice",
    destinationUserId: "bob",
    amount,
    currency: "EUR",
  });
  const bobHas = async () => (await balances(client, "bob")).EUR;

  beforeAll(async () => {
    client = await fundedClient(t, { users: [["alice", "100.00"], ["bob"], ["carol"]] });
  });

  it("20 identical signed transfers at once: one transfer, no 401; the others get its answer or 409 in progress", async () => {
    const send = await signedOnce(client, "POST", "/v1/transactions/transfers", transfer("1.00"), "burst-1");
    const answers = await Promise.all(Array.from({ length: 20 }, () => send()));
    expect(answers.filter((a) => a.statusCode === 401).map((a) => a.body)).toEqual([]);
    const ran = answers.filter((a) => a.headers["idempotent-replayed"] === undefined && a.statusCode === 201);
    expect(ran).toHaveLength(1);
    const original = ran[0]?.body;
    for (const answer of answers) {
      if (answer.statusCode === 201) expect(answer.body).toBe(original);
      else {
        expect(answer.statusCode, answer.body).toBe(409);
        expect(answer.json()).toMatchObject({ type: "REQUEST_IN_PROGRESS", retryable: true });
      }
    }
    // The same bytes once the first has finished, twenty at once again: its stored answer, nothing run.
    for (const again of await Promise.all(Array.from({ length: 20 }, () => send()))) {
      expect(again.statusCode).toBe(201);
      expect(again.headers["idempotent-replayed"]).toBe("true");
      expect(again.body).toBe(original);
    }
    expect(await bobHas()).toBe("1.00/1.00");
    const rows = await t.database.db
      .selectFrom("transactions")
      .select("request_id")
      .where("client_id", "=", client.clientId)
      .where("request_id", "=", "burst-1")
      .execute();
    expect(rows).toHaveLength(1);
  });

  it("a captured signature sent with a new X-Request-Id, or without one: 401, and no second transfer", async () => {
    const before = await bobHas();
    const send = await signedOnce(client, "POST", "/v1/transactions/transfers", transfer("2.00"), "cap-1");
    expect((await send()).statusCode).toBe(201);
    for (const stolen of [{ "x-request-id": "cap-2" }, { "x-request-id": undefined }]) {
      const response = await send(stolen);
      expect(response.statusCode, response.body).toBe(401);
      expect(response.json()).toMatchObject({ type: "UNAUTHORIZED", code: 2001 });
    }
    expect((await client.request("GET", "/v1/transactions/cap-2")).statusCode).toBe(404);
    const expected = plus(before, "2.00");
    expect(await bobHas()).toBe(`${expected}/${expected}`);
  });

  it("while the first still runs: 409 in progress (retryable), never 401; afterwards the stored answer", async () => {
    const held = t.services.sandboxGate.hold("acquirer.charge");
    const send = await signedOnce(
      client,
      "POST",
      "/v1/transactions/deposits",
      {
        userId: "carol",
        amount: "30.00",
        currency: "EUR",
        sourceMethod: {
          paymentMethodType: "CREDIT_CARD",
          cardNumber: distinctCard(),
          expirationMonth: 12,
          expirationYear: 2031,
        },
      },
      "dep-held",
    );
    const first = send();
    try {
      await vi.waitFor(() => expect(held.waiting()).toBe(1));
      const during = await send();
      expect(during.statusCode, during.body).toBe(409);
      expect(during.json()).toMatchObject({ type: "REQUEST_IN_PROGRESS", code: 4011, retryable: true });
    } finally {
      held.release();
    }
    const answered = await first;
    expect(answered.statusCode, answered.body).toBe(201);
    const after = await send();
    expect(after.statusCode).toBe(201);
    expect(after.headers["idempotent-replayed"]).toBe("true");
    expect(after.body).toBe(answered.body);
    const net = plus(answered.json().amount, `-${answered.json().fee}`); // credited once, net of the fee
    expect(await balances(client, "carol")).toEqual({ EUR: `${net}/${net}` });
    const charges = await t.database.db
      .selectFrom("transactions")
      .select("request_id")
      .where("client_id", "=", client.clientId)
      .where("request_id", "=", "dep-held")
      .execute();
    expect(charges).toHaveLength(1);
  });

  it("any state-changing request with an id: sent again after it completed, the stored answer (not a 401)", async () => {
    const patch = await signedOnce(
      client,
      "PATCH",
      "/v1/users/alice",
      { phones: ["+491701234567"] },
      "patch-alice-1",
    );
    const first = await patch();
    expect(first.statusCode, first.body).toBe(200);
    const again = await patch();
    expect(again.statusCode, again.body).toBe(200);
    expect(again.headers["idempotent-replayed"]).toBe("true");
    expect(again.body).toBe(first.body);
  });
});
