import type { StatusName } from "./statuses.ts";

/**
 * The 1-Click flow's transition table, in the form of the core's (transactions/process-table.ts):
 * which event moves a flow from which status to which, with which effects. process.ts applies it;
 * this file is the one place to read where a 1-Click status changes.
 *
 *   start → 301 ─approve→ 203 (signin) ─signed in→ 203 (verifyuser) ─verified→ 205 (the quote stage:
 *   KYC gate + monitoring with the user's usage) ─accepted→ 204 (authorize) ─authorized→ 200 (the
 *   provider's payment) ─paid→ 201 (transfer) ─transferred→ 0 SUCCESS
 *   monitoring's MANUAL_REVIEW → 350, where nothing is reserved or paid until staff approve (→ 204)
 *   or deny (→ 503).
 */

export type OneClickEvent =
  // the user and the provider's page
  | "STARTED"
  | "EXPIRED"
  | "USER_CANCELLED"
  /** The proven person is on a sanctions list or in a prohibited country: nothing reaches the operator. */
  | "SANCTIONED"
  | "IDENTIFIED"
  /** A returning person at a provider without required signin: the operator's user Ferry already knows. */
  | "IDENTIFIED_RETURNING"
  // the operator's answers
  | "SIGNED_IN"
  | "NOT_AUTHENTICATED"
  | "VERIFIED"
  | "SIGNED_UP"
  | "AUTHORIZED"
  | "NOT_AUTHORIZED"
  | "TRANSFERRED"
  /** A callback got no answer after its attempts (unreachable, timeout, non-2xx). */
  | "OPERATOR_DOWN"
  /** A callback's answers were not usable (not JSON, not the documented shape). */
  | "OPERATOR_GARBLED"
  | "TRANSFER_TIMED_OUT"
  | "TRANSFER_LOST"
  // the quote stage (KYC gate and monitoring)
  | "ACCEPTED"
  | "HELD_FOR_REVIEW"
  | "DENIED"
  | "KYC_NEEDED"
  | "QUOTE_FAILED"
  // staff
  | "APPROVE"
  | "DENY"
  | "RETRY"
  | "RESOLVED"
  // the identity provider's payment
  | "PAID"
  | "NO_FUNDS"
  | "PAYMENT_FAILED"
  | "PAYMENT_LOST";

export type OneClickEffect =
  /** Operator callbacks and the provider's payment, each a durable step. */
  | "SIGNIN"
  | "VERIFYUSER"
  | "QUOTE"
  | "AUTHORIZE"
  | "PAY"
  | "TRANSFER"
  | "CANCEL"
  /** The person as a core user (created or completed), with the tier the provider proved. */
  | "ENSURE_USER"
  /** The deposit counted in the user's usage (velocity, daily and 30-day totals, history) / taken out again. */
  | "COUNT_USAGE"
  | "UNCOUNT_USAGE"
  /** The core's posting recipe: bank transit → the operator's settlement account, the fee to fees. */
  | "CREDIT_DEPOSIT";

export type From = StatusName | "NEW";

export interface OneClickTransition {
  from: readonly From[];
  event: OneClickEvent;
  to: StatusName;
  effects?: readonly OneClickEffect[];
  /** DEPOSIT: only a flow with an amount; SIGN_IN: only one without. */
  guard?: "DEPOSIT" | "SIGN_IN";
}

const PUV = "PROCESSING_USER_VERIFICATION";
const PUA = "PROCESSING_USER_AUTHORISATION";
const PAYING: readonly From[] = ["PROCESSING_PROVIDER", "UNKNOWN_RESPONSE"];
const UNCONFIRMED: readonly From[] = ["READ_TIMEOUT", "INCONSISTENT_TRANSACTION"];

