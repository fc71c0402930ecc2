import type { Db } from "../../db/database.ts";
import { newId } from "../../lib/ids.ts";

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

/** A bank for payouts: accepts a payout at once; it settles (or comes back) later. */
export interface Bank {
  readonly name: string;
  payout(request: PayoutRequest): Promise<{ reference: string; settlesAt: Date }>;
  status(reference: string): Promise<PayoutStatus>;
}

/**
 * The sandbox bank (sandbox.md): accepted payouts settle after `settleDelayMs` (default 2 s); an
 * account whose last four digits are 0000 is returned by the bank instead. It keeps its own record
 * of payouts by idempotency key.
 */
export class SandboxBank implements Bank {
  readonly name = "sandbox-bank";

  constructor(
    private readonly db: Db,
    private readonly settleDelayMs: number,
  ) {}

  async payout(request: PayoutRequest) {
    const reference = `sbxpo_${newId()}`;
    const settlesAt = new Date(Date.now() + this.settleDelayMs);
    await this.db
      .insertInto("sandbox_bank_payouts")
      .values({
        idempotency_key: request.idempotencyKey,
        reference,
        account_last4: request.account.slice(-4),
        amount: request.amount.toString(),
        currency: request.currency,
        outcome: request.account.endsWith("0000") ? "RETURNED" : "ACCEPTED",
        settles_at: settlesAt,
      })
      .onConflict((oc) => oc.column("idempotency_key").doNothing())
      .execute();
    const row = await this.db
      .selectFrom("sandbox_bank_payouts")
      .select(["reference", "settles_at"])
      .where("idempotency_key", "=", request.idempotencyKey)
      .executeTakeFirstOrThrow();
    return { reference: row.reference, settlesAt: new Date(row.settles_at) };
  }

  async status(reference: string): Promise<PayoutStatus> {
    const row = await this.db
      .selectFrom("sandbox_bank_payouts")
      .selectAll()
      .where("reference", "=", reference)
      .executeTakeFirst();
    if (!row) return { state: "RETURNED", reason: "UNKNOWN_PAYOUT" };
    const settlesAt = new Date(row.settles_at);
    if (settlesAt.getTime() > Date.now()) return { state: "IN_FLIGHT", settlesAt };
    return row.outcome === "RETURNED"
      ? { state: "RETURNED", reason: "ACCOUNT_CLOSED" }
      : { state: "SETTLED" };
  }
}
