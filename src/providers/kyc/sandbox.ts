import { createHash } from "node:crypto";
import type { KycCheckRequest, KycDecision, KycProvider } from "./interface.ts";

/**
 * The sandbox KYC provider (sandbox.md). Deterministic on the user's last name, case-insensitive:
 * Refuse → REFUSED (DOCUMENT_INVALID), Review → UNDER_REVIEW (until staff decide), Moreinfo →
 * REQUESTED_MORE_INFORMATION, Error → ERROR, anything else → ACCEPTED at the highest tier the
 * information supports. The answer is ready `delayMs` after submission (default 1 s). Stateless:
 * the reference carries the submission time, so a restart loses nothing.
 */
export class SandboxKycProvider implements KycProvider {
  readonly name = "sandbox-kyc";

  constructor(private readonly delayMs: number) {}

  async submit(request: KycCheckRequest) {
    const submittedAt = Date.now();
    const digest = createHash("sha256").update(request.reference).digest("hex").slice(0, 16);
    return {
      providerReference: `sbxkyc_${submittedAt}_${digest}`,
      resultDueAt: new Date(submittedAt + this.delayMs),
    };
  }

  async result(providerReference: string, request: KycCheckRequest): Promise<KycDecision | null> {
    const submittedAt = Number(providerReference.split("_")[1]);
    if (!Number.isFinite(submittedAt)) return { status: "ERROR" };
    if (Date.now() < submittedAt + this.delayMs) return null;
    const lastName = (request.info.name?.lastName ?? "").trim().toLowerCase();
    switch (lastName) {
      case "refuse":
        return { status: "REFUSED", refusalReason: "DOCUMENT_INVALID" };
      case "review":
        return { status: "UNDER_REVIEW" };
      case "moreinfo":
        return { status: "REQUESTED_MORE_INFORMATION" };
      case "error":
        return { status: "ERROR" };
      default:
        return { status: "ACCEPTED", tier: request.supportedTier };
    }
  }
}
