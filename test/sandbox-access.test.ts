import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signRequest } from "../src/sdk/signing.ts";
import { basic, startTestApp, type TestApp } from "./harness.ts";
import { tokenFor } from "./page-forms.ts";
import { createTestClient, createUser, type TestClient } from "./platform.ts";

// Issue 7.4: the /sandbox control routes needed no credentials (anyone could credit a pending bank
// deposit) and served every client. Now: POST /sandbox/bank/incoming needs the admin's Basic
// credentials or the owning client's signature; both routes serve sandbox clients only (a live
// client's reference is unknown: 404); an installation may switch them off.

let t: TestApp;
let counter = 0;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

async function clientWithUser(): Promise<{ client: TestClient; userId: string }> {
  const client = await createTestClient(t);
  const userId = `sbx-${++counter}`;
  await createUser(t, client, userId);
  return { client, userId };
}

async function bankDeposit(client: TestClient, userId: string) {
  const response = await client.request(
    "POST",
    "/v1/transactions/deposits",
    { userId, amount: "100.00", currency: "EUR", sourceMethod: { paymentMethodType: "WIRE" } },
    { "x-request-id": `bank-${++counter}` },
  );
  expect(response.statusCode, response.body).toBe(202);
  return response.json() as { requestId: string; paymentInstructions: { reference: string } };
}

async function challengeDeposit(client: TestClient, userId: string) {
  const response = await client.request(
    "POST",
    "/v1/transactions/deposits",
    {
      userId,
      amount: "100.00",
      currency: "EUR",
      sourceMethod: {
        paymentMethodType: "CREDIT_CARD",
        cardNumber: "4000000000003220", // the sandbox acquirer's 3-D Secure challenge card
        expirationMonth: 12,
        expirationYear: 2031,
        cvv: "123",
      },
    },
    { "x-request-id": `card-${++counter}` },
  );
  expect(response.statusCode, response.body).toBe(202);
  const body = response.json() as { requestId: string; redirectUrl: string };
  return { requestId: body.requestId, path: new URL(body.redirectUrl).pathname };
}

const incoming = (reference: string, headers: Record<string, string> = {}) =>
  t.app.inject({
    method: "POST",
    url: "/sandbox/bank/incoming",
    headers,
    payload: { reference, amount: "100.00", currency: "EUR" },
  });

/** The sandbox bank call signed by a client, as its backend would send it. */
async function signedIncoming(client: TestClient, reference: string) {
  const body = JSON.stringify({ reference, amount: "100.00", currency: "EUR" });
  const headers = await signRequest({
    clientId: client.clientId,
    privateJwk: client.privateJwk,
    method: "POST",
    target: "/sandbox/bank/incoming",
    body,
  });
  return t.app.inject({ method: "POST", url: "/sandbox/bank/incoming", headers, payload: body });
}

const statusOf = async (client: TestClient, requestId: string) =>
  (await client.request("GET", `/v1/transactions/${requestId}`)).json().status as string;

const goLive = (client: TestClient) =>
  t.app.inject({
    method: "PATCH",
    url: `/admin/clients/${client.clientId}`,
    headers: t.adminAuth,
    payload: { mode: "live" },
  });

