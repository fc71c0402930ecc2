/**
 * The 1-Click flow's numeric status codes, in the ranges operators of this kind of flow expect
 * (oneclick-api.md): the range is the state, the code says why. The one place where a code is named.
 */
export const STATUS = {
  SUCCESS: 0,
  REGISTERED: 100,
  PROCESSING_PROVIDER: 200,
  PROCESSING_MERCHANT: 201,
  PROCESSING_USER_VERIFICATION: 203,
  PROCESSING_USER_AUTHORISATION: 204,
  PROCESSING_KYC_VERIFICATION: 205,
  WAITING_IDENTITY_PROVIDER: 301,
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
  /** The client's KYC scenario needs more for this deposit than the provider proved. */
  KYC_REQUIRED: 511,
  NOT_AUTHORIZED: 513,
  MERCHANT_OUT_OF_SERVICE: 520,
  CANCELLED_BY_USER: 600,
  CANCELLED_BY_MERCHANT: 601,
  CANCELLED_BY_PSP: 602,
} as const;

export type StatusName = keyof typeof STATUS;

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
