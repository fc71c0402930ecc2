import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase } from "../src/db/database.ts";
import { migrate } from "../src/db/migrate.ts";
import { createClient } from "../src/modules/clients/service.ts";
import * as ledger from "../src/modules/ledger/service.ts";
import { basic } from "./harness.ts";
import { runFerry, startFerryProcess } from "./process.ts";

/** Ferry as its users run it: `ferry serve` processes on one embedded data directory. */
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-restart-"));
const env = { FERRY_DATA_DIR: dataDir, DATABASE_URL: "" };
afterAll(() => {
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe("the embedded database across restarts", () => {
  let password = "";
  let walletId = "";

  it("first start: migrates, generates the admin password and prints it", async () => {
    const ferry = await startFerryProcess(env);
    expect(ferry.generatedPassword).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    password = ferry.generatedPassword ?? "";
    const ready = await fetch(`${ferry.url}/health/ready`);
    expect(await ready.json()).toEqual({ status: "ok", database: "pglite" });
    // The demo client's Wallet API administrator is printed too, and logs in without X-Client-Id
    // (the demo client is the installation's default client).
    const wallet = /Wallet API admin: login "([^"]+)", password (\S+)/.exec(ferry.output());
    expect(wallet?.[1]).toBe("admin@demo.example");
    const login = await fetch(`${ferry.url}/api/v1/authorization`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ login: wallet?.[1], password: wallet?.[2] }),
    });
    expect(login.status).toBe(200);
    expect(((await login.json()) as { members: unknown[] }).members[0]).toMatchObject({
      role: "administrator",
      organization: { type: "system" },
    });
    expect(await ferry.stop()).toBe(0);
    expect(ferry.output()).toContain("ferry stopped");
    expect(fs.existsSync(path.join(dataDir, "ferry.pid"))).toBe(false);
  });

  it("data written between starts is there after the next start, and the one after", async () => {
    // Write ledger data into the stopped server's directory, as the ledger service does.
    const database = await openDatabase({ dataDir });
    await migrate(database);
    await createClient(database.db, { id: "acme", name: "Acme" });
    await ledger.createCurrency(database.db, { clientId: "acme", code: "EUR", scale: 2 });
    const issuing = await ledger.openAccount(database.db, {
      clientId: "acme",
      currency: "EUR",
      kind: "ISSUING",
    });
    const wallet = await ledger.openAccount(database.db, {
      clientId: "acme",
      currency: "EUR",
      kind: "USER_WALLET",
      ownerId: "u-1",
    });
    walletId = wallet.id;
    const [funded, held] = await ledger.submitBatch(database.db, [
      {
        clientId: "acme",
        legs: [
          {
            type: "SINGLE",
            id: "fund",
            debitAccountId: issuing.id,
            creditAccountId: wallet.id,
            amount: 250_00n,
            currency: "EUR",
          },
        ],
      },
      {
        clientId: "acme",
        legs: [
          {
            type: "PENDING",
            id: "hold",
            debitAccountId: wallet.id,
            creditAccountId: issuing.id,
            amount: 50_00n,
            currency: "EUR",
          },
        ],
      },
    ]);
    expect(funded?.ok && held?.ok).toBe(true);
    await database.close();

    for (let start = 0; start < 2; start++) {
      const ferry = await startFerryProcess(env);
      expect(ferry.generatedPassword, "no new password on a later start").toBeUndefined();
      const response = await fetch(`${ferry.url}/admin/ledger/accounts/${walletId}`, {
        headers: { authorization: basic("admin", password) },
      });
      expect(response.status).toBe(200);
      const body = (await response.json()) as {
        account: Record<string, string>;
        entries: { totalRecords: number };
      };
      expect(body.account).toMatchObject({
        balance: "250.00",
        availableBalance: "200.00",
        debitsPending: "50.00",
      });
      expect(body.entries.totalRecords).toBe(2);
      const invariants = await fetch(`${ferry.url}/admin/ledger/invariants`, {
        headers: { authorization: basic("admin", password) },
      });
      expect(await invariants.json()).toMatchObject({ ok: true, accounts: 2, transfers: 2 });
      expect(await ferry.stop()).toBe(0);
    }
  });

  it("refuses a second process on the same directory with one clear line", async () => {
    const ferry = await startFerryProcess(env);
    try {
      const second = await runFerry(["migrate"], env);
      expect(second.code).toBe(1);
      expect(second.stderr.trim()).toMatch(/^ferry: the embedded database in .* is in use by process \d+/);
      expect(second.stderr.trim().split("\n")).toHaveLength(1);
    } finally {
      expect(await ferry.stop()).toBe(0);
    }
  });

  it("`ferry admin password` resets the password; FERRY_ADMIN_PASSWORD sets it at start-up", async () => {
    const reset = await runFerry(["admin", "password"], env);
    expect(reset.code).toBe(0);
    const newPassword = /is now: (\S+)/.exec(reset.stdout)?.[1] ?? "";
    expect(newPassword).not.toBe(password);

    let ferry = await startFerryProcess(env);
    const url = `${ferry.url}/admin/ledger/invariants`;
    expect((await fetch(url, { headers: { authorization: basic("admin", password) } })).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: basic("admin", newPassword) } })).status).toBe(200);
    expect(await ferry.stop()).toBe(0);

    ferry = await startFerryProcess({ ...env, FERRY_ADMIN_PASSWORD: "configured-password-1" });
    expect(
      (
        await fetch(url.replace(/^http:\/\/[^/]+/, ferry.url), {
          headers: { authorization: basic("admin", "configured-password-1") },
        })
      ).status,
    ).toBe(200);
    expect(ferry.output()).not.toContain("configured-password-1");
    expect(await ferry.stop()).toBe(0);
  });
});

describe("start-up mistakes", () => {
  it("exits with one line naming the bad variable, not a stack trace", async () => {
    for (const [variable, value] of [
      ["PORT", "not-a-port"],
      ["DATABASE_URL", "mysql://nope"],
      ["LOG_LEVEL", "chatty"],
    ]) {
      const result = await runFerry(["serve"], { ...env, [variable as string]: value as string });
      expect(result.code).toBe(1);
      const lines = result.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^ferry: invalid configuration: ${variable} `));
    }
  });
});
