import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { createTestDatabase } from "../../../test/database.ts";
import type { FerryDatabase } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import { createClient } from "../clients/service.ts";
import { type Performed, StepRunner, type StepRunnerOptions } from "./runner.ts";

/**
 * The claim loop's isolation (issue 17.2): it never waits for a batch, one client holds at most
 * its own slots, every call has a deadline and is recorded as a failed attempt when it passes, a
 * lease is renewed while its call runs (and a runner that lost it leaves the attempt to the new
 * holder), and shutdown abandons calls cleanly. A database of its own: every due step is claimed.
 */
let database: FerryDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
  for (const id of ["iso-a", "iso-b", "iso-c"]) await createClient(database.db, { id, name: id });
});
afterAll(async () => {
  await database.close();
});
beforeEach(async () => {
  await database.db.deleteFrom("steps").execute();
});

/** What the provider does with a key: answer after `ms` (Infinity: never), or fail. */
type Provider = (key: string, signal: AbortSignal) => Promise<Performed<string>>;

function runnerWith(provider: Provider, options: Partial<StepRunnerOptions> = {}) {
  const recorded: string[] = [];
  const runner = new StepRunner(database.db, { leaseSeconds: 30, backoffMs: () => 0, ...options });
  runner.register({
    name: "ISO_CALL",
    input: z.object({ key: z.string() }),
    maxAttempts: 3,
    perform: ({ key }, _step, signal) => provider(key, signal),
    async record(_tx, _step, { key }, result) {
      recorded.push(`${key}:${result}`);
    },
    async exhausted() {},
  });
  return { runner, recorded };
}

const schedule = (runner: StepRunner, clientId: string, key: string) =>
  inTransaction(database.db, (tx) =>
    runner.schedule(tx, {
      clientId,
      kind: "ISO_CALL",
      processType: "iso",
      processId: key,
      idempotencyKey: key,
      input: { key },
    }),
  );

const stepOf = (id: string) =>
  database.db.selectFrom("steps").selectAll().where("id", "=", id).executeTakeFirstOrThrow();

/** A provider call that answers only when its key is released (or its signal aborts it). */
function heldCalls() {
  const releases = new Map<string, () => void>();
  const aborted: string[] = [];
  const provider: Provider = (key, signal) =>
    key.startsWith("hang")
      ? new Promise((resolve, reject) => {
          releases.set(key, () => resolve({ done: `${key}-late` }));
          signal.addEventListener("abort", () => {
            aborted.push(key);
            reject(signal.reason);
          });
        })
      : Promise.resolve({ done: `${key}-ok` });
  return { provider, releases, aborted };
}

