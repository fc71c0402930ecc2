/**
 * What a KYC provider is shown of the person or business it checks: the user's information as
 * Ferry keeps it (structurally; the provider depends on no Ferry module). A real adapter maps it to
 * its own API.
 */
export interface KycSubjectInfo {
  name?:
    | { firstName?: string | undefined; middleName?: string | undefined; lastName?: string | undefined }
    | undefined;
  businessName?: string | undefined;
  dateOfBirth?: string | undefined;
  countryOfResidence?: string | undefined;
  countryOfCitizenship?: string | undefined;
  addresses?:
    | {
        street?: string | undefined;
        city?: string | undefined;
        postalCode?: string | undefined;
        country?: string | undefined;
      }[]
    | undefined;
}

export interface KycCheckRequest {
  /** Ferry's reference for the check (the assessment's request id, scoped by client): submitting it twice is one check. */
  reference: string;
  userType: "PERSON" | "BUSINESS";
  info: KycSubjectInfo;
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