describe("POST /sandbox/bank/incoming", () => {
  it("refuses a caller without credentials (401), and the deposit stays unpaid", async () => {
    const { client, userId } = await clientWithUser();
    const { requestId, paymentInstructions } = await bankDeposit(client, userId);
    const anonymous = await incoming(paymentInstructions.reference);
    expect(anonymous.statusCode, anonymous.body).toBe(401);
    expect(anonymous.headers["www-authenticate"]).toMatch(/^Basic/);
    const wrongPassword = await incoming(paymentInstructions.reference, {
      authorization: basic("admin", "not-the-password"),
    });
    expect(wrongPassword.statusCode).toBe(401);
    expect(await statusOf(client, requestId)).toBe("AWAITING_PAYMENT");
  });

  it("lets the platform admin credit a sandbox client's deposit", async () => {
    const { client, userId } = await clientWithUser();
    const { requestId, paymentInstructions } = await bankDeposit(client, userId);
    const arrived = await incoming(paymentInstructions.reference, t.adminAuth);
    expect(arrived.statusCode, arrived.body).toBe(200);
    expect(arrived.json()).toMatchObject({ requestId, status: "CAPTURED" });
  });

  it("lets the owning client credit it with a signed request; another client's signature finds nothing", async () => {
    const { client, userId } = await clientWithUser();
    const other = await createTestClient(t);
    const { requestId, paymentInstructions } = await bankDeposit(client, userId);
    const foreign = await signedIncoming(other, paymentInstructions.reference);
    expect(foreign.statusCode, foreign.body).toBe(404);
    expect(foreign.json().errors).toEqual([{ field: "reference", message: expect.any(String) }]);
    expect(await statusOf(client, requestId)).toBe("AWAITING_PAYMENT");
    const own = await signedIncoming(client, paymentInstructions.reference);
    expect(own.statusCode, own.body).toBe(200);
    expect(own.json()).toMatchObject({ requestId, status: "CAPTURED" });
  });

  it("refuses a bad signature (401) before looking at the body", async () => {
    const { client } = await clientWithUser();
    const response = await t.app.inject({
      method: "POST",
      url: "/sandbox/bank/incoming",
      headers: { "x-client-id": client.clientId, date: new Date().toUTCString(), "x-signature": "a..b" },
      payload: { nonsense: true },
    });
    expect(response.statusCode).toBe(401);
  });

  it("does not serve a live client: its reference is unknown (404), even to the admin", async () => {
    const { client, userId } = await clientWithUser();
    const { requestId, paymentInstructions } = await bankDeposit(client, userId);
    expect((await goLive(client)).statusCode).toBe(200);
    const byAdmin = await incoming(paymentInstructions.reference, t.adminAuth);
    expect(byAdmin.statusCode, byAdmin.body).toBe(404);
    const byClient = await signedIncoming(client, paymentInstructions.reference);
    expect(byClient.statusCode, byClient.body).toBe(404);
    expect(byClient.json().message).toBe(byAdmin.json().message); // no hint that it exists
    expect(await statusOf(client, requestId)).toBe("AWAITING_PAYMENT");
  });
});

describe("the 3-D Secure challenge page", () => {
  it("stays open to the card holder's browser (no credentials) for a sandbox client's charge", async () => {
    const { client, userId } = await clientWithUser();
    const { requestId, path } = await challengeDeposit(client, userId);
    const page = await t.app.inject({ method: "GET", url: path });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain("Sandbox 3-D Secure");
    const completed = await t.app.inject({
      method: "POST",
      url: path,
      headers: { "content-type": "application/x-www-form-urlencoded" },
      payload: `decision=complete&csrf=${tokenFor(t, path)}`,
    });
    expect(completed.statusCode).toBe(200);
    expect(await statusOf(client, requestId)).toBe("CAPTURED");
  });

  it("serves no live client's charge, and no unknown reference", async () => {
    const { client, userId } = await clientWithUser();
    const { requestId, path } = await challengeDeposit(client, userId);
    expect((await goLive(client)).statusCode).toBe(200);
    expect((await t.app.inject({ method: "GET", url: path })).statusCode).toBe(404);
    const completed = await t.app.inject({
      method: "POST",
      url: path,
      headers: { "content-type": "application/x-www-form-urlencoded" },
      payload: `decision=complete&csrf=${tokenFor(t, path)}`,
    });
    expect(completed.statusCode).toBe(404);
    expect(await statusOf(client, requestId)).toBe("AWAITING_PAYMENT");
    const unknown = await t.app.inject({
      method: "GET",
      url: "/sandbox/acquirer/challenge/sbxch_01890a5d-ac96-774b-bcce-b302099a8057",
    });
    expect(unknown.statusCode).toBe(404);
  });
});

describe("FERRY_SANDBOX_ROUTES=off", () => {
  it("mounts no /sandbox route at all", async () => {
    const off = await startTestApp({ sandboxRoutes: false });
    try {
      const response = await off.app.inject({
        method: "POST",
        url: "/sandbox/bank/incoming",
        headers: off.adminAuth,
        payload: { reference: "FRYABCDEFGHJK", amount: "1.00", currency: "EUR" },
      });
      expect(response.statusCode).toBe(404);
      expect(response.json().message).toBe("no route POST /sandbox/bank/incoming");
      const paths = Object.keys((await off.app.inject({ method: "GET", url: "/openapi.json" })).json().paths);
      expect(paths.filter((p) => p.startsWith("/sandbox"))).toEqual([]);
    } finally {
      await off.close();
    }
  });
});
