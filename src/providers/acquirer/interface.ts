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

export interface Acquirer {
  readonly name: string;
  charge(request: ChargeRequest): Promise<ChargeResult>;
  /** The card holder finished (or failed) the 3-D Secure challenge. */
  completeChallenge(reference: string, approved: boolean): Promise<ChargeResult>;
  refund(reference: string): Promise<void>;
}