describe("the claim loop's isolation", () => {
  it("starts calls without waiting for them: a hung call never holds up the next due step", async () => {
    const { provider } = heldCalls();
    const { runner, recorded } = runnerWith(provider, { concurrency: 8, perClient: 4 });
    await schedule(runner, "iso-a", "hang-1");
    const quick = await schedule(runner, "iso-b", "quick-1");
    const started = Date.now();
    await runner.dispatch();
    expect(Date.now() - started).toBeLessThan(1000);
    await vi.waitFor(async () => expect((await stepOf(quick.id)).status).toBe("SUCCEEDED"));
    // Due later, while the hung call is still in flight: claimed by the next round.
    const later = await schedule(runner, "iso-b", "quick-2");
    await runner.dispatch();
    await vi.waitFor(async () => expect((await stepOf(later.id)).status).toBe("SUCCEEDED"));
    expect(recorded.sort()).toEqual(["quick-1:quick-1-ok", "quick-2:quick-2-ok"]);
    expect(runner.inFlight).toBe(1);
    await runner.drain(0);
  });

  it("one client holds at most its own slots: the others' steps still run", async () => {
    const { provider } = heldCalls();
    const { runner } = runnerWith(provider, { concurrency: 4, perClient: 2 });
    for (let i = 0; i < 6; i++) await schedule(runner, "iso-a", `hang-a${i}`);
    const other = await schedule(runner, "iso-b", "quick-b");
    expect(await runner.dispatch()).toBe(false); // two of iso-a's, iso-b's one: not every slot filled
    await vi.waitFor(async () => expect((await stepOf(other.id)).status).toBe("SUCCEEDED"));
    expect(runner.inFlight).toBe(2);
    // Another round (or another process) claims none of iso-a's: two are in flight under leases.
    const second = runnerWith(provider, { concurrency: 4, perClient: 2 }).runner;
    expect(await second.dispatch()).toBe(false);
    expect(second.inFlight).toBe(0);
    await runner.drain(0);
  });

  it("a call past its deadline is a failed attempt, recorded, its signal aborted, retried", async () => {
    const { provider, aborted } = heldCalls();
    const { runner } = runnerWith(provider, { callTimeoutMs: 200 });
    const { id } = await schedule(runner, "iso-c", "hang-deadline");
    await runner.dispatch();
    await vi.waitFor(async () => expect((await stepOf(id)).last_error).toMatch(/StepTimeoutError/));
    const step = await stepOf(id);
    expect(step).toMatchObject({ status: "PENDING", attempts: 1, locked_until: null });
    expect(step.last_error).toContain("did not finish within 200 ms");
    expect(aborted).toEqual(["hang-deadline"]);
    await vi.waitFor(() => expect(runner.inFlight).toBe(0));
  });

  it("renews the lease while a call runs longer than one lease: nobody else takes the step", async () => {
    let answer = () => {};
    const provider: Provider = () =>
      new Promise((resolve) => {
        answer = () => resolve({ done: "slow-ok" });
      });
    const { runner, recorded } = runnerWith(provider, { leaseSeconds: 1 });
    const { id } = await schedule(runner, "iso-c", "slow");
    await runner.dispatch();
    const other = runnerWith(provider, { leaseSeconds: 1 }).runner;
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 500));
      expect(await other.runDue(10)).toBe(0);
    }
    answer();
    await vi.waitFor(async () => expect((await stepOf(id)).status).toBe("SUCCEEDED"));
    expect(recorded).toEqual(["slow:slow-ok"]);
    expect((await stepOf(id)).attempts).toBe(1);
  });

  it("a runner that lost its lease stops its call and leaves the attempt to the one that took over", async () => {
    const { provider, aborted } = heldCalls();
    const { runner } = runnerWith(provider, { leaseSeconds: 1, callTimeoutMs: 10_000 });
    const { id } = await schedule(runner, "iso-c", "hang-lost");
    await runner.dispatch();
    // As if this process stalled past its lease: the lease runs out and another runner claims it.
    await database.db
      .updateTable("steps")
      .set({ locked_until: new Date(Date.now() - 1000) })
      .where("id", "=", id)
      .execute();
    const taker = runnerWith(() => new Promise(() => {}), { leaseSeconds: 30 }).runner;
    const claimedAt = Date.now();
    void taker.runDue(10);
    await vi.waitFor(async () => expect((await stepOf(id)).attempts).toBe(2));
    const claimed = await stepOf(id);
    // The first runner's renewal finds the step taken: its call is aborted, and nothing it records
    // touches the new holder's attempt or lease.
    await vi.waitFor(() => expect(aborted).toEqual(["hang-lost"]), { timeout: 3000 });
    await vi.waitFor(() => expect(runner.inFlight).toBe(0));
    const after = await stepOf(id);
    expect(after).toMatchObject({ status: "PENDING", attempts: 2, last_error: null });
    expect(after.locked_until?.getTime()).toBe(claimed.locked_until?.getTime());
    expect(new Date(after.locked_until ?? 0).getTime()).toBeGreaterThan(claimedAt + 20_000);
  });

  it("shutdown waits for calls in flight, then abandons the rest: each attempt recorded, nothing claimed after", async () => {
    const { provider, releases, aborted } = heldCalls();
    const { runner, recorded } = runnerWith(provider);
    const finishing = await schedule(runner, "iso-a", "hang-finishing");
    const stuck = await schedule(runner, "iso-b", "hang-stuck");
    await runner.dispatch();
    await vi.waitFor(() => expect(releases.size).toBe(2));
    setTimeout(() => releases.get("hang-finishing")?.(), 100);
    const started = Date.now();
    await runner.drain(500);
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(recorded).toEqual(["hang-finishing:hang-finishing-late"]);
    expect((await stepOf(finishing.id)).status).toBe("SUCCEEDED");
    expect(aborted).toEqual(["hang-stuck"]);
    const abandoned = await stepOf(stuck.id);
    expect(abandoned).toMatchObject({ status: "PENDING", attempts: 1, locked_until: null });
    expect(abandoned.last_error).toContain("Ferry is stopping");
    // Stopped: it claims nothing more (another process, or the next start, retries it).
    expect(await runner.dispatch()).toBe(false);
    expect(runner.inFlight).toBe(0);
  });
});
