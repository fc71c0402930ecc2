import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import { sql } from "kysely";
import { afterAll, expect, it } from "vitest";
import { type FerryDatabase, openDatabase } from "../src/db/database.ts";
import * as ledger from "../src/modules/ledger/service.ts";
import { signRequest } from "../src/sdk/signing.ts";
import { createTestDatabase } from "./database.ts";
import { withLuhnDigit } from "./funding.ts";
import { basic } from "./harness.ts";
import { startFerryProcess } from "./process.ts";

/**
 * Ferry killed with SIGKILL in the middle of a stream of deposits and withdrawals, then started
 * again: every operation the client was told succeeded is on the ledger exactly once, the
 * recovery worker finishes what the crash interrupted, the invariants hold, no hold is left behind.
 */
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-crash-"));
let testDb: (FerryDatabase & { url: string | undefined }) | undefined;

afterAll(async () => {
  await testDb?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const PASSWORD = "crash-test-password";

function luhnCard(seed: number): string {
  return withLuhnDigit(`4000${String(100000000 + seed).padStart(11, "0")}`);
}

it("recovers a stream interrupted by SIGKILL: each success exactly once, invariants, no dangling hold", async () => {
  let env: Record<string, string>;
  if (process.env.DATABASE_URL) {
    testDb = await createTestDatabase();
    env = { DATABASE_URL: testDb.url ?? "" };
  } else {
    env = { DATABASE_URL: "", FERRY_DATA_DIR: dataDir };
  }
  env = {
    ...env,
    FERRY_ADMIN_PASSWORD: PASSWORD,
    FERRY_RECOVERY_INTERVAL_MS: "200",
    FERRY_PROVIDER_LEASE_SECONDS: "2",
    FERRY_SANDBOX_PAYOUT_DELAY_MS: "400",
    FERRY_WEBHOOK_INTERVAL_MS: "200",
    FERRY_MASTER_KEY: Buffer.alloc(32, 7).toString("base64"),
    LOG_LEVEL: "warn",
  };

  let ferry = await startFerryProcess(env);
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  const privateJwk: JWK = await exportJWK(privateKey);
  const created = await fetch(`${ferry.url}/admin/clients`, {
    method: "POST",
    headers: { authorization: basic("admin", PASSWORD), "content-type": "application/json" },
    body: JSON.stringify({
      name: "Crash Co",
      signingKeys: [await exportJWK(publicKey)],
      // A stream of many small operations: neither velocity review nor KYC brackets are the subject here.
      settings: {
        monitoring: { velocityCount: 1_000_000, dailyTotalReviewUsd: 1_000_000_000 },
        kyc: {
          scenarios: [
            {
              id: "open",
              brackets: {
                DEPOSIT: [{ upToUsd: null, requiredTier: 0 }],
                WITHDRAWAL: [{ upToUsd: null, requiredTier: 0 }],
              },
            },
          ],
          defaultScenario: "open",
        },
      },
    }),
  });
  expect(created.status, await created.clone().text()).toBe(201);
  const { clientId } = (await created.json()) as { clientId: string };
  const call = async (method: string, target: string, body?: unknown, requestId?: string) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = await signRequest({ clientId, privateJwk, method, target, body: payload, requestId });
    return fetch(`${ferry.url}${target}`, {
      method,
      headers,
      body: payload,
    });
  };

  const users = ["c-1", "c-2", "c-3", "c-4"];
  for (const [i, id] of users.entries()) {
    const r = await call("POST", "/v1/users", {
      id,
      type: "PERSON",
      name: { firstName: "Crash", lastName: `Tester${i}` },
      emails: [`${id}@example.com`],
      addresses: [{ street: "1 Main St", city: "Berlin", country: "DE" }],
      dateOfBirth: "1990-01-01",
    });
    expect(r.status).toBe(201);
  }

  // The stream: each user deposits by card (every third one with the card that times out once)
  // and withdraws part of it, one after the other; four users at a time.
  const succeeded: { requestId: string; type: "DEPOSIT" | "WITHDRAWAL" }[] = [];
  let stop = false;
  const stream = users.map(async (userId, u) => {
    for (let n = 0; !stop && n < 200; n++) {
      const depositId = `${userId}-dep-${n}`;
      const card = n % 3 === 2 ? "4000000000000119" : luhnCard(u * 1000 + n);
      try {
        const dep = await call(
          "POST",
          "/v1/transactions/deposits",
          {
            userId,
            amount: "10.00",
            currency: "EUR",
            sourceMethod: {
              paymentMethodType: "CREDIT_CARD",
              cardNumber: card,
              expirationMonth: 12,
              expirationYear: 2031,
            },
          },
          depositId,
        );
        if (dep.status === 201 || dep.status === 202)
          succeeded.push({ requestId: depositId, type: "DEPOSIT" });
        if (dep.status === 201 && n % 2 === 1) {
          const withdrawalId = `${userId}-wd-${n}`;
          const wd = await call(
            "POST",
            "/v1/transactions/withdrawals",
            {
              userId,
              amount: "5.00",
              currency: "EUR",
              destinationMethod: {
                paymentMethodType: "ACH",
                iban: "DE89370400440532013000",
                accountHolderName: "Crash Tester",
              },
            },
            withdrawalId,
          );
          if (wd.status === 201 || wd.status === 202)
            succeeded.push({ requestId: withdrawalId, type: "WITHDRAWAL" });
        }
      } catch {
        return; // the server died under us: this request's outcome is unknown to the client
      }
    }
  });
  // Killed mid-stream once some requests have succeeded (at least 2.5 s in; longer on a loaded machine).
  const killBy = Date.now() + 30_000;
  await new Promise((resolve) => setTimeout(resolve, 2500));
  while (succeeded.length <= 5 && Date.now() < killBy)
    await new Promise((resolve) => setTimeout(resolve, 100));
  ferry.child.kill("SIGKILL");
  stop = true;
  await Promise.all(stream);
  if (ferry.child.exitCode === null && ferry.child.signalCode === null) {
    await new Promise((resolve) => ferry.child.once("exit", resolve));
  }
  expect(succeeded.length).toBeGreaterThan(5);

  // (The timeout card belongs to the first user who used it; the others' attempts with it were 409s.)
  ferry = await startFerryProcess(env);
  // Let the leases of the interrupted steps run out, the recovery worker finish them, the payouts settle.
  await new Promise((resolve) => setTimeout(resolve, 3500));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const states = await Promise.all(
      succeeded.map(
        async (s) =>
          ((await (await call("GET", `/v1/transactions/${s.requestId}`)).json()) as { status: string })
            .status,
      ),
    );
    if (states.every((st) => ["CAPTURED", "REFUSED", "ERROR"].includes(st)) || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  expect(await ferry.stop()).toBe(0);

  const database = process.env.DATABASE_URL
    ? await openDatabase({ databaseUrl: testDb?.url })
    : await openDatabase({ dataDir });
  try {
    const db = database.db;
    for (const s of succeeded) {
      const row = await db
        .selectFrom("transactions")
        .selectAll()
        .where("client_id", "=", clientId)
        .where("request_id", "=", s.requestId)
        .executeTakeFirst();
      expect(row, s.requestId).toBeDefined();
      expect(row?.status, s.requestId).toBe("CAPTURED");
      const legs = await db
        .selectFrom("ledger_transfers")
        .select(["id", "type", "status"])
        .where("client_id", "=", clientId)
        .where("operation_id", "=", `txn:${s.requestId}`)
        .execute();
      if (s.type === "DEPOSIT") {
        expect(legs.map((l) => l.id)).toEqual([`${s.requestId}:deposit`]);
        const charges = await db
          .selectFrom("sandbox_acquirer_charges")
          .select("outcome")
          .where("idempotency_key", "=", `${clientId}:${s.requestId}`)
          .execute();
        expect(charges.map((c) => c.outcome)).toEqual(["APPROVED"]);
      } else {
        expect(legs.map((l) => `${l.id}:${l.status}`)).toEqual([`${s.requestId}:hold:POSTED`]);
      }
    }
    // Every transaction the crash interrupted is finished too, and every captured deposit charged once.
    const open = await db
      .selectFrom("steps")
      .select(["process_id", "kind", "status"])
      .where("client_id", "=", clientId)
      .where("status", "in", ["PENDING", "FAILED"])
      .execute();
    expect(open).toEqual([]);
    const captured = await db
      .selectFrom("transactions")
      .select("request_id")
      .where("client_id", "=", clientId)
      .where("type", "=", "DEPOSIT")
      .where("status", "=", "CAPTURED")
      .execute();
    const credits = await db
      .selectFrom("ledger_transfers")
      .select("id")
      .where("client_id", "=", clientId)
      .where("id", "like", "%:deposit")
      .execute();
    expect(credits.length).toBe(captured.length);
    // No hold left behind: every pending ledger transfer belongs to a transaction still under way.
    const dangling = await sql<{ id: string }>`
      SELECT lt.id FROM ledger_transfers lt
      JOIN transactions t ON t.client_id = lt.client_id AND lt.operation_id = 'txn:' || t.request_id
      WHERE lt.client_id = ${clientId} AND lt.status = 'PENDING' AND t.status NOT IN ('PENDING', 'AUTHORIZED', 'MANUAL_REVIEW')`.execute(
      db,
    );
    expect(dangling.rows).toEqual([]);
    expect((await ledger.checkInvariants(db, clientId)).ok).toBe(true);
  } finally {
    await database.close();
  }
}, 120_000);
