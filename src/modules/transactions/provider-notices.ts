import type { Db } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import { type Actor, providerActor } from "../../lib/context.ts";
import { formatAmount } from "../../lib/money.ts";
import type { Acquirer } from "../../providers/acquirer/interface.ts";
import type { Bank } from "../../providers/bank/interface.ts";
import type { StepRunner } from "../steps/runner.ts";
import { type Applied, type EventFacts, PROCESS_TYPE, type ProcessEngine } from "./process.ts";
import { parseAmountOrThrow, type Quotes } from "./quote.ts";
import * as repo from "./repo.ts";
import { INCOMING_BANK, type Row, type Transaction, TransactionError } from "./types.ts";

export interface ProviderNoticeDependencies {
  db: Db;
  engine: ProcessEngine;
  steps: StepRunner;
  quotes: Quotes;
  acquirer: Acquirer;
  bank: Bank;
  get(clientId: string, requestId: string): Promise<Transaction>;
  view(row: Row): Promise<Transaction>;
  runSteps(applied: Applied): Promise<void>;
}

/**
 * What providers tell Ferry on their own initiative (not as the answer to a step): the card
 * holder's 3-D Secure result, money arriving at the bank. Each becomes an event of its process.
 */
export class ProviderNotices {
  constructor(private readonly deps: ProviderNoticeDependencies) {}

  /**
   * The card holder finished (or failed) the 3-D Secure challenge (the sandbox page). The result is
   * a step of the deposit: a deposit that is no longer awaiting it fails the challenge instead, and
   * a charge approved anyway is refunded by the process table.
   */
  async completeChallenge(providerReference: string, approved: boolean): Promise<Transaction> {
    const found = await repo.findByProviderReference(
      this.deps.db,
      this.deps.acquirer.name,
      providerReference,
    );
    if (!found)
      throw new TransactionError(
        "NOT_FOUND",
        "TRANSACTION_NOT_FOUND",
        "no transaction awaits this challenge",
      );
    const stepId = await inTransaction(this.deps.db, async (tx) => {
      const row = await repo.lock(tx, found.client_id, found.request_id);
      const awaited = row.status === "AWAITING_PAYMENT";
      const { id } = await this.deps.steps.schedule(tx, {
        clientId: row.client_id,
        kind: "CARD_CHALLENGE",
        processType: PROCESS_TYPE,
        processId: row.request_id,
        idempotencyKey: `${row.request_id}:challenge`,
        input: { requestId: row.request_id, reference: providerReference, approved: approved && awaited },
      });
      return id;
    });
    await this.deps.steps.run(stepId);
    return this.deps.get(found.client_id, found.request_id);
  }

  /**
   * The bank reports money arriving with a payment reference (the sandbox's POST
   * /sandbox/bank/incoming). The bank records it first; Ferry credits the deposit awaiting it, or,
   * if the deposit no longer takes it, holds it apart and sends it back. The same transfer reported
   * twice is one transfer.
   */
  async incomingBankTransfer(
    reference: string,
    amount: string | number,
    currency: string,
    transferId = reference,
    /** Staff who say the money arrived (the Wallet API's accept): audited as the actor, their decision kept. */
    staff?: { actor: Actor; decision: Record<string, unknown> },
  ): Promise<{ transaction: Transaction; outcome: "CREDITED" | "RETURNING" | "DUPLICATE" }> {
    const found = await repo.findByProviderReference(this.deps.db, INCOMING_BANK, reference);
    if (!found)
      throw new TransactionError(
        "NOT_FOUND",
        "REFERENCE_NOT_FOUND",
        `no deposit awaits reference ${reference}`,
        "reference",
      );
    const scale = await this.deps.quotes.scaleOf(found.client_id, found.currency);
    const received = parseAmountOrThrow(amount, scale);
    if (
      currency !== found.currency ||
      (found.status === "AWAITING_PAYMENT" && received !== BigInt(found.amount))
    )
      throw new TransactionError(
        "CONFLICT",
        "AMOUNT_MISMATCH",
        `the deposit awaits ${formatAmount(BigInt(found.amount), scale)} ${found.currency}`,
        "amount",
      );
    const { duplicate } = await this.deps.bank.receive({
      transferId,
      paymentReference: reference,
      amount: received,
      currency,
    });
    if (duplicate) return { transaction: await this.deps.view(found), outcome: "DUPLICATE" };
    const applied = await inTransaction(this.deps.db, async (tx) => {
      const row = await repo.lock(tx, found.client_id, found.request_id);
      const ctx = { clientId: row.client_id, actor: staff?.actor ?? providerActor(this.deps.bank.name) };
      const facts: EventFacts = { transferId, receivedAmount: received };
      if (row.status === "AWAITING_PAYMENT")
        facts.changes = {
          status_detail: JSON.stringify({ responseCode: "00", responseCategory: "RECEIVED" }),
          ...(staff ? { decision: JSON.stringify(staff.decision) } : {}),
        };
      return this.deps.engine.apply(tx, ctx, row, "FUNDS_RECEIVED", facts);
    });
    await this.deps.runSteps(applied);
    return {
      transaction: await this.deps.view(applied.row),
      outcome: applied.changed ? "CREDITED" : "RETURNING",
    };
  }

  /** Which transaction each bank payment reference belongs to (reconciliation). */
  async bankDepositOwners(
    references: string[],
  ): Promise<Map<string, { clientId: string; requestId: string }>> {
    const rows = await repo.findByPaymentReferences(this.deps.db, INCOMING_BANK, references);
    return new Map(
      rows.map((r) => [r.provider_reference ?? "", { clientId: r.client_id, requestId: r.request_id }]),
    );
  }
}
