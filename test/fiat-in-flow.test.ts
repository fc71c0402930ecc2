import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient, startWebhookReceiver, type TestClient } from "./platform.ts";

/**
 * The client-side fiat-in flow (platform-api.md, steps 1–11), driven as a browser drives it: the
 * client's backend gets a user token; the front end calls the deposit with it, from an allowed
 * origin, with the PII of the form; the outcome comes back to the browser and the events to the
 * client's webhook.
 */
let t: TestApp;
let client: TestClient;
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
const ORIGIN = "https://pay.example.com";

beforeAll(async () => {
  t = await startTestApp({ workers: true });
  receiver = await startWebhookReceiver(t.url ?? "");
  client = await createTestClient(t, {
    webhookUrl: receiver.url(),
    webhookEncryptionKey: receiver.encryptionJwk,
    allowedOrigins: [ORIGIN],
  });
  // The user exists with a name only: tier 0.
  const created = await client.request("POST", "/v1/users", {
    id: "browser-user",
    type: "PERSON",
    name: { firstName: "Grace", lastName: "Hopper" },
  });
  expect(created.statusCode).toBe(201);
});
afterAll(async () => {
  await receiver.stop();
  await t.close();
});

it("runs the eleven steps of the client-side fiat-in flow", async () => {
  // 1–2. The client's backend asks Ferry for a user token for the deposit, bound to the user.
  const tokenResponse = await client.request("POST", "/v1/auth/userToken", {
    url: "/v1/transactions/deposits",
    method: "POST",
    userId: "browser-user",
  });
  expect(tokenResponse.statusCode).toBe(201);
  const { accessToken, expiresAt } = tokenResponse.json();
  expect(expiresAt).toBeGreaterThan(Date.now() / 1000);

  // 3–4. The backend hands it to its front end; the user fills in the form (card, amount, details).
  const form = {
    userId: "browser-user",
    amount: "120.00",
    currency: "EUR",
    sourceMethod: {
      paymentMethodType: "CREDIT_CARD",
      cardNumber: "4242424242424242",
      expirationMonth: 11,
      expirationYear: 2030,
      cvv: "737",
      cardHolder: "Grace Hopper",
    },
    pii: {
      emails: ["grace@example.com"],
      addresses: [{ street: "1 Navy Way", city: "Arlington", postalCode: "22202", country: "US" }],
      dateOfBirth: "1906-12-09",
      phones: ["+12025550123"],
    },
  };
  // The browser's preflight for the cross-origin call.
  const preflight = await t.app.inject({
    method: "OPTIONS",
    url: "/v1/transactions/deposits",
    headers: {
      origin: ORIGIN,
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type,x-client-id,x-user-token,x-request-id",
    },
  });
  expect(preflight.statusCode).toBe(204);
  expect(preflight.headers["access-control-allow-origin"]).toBe(ORIGIN);

  // 5. The front end calls the deposit endpoint with the token (no signature).
  const browserCall = () =>
    t.app.inject({
      method: "POST",
      url: "/v1/transactions/deposits",
      headers: {
        origin: ORIGIN,
        "content-type": "application/json",
        "x-client-id": client.clientId,
        "x-user-token": accessToken,
        "x-request-id": "browser-deposit-1",
      },
      payload: JSON.stringify(form),
    });
  const response = await browserCall();

  // 9–10. Recorded, accepted by monitoring, the card charged and the wallet credited: the browser gets the outcome.
  expect(response.statusCode, response.body).toBe(201);
  expect(response.headers["access-control-allow-origin"]).toBe(ORIGIN);
  expect(response.json()).toMatchObject({
    requestId: "browser-deposit-1",
    status: "CAPTURED",
    amount: "120.00",
    monitoring: { status: "ACCEPT" },
  });
  expect(response.body).not.toContain("4242424242424242");

  // 6. The token was invalidated: a second use is refused.
  const second = await browserCall();
  expect(second.statusCode).toBe(401);
  expect(second.json().type).toBe("TOKEN_USED");

  // 7. The PII of the form was merged into the user.
  const info = await t.services.users.info(t.database.db, client.clientId, "browser-user");
  expect(info).toMatchObject({
    name: { firstName: "Grace", lastName: "Hopper" },
    emails: ["grace@example.com"],
    dateOfBirth: "1906-12-09",
  });

  // 8. The KYC refresh ran in the background (it did not hold up the deposit, captured above) and raised the tier.
  await vi.waitFor(
    async () => expect((await client.request("GET", "/v1/users/browser-user")).json().tier).toBe(1),
    { timeout: 8000, interval: 100 },
  );
  const refresh = await t.database.db
    .selectFrom("user_assessments")
    .selectAll()
    .where("client_id", "=", client.clientId)
    .where("user_id", "=", "browser-user")
    .execute();
  expect(refresh).toHaveLength(1);
  expect(refresh[0]).toMatchObject({ solicited: false, status: "ACCEPTED" });

  // 11. The webhook got USER_ASSESSMENT, TRANSACTION_MONITORING and TRANSACTION_STATUS — without PII.
  await vi.waitFor(
    () => {
      const types = new Set(
        receiver.events.filter((e) => e.data.userId === "browser-user").map((e) => e.type),
      );
      for (const type of [
        "USER_ASSESSMENT",
        "TRANSACTION_MONITORING",
        "TRANSACTION_STATUS",
        "WALLET_BALANCE",
      ])
        expect(types).toContain(type);
    },
    { timeout: 8000, interval: 100 },
  );
  const delivered = JSON.stringify(receiver.events);
  for (const pii of [
    "Grace",
    "Hopper",
    "grace@example.com",
    "Navy Way",
    "1906-12-09",
    "+12025550123",
    "4242424242424242",
  ]) {
    expect(delivered).not.toContain(pii);
  }
  const wallets = (await client.request("GET", "/v1/users/browser-user/wallets")).json().records;
  expect(wallets).toEqual([expect.objectContaining({ currency: "EUR", totalBalance: "120.00" })]);
});
