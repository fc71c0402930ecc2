import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { loadConfig } from "../src/config.ts";
import { openDatabase } from "../src/db/database.ts";
import { inTransaction } from "../src/db/transaction.ts";
import { createClient } from "../src/modules/clients/service.ts";
import * as ledger from "../src/modules/ledger/service.ts";
import { createLogger, startFerry } from "../src/server.ts";
import { startTestApp } from "./harness.ts";

describe("graceful shutdown", () => {
  it("lets a request in flight finish, then refuses new connections", async () => {
    let release = () => {};
    const t = await startTestApp((app) => {
      app.get("/test/slow", async () => {
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        return { finished: true };
      });
    });
    const address = await t.app.listen({ port: 0, host: "127.0.0.1" });
    const inFlight = fetch(`${address}/test/slow`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closing = t.app.close();
    setTimeout(() => release(), 200);
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ finished: true });
    await closing;
    await expect(fetch(`${address}/health/live`)).rejects.toThrow();
    await t.database.close();
  });

  it("stop() answers every ledger operation already submitted, stops the workers, closes the database", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-stop-"));
    try {
      const config = loadConfig({
        PORT: "0",
        FERRY_DATA_DIR: dataDir,
        FERRY_ADMIN_PASSWORD: "shutdown-test-pw",
        LOG_LEVEL: "silent",
      });
      const ferry = await startFerry(config, createLogger(config));
      await createClient(ferry.database.db, { id: "acme", name: "Acme" });
      await ledger.createCurrency(ferry.database.db, { clientId: "acme", code: "USD", scale: 2 });
      const issuing = await ledger.openAccount(ferry.database.db, {
        clientId: "acme",
        currency: "USD",
        kind: "ISSUING",
      });
      const wallet = await ledger.openAccount(ferry.database.db, {
        clientId: "acme",
        currency: "USD",
        kind: "USER_WALLET",
        ownerId: "u",
      });
      // The hold-expiry worker runs in the server: a hold that expires is released without anyone asking.
      const hold = await ferry.ledger.submit({
        clientId: "acme",
        legs: [
          {
            type: "PENDING",
            id: "h-1",
            debitAccountId: issuing.id,
            creditAccountId: wallet.id,
            amount: 5n,
            currency: "USD",
            expiresAt: new Date(Date.now() + 200),
          },
        ],
      });
      expect(hold.ok).toBe(true);
      await vi.waitFor(
        async () =>
          expect(await ledger.getTransfer(ferry.database.db, "acme", "h-1")).toMatchObject({
            status: "EXPIRED",
          }),
        {
          timeout: 5000,
          interval: 100,
        },
      );
      expect((await ledger.getAccount(ferry.database.db, wallet.id)).creditsPending).toBe(0n);
      const submitted = Array.from({ length: 200 }, (_, i) =>
        ferry.ledger.submit({
          clientId: "acme",
          legs: [
            {
              type: "SINGLE",
              id: `s-${i}`,
              debitAccountId: issuing.id,
              creditAccountId: wallet.id,
              amount: 1n,
              currency: "USD",
            },
          ],
        }),
      );
      await ferry.stop();
      const results = await Promise.all(submitted);
      expect(results.every((r) => r.ok)).toBe(true);
      expect(fs.existsSync(path.join(dataDir, "ferry.pid"))).toBe(false);
      await expect(ledger.getAccount(ferry.database.db, wallet.id)).rejects.toThrow();
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("stop() waits for provider calls in flight, then abandons a hung one: its attempt recorded, nothing left leased", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-stop-steps-"));
    try {
      const config = loadConfig({
        PORT: "0",
        FERRY_DATA_DIR: dataDir,
        FERRY_ADMIN_PASSWORD: "shutdown-test-pw",
        FERRY_SHUTDOWN_TIMEOUT_MS: "1000",
        FERRY_RECOVERY_INTERVAL_MS: "50",
        LOG_LEVEL: "silent",
      });
      const ferry = await startFerry(config, createLogger(config));
      await createClient(ferry.database.db, { id: "acme", name: "Acme" });
      // A provider that never answers (and ignores its abort signal): only the runner can end the call.
      const calls: string[] = [];
      ferry.services.steps.register({
        name: "TEST_NEVER_ANSWERS",
        input: z.object({ key: z.string() }),
        maxAttempts: 5,
        perform: ({ key }) => {
          calls.push(key);
          return new Promise(() => {});
        },
        async record() {},
        async exhausted() {},
      });
      const { id } = await inTransaction(ferry.database.db, (tx) =>
        ferry.services.steps.schedule(tx, {
          clientId: "acme",
          kind: "TEST_NEVER_ANSWERS",
          processType: "test",
          processId: "hung",
          idempotencyKey: "hung",
          input: { key: "hung" },
        }),
      );
      await vi.waitFor(() => expect(calls).toEqual(["hung"]), { timeout: 5000, interval: 20 });
      const started = Date.now();
      await ferry.stop();
      // Half the shutdown timeout for calls in flight, then abandoned (the rest is closing the
      // database; before this change stop() waited for the call for ever).
      expect(Date.now() - started).toBeGreaterThanOrEqual(450);
      expect(Date.now() - started).toBeLessThan(4000);
      const reopened = await openDatabase({ dataDir, databaseUrl: undefined, poolSize: 1 });
      try {
        const step = await reopened.db
          .selectFrom("steps")
          .selectAll()
          .where("id", "=", id)
          .executeTakeFirstOrThrow();
        expect(step).toMatchObject({ status: "PENDING", attempts: 1, locked_until: null });
        expect(step.last_error).toContain("Ferry is stopping");
      } finally {
        await reopened.close();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
