import type { Db } from "../../db/database.ts";
import type { RequestContext } from "../../lib/context.ts";
import { writeAudit } from "../audit/service.ts";
import * as ledger from "../ledger/service.ts";
import type { Account, Leg } from "../ledger/types.ts";
import type { MonitoringResult } from "../monitoring/rules.ts";
import type { StepRunner } from "../steps/runner.ts";
import { snapshotOf, type TransactionEvent, type TransactionEventSink } from "./events.ts";
import * as postings from "./postings.ts";
import {
  type Effect,
  findTransition,
  PROCESS_TYPE,
  type ProcessEvent,
  processKindOf,
  REPEATABLE,
  type Transition,
} from "./process-table.ts";
import * as repo from "./repo.ts";
import { insufficientFunds, type Row, TransactionError, type TransactionStatus } from "./types.ts";
import { countUsage, UNCOUNTED_STATUSES } from "./usage.ts";

export {
  findTransition,
  PROCESS_TYPE,
  type ProcessEvent,
  type ProcessKind,
  processKindOf,
} from "./process-table.ts";

/**
 * The business processes of a transaction (their tables: process-table.ts) and the one function that
 * changes a transaction's status. A transition names the ledger recipes it books and the provider
 * steps it schedules; `create` and `apply` check the table and the guard, then write the legs, the
 * new status, the audit row and the domain events in the caller's database transaction. Nothing
 * else writes `transactions.status`.
 *
 * Provider outcomes are events too. One that arrives after the process moved on (a charge approved
 * for a deposit cancelled meanwhile, money arriving for a closed bank deposit) has its own row in
 * the table that compensates it (refund, return): an outcome is never dropped.
 */

/** Facts an event carries into the row and its effects. */
export interface EventFacts {
  changes?: repo.RowChanges;
  monitoring?: MonitoringResult;
  /** FUNDS_RECEIVED: the bank's id of the transfer, and what arrived. */
  transferId?: string;
  receivedAmount?: bigint;
  /** PAYOUT_ACCEPTED: when to ask the bank about it. */
  settlesAt?: Date;
  suppressWebhook?: boolean | undefined;
}

const counts = (status: string) => !(UNCOUNTED_STATUSES as readonly string[]).includes(status);

/** Wallets an event's effects changed: their owner, and their balances after it when known. */
type Touched = Map<string, { userId: string; wallet: Account | undefined }>;

export interface Applied {
  row: Row;
  /** Steps scheduled by the transition: run them once the transaction has committed. */
  stepIds: string[];
  changed: boolean;
}

export class ProcessEngine {
  constructor(
    private readonly steps: StepRunner,
    private readonly events: TransactionEventSink,
  ) {}

  /** Records a new transaction with the status monitoring's event leads to, and that transition's effects. */
  async create(
    tx: Db,
    ctx: RequestContext,
    values: repo.NewRow,
    event: "ACCEPTED" | "HELD_FOR_REVIEW" | "DENIED",
    facts: EventFacts = {},
  ): Promise<Applied> {
    const kind = processKindOf(values);
    const transition = findTransition(kind, "NEW", event);
    if (!transition?.to) throw new Error(`no way to record a ${kind} on ${event}`);
    const row = await repo.insert(tx, { ...values, status: transition.to });
    if (counts(row.status)) await countUsage(tx, row, 1);
    return this.complete(tx, ctx, row, row, transition, event, facts);
  }

  /** Applies an event to a transaction locked by the caller (`repo.lock`) in this database transaction. */
  async apply(
    tx: Db,
    ctx: RequestContext,
    row: Row,
    event: ProcessEvent,
    facts: EventFacts = {},
  ): Promise<Applied> {
    const kind = processKindOf(row);
    const status = row.status as TransactionStatus;
    const transition = findTransition(kind, status, event);
    if (!transition) {
      if (REPEATABLE[event] === status) return { row, stepIds: [], changed: false };
      throw new TransactionError(
        "CONFLICT",
        "TRANSITION_NOT_ALLOWED",
        `${describe(event)} does not apply to a transaction in status ${status}`,
      );
    }
    if (transition.guard === "NO_CALL_IN_FLIGHT") {
      const clear = await this.steps.cancelUntried(tx, row.client_id, PROCESS_TYPE, row.request_id);
      if (!clear)
        throw new TransactionError(
          "CONFLICT",
          "PROVIDER_CALL_IN_FLIGHT",
          "a provider call for this transaction is under way; try again once its outcome is known",
          undefined,
          { retryable: true },
        );
    }
    // A late outcome (the status stays) keeps the provider's reference for the trail, nothing else:
    // an "approved" detail or a 3-D Secure link on a cancelled deposit would mislead.
    const changes =
      transition.to === null
        ? facts.changes?.provider_reference && !row.provider_reference
          ? { provider_reference: facts.changes.provider_reference }
          : undefined
        : { ...facts.changes, status: transition.to };
    const updated = changes ? await repo.update(tx, row, changes) : row;
    if (counts(row.status) && !counts(updated.status)) await countUsage(tx, row, -1);
    return this.complete(tx, ctx, row, updated, transition, event, facts);
  }

