import { z } from "zod";
import type { KycDecision } from "../../providers/kyc/interface.ts";
import type { StepRunner } from "../steps/runner.ts";
import type { Kyc } from "./service.ts";

/**
 * An assessment's calls to the KYC provider as one durable step of the runner (KYC_CHECK): submit
 * the check, then ask for its result until the provider has one ("ask again at T"), then record the
 * decision in the transaction that closes the step. A provider that keeps failing for this
 * assessment ends it ERROR after the step's attempts; it never holds up another assessment's step.
 */

export const KYC_CHECK = "KYC_CHECK";

/** Failed calls to the provider for one assessment before it ends ERROR. */
export const MAX_POLL_FAILURES = 10;

const input = z.object({ clientId: z.string(), requestId: z.string() }).strict();
export type KycCheckStep = z.infer<typeof input>;

export function registerKycSteps(kyc: Kyc, steps: StepRunner): void {
  steps.register<KycCheckStep, KycDecision | { over: true }>({
    name: KYC_CHECK,
    input,
    maxAttempts: MAX_POLL_FAILURES,
    async perform({ clientId, requestId }) {
      const answer = await kyc.check(clientId, requestId);
      return "retryAt" in answer
        ? { waitUntil: answer.retryAt }
        : { done: "over" in answer ? answer : answer.decision };
    },
    async record(tx, _step, { clientId, requestId }, decision) {
      // Decided meanwhile (staff, or the assessment ended otherwise): the provider's answer stays on the step.
      if ("over" in decision) return;
      await kyc.completeIn(tx, clientId, requestId, decision, undefined, { onlyPending: true });
    },
    async exhausted(tx, _step, { clientId, requestId }) {
      await kyc.completeIn(tx, clientId, requestId, { status: "ERROR" }, undefined, { onlyPending: true });
    },
  });
}
