/** A card acquirer: charges cards (with 3-D Secure where the card needs it) and refunds. */
export interface ChargeRequest {
  /** Ferry's key for this charge: a second call with the same key never charges again. */
  idempotencyKey: string;
  cardNumber: string;
  expirationMonth: number;
  expirationYear: number;
  amount: bigint;
  currency: string;
}

export type ChargeResult =
  | { outcome: "APPROVED"; reference: string }
  | {
      outcome: "DECLINED";
      reference: string;
      responseCode: string;
      message: string;
      category: "DO_NOT_HONOUR" | "INSUFFICIENT_FUNDS" | "CHALLENGE_FAILED";
    }
  | { outcome: "CHALLENGE"; reference: string; redirectUrl: string };

/** The acquirer did not answer in time: whether it charged is unknown until asked again with the same key. */
export class AcquirerTimeoutError extends Error {
  constructor() {
    super("the acquirer did not answer in time");
    this.name = "AcquirerTimeoutError";
  }
}

/** Money sent to a card (an original credit): the card holder's withdrawal. */
export interface CardPayoutRequest {
  /** Ferry's key for this payout: a second call with the same key never pays again. */
  idempotencyKey: string;
  cardNumber: string;
  expirationMonth: number;
  expirationYear: number;
  amount: bigint;
  currency: string;
}

export type CardPayoutResult =
  | { outcome: "ACCEPTED"; reference: string; settlesAt: Date }
  | { outcome: "DECLINED"; reference: string; responseCode: string; message: string };

export type CardPayoutStatus = { state: "IN_FLIGHT"; settlesAt: Date } | { state: "SETTLED" };

/** One charge as the acquirer keeps it: what reconciliation compares with the ledger. */
export interface AcquirerRecord {
  reference: string;
  /** The key Ferry charged with: `<clientId>:<requestId>`. */
  idempotencyKey: string;
  amount: bigint;
  currency: string;
  status:
    | "APPROVED"
    | "REFUNDED"
    | "DECLINED"
    | "CHALLENGE"
    | "CHALLENGE_FAILED"
    | "TIMED_OUT"
    /** A payout to a card the acquirer accepted: money out. */
    | "PAID_OUT"
    | "PAYOUT_DECLINED";
}

export interface Acquirer {
  readonly name: string;
  /**
   * Whether a card number is one of the acquirer's published test cards (its test mode). A test
   * card moves no real money: any number of users may hold it, and a live client may hold none.
   */
  isTestCard(cardNumber: string): boolean;
  charge(request: ChargeRequest): Promise<ChargeResult>;
  /** The card holder finished (or failed) the 3-D Secure challenge. */
  completeChallenge(reference: string, approved: boolean): Promise<ChargeResult>;
  /**
   * Gives back the money of the charge made with `chargeKey`, if it was approved; nothing if
   * there is no such charge or it was never approved. Repeating it refunds nothing more.
   */
  refund(chargeKey: string): Promise<{ refunded: boolean }>;
  /** Sends money to a card; the same key again answers as the first time. */
  payout(request: CardPayoutRequest): Promise<CardPayoutResult>;
  /** Where an accepted payout stands. */
  payoutStatus(reference: string): Promise<CardPayoutStatus>;
  /** The acquirer's records (charges and payouts) whose key starts with `keyPrefix` (`<clientId>:` for one client). */
  records(keyPrefix?: string): Promise<AcquirerRecord[]>;
}
