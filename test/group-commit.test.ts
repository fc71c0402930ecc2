import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FerryDatabase, openDatabase } from "../src/db/database.ts";
import * as ledger from "../src/modules/ledger/service.ts";
import { createServices, type Services } from "../src/services.ts";
import { createTestDatabase } from "./database.ts";
import { balances, fundedClient } from "./funding.ts";
import { startTestApp, type TestApp, testSettings } from "./harness.ts";
import { createUser, type TestClient } from "./platform.ts";

/**
 * Group commit (issue 8): concurrent requests share database transactions, each all or nothing. On
 * PostgreSQL a second "process" (its own pool and services, as two Ferry processes would be) records
 * transfers between the same users at the same time.
 */
let t: TestApp;
let second: FerryDatabase | undefined;
let secondServices: Services;

beforeAll(async () => {
  const database = await createTestDatabase();
  t = await startTestApp({ database });
  const url = (database as FerryDatabase & { url?: string }).url;
  second = url ? await openDatabase({ databaseUrl: url, poolSize: 10 }) : undefined;
  secondServices = createServices(second ?? database, t.services.sealer, testSettings);
});
afterAll(async () => {
  await second?.close();
  await t.close();
});

/** Monitoring's velocity rule would send a crowd of one user's transfers to review. */
const settings = { monitoring: { velocityCount: 10_000 } };

const transfer = (client: TestClient, from: string, to: string, amount: string, requestId: string) =>
  client.request(
    "POST",
    "/v1/transactions/transfers",
    { userId: from, destinationUserId: to, amount, currency: "EUR" },
    { "x-request-id": requestId },
  );

describe("group commit", () => {
  it("books concurrent transfers from two processes once each, with exact balances", async () => {
    const users = ["gc-a", "gc-b", "gc-c", "gc-d"];
    const client = await fundedClient(t, { settings, users: users.map((u) => [u, "100.00"]) });
    const moves: [string, string][] = [];
    for (let i = 0; i < 48; i++) moves.push([users[i % 4] ?? "", users[(i * 3 + 1) % 4] ?? ""]);
    const answers = await Promise.all(
      moves.map(async ([from, to], i) => {
        if (from === to) return 201;
        if (i % 2 === 0) return (await transfer(client, from, to, "1.25", `gc-${i}`)).statusCode;
        // The second process, through the service the face calls.
        const done = await secondServices.transactions.transfer({
          kind: "TRANSFER",
          clientId: client.clientId,
          requestId: `gc-${i}`,
          userId: from,
          destinationUserId: to,
          amount: "1.25",
          currency: "EUR",
        });
        return done.status === "CAPTURED" ? 201 : 500;
      }),
    );
    expect(answers.every((s) => s === 201)).toBe(true);
    const expected = new Map(users.map((u) => [u, 10_000n]));
    for (const [from, to] of moves) {
      if (from === to) continue;
      expected.set(from, (expected.get(from) ?? 0n) - 125n);
      expected.set(to, (expected.get(to) ?? 0n) + 125n);
    }
    for (const user of users) {
      const cents = expected.get(user) ?? 0n;
      const text = `${cents / 100n}.${String(cents % 100n).padStart(2, "0")}`;
      expect(await balances(client, user)).toEqual({ EUR: `${text}/${text}` });
    }
    expect((await ledger.checkInvariants(t.database.db, client.clientId)).ok).toBe(true);
  });

  it("in one crowd: a request id sent twice is recorded once, a transfer without funds leaves no row, the others commit", async () => {
    const client = await fundedClient(t, {
      settings,
      users: [
        ["gd-rich", "100.00"],
        ["gd-poor", "1.00"],
        ["gd-shop", undefined],
      ],
    });
    const [dupA, dupB, poor, ...others] = await Promise.all([
      transfer(client, "gd-rich", "gd-shop", "5.00", "gd-dup"),
      transfer(client, "gd-rich", "gd-shop", "5.00", "gd-dup"),
      transfer(client, "gd-poor", "gd-shop", "50.00", "gd-poor-1"),
      ...Array.from({ length: 8 }, (_, i) => transfer(client, "gd-rich", "gd-shop", "1.00", `gd-ok-${i}`)),
    ]);
    // The idempotency layer answers the second of the pair: 409 while the first runs, or its stored 201.
    expect([dupA?.statusCode, dupB?.statusCode].sort()).toEqual(
      dupA?.statusCode === 201 && dupB?.statusCode === 201 ? [201, 201] : [201, 409],
    );
    expect(poor?.statusCode, poor?.body).toBe(402);
    expect(others.map((r) => r.statusCode)).toEqual(Array(8).fill(201));
    const rows = await t.database.db
      .selectFrom("transactions")
      .select(["request_id"])
      .where("client_id", "=", client.clientId)
      .where("request_id", "in", ["gd-dup", "gd-poor-1"])
      .execute();
    expect(rows.map((r) => r.request_id)).toEqual(["gd-dup"]);
    expect(await balances(client, "gd-rich")).toEqual({ EUR: "87.00/87.00" });
    expect(await balances(client, "gd-shop")).toEqual({ EUR: "13.00/13.00" });
    expect((await ledger.checkInvariants(t.database.db, client.clientId)).ok).toBe(true);
  });

  it("a group whose database transaction fails answers each request alone: one refused, the others booked", async () => {
    const client = await fundedClient(t, { settings, users: [["ge-a", "50.00"]] });
    await createUser(t, client, "ge-b");
    // A fault only this request id meets, at the database (a constraint added for the test).
    await sql`ALTER TABLE transactions ADD CONSTRAINT test_group_fault CHECK (request_id <> 'ge-boom')`.execute(
      t.database.db,
    );
    try {
      const answers = await Promise.all([
        transfer(client, "ge-a", "ge-b", "1.00", "ge-boom"),
        ...Array.from({ length: 6 }, (_, i) => transfer(client, "ge-a", "ge-b", "1.00", `ge-${i}`)),
      ]);
      expect(answers[0]?.statusCode).toBeGreaterThanOrEqual(400);
      expect(answers.slice(1).map((r) => r.statusCode)).toEqual(Array(6).fill(201));
    } finally {
      await sql`ALTER TABLE transactions DROP CONSTRAINT test_group_fault`.execute(t.database.db);
    }
    expect(await balances(client, "ge-a")).toEqual({ EUR: "44.00/44.00" });
    expect(await balances(client, "ge-b")).toEqual({ EUR: "6.00/6.00" });
    const legs = await ledger.listEntriesOfOperation(t.database.db, client.clientId, "txn:ge-boom");
    expect(legs.transfers).toEqual([]);
    expect((await ledger.checkInvariants(t.database.db, client.clientId)).ok).toBe(true);
  });
});
