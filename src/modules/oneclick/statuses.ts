/**
 * The 1-Click flow's numeric status codes: PaymentIQ's published codes (its "Transaction States And
 * Status Codes" page; oneclick-api.md), where the range is the state and the code says why. The one
 * place where a code is named. The keys are the flow's own state names (process-table.ts, and the
 * `status_name` column); what the face shows is PaymentIQ's name of the code (`PAYMENTIQ_NAME`).
 * Stored rows were renumbered where Ferry's code had meant something else (migration 0021).
 */
export const STATUS = {
  SUCCESS: 0,
  REGISTERED: 100,
  PROCESSING_PROVIDER: 200,
  PROCESSING_MERCHANT: 201,
  PROCESSING_USER_VERIFICATION: 203,
  PROCESSING_USER_AUTHORISATION: 204,
  PROCESSING_KYC_VERIFICATION: 205,
  /** PaymentIQ's 300 WAITING_INPUT: waiting on the user at the identity provider (was 301, PaymentIQ's WAITING_3D_SECURE). */
  WAITING_IDENTITY_PROVIDER: 300,
  /** Monitoring held the deposit for a person: nothing is reserved or paid until staff approve it. */
  WAITING_MANUAL_REVIEW: 350,
  READ_TIMEOUT: 400,
  INCONSISTENT_TRANSACTION: 402,
  UNKNOWN_RESPONSE: 405,
  SYSTEM_ERROR: 500,
  FRAUD: 503,
  NO_FUNDS: 504,
  NOT_AUTHENTICATED: 509,
  INVALID_RESPONSE: 510,
  /**
   * The client's KYC scenario needs more for this deposit than the provider proved: PaymentIQ's 564
   * ERR_DECLINED_KYC_BLOCK (was 511, PaymentIQ's ERR_DECLINED_REQ_BLOCKED).
   */
  KYC_REQUIRED: 564,
  NOT_AUTHORIZED: 513,
  MERCHANT_OUT_OF_SERVICE: 520,
  CANCELLED_BY_USER: 600,
  CANCELLED_BY_MERCHANT: 601,
  CANCELLED_BY_PSP: 602,
} as const;

export type StatusName = keyof typeof STATUS;

/** PaymentIQ's name of each code Ferry uses: what the face, the callbacks and the redirect show. */
export const PAYMENTIQ_NAME: Record<(typeof STATUS)[StatusName], string> = {
  0: "SUCCESS",
  100: "REGISTERED",
  200: "PROCESSING_PROVIDER",
  201: "PROCESSING_MERCHANT",
  203: "PROCESSING_USER_VERIFICATION",
  204: "PROCESSING_USER_AUTHORISATION",
  205: "PROCESSING_KYC_VERIFICATION",
  300: "WAITING_INPUT",
  350: "WAITING_DEPOSIT_APPROVAL",
  400: "ERR_READ_TIMEOUT",
  402: "ERR_INCONSISTENT_TRANSACTION",
  405: "ERR_UNKNOWN_RESPONSE",
  500: "ERR_SYSTEM_ERROR",
  503: "ERR_DECLINED_FRAUD",
  504: "ERR_DECLINED_NO_FUNDS",
  509: "ERR_NOT_AUTHENTICATED",
  510: "ERR_INVALID_RESPONSE",
  513: "ERR_DECLINED_NOT_AUTHORIZED",
  520: "ERR_MERCHANT_OUT_OF_SERVICE",
  564: "ERR_DECLINED_KYC_BLOCK",
  600: "ERR_CANCELLED_BY_USER",
  601: "ERR_CANCELLED_BY_MERCHANT",
  602: "ERR_CANCELLED_BY_PSP",
};

/** PaymentIQ's name of a stored code (a code this version does not use keeps a neutral name). */
export const statusNameOf = (code: number): string =>
  (PAYMENTIQ_NAME as Record<number, string>)[code] ?? `STATUS_${code}`;

export type TxState =
  | "SUCCESSFUL"
  | "REGISTERED"
  | "PROCESSING"
  | "WAITING_INPUT"
  | "WAITING_APPROVAL"
  | "INCONSISTENT"
  | "FAILED"
  | "CANCELLED";

/** The state a status code's range stands for. */
export function stateOf(code: number): TxState {
  if (code < 100) return "SUCCESSFUL";
  if (code < 200) return "REGISTERED";
  if (code < 300) return "PROCESSING";
  if (code < 350) return "WAITING_INPUT";
  if (code < 400) return "WAITING_APPROVAL";
  if (code < 500) return "INCONSISTENT";
  if (code < 600) return "FAILED";
  return "CANCELLED";
}

/** Whether nothing more will happen to the flow without staff (success, failed, cancelled — or inconsistent). */
export const isFinal = (code: number) => code < 100 || code >= 400;
