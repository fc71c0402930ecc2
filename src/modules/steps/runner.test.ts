import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { createTestDatabase } from "../../../test/database.ts";
import type { FerryDatabase } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import { createClient } from "../clients/service.ts";
import { type Performed, StepRunner } from "./runner.ts";

/**
 * The step runner on its own, with a kind whose provider the test controls: each row runs on its
 * own, an answer is recorded once however many runners try, a failing record keeps the answer, the
 * last attempt ends FAILED with its compensation, a request waits for a step the worker took first.
 */
let database: FerryDatabase;
const clientId = "steps-test";

beforeAll(async () => {
  database = await createTestDatabase();
  await createClient(database.db, { id: clientId, name: "Steps" });
});
afterAll(async () => {
  await database.close();
});

interface Behaviour {
  calls: number;
  /** Throws on these call numbers (1-based). */
  failOn?: Set<number>;
  /** Resolves the call only when released. */
  gate?: Promise<void>;
  recordFails?: boolean;
}

/** A runner with one kind, TEST_CALL, whose behaviour per key the test sets. */
function runnerWith(behaviours: Map<string, Behaviour>, recorded: string[], exhausted: string[]) {
  const runner = new StepRunner(database.db, { leaseSeconds: 5, backoffMs: () => 0 });
  runner.register({
    name: "TEST_CALL",
    input: z.object({ key: z.string() }),
    maxAttempts: 3,
    async perform({ key }): Promise<Performed<{ answer: string }>> {
      const b = behaviours.get(key);
      if (!b) throw new Error(`no behaviour for ${key}`);
      b.calls++;
      if (b.gate) await b.gate;
      if (b.failOn?.has(b.calls)) throw new Error(`call ${b.calls} of ${key} failed`);
      return { done: { answer: `${key}-ok` } };
    },
    async record(_tx, _step, { key }, result) {
      if (behaviours.get(key)?.recordFails) throw new Error("the ledger refused it");
      recorded.push(`${key}:${result.answer}`);
    },
    async exhausted(_tx, _step, { key }, error) {
      exhausted.push(`${key}:${error}`);
    },
  });
  return runner;
}

const schedule = (runner: StepRunner, key: string) =>
  inTransaction(database.db, (tx) =>
    runner.schedule(tx, {
      clientId,
      kind: "TEST_CALL",
      processType: "test",
      processId: key,
      idempotencyKey: key,
      input: { key },
    }),
  );

const stepOf = (id: string) =>
  database.db.selectFrom("steps").selectAll().where("id", "=", id).executeTakeFirstOrThrow();

describe("the step runner", () => {
  it("runs each due row on its own: one that fails never stops the others", async () => {
    const behaviours = new Map<string, Behaviour>([
      ["iso-bad", { calls: 0, failOn: new Set([1, 2, 3]) }],
      ["iso-a", { calls: 0 }],
      ["iso-b", { calls: 0 }],
    ]);
    const recorded: string[] = [];
    const exhausted: string[] = [];
    const runner = runnerWith(behaviours, recorded, exhausted);
    const ids = [];
    for (const key of ["iso-bad", "iso-a", "iso-b"]) ids.push((await schedule(runner, key)).id);
    await runner.runDue(10);
    expect(recorded.sort()).toEqual(["iso-a:iso-a-ok", "iso-b:iso-b-ok"]);
    // The bad one is retried until its last attempt, then FAILED with its compensation run once.
    await runner.runDue(10);
    await runner.runDue(10);
    const bad = await stepOf(ids[0] ?? "");
    expect(bad).toMatchObject({ status: "FAILED", attempts: 3 });
    expect(bad.last_error).toContain("call 3 of iso-bad failed");
    expect(exhausted.filter((e) => e.startsWith("iso-bad:"))).toEqual([
      expect.stringContaining("iso-bad:Error: call 3 of iso-bad failed"),
    ]);
  });

  it("the same key scheduled twice is one step", async () => {
    const runner = runnerWith(new Map(), [], []);
    const first = await schedule(runner, "same-key");
    const second = await schedule(runner, "same-key");
    expect(second).toEqual({ id: first.id, created: false });
  });

  it("an answer that cannot be recorded is kept on the step and counted as a failed attempt", async () => {
    const behaviours = new Map<string, Behaviour>([["rec-fail", { calls: 0, recordFails: true }]]);
    const exhausted: string[] = [];
    const runner = runnerWith(behaviours, [], exhausted);
    const { id } = await schedule(runner, "rec-fail");
    await runner.runDue(10);
    const after = await stepOf(id);
    expect(after).toMatchObject({ status: "PENDING", attempts: 1 });
    expect(JSON.stringify(after.result)).toContain("rec-fail-ok");
    await runner.runDue(10);
    await runner.runDue(10);
    expect(await stepOf(id)).toMatchObject({ status: "FAILED" });
    // (Steps of the other cases are due too: only this one's compensation is looked at.)
    expect(exhausted.filter((e) => e.startsWith("rec-fail:"))).toHaveLength(1);
  });

  it("two runners on one step: it is performed by one, recorded once", async () => {
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const behaviours = new Map<string, Behaviour>([["race", { calls: 0, gate }]]);
    const recorded: string[] = [];
    const runner = runnerWith(behaviours, recorded, []);
    const other = runnerWith(behaviours, recorded, []);
    const { id } = await schedule(runner, "race");
    const first = runner.runDue(10);
    await vi.waitFor(() => expect(behaviours.get("race")?.calls).toBe(1));
    // The other process finds it leased: it claims nothing.
    expect(await other.runDue(10)).toBe(0);
    // A request asking to run it now waits for the holder's answer instead of returning early.
    let requestDone = false;
    const request = runner.run(id).then(() => {
      requestDone = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(requestDone).toBe(false);
    release();
    await Promise.all([first, request]);
    expect((await stepOf(id)).status).toBe("SUCCEEDED");
    expect(recorded).toEqual(["race:race-ok"]);
    expect(behaviours.get("race")?.calls).toBe(1);
  });

  it("cancels a process's untried steps, and refuses while one was tried", async () => {
    const behaviours = new Map<string, Behaviour>([["tried", { calls: 0, failOn: new Set([1]) }]]);
    const runner = runnerWith(behaviours, [], []);
    const untried = await schedule(runner, "untried");
    expect(
      await inTransaction(database.db, (tx) => runner.cancelUntried(tx, clientId, "test", "untried")),
    ).toBe(true);
    expect((await stepOf(untried.id)).status).toBe("CANCELED");
    await schedule(runner, "tried");
    await runner.runDue(10); // fails once: tried, outcome unknown
    expect(
      await inTransaction(database.db, (tx) => runner.cancelUntried(tx, clientId, "test", "tried")),
    ).toBe(false);
  });
});
