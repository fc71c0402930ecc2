import type { UserInfo, UserType } from "../../modules/users/schemas.ts";

export interface KycCheckRequest {
  /** Ferry's reference for the check (the assessment's request id, scoped by client): submitting it twice is one check. */
  reference: string;
  userType: UserType;
  info: UserInfo;
  /** The highest tier the information supports: what an acceptance can grant. */
  supportedTier: number;
}

export type KycDecision =
  | { status: "ACCEPTED"; tier: number }
  | { status: "REFUSED"; refusalReason: string }
  | { status: "UNDER_REVIEW" }
  | { status: "REQUESTED_MORE_INFORMATION" }
  | { status: "ERROR" };

/** A KYC provider: takes a check, answers later (asynchronously). */
export interface KycProvider {
  readonly name: string;
  submit(request: KycCheckRequest): Promise<{ providerReference: string; resultDueAt: Date }>;
  /** The decision once the provider has one; null while it is still working. */
  result(providerReference: string, request: KycCheckRequest): Promise<KycDecision | null>;
}