  private async complete(
    tx: Db,
    ctx: RequestContext,
    before: Row,
    row: Row,
    transition: Transition,
    event: ProcessEvent,
    facts: EventFacts,
  ): Promise<Applied> {
    const stepIds: string[] = [];
    const touched: Touched = new Map();
    for (const effect of transition.effects ?? []) {
      const id = await this.effect(tx, row, effect, facts, touched);
      if (id) stepIds.push(id);
    }
    const changed = before.status !== row.status || transition.from.includes("NEW");
    await writeAudit(tx, ctx, {
      action: `transaction.${event.toLowerCase()}`,
      entityType: "transaction",
      entityId: row.request_id,
      before: transition.from.includes("NEW") ? null : { status: before.status },
      after: { status: row.status, ...(transition.effects?.length ? { effects: transition.effects } : {}) },
    });
    const snapshot = snapshotOf(row);
    const events: TransactionEvent[] = [];
    if (facts.monitoring)
      events.push({ type: "transaction.monitored", transaction: snapshot, monitoring: facts.monitoring });
    if (changed && row.status !== "PENDING")
      events.push({ type: "transaction.status_changed", transaction: snapshot });
    for (const [walletId, { userId, wallet }] of touched)
      events.push({ type: "wallet.balance_changed", clientId: row.client_id, userId, walletId, wallet });
    await this.events.record(tx, events, { suppressDelivery: facts.suppressWebhook });
    return { row, stepIds, changed };
  }

