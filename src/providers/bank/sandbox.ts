import type { Db } from "../../db/database.ts";
import { newId } from "../../lib/ids.ts";
import type { SandboxGate } from "../sandbox-gate.ts";
import type { Bank, BankRecord, PayoutRequest, PayoutStatus } from "./interface.ts";

export type { Bank, BankRecord, PayoutRequest, PayoutStatus };

const likePrefix = (prefix: string) => `${prefix.replace(/[\\%_]/g, "\\$&")}%`;

/**
 * The sandbox bank (sandbox.md): accepted payouts settle after `settleDelayMs` (default 2 s); an
 * account whose last four digits are 0000 is returned by the bank instead. It keeps its own record
 * of payouts by idempotency key, and of the transfers that arrived at the transit account.
 */
export class SandboxBank implements Bank {
  readonly name = "sandbox-bank";

  constructor(
    private readonly db: Db,
    private readonly settleDelayMs: number,
    readonly gate?: SandboxGate,
  ) {}

  async payout(request: PayoutRequest) {
    this.gate?.before("bank.payout");
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
    await this.gate?.after("bank.payout");
    return { reference: row.reference, settlesAt: new Date(row.settles_at) };
  }

  async status(reference: string): Promise<PayoutStatus> {
    this.gate?.before("bank.status");
    const row = await this.db
      .selectFrom("sandbox_bank_payouts")
      .selectAll()
      .where("reference", "=", reference)
      .executeTakeFirst();
    await this.gate?.after("bank.status");
    if (!row) return { state: "RETURNED", reason: "UNKNOWN_PAYOUT" };
    const settlesAt = new Date(row.settles_at);
    if (settlesAt.getTime() > Date.now()) return { state: "IN_FLIGHT", settlesAt };
    return row.outcome === "RETURNED"
      ? { state: "RETURNED", reason: "ACCOUNT_CLOSED" }
      : { state: "SETTLED" };
  }

  /**
   * Money arrives at the transit account (what POST /sandbox/bank/incoming simulates). The bank
   * records it before telling Ferry; the same transfer id again is the same transfer.
   */
  async receive(transfer: {
    transferId: string;
    paymentReference: string;
    amount: bigint;
    currency: string;
  }): Promise<{ duplicate: boolean }> {
    const inserted = await this.db
      .insertInto("sandbox_bank_incoming")
      .values({
        transfer_id: transfer.transferId,
        payment_reference: transfer.paymentReference,
        amount: transfer.amount.toString(),
        currency: transfer.currency,
      })
      .onConflict((oc) => oc.column("transfer_id").doNothing())
      .returning("transfer_id")
      .executeTakeFirst();
    return { duplicate: inserted === undefined };
  }

  async returnIncoming(transferId: string, idempotencyKey: string): Promise<{ returned: boolean }> {
    this.gate?.before("bank.return");
    const updated = await this.db
      .updateTable("sandbox_bank_incoming")
      .set({ return_key: idempotencyKey, returned_at: new Date() })
      .where("transfer_id", "=", transferId)
      .where("return_key", "is", null)
      .returning("transfer_id")
      .executeTakeFirst();
    await this.gate?.after("bank.return");
    if (updated) return { returned: true };
    const row = await this.db
      .selectFrom("sandbox_bank_incoming")
      .select("return_key")
      .where("transfer_id", "=", transferId)
      .executeTakeFirst();
    return { returned: row?.return_key === idempotencyKey };
  }

  async records(keyPrefix?: string): Promise<BankRecord[]> {
    let payouts = this.db.selectFrom("sandbox_bank_payouts").selectAll();
    if (keyPrefix) payouts = payouts.where("idempotency_key", "like", likePrefix(keyPrefix));
    const [out, incoming] = await Promise.all([
      payouts.orderBy("created_at").execute(),
      this.db.selectFrom("sandbox_bank_incoming").selectAll().orderBy("received_at").execute(),
    ]);
    return [
      ...out.map(
        (r): BankRecord => ({
          kind: "PAYOUT",
          reference: r.reference,
          idempotencyKey: r.idempotency_key,
          amount: BigInt(r.amount),
          currency: r.currency,
          status: r.outcome === "RETURNED" ? "RETURNED" : "ACCEPTED",
        }),
      ),
      ...incoming.map(
        (r): BankRecord => ({
          kind: "INCOMING",
          reference: r.transfer_id,
          paymentReference: r.payment_reference,
          amount: BigInt(r.amount),
          currency: r.currency,
          returnKey: r.return_key,
        }),
      ),
    ];
  }
}
