// Over 400 lines on purpose: every provider step kind of the transaction processes (charge, challenge,
// refund, payout, payout status, card payout, bank return, chain send) and the event each answer becomes.
import { z } from "zod";
import type { Db } from "../../db/database.ts";
import { type Actor, providerActor } from "../../lib/context.ts";
import type { Acquirer, ChargeResult } from "../../providers/acquirer/interface.ts";
import type { Bank } from "../../providers/bank/interface.ts";
import type { Chain } from "../../providers/chain/interface.ts";
import { writeAudit } from "../audit/service.ts";
import * as ledger from "../ledger/service.ts";
import type { PaymentMethods } from "../payment-methods/service.ts";
import type { Step, StepKind, StepResolution, StepRunner } from "../steps/runner.ts";
import * as postings from "./postings.ts";
import type { EventFacts, ProcessEngine, ProcessEvent } from "./process.ts";
import * as repo from "./repo.ts";
import { json, TransactionError } from "./types.ts";

/**
 * The transaction processes' provider steps (the catalogue's entries): each calls a provider with
 * Ferry's idempotency key, outside any database transaction, and turns the answer into an event
 * of the process (process.ts), recorded in the transaction that closes the step.
 */

export interface ProviderStepDependencies {
  db: Db;
  engine: ProcessEngine;
  paymentMethods: PaymentMethods;
  acquirer: Acquirer;
  bank: Bank;
  chain: Chain;
}

const byRequest = z.object({ requestId: z.string() });
type ByRequest = z.infer<typeof byRequest>;

/** The key the providers know a transaction's charge or payout by. */
export const providerKey = (clientId: string, requestId: string) => `${clientId}:${requestId}`;

