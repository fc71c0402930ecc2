import { sql } from "kysely";
import type { Db } from "../../db/database.ts";
import { newId } from "../../lib/ids.ts";
import type { SandboxGate } from "../sandbox-gate.ts";
import {
  type Acquirer,
  type AcquirerRecord,
  AcquirerTimeoutError,
  type CardPayoutRequest,
  type CardPayoutResult,
  type CardPayoutStatus,
  type ChargeRequest,
  type ChargeResult,
} from "./interface.ts";

/** The sandbox's test cards (sandbox.md); any other valid card number is approved. */
export const TEST_CARDS = {
  APPROVED_VISA: "4242424242424242",
  APPROVED_MASTERCARD: "5555555555554444",
  CHALLENGE: "4000000000003220",
  DO_NOT_HONOUR: "4000000000000002",
  INSUFFICIENT_FUNDS: "4000000000009995",
  TIMEOUT_ONCE: "4000000000000119",
} as const;

const testCardNumbers: ReadonlySet<string> = new Set(Object.values(TEST_CARDS));

/**
 * The sandbox card acquirer. It keeps its own record of charges (its tables are its own system,
 * as a real acquirer's would be) keyed by Ferry's idempotency key, so a retry never charges twice.
 * The timeout card answers nothing the first time for a key (AcquirerTimeoutError) and approves
 * when asked again.
 */
export class SandboxAcquirer implements Acquirer {
  readonly name = "sandbox-acquirer";

  /** The documented test cards (docs/sandbox.md): anyone's in a sandbox client, no live client's. */
  isTestCard(cardNumber: string): boolean {
    return testCardNumbers.has(cardNumber.replace(/[\s-]/g, ""));
  }

  constructor(
    private readonly db: Db,
    private readonly publicUrl: string,
    readonly gate?: SandboxGate,
    /** How long an accepted card payout takes to settle. */
    private readonly payoutDelayMs = 2000,
    /** How long a charge's answer takes once the charge is made (a slow network; crash tests). */
    private readonly answerDelayMs = 0,
  ) {}

  /**
   * A payout to a card: the decline test cards are declined ("Do not honour", "Insufficient
   * funds"); any other card is accepted and settles after the payout delay.
   */
  async payout(request: CardPayoutRequest): Promise<CardPayoutResult> {
    this.gate?.before("acquirer.payout");
    const [outcome, declineCode] =
      request.cardNumber === TEST_CARDS.DO_NOT_HONOUR
        ? ["DECLINED", "05"]
        : request.cardNumber === TEST_CARDS.INSUFFICIENT_FUNDS
          ? ["DECLINED", "51"]
          : ["ACCEPTED", null];
    await this.db
      .insertInto("sandbox_acquirer_payouts")
      .values({
        idempotency_key: request.idempotencyKey,
        reference: `sbxpo_${newId()}`,
        card_last4: request.cardNumber.slice(-4),
        amount: request.amount.toString(),
        currency: request.currency,
        outcome,
        decline_code: declineCode,
        settles_at: new Date(Date.now() + this.payoutDelayMs),
      })
      .onConflict((oc) => oc.column("idempotency_key").doNothing())
      .execute();
    const row = await this.db
      .selectFrom("sandbox_acquirer_payouts")
      .selectAll()
      .where("idempotency_key", "=", request.idempotencyKey)
      .executeTakeFirstOrThrow();
    await this.gate?.after("acquirer.payout");
    if (row.outcome === "DECLINED")
      return {
        outcome: "DECLINED",
        reference: row.reference,
        responseCode: row.decline_code ?? "05",
        message: row.decline_code === "51" ? "Insufficient funds" : "Do not honour",
      };
    return { outcome: "ACCEPTED", reference: row.reference, settlesAt: new Date(row.settles_at) };
  }

  async payoutStatus(reference: string): Promise<CardPayoutStatus> {
    const row = await this.db
      .selectFrom("sandbox_acquirer_payouts")
      .select(["settles_at", "outcome"])
      .where("reference", "=", reference)
      .executeTakeFirst();
    if (row?.outcome !== "ACCEPTED") throw new Error(`no accepted sandbox payout ${reference}`);
    const settlesAt = new Date(row.settles_at);
    return settlesAt.getTime() > Date.now() ? { state: "IN_FLIGHT", settlesAt } : { state: "SETTLED" };
  }