  private async effect(
    tx: Db,
    row: Row,
    effect: Effect,
    facts: EventFacts,
    touched: Touched,
  ): Promise<string | undefined> {
    const { client_id: clientId, request_id: requestId, currency } = row;
    const amount = BigInt(row.amount);
    const fee = BigInt(row.fee);
    const wallet = row.wallet_id ?? "";
    // The wallets the effect changed, with their balances when the ledger gave them.
    const balances = new Map<string, Account>();
    const touch = () => {
      if (row.wallet_id)
        touched.set(row.wallet_id, { userId: row.user_id, wallet: balances.get(row.wallet_id) });
      if (row.counterparty_wallet_id)
        touched.set(row.counterparty_wallet_id, {
          userId: row.counterparty_user_id ?? row.user_id,
          wallet: balances.get(row.counterparty_wallet_id),
        });
    };
    const book = async (legs: Leg[], what?: string) => {
      if (legs.length === 0) return;
      const result = await ledger.applyInTransaction(tx, {
        clientId,
        operationId: postings.operationOf(requestId, what),
        legs,
      });
      if (!result.ok) {
        if (result.code === "EXCEEDS_LIMIT") throw insufficientFunds();
        throw new Error(`the ledger refused ${effect} of ${requestId}: ${result.code} ${result.message}`);
      }
      for (const account of result.accounts ?? []) balances.set(account.id, account);
    };
    const schedule = async (kind: string, key: string, input: unknown, runAt?: Date) =>
      (
        await this.steps.schedule(tx, {
          clientId,
          kind,
          processType: PROCESS_TYPE,
          processId: requestId,
          idempotencyKey: `${requestId}:${key}`,
          input,
          runAt,
        })
      ).id;

    switch (effect) {
      case "HOLD": {
        const transit = await postings.systemAccount.transit(tx, clientId, currency, "bank");
        const fees = await postings.systemAccount.fees(tx, clientId, currency);
        await book(
          postings.withdrawalHold({
            requestId,
            currency,
            amount,
            fee,
            wallet,
            transit,
            fees,
          }),
        );
        touch();
        return;
      }
      case "RELEASE_HOLD":
        await book(postings.withdrawalRelease({ requestId, fee }), "VOID");
        touch();
        return;
      case "SETTLE_HOLD":
        await book(postings.withdrawalSettle({ requestId, fee }), "POST");
        touch();
        return;
      case "CREDIT_DEPOSIT": {
        const rail = processKindOf(row) === "CARD_DEPOSIT" ? "card" : "bank";
        const transit = await postings.systemAccount.transit(tx, clientId, currency, rail);
        const fees = await postings.systemAccount.fees(tx, clientId, currency);
        await book(
          postings.depositCredit({
            requestId,
            currency,
            amount,
            fee,
            wallet,
            transit,
            fees,
          }),
        );
        touch();
        return;
      }
      case "MOVE": {
        const fees = await postings.systemAccount.fees(tx, clientId, currency);
        const destination = row.counterparty_wallet_id ?? "";
        if (row.type === "TRADE") {
          const target = row.target_currency ?? "";
          const fxSource = await postings.systemAccount.fx(tx, clientId, currency);
          const fxTarget = await postings.systemAccount.fx(tx, clientId, target);
          await book(
            postings.fxTrade({
              requestId,
              currency,
              amount,
              fee,
              source: wallet,
              target: destination,
              fxSource,
              fxTarget,
              fees,
              targetCurrency: target,
              targetAmount: BigInt(row.target_amount ?? "0"),
            }),
          );
        } else {
          await book(
            postings.walletMove({
              requestId,
              currency,
              amount,
              fee,
              source: wallet,
              destination,
              fees,
            }),
          );
        }
        touch();
        return;
      }
      case "REVERSE":
      case "REVERSE_REPORTED": {
        const moved = [
          ...(await ledger.listEntriesOfOperation(tx, clientId, postings.operationOf(requestId))).transfers,
          ...(await ledger.listEntriesOfOperation(tx, clientId, postings.operationOf(requestId, "POST")))
            .transfers,
        ];
        let legs = postings.inverse(moved, "reversal");
        if (effect === "REVERSE_REPORTED") {
          // The client reports money that came back on its side: the rail's accounts are not involved.
          const transitIds = new Set<string>();
          for (const rail of ["card", "bank"] as const)
            transitIds.add(await postings.systemAccount.transit(tx, clientId, currency, rail));
          const settlement = await postings.systemAccount.settlement(tx, clientId, currency);
          legs = legs.map((leg) =>
            leg.type !== "SINGLE"
              ? leg
              : {
                  ...leg,
                  debitAccountId: transitIds.has(leg.debitAccountId) ? settlement : leg.debitAccountId,
                  creditAccountId: transitIds.has(leg.creditAccountId) ? settlement : leg.creditAccountId,
                },
          );
        }
        const result = await ledger.applyInTransaction(tx, {
          clientId,
          operationId: postings.operationOf(requestId, "reversal"),
          legs,
        });
        if (!result.ok)
          throw new TransactionError(
            "CONFLICT",
            "REVERSAL_REFUSED",
            `the reversal cannot be booked: ${result.message}`,
          );
        touch();
        return;
      }
      case "CHARGE_CARD":
        return schedule("CARD_CHARGE", "charge", { requestId });
      case "REFUND_CARD":
        return schedule("CARD_REFUND", "refund", { requestId });
      case "SEND_PAYOUT":
        return schedule("BANK_PAYOUT", "payout", { requestId });
      case "TRACK_PAYOUT":
        return schedule("BANK_PAYOUT_STATUS", "payout-status", { requestId }, facts.settlesAt);
      case "HOLD_APART_AND_RETURN": {
        const transferId = facts.transferId ?? "";
        const received = facts.receivedAmount ?? amount;
        const transit = await postings.systemAccount.transit(tx, clientId, currency, "bank");
        const unapplied = await postings.systemAccount.unapplied(tx, clientId, currency);
        await book(
          postings.unappliedFunds({
            requestId,
            transferId,
            transit,
            unapplied,
            amount: received,
            currency,
          }),
          `unapplied:${transferId}`,
        );
        return schedule("BANK_RETURN", `return:${transferId}`, {
          requestId,
          transferId,
          amount: received.toString(),
        });
      }
    }
  }
}

function describe(event: ProcessEvent): string {
  return event.toLowerCase().replaceAll("_", " ");
}