export function registerTransactionSteps(runner: StepRunner, deps: ProviderStepDependencies): void {
  const { db, engine } = deps;

  /** Applies a provider's answer to the process, in the step's closing transaction. */
  const applyOutcome = async (
    tx: Db,
    step: Step,
    requestId: string,
    event: ProcessEvent,
    facts: EventFacts = {},
    actor: Actor = providerActor(event.startsWith("CHARGE") ? deps.acquirer.name : deps.bank.name),
  ) => {
    const row = await repo.lock(tx, step.clientId, requestId);
    await engine.apply(tx, { clientId: step.clientId, actor }, row, event, facts);
  };
  const onlyExecuted = (kind: string, resolution: StepResolution) => {
    if (resolution.outcome !== "EXECUTED")
      throw new TransactionError(
        "CONFLICT",
        "NOT_RESOLVABLE",
        `a ${kind} that was not carried out is retried, not resolved`,
      );
  };

  /**
   * Staff resolve a payout that never got an answer with what the provider told them: not sent →
   * the hold is released; sent (with the provider's reference) → booked as accepted.
   */
  const resolvePayout = (
    tx: Db,
    step: Step,
    requestId: string,
    resolution: StepResolution,
    provider: "bank" | "acquirer",
  ) => {
    if (resolution.outcome === "NOT_EXECUTED")
      return applyOutcome(
        tx,
        step,
        requestId,
        "PAYOUT_NOT_SENT",
        { changes: { status_detail: JSON.stringify({ responseCode: "R00", responseCategory: "NOT_SENT" }) } },
        resolution.actor,
      );
    if (!resolution.reference)
      throw new TransactionError(
        "INVALID",
        "REFERENCE_REQUIRED",
        `the ${provider}'s reference of the payout is required`,
        "reference",
      );
    return applyOutcome(
      tx,
      step,
      requestId,
      "PAYOUT_ACCEPTED",
      { changes: { provider_reference: resolution.reference }, settlesAt: new Date() },
      resolution.actor,
    );
  };

  /** The transaction and its card as the acquirer needs it (the number unsealed for the call only). */
  const cardOf = async (step: Step, requestId: string) => {
    const row = await repo.get(db, step.clientId, requestId);
    const saved = json<{ paymentInformationId: string }>(row.payment_method);
    const { method, details } = await deps.paymentMethods.reveal(
      step.clientId,
      row.user_id,
      saved?.paymentInformationId ?? "",
    );
    return {
      row,
      card: {
        cardNumber: String(details.cardNumber),
        expirationMonth: method.expirationMonth ?? 12,
        expirationYear: method.expirationYear ?? 2099,
      },
    };
  };

  const chargeOutcome = (tx: Db, step: Step, requestId: string, result: ChargeResult) => {
    if (result.outcome === "APPROVED")
      return applyOutcome(tx, step, requestId, "CHARGE_APPROVED", {
        changes: {
          provider_reference: result.reference,
          redirect_url: null,
          status_detail: JSON.stringify({ responseCode: "00", responseCategory: "APPROVED" }),
        },
      });
    if (result.outcome === "CHALLENGE")
      return applyOutcome(tx, step, requestId, "CHARGE_CHALLENGED", {
        changes: { provider_reference: result.reference, redirect_url: result.redirectUrl },
      });
    return applyOutcome(tx, step, requestId, "CHARGE_DECLINED", {
      changes: {
        provider_reference: result.reference,
        redirect_url: null,
        status_detail: JSON.stringify({
          responseCode: result.responseCode,
          responseCategory: result.category,
          message: result.message,
        }),
      },
    });
  };

  const cardCharge: StepKind<ByRequest, ChargeResult> = {
    name: "CARD_CHARGE",
    input: byRequest,
    maxAttempts: 5,
    immediateRetries: 1,
    async perform({ requestId }, step) {
      const { row, card } = await cardOf(step, requestId);
      return {
        done: await deps.acquirer.charge({
          idempotencyKey: providerKey(step.clientId, requestId),
          ...card,
          amount: BigInt(row.amount),
          currency: row.currency,
        }),
      };
    },
    record: (tx, step, { requestId }, result) => chargeOutcome(tx, step, requestId, result),
    exhausted: (tx, step, { requestId }) => applyOutcome(tx, step, requestId, "CHARGE_LOST"),
  };

  const challengeInput = z.object({ requestId: z.string(), reference: z.string(), approved: z.boolean() });
  const cardChallenge: StepKind<z.infer<typeof challengeInput>, ChargeResult> = {
    name: "CARD_CHALLENGE",
    input: challengeInput,
    maxAttempts: 5,
    async perform({ reference, approved }) {
      return { done: await deps.acquirer.completeChallenge(reference, approved) };
    },
    record: (tx, step, { requestId }, result) => chargeOutcome(tx, step, requestId, result),
    exhausted: (tx, step, { requestId }) => applyOutcome(tx, step, requestId, "CHARGE_LOST"),
  };

  const cardRefund: StepKind<ByRequest, { refunded: boolean }> = {
    name: "CARD_REFUND",
    input: byRequest,
    maxAttempts: 10,
    async perform({ requestId }, step) {
      return { done: await deps.acquirer.refund(providerKey(step.clientId, requestId)) };
    },
    async record(tx, step, { requestId }, result) {
      await writeAudit(
        tx,
        { clientId: step.clientId, actor: providerActor(deps.acquirer.name) },
        {
          action: "transaction.card_refunded",
          entityType: "transaction",
          entityId: requestId,
          after: result,
        },
      );
    },
    // Left FAILED for staff: reconciliation shows the charge the ledger no longer holds.
    async exhausted() {},
    async resolve(tx, step, { requestId }, resolution) {
      onlyExecuted("card refund", resolution);
      await writeAudit(
        tx,
        { clientId: step.clientId, actor: resolution.actor },
        {
          action: "transaction.card_refunded",
          entityType: "transaction",
          entityId: requestId,
          after: { refunded: true, by: "staff" },
        },
      );
    },
  };

  const bankPayout: StepKind<ByRequest, { reference: string; settlesAt: string }> = {
    name: "BANK_PAYOUT",
    input: byRequest,
    maxAttempts: 10,
    async perform({ requestId }, step) {
      const row = await repo.get(db, step.clientId, requestId);
      const method = json<{ paymentInformationId: string }>(row.payment_method);
      const { details } = await deps.paymentMethods.reveal(
        step.clientId,
        row.user_id,
        method?.paymentInformationId ?? "",
      );
      const sent = await deps.bank.payout({
        idempotencyKey: providerKey(step.clientId, requestId),
        account: String(details.account),
        amount: BigInt(row.amount),
        currency: row.currency,
      });
      return { done: { reference: sent.reference, settlesAt: sent.settlesAt.toISOString() } };
    },
    record: (tx, step, { requestId }, result) =>
      applyOutcome(tx, step, requestId, "PAYOUT_ACCEPTED", {
        changes: { provider_reference: result.reference },
        settlesAt: new Date(result.settlesAt),
      }),
    // Whether the bank took it is unknown: the hold stays and cancel is refused until staff retry
    // the step or resolve it with what the bank told them.
    async exhausted() {},
    resolve: (tx, step, { requestId }, resolution) => resolvePayout(tx, step, requestId, resolution, "bank"),
  };

  const bankPayoutStatus: StepKind<ByRequest, { state: "SETTLED" } | { state: "RETURNED"; reason: string }> =
    {
      name: "BANK_PAYOUT_STATUS",
      input: byRequest,
      maxAttempts: 20,
      async perform({ requestId }, step) {
        const row = await repo.get(db, step.clientId, requestId);
        const outcome = await deps.bank.status(row.provider_reference ?? "");
        if (outcome.state === "IN_FLIGHT") return { waitUntil: outcome.settlesAt };
        return { done: outcome };
      },
      record: (tx, step, { requestId }, outcome) =>
        applyOutcome(
          tx,
          step,
          requestId,
          outcome.state === "SETTLED" ? "PAYOUT_SETTLED" : "PAYOUT_RETURNED",
          {
            changes: {
              status_detail: JSON.stringify(
                outcome.state === "SETTLED"
                  ? { responseCode: "00", responseCategory: "SETTLED" }
                  : { responseCode: "R01", responseCategory: "RETURNED", message: outcome.reason },
              ),
            },
          },
        ),
      async exhausted() {},
      resolve: (tx, step, { requestId }, resolution) =>
        applyOutcome(
          tx,
          step,
          requestId,
          resolution.outcome === "EXECUTED" ? "PAYOUT_SETTLED" : "PAYOUT_RETURNED",
          {
            changes: {
              status_detail: JSON.stringify(
                resolution.outcome === "EXECUTED"
                  ? { responseCode: "00", responseCategory: "SETTLED" }
                  : { responseCode: "R01", responseCategory: "RETURNED" },
              ),
            },
          },
          resolution.actor,
        ),
    };

  const returnInput = z.object({ requestId: z.string(), transferId: z.string(), amount: z.string() });
  const bankReturn: StepKind<z.infer<typeof returnInput>, { returned: boolean }> = {
    name: "BANK_RETURN",
    input: returnInput,
    maxAttempts: 10,
    async perform({ requestId, transferId }, step) {
      return {
        done: await deps.bank.returnIncoming(
          transferId,
          `${providerKey(step.clientId, requestId)}:return:${transferId}`,
        ),
      };
    },
    async record(tx, step, { requestId, transferId, amount }, result) {
      const row = await repo.get(tx, step.clientId, requestId);
      if (result.returned) {
        const transit = await postings.systemAccount.transit(tx, step.clientId, row.currency, "bank");
        const unapplied = await postings.systemAccount.unapplied(tx, step.clientId, row.currency);
        const booked = await ledger.applyInTransaction(tx, {
          clientId: step.clientId,
          operationId: postings.operationOf(requestId, `returned:${transferId}`),
          legs: postings.returnedFunds({
            requestId,
            transferId,
            transit,
            unapplied,
            amount: BigInt(amount),
            currency: row.currency,
          }),
        });
        if (!booked.ok) throw new Error(`the ledger refused the return of ${transferId}: ${booked.code}`);
      }
      await writeAudit(
        tx,
        { clientId: step.clientId, actor: providerActor(deps.bank.name) },
        {
          action: "transaction.funds_returned",
          entityType: "transaction",
          entityId: requestId,
          after: { transferId, amount, returned: result.returned },
        },
      );
    },
    async exhausted() {},
    // The bank confirms it sent the money back: booked as the step's own answer would have been.
    resolve(tx, step, input, resolution) {
      onlyExecuted("bank return", resolution);
      return this.record(tx, step, input, { returned: true });
    },
  };

  /** A withdrawal to a card: the acquirer's payout (an original credit) by the transaction's key. */
  const cardPayout: StepKind<
    ByRequest,
    | { accepted: true; reference: string; settlesAt: string }
    | { accepted: false; reference: string; responseCode: string; message: string }
  > = {
    name: "CARD_PAYOUT",
    input: byRequest,
    maxAttempts: 10,
    async perform({ requestId }, step) {
      const { row, card } = await cardOf(step, requestId);
      const sent = await deps.acquirer.payout({
        idempotencyKey: providerKey(step.clientId, requestId),
        ...card,
        amount: BigInt(row.amount),
        currency: row.currency,
      });
      return {
        done:
          sent.outcome === "ACCEPTED"
            ? { accepted: true, reference: sent.reference, settlesAt: sent.settlesAt.toISOString() }
            : {
                accepted: false,
                reference: sent.reference,
                responseCode: sent.responseCode,
                message: sent.message,
              },
      };
    },
    record: (tx, step, { requestId }, result) =>
      result.accepted
        ? applyOutcome(
            tx,
            step,
            requestId,
            "PAYOUT_ACCEPTED",
            { changes: { provider_reference: result.reference }, settlesAt: new Date(result.settlesAt) },
            providerActor(deps.acquirer.name),
          )
        : applyOutcome(
            tx,
            step,
            requestId,
            "PAYOUT_DECLINED",
            {
              changes: {
                provider_reference: result.reference,
                status_detail: JSON.stringify({
                  responseCode: result.responseCode,
                  responseCategory: "DECLINED",
                  message: result.message,
                }),
              },
            },
            providerActor(deps.acquirer.name),
          ),
    // Whether the acquirer paid is unknown: the hold stays until staff retry or resolve the step.
    async exhausted() {},
    resolve: (tx, step, { requestId }, resolution) =>
      resolvePayout(tx, step, requestId, resolution, "acquirer"),
  };

  const cardPayoutStatus: StepKind<ByRequest, { state: "SETTLED" }> = {
    name: "CARD_PAYOUT_STATUS",
    input: byRequest,
    maxAttempts: 20,
    async perform({ requestId }, step) {
      const row = await repo.get(db, step.clientId, requestId);
      const outcome = await deps.acquirer.payoutStatus(row.provider_reference ?? "");
      if (outcome.state === "IN_FLIGHT") return { waitUntil: outcome.settlesAt };
      return { done: outcome };
    },
    record: (tx, step, { requestId }) =>
      applyOutcome(
        tx,
        step,
        requestId,
        "PAYOUT_SETTLED",
        { changes: { status_detail: JSON.stringify({ responseCode: "00", responseCategory: "SETTLED" }) } },
        providerActor(deps.acquirer.name),
      ),
    async exhausted() {},
    resolve(tx, step, input, resolution) {
      onlyExecuted("card payout's settlement", resolution);
      return this.record(tx, step, input, { state: "SETTLED" });
    },
  };

  /**
   * A purchase's crypto sent to the user's address: the chain's hash kept with the transaction and
   * the amount booked from the user's account to the chain's transit account, in the transaction
   * that closes the step. Exhausted: the crypto stays in the user's account (nothing is lost).
   */
  const chainSend: StepKind<ByRequest, { txHash: string }> = {
    name: "CHAIN_SEND",
    input: byRequest,
    maxAttempts: 10,
    async perform({ requestId }, step) {
      const row = await repo.get(db, step.clientId, requestId);
      return {
        done: await deps.chain.send({
          idempotencyKey: providerKey(step.clientId, requestId),
          currency: row.target_currency ?? "",
          address: row.destination_address ?? "",
          amount: BigInt(row.target_amount ?? "0"),
        }),
      };
    },
    async record(tx, step, { requestId }, result) {
      const row = await repo.lock(tx, step.clientId, requestId);
      if (row.chain_tx_hash) return; // recorded already (a retried closing)
      const currency = row.target_currency ?? "";
      const booked = await ledger.applyInTransaction(tx, {
        clientId: step.clientId,
        operationId: postings.operationOf(requestId, "chain"),
        legs: postings.chainSend({
          requestId,
          wallet: row.wallet_id ?? "",
          chainTransit: await postings.systemAccount.transit(tx, step.clientId, currency, "chain"),
          amount: BigInt(row.target_amount ?? "0"),
          currency,
        }),
      });
      if (!booked.ok) throw new Error(`the ledger refused the chain send of ${requestId}: ${booked.code}`);
      await repo.update(tx, row, { chain_tx_hash: result.txHash });
      await writeAudit(
        tx,
        { clientId: step.clientId, actor: providerActor(deps.chain.name) },
        {
          action: "transaction.sent_on_chain",
          entityType: "transaction",
          entityId: requestId,
          after: { txHash: result.txHash, currency, amount: row.target_amount },
        },
      );
    },
    async exhausted() {},
    resolve(tx, step, input, resolution) {
      onlyExecuted("chain send", resolution);
      if (!resolution.reference)
        throw new TransactionError(
          "INVALID",
          "REFERENCE_REQUIRED",
          "the chain's transaction hash is required",
          "reference",
        );
      return this.record(tx, step, input, { txHash: resolution.reference });
    },
  };

  runner.register(chainSend);
  runner.register(cardPayout);
  runner.register(cardPayoutStatus);
  runner.register(cardCharge);
  runner.register(cardChallenge);
  runner.register(cardRefund);
  runner.register(bankPayout);
  runner.register(bankPayoutStatus);
  runner.register(bankReturn);
}
