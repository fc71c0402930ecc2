import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import { afterAll, expect, it } from "vitest";
import type { FerryDatabase } from "../src/db/database.ts";
import { signRequest } from "../src/sdk/signing.ts";
import { createTestDatabase } from "./database.ts";
import { basic } from "./harness.ts";
import { startFerryProcess } from "./process.ts";

/**
 * A Pay-in purchase whose process is killed (SIGKILL) after the acquirer charged the card and
 * before Ferry recorded the answer (the sandbox acquirer answers 5 s after charging): after the
 * restart the recovery worker asks the acquirer again under the same key, and the purchase
 * completes exactly once — one charge, one credit of the crypto.
 */
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-payin-crash-"));
let testDb: (FerryDatabase & { url: string | undefined }) | undefined;

afterAll(async () => {
  await testDb?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const ADMIN = "payin-crash-password";
const PASSWORD = "Str0ng#Pass";

it("a crash between the charge and its recording: after restart the purchase completes exactly once", async () => {
  let env: Record<string, string>;
  if (process.env.DATABASE_URL) {
    testDb = await createTestDatabase();
    env = { DATABASE_URL: testDb.url ?? "" };
  } else {
    env = { DATABASE_URL: "", FERRY_DATA_DIR: dataDir };
  }
  env = {
    ...env,
    FERRY_ADMIN_PASSWORD: ADMIN,
    FERRY_DEMO_CLIENT: "false",
    FERRY_RECOVERY_INTERVAL_MS: "200",
    FERRY_PROVIDER_LEASE_SECONDS: "2",
    FERRY_SANDBOX_KYC_DELAY_MS: "50",
    FERRY_MASTER_KEY: Buffer.alloc(32, 9).toString("base64"),
    LOG_LEVEL: "warn",
  };
  const admin = { authorization: basic("admin", ADMIN), "content-type": "application/json" };
  let ferry = await startFerryProcess({ ...env, FERRY_SANDBOX_ACQUIRER_ANSWER_DELAY_MS: "5000" });
  const json = async (response: Response, status = 200) => {
    const text = await response.text();
    expect(response.status, text).toBe(status);
    return JSON.parse(text);
  };

  // A client (with a signing key for its backend), its administrator, a customer at KYC_1.
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  const privateJwk: JWK = await exportJWK(privateKey);
  const { clientId } = await json(
    await fetch(`${ferry.url}/admin/clients`, {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ name: "Pay-in crash", signingKeys: [await exportJWK(publicKey)] }),
    }),
    201,
  );
  await json(
    await fetch(`${ferry.url}/admin/clients/${clientId}/staff`, {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ login: "admin@crash.example", role: "administrator", password: PASSWORD }),
    }),
    201,
  );
  const login = async (who: string) =>
    (
      await json(
        await fetch(`${ferry.url}/api/v1/authorization`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-client-id": clientId },
          body: JSON.stringify({ login: who, password: PASSWORD }),
        }),
      )
    ).authorizationToken.token as string;
  const staffToken = await login("admin@crash.example");
  const { user } = await json(
    await fetch(`${ferry.url}/api/v1/users`, {
      method: "POST",
      headers: { authorization: `Bearer ${staffToken}`, "content-type": "application/json" },
      body: JSON.stringify({ login: "marie@crash.example", role: "individual", password: PASSWORD }),
    }),
    201,
  );
  // The client's backend gives the user's information and starts the assessment (/v1, signed).
  const target = `/v1/users/${user.id}/assessments`;
  const body = JSON.stringify({
    name: { firstName: "Marie", lastName: "Curie" },
    dateOfBirth: "1990-01-01",
    addresses: [{ street: "12 Rue de Rivoli", city: "Paris", postalCode: "75001", country: "FR" }],
    idDocument: { type: "PASSPORT", number: "X1234567", country: "FR" },
  });
  const signed = await signRequest({
    clientId,
    privateJwk,
    method: "POST",
    target,
    body,
    requestId: "kyc-marie",
  });
  await json(
    await fetch(`${ferry.url}${target}`, {
      method: "POST",
      headers: signed,
      body,
    }),
    202,
  );

  let token = await login("marie@crash.example");
  const customer = (method: string, url: string, payload?: unknown) =>
    fetch(`${ferry.url}${url}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(payload === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
    });
  // KYC_1 arrives after the sandbox's delay.
  for (let i = 0; i < 100; i++) {
    const level = (await (await customer("GET", "/v2/customer/kyc/data")).json()) as {
      kycLevel: string | null;
    };
    if (level.kycLevel === "KYC_1") break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const { cardId } = await json(
    await customer("POST", "/v3/payin/card", {
      cardNumber: "4242424242424242",
      cardHolder: "Marie Curie",
      cardExpirationMonth: 12,
      cardExpirationYear: 2031,
      billingAddress: { address: "12 Rue de Rivoli", city: "Paris", countryCode: "FR", zip: "75001" },
    }),
  );
  const offer = (await json(
    await customer("POST", "/v3/payin/offer", {
      cardId,
      fromCurrency: "EUR",
      toCurrency: "USDC",
      amount: "100.00",
      operation: "PAYIN",
    }),
  )) as { offerId: number; toAmount: number };
  expect(offer.toAmount).toBe(106.38);

  // Pay: the acquirer charges at once and answers 5 s later; the process dies in between.
  void customer("POST", `/v3/payin/pay/${offer?.offerId}`, { cardCVV: "123" }).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 2000));
  ferry.child.kill("SIGKILL");
  await ferry.stop().catch(() => undefined);

  // Restarted (the acquirer answers at once now): the recovery worker finishes the purchase.
  ferry = await startFerryProcess(env);
  try {
    token = await login("marie@crash.example");
    let status: { status: string; cryptoAmount: number } | undefined;
    for (let i = 0; i < 100; i++) {
      status = (await json(
        await customer("GET", `/v3/payin/pay-callback?offerId=${offer?.offerId}`),
      )) as typeof status;
      if (status?.status !== "PENDING") break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toMatchObject({ status: "SUCCESS", cryptoAmount: 106.38 });
    // Paying again is the first result; one charge; one credit; the ledger agrees with the acquirer.
    const again = await json(await customer("POST", `/v3/payin/pay/${offer?.offerId}`, { cardCVV: "123" }));
    expect(again.transactionStatus).toBe("Approved");
    const coins = (await json(await customer("GET", "/api/v1/coins"))).coins;
    expect(coins).toMatchObject([{ currency: { code: "USDC" }, amount: "106.380000" }]);
    const steps = await json(
      await fetch(`${ferry.url}/admin/steps?clientId=${clientId}`, { headers: admin }),
    );
    const charge = steps.records.filter((s: { kind: string }) => s.kind === "CARD_CHARGE");
    expect(charge).toHaveLength(1);
    expect(charge[0].status).toBe("SUCCEEDED");
    // Asked twice under one key: once before the crash (charged, unanswered), once by the recovery.
    expect(charge[0].attempts).toBeGreaterThanOrEqual(2);
    const reconciliation = await json(
      await fetch(`${ferry.url}/admin/reconciliation?clientId=${clientId}`, { headers: admin }),
    );
    expect(reconciliation, JSON.stringify(reconciliation)).toMatchObject({ ok: true, checked: 1 });
    const invariants = await json(
      await fetch(`${ferry.url}/admin/ledger/invariants?clientId=${clientId}`, { headers: admin }),
    );
    expect(invariants.ok).toBe(true);
  } finally {
    await ferry.stop();
  }
}, 120_000);