  async charge(request: ChargeRequest): Promise<ChargeResult> {
    this.gate?.before("acquirer.charge");
    const result = await this.chargeOnce(request);
    if (this.answerDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.answerDelayMs));
    await this.gate?.after("acquirer.charge");
    return result;
  }

  private async chargeOnce(request: ChargeRequest): Promise<ChargeResult> {
    const existing = await this.db
      .selectFrom("sandbox_acquirer_charges")
      .selectAll()
      .where("idempotency_key", "=", request.idempotencyKey)
      .executeTakeFirst();
    if (existing) {
      if (existing.outcome !== "TIMED_OUT")
        return this.result(existing.reference, existing.outcome, existing.decline_code);
      // Asked again after a timeout: this time the acquirer answers, and approves.
      await this.db
        .updateTable("sandbox_acquirer_charges")
        .set({ outcome: "APPROVED", attempts: sql`attempts + 1`, updated_at: new Date() })
        .where("idempotency_key", "=", request.idempotencyKey)
        .where("outcome", "=", "TIMED_OUT")
        .execute();
      const now = await this.db
        .selectFrom("sandbox_acquirer_charges")
        .selectAll()
        .where("idempotency_key", "=", request.idempotencyKey)
        .executeTakeFirstOrThrow();
      return this.result(now.reference, now.outcome, now.decline_code);
    }
    const [outcome, declineCode] = this.decide(request.cardNumber);
    const reference = `sbxch_${newId()}`;
    const inserted = await this.db
      .insertInto("sandbox_acquirer_charges")
      .values({
        idempotency_key: request.idempotencyKey,
        reference,
        card_last4: request.cardNumber.slice(-4),
        amount: request.amount.toString(),
        currency: request.currency,
        outcome,
        decline_code: declineCode,
      })
      .onConflict((oc) => oc.column("idempotency_key").doNothing())
      .returning("reference")
      .executeTakeFirst();
    if (!inserted) return this.chargeOnce(request); // a concurrent call with the same key won: answer as it did
    if (outcome === "TIMED_OUT") throw new AcquirerTimeoutError();
    return this.result(reference, outcome, declineCode);
  }

  async completeChallenge(reference: string, approved: boolean): Promise<ChargeResult> {
    await this.db
      .updateTable("sandbox_acquirer_charges")
      .set({ outcome: approved ? "APPROVED" : "CHALLENGE_FAILED", updated_at: new Date() })
      .where("reference", "=", reference)
      .where("outcome", "=", "CHALLENGE")
      .execute();
    const row = await this.db
      .selectFrom("sandbox_acquirer_charges")
      .selectAll()
      .where("reference", "=", reference)
      .executeTakeFirst();
    if (!row) throw new Error(`no sandbox charge ${reference}`);
    return this.result(row.reference, row.outcome, row.decline_code);
  }

  async refund(chargeKey: string): Promise<{ refunded: boolean }> {
    this.gate?.before("acquirer.refund");
    const updated = await this.db
      .updateTable("sandbox_acquirer_charges")
      .set({ outcome: "REFUNDED", updated_at: new Date() })
      .where("idempotency_key", "=", chargeKey)
      .where("outcome", "=", "APPROVED")
      .returning("reference")
      .executeTakeFirst();
    await this.gate?.after("acquirer.refund");
    return { refunded: updated !== undefined };
  }

  async records(keyPrefix?: string): Promise<AcquirerRecord[]> {
    const like = keyPrefix ? `${keyPrefix.replace(/[\\%_]/g, "\\$&")}%` : undefined;
    let charges = this.db.selectFrom("sandbox_acquirer_charges").selectAll();
    if (like) charges = charges.where("idempotency_key", "like", like);
    let payouts = this.db.selectFrom("sandbox_acquirer_payouts").selectAll();
    if (like) payouts = payouts.where("idempotency_key", "like", like);
    const [chargeRows, payoutRows] = await Promise.all([
      charges.orderBy("created_at").execute(),
      payouts.orderBy("created_at").execute(),
    ]);
    return [
      ...chargeRows.map((r) => ({
        reference: r.reference,
        idempotencyKey: r.idempotency_key,
        amount: BigInt(r.amount),
        currency: r.currency,
        status: r.outcome as AcquirerRecord["status"],
      })),
      ...payoutRows.map((r) => ({
        reference: r.reference,
        idempotencyKey: r.idempotency_key,
        amount: BigInt(r.amount),
        currency: r.currency,
        status: (r.outcome === "ACCEPTED" ? "PAID_OUT" : "PAYOUT_DECLINED") as AcquirerRecord["status"],
      })),
    ];
  }

  private decide(cardNumber: string): [string, string | null] {
    switch (cardNumber) {
      case TEST_CARDS.CHALLENGE:
        return ["CHALLENGE", null];
      case TEST_CARDS.DO_NOT_HONOUR:
        return ["DECLINED", "05"];
      case TEST_CARDS.INSUFFICIENT_FUNDS:
        return ["DECLINED", "51"];
      case TEST_CARDS.TIMEOUT_ONCE:
        return ["TIMED_OUT", null];
      default:
        return ["APPROVED", null];
    }
  }

  private result(reference: string, outcome: string, declineCode: string | null): ChargeResult {
    switch (outcome) {
      case "APPROVED":
      case "REFUNDED":
        return { outcome: "APPROVED", reference };
      case "CHALLENGE":
        return {
          outcome: "CHALLENGE",
          reference,
          redirectUrl: `${this.publicUrl}/sandbox/acquirer/challenge/${reference}`,
        };
      case "CHALLENGE_FAILED":
        return {
          outcome: "DECLINED",
          reference,
          responseCode: "05",
          message: "3-D Secure authentication failed",
          category: "CHALLENGE_FAILED",
        };
      default:
        return declineCode === "51"
          ? {
              outcome: "DECLINED",
              reference,
              responseCode: "51",
              message: "Insufficient funds",
              category: "INSUFFICIENT_FUNDS",
            }
          : {
              outcome: "DECLINED",
              reference,
              responseCode: "05",
              message: "Do not honour",
              category: "DO_NOT_HONOUR",
            };
    }
  }
}