// biome-ignore format: one transition per line reads as the table it is
export const ONECLICK_TRANSITIONS: readonly OneClickTransition[] = [
  { from: ["NEW"], event: "STARTED", to: "WAITING_IDENTITY_PROVIDER" },

  // ——— the provider's page ———
  { from: ["WAITING_IDENTITY_PROVIDER"], event: "EXPIRED", to: "CANCELLED_BY_PSP" },
  { from: ["WAITING_IDENTITY_PROVIDER"], event: "USER_CANCELLED", to: "CANCELLED_BY_USER" },
  { from: ["WAITING_IDENTITY_PROVIDER"], event: "SANCTIONED", to: "FRAUD" },
  { from: ["WAITING_IDENTITY_PROVIDER"], event: "IDENTIFIED", to: PUV, effects: ["SIGNIN"] },
  { from: ["WAITING_IDENTITY_PROVIDER"], event: "IDENTIFIED_RETURNING", to: PUV, effects: ["ENSURE_USER", "VERIFYUSER"] },

  // ——— signin, verifyuser ———
  { from: [PUV], event: "SIGNED_IN", to: PUV, effects: ["ENSURE_USER", "VERIFYUSER"] },
  { from: [PUV], event: "NOT_AUTHENTICATED", to: "NOT_AUTHENTICATED" },
  { from: [PUV], event: "OPERATOR_DOWN", to: "MERCHANT_OUT_OF_SERVICE" },
  { from: [PUV], event: "OPERATOR_GARBLED", to: "INVALID_RESPONSE" },
  { from: [PUV], event: "SIGNED_UP", to: "SUCCESS", guard: "SIGN_IN" },
  { from: [PUV], event: "VERIFIED", to: "PROCESSING_KYC_VERIFICATION", effects: ["QUOTE"], guard: "DEPOSIT" },

  // ——— the quote stage: the KYC gate and monitoring, on the user's usage ———
  { from: ["PROCESSING_KYC_VERIFICATION"], event: "ACCEPTED", to: PUA, effects: ["COUNT_USAGE", "AUTHORIZE"] },
  { from: ["PROCESSING_KYC_VERIFICATION"], event: "HELD_FOR_REVIEW", to: "WAITING_MANUAL_REVIEW", effects: ["COUNT_USAGE"] },
  { from: ["PROCESSING_KYC_VERIFICATION"], event: "DENIED", to: "FRAUD" },
  { from: ["PROCESSING_KYC_VERIFICATION"], event: "KYC_NEEDED", to: "KYC_REQUIRED" },
  { from: ["PROCESSING_KYC_VERIFICATION"], event: "QUOTE_FAILED", to: "SYSTEM_ERROR" },

  // ——— staff review (nothing was sent to the operator's wallet or the bank yet) ———
  { from: ["WAITING_MANUAL_REVIEW"], event: "APPROVE", to: PUA, effects: ["AUTHORIZE"] },
  { from: ["WAITING_MANUAL_REVIEW"], event: "DENY", to: "FRAUD", effects: ["UNCOUNT_USAGE"] },

  // ——— authorize (the operator may have reserved the amount when it fails: cancel releases it) ———
  { from: [PUA], event: "AUTHORIZED", to: "PROCESSING_PROVIDER", effects: ["PAY"] },
  { from: [PUA], event: "NOT_AUTHORIZED", to: "NOT_AUTHORIZED", effects: ["UNCOUNT_USAGE"] },
  { from: [PUA], event: "OPERATOR_DOWN", to: "MERCHANT_OUT_OF_SERVICE", effects: ["UNCOUNT_USAGE", "CANCEL"] },
  { from: [PUA], event: "OPERATOR_GARBLED", to: "INVALID_RESPONSE", effects: ["UNCOUNT_USAGE", "CANCEL"] },

  // ——— the provider's payment (a late answer after staff retried a lost one counts the same) ———
  { from: PAYING, event: "PAID", to: "PROCESSING_MERCHANT", effects: ["CREDIT_DEPOSIT", "TRANSFER"] },
  { from: PAYING, event: "NO_FUNDS", to: "NO_FUNDS", effects: ["UNCOUNT_USAGE", "CANCEL"] },
  { from: PAYING, event: "PAYMENT_FAILED", to: "SYSTEM_ERROR", effects: ["UNCOUNT_USAGE", "CANCEL"] },
  { from: ["PROCESSING_PROVIDER"], event: "PAYMENT_LOST", to: "UNKNOWN_RESPONSE" },

  // ——— transfer: the money is at the operator's settlement account; the operator must accept it ———
  { from: ["PROCESSING_MERCHANT", ...UNCONFIRMED], event: "TRANSFERRED", to: "SUCCESS" },
  { from: ["PROCESSING_MERCHANT"], event: "TRANSFER_TIMED_OUT", to: "READ_TIMEOUT" },
  { from: ["PROCESSING_MERCHANT"], event: "TRANSFER_LOST", to: "INCONSISTENT_TRANSACTION" },

  // ——— staff, on an INCONSISTENT flow: its failed step tried again, or resolved with the operator's word ———
  { from: UNCONFIRMED, event: "RETRY", to: "PROCESSING_MERCHANT" },
  { from: ["UNKNOWN_RESPONSE"], event: "RETRY", to: "PROCESSING_PROVIDER" },
  { from: UNCONFIRMED, event: "RESOLVED", to: "SUCCESS" },
];

export function findOneClickTransition(
  from: From,
  event: OneClickEvent,
  hasAmount: boolean,
): OneClickTransition | undefined {
  return ONECLICK_TRANSITIONS.find(
    (t) =>
      t.event === event &&
      t.from.includes(from) &&
      (t.guard === undefined || (t.guard === "DEPOSIT") === hasAmount),
  );
}
