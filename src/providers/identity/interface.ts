/**
 * An identity provider of the 1-Click flow (a bank-ID or open-banking provider): it proves who the
 * user is, hands over their KYC data, and takes the deposit from their bank in the same flow.
 * Ferry hosts the sandbox providers' pages; a real provider's page is its own.
 */

/** What the provider proved about the person (KYC data). Country: ISO 3166 alpha-2. */
export interface ProvenIdentity {
  personid: string;
  firstName: string;
  lastName: string;
  /** ISO date. */
  dob: string;
  street: string;
  city: string;
  zip: string;
  country: string;
}

export interface IdentityPaymentRequest {
  /** `<clientId>:oc-<txId>`: the same key again is the same payment (never two). */
  idempotencyKey: string;
  personid: string;
  amount: bigint;
  /** The amount as the user saw it ("504.00"). */
  amountText: string;
  currency: string;
}

export type IdentityPaymentResult =
  | { status: "PAID"; reference: string }
  /** Refused by the user's bank; `statusCode` in the 1-Click FAILED range (504 NO_FUNDS). */
  | { status: "DECLINED"; reference: string; statusCode: number; reason: string };

/** One payment as the provider keeps it: what reconciliation compares with the ledger. */
export interface IdentityPaymentRecord {
  idempotencyKey: string;
  reference: string;
  provider: string;
  amount: bigint;
  currency: string;
  status: "PAID" | "NO_FUNDS";
}

export interface IdentityProvider {
  /** The `identity_provider` value of /oauth/authorize. */
  readonly name: string;
  /** Shown on the hosted page. */
  readonly displayName: string;
  /** The KYC tier what it proves supports (a bank-ID is an electronic ID document: tier 2). */
  readonly tier: number;
  /** Whether the operator's `signin` answer must be a success before the flow goes on. */
  readonly signinRequired: boolean;
  /** The person behind a personal id, as the provider knows them; undefined if it knows no one. */
  identify(personid: string): ProvenIdentity | undefined;
  /** Takes the deposit from the person's bank account. */
  pay(request: IdentityPaymentRequest): Promise<IdentityPaymentResult>;
}
