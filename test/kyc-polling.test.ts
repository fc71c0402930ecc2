import { afterAll, beforeAll, expect, it } from "vitest";
import { platformAssessmentEvents } from "../src/faces/platform/user-events.ts";
import { Kyc, MAX_POLL_FAILURES } from "../src/modules/kyc/service.ts";
import { StepRunner } from "../src/modules/steps/runner.ts";
import { transactionsUsage } from "../src/modules/transactions/service.ts";
import type { KycCheckRequest, KycProvider } from "../src/providers/kyc/interface.ts";
import { SandboxKycProvider } from "../src/providers/kyc/sandbox.ts";
import { SandboxRatesProvider } from "../src/providers/rates/sandbox.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { createTestClient, createUser } from "./platform.ts";

/**
 * KYC polling isolates each assessment (issue 7), on the step runner (issue 17): a provider that
 * fails for one assessment never holds up the others, and that one ends ERROR after its last
 * attempt instead of being polled for ever.
 */
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

/** The sandbox provider, except that asking about `broken`'s check fails (a provider outage for one reference). */
class PartlyBrokenProvider implements KycProvider {
  readonly name = "sandbox-kyc";
  readonly #sandbox = new SandboxKycProvider(0);
  broken = new Set<string>();
  submit(request: KycCheckRequest) {
    return this.#sandbox.submit(request);
  }
  async result(reference: string, request: KycCheckRequest) {
    if (this.broken.has(request.reference)) throw new Error("provider unavailable");
    return this.#sandbox.result(reference, request);
  }
}

it("one assessment whose provider keeps failing: the others complete; it ends ERROR after the last attempt", async () => {
  const client = await createTestClient(t);
  const provider = new PartlyBrokenProvider();
  // A runner of its own (no backoff), so that this Kyc's provider answers its KYC_CHECK steps.
  const runner = new StepRunner(t.database.db, { leaseSeconds: 30, backoffMs: () => 0 });
  const kyc = new Kyc(
    t.database.db,
    t.services.users,
    provider,
    new SandboxRatesProvider(),
    transactionsUsage(t.database.db),
    platformAssessmentEvents,
    runner,
  );
  const ids = ["kyc-a", "kyc-b", "kyc-c"];
  for (const id of ids) await createUser(t, client.clientId, id, "Doe");
  const started = [];
  for (const id of ids)
    started.push(await kyc.start({ clientId: client.clientId, userId: id, requestId: `chk-${id}` }));
  const first = started[0];
  if (!first) throw new Error("no assessment");
  const brokenReference = (
    await t.database.db
      .selectFrom("user_assessments")
      .select("provider_reference")
      .where("client_id", "=", client.clientId)
      .where("request_id", "=", first.requestId)
      .executeTakeFirstOrThrow()
  ).provider_reference;
  expect(brokenReference).not.toBeNull();
  // Ferry names a check `<clientId>/<requestId>`; every poll of the first one fails.
  provider.broken.add(`${client.clientId}/${first.requestId}`);
  const statuses = async () =>
    Object.fromEntries(
      (
        await t.database.db
          .selectFrom("user_assessments")
          .select(["request_id", "status", "poll_failures"])
          .where("client_id", "=", client.clientId)
          .execute()
      ).map((r) => [r.request_id, r.status]),
    );
  // One round: the other two complete in it, whatever the broken one does.
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(await runner.runDue(50)).toBe(3);
  const afterOneRound = await statuses();
  expect(afterOneRound["chk-kyc-b"]).toBe("ACCEPTED");
  expect(afterOneRound["chk-kyc-c"]).toBe("ACCEPTED");
  expect(afterOneRound["chk-kyc-a"]).toBe("PENDING");
  // No backoff here: the step is due again at once, until its last attempt.
  for (let i = 0; i < MAX_POLL_FAILURES + 2; i++) await runner.runDue(50);
  expect((await statuses())["chk-kyc-a"]).toBe("ERROR");
  const step = await t.database.db
    .selectFrom("steps")
    .select(["kind", "status", "attempts", "last_error"])
    .where("client_id", "=", client.clientId)
    .where("process_id", "=", first.requestId)
    .executeTakeFirstOrThrow();
  expect(step).toMatchObject({ kind: "KYC_CHECK", status: "FAILED", attempts: MAX_POLL_FAILURES });
  expect(step.last_error).toMatch(/provider unavailable/);
});
