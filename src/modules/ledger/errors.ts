import { DomainError, type DomainErrorKind } from "../../lib/errors.ts";

/**
 * Why the ledger refused an operation. A refusal is a normal result (insufficient funds is not a
 * bug): operations return it, and the faces turn it into their own status codes.
 */
export const LedgerRejection = {
  EMPTY_OPERATION: "EMPTY_OPERATION",
  INVALID_ID: "INVALID_ID",
  DUPLICATE_ID_IN_OPERATION: "DUPLICATE_ID_IN_OPERATION",
  EXISTS_WITH_DIFFERENT_PARAMETERS: "EXISTS_WITH_DIFFERENT_PARAMETERS",
  ACCOUNT_NOT_FOUND: "ACCOUNT_NOT_FOUND",
  SAME_ACCOUNT: "SAME_ACCOUNT",
  CURRENCY_MISMATCH: "CURRENCY_MISMATCH",
  AMOUNT_NOT_POSITIVE: "AMOUNT_NOT_POSITIVE",
  AMOUNT_TOO_LARGE: "AMOUNT_TOO_LARGE",
  EXPIRY_NOT_IN_FUTURE: "EXPIRY_NOT_IN_FUTURE",
  EXCEEDS_LIMIT: "EXCEEDS_LIMIT",
  BALANCE_OVERFLOW: "BALANCE_OVERFLOW",
  PENDING_NOT_FOUND: "PENDING_NOT_FOUND",
  PENDING_ALREADY_POSTED: "PENDING_ALREADY_POSTED",
  PENDING_ALREADY_VOIDED: "PENDING_ALREADY_VOIDED",
  PENDING_EXPIRED: "PENDING_EXPIRED",
  POST_AMOUNT_EXCEEDS_PENDING: "POST_AMOUNT_EXCEEDS_PENDING",
} as const;

export type LedgerRejectionCode = (typeof LedgerRejection)[keyof typeof LedgerRejection];

const kinds = {
  CURRENCY_NOT_FOUND: "NOT_FOUND",
  ACCOUNT_NOT_FOUND: "NOT_FOUND",
  CLIENT_NOT_FOUND: "NOT_FOUND",
  CURRENCY_EXISTS: "CONFLICT",
  INVALID_CURRENCY: "INVALID",
  INVALID_ACCOUNT: "INVALID",
  INVALID_AMOUNT: "INVALID",
} as const satisfies Record<string, DomainErrorKind>;

/** Thrown by the ledger's set-up functions (currencies, accounts) for a caller's mistake. */
export class LedgerError extends DomainError {
  declare readonly code: keyof typeof kinds;

  constructor(code: keyof typeof kinds, message: string, field?: string) {
    super(kinds[code], code, message, field);
  }
}
