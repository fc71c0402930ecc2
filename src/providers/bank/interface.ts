export interface PayoutRequest {
  /** Ferry's key: a second call with the same key is the same payout. */
  idempotencyKey: string;
  /** IBAN or account number. */
  account: string;
  amount: bigint;
  currency: string;
}

export type PayoutStatus =
  | { state: "IN_FLIGHT"; settlesAt: Date }
  | { state: "SETTLED" }
  | { state: "RETURNED"; reason: string };

/** One movement as the bank keeps it: what reconciliation compares with the ledger. */
export type BankRecord =
  | {
      kind: "PAYOUT";
      reference: string;
      /** `<clientId>:<requestId>` */
      idempotencyKey: string;
      amount: bigint;
      currency: string;
      status: "ACCEPTED" | "RETURNED";
    }
  | {
      kind: "INCOMING";
      /** The bank's id of the transfer that arrived. */
      reference: string;
      /** The payment reference the sender gave (Ferry's FRY… reference). */
      paymentReference: string;
      amount: bigint;
      currency: string;
      /** `<clientId>:<requestId>:return:<transferId>` once the bank sent it back. */
      returnKey: string | null;
    };

/** A bank: payouts (accepted at once, settled or returned later), and incoming transfers sent back. */
export interface Bank {
  readonly name: string;
  payout(request: PayoutRequest): Promise<{ reference: string; settlesAt: Date }>;
  status(reference: string): Promise<PayoutStatus>;
  /**
   * Sends an incoming transfer back to whoever sent it (money Ferry cannot apply). The same key
   * again is the same return.
   */
  returnIncoming(transferId: string, idempotencyKey: string): Promise<{ returned: boolean }>;
  /**
   * Keeps an incoming transfer the bank reported (its notification, a statement entry) among the
   * bank's records, once per transfer id: the same id again answers `duplicate` (a notice repeated).
   */
  receive(transfer: {
    transferId: string;
    paymentReference: string;
    amount: bigint;
    currency: string;
  }): Promise<{ duplicate: boolean }>;
  records(keyPrefix?: string): Promise<BankRecord[]>;
}
