// Over 400 lines on purpose: the one engine that applies the process table (create, apply, plan each
// effect) with its guards; splitting it would split the rule that nothing else writes a status.
import type { Db } from "../../db/database.ts";
import type { RequestContext } from "../../lib/context.ts";
import { type AuditEntry, writeAudit } from "../audit/service.ts";
import * as ledger from "../ledger/service.ts";
import type { Account, Leg, OperationResult } from "../ledger/types.ts";
import type { MonitoringResult } from "../monitoring/rules.ts";
import type { StepRunner } from "../steps/runner.ts";
import { snapshotOf, type TransactionEvent, type TransactionEventSink } from "./events.ts";
import * as postings from "./postings.ts";
import {
  type Effect,
  findTransition,
  PROCESS_TYPE,
  type ProcessEvent,
  payoutRailOf,
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
export type Touched = Map<string, { userId: string; wallet: Account | undefined }>;

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
      const planned = await this.plan(tx, row, effect, facts);
      let balances: Account[] = [];
      if (planned.booking) {
        const { legs, what, refused } = planned.booking;
        const result = await ledger.applyInTransaction(tx, {
          clientId: row.client_id,
          operationId: postings.operationOf(row.request_id, what),
          legs,
        });
        if (!result.ok) throw refused(result);
        balances = result.accounts ?? [];
      }
      if (planned.touches) touch(touched, row, balances);
      if (planned.step) {
        const { id } = await this.steps.schedule(tx, stepOf(row, planned.step));
        stepIds.push(id);
      }
    }
    // Usage after the ledger: every writer locks accounts before a user's usage rows (no deadlock).
    const usage = usageChange(before, row, transition);
    if (usage) await countUsage(tx, usage.row, usage.sign);
    await writeAudit(tx, ctx, auditEntryOf(before, row, transition, event));
    await this.events.record(tx, eventsOf(before, row, transition, facts, touched), {
      suppressDelivery: facts.suppressWebhook,
    });
    return { row, stepIds, changed: isChange(before, row, transition) };
  }

  /**
   * What one effect does, decided without writing: the legs it books (and the error a refusal
   * means), whether it changes the transaction's wallets, the provider step it schedules. The
   * single path (`complete`) and the group commit (group-commit.ts) both carry it out.
   */
  async plan(tx: Db, row: Row, effect: Effect, facts: EventFacts): Promise<PlannedEffect> {
    const { client_id: clientId, request_id: requestId, currency } = row;
    const amount = BigInt(row.amount);
    const fee = BigInt(row.fee);
    const wallet = row.wallet_id ?? "";
    const booking = (legs: Leg[], what?: string): Booking | undefined =>
      legs.length === 0
        ? undefined
        : {
            legs,
            what,
            refused: (result) =>
              result.code === "EXCEEDS_LIMIT"
                ? insufficientFunds()
                : new Error(`the ledger refused ${effect} of ${requestId}: ${result.code} ${result.message}`),
          };

    switch (effect) {
      case "HOLD": {
        const transit = await postings.systemAccount.transit(tx, clientId, currency, payoutRailOf(row));
        const fees = await postings.systemAccount.fees(tx, clientId, currency);
        const legs = postings.withdrawalHold({ requestId, currency, amount, fee, wallet, transit, fees });
        return { booking: booking(legs), touches: true };
      }
      case "RELEASE_HOLD":
        return { booking: booking(postings.withdrawalRelease({ requestId, fee }), "VOID"), touches: true };
      case "SETTLE_HOLD":
        return { booking: booking(postings.withdrawalSettle({ requestId, fee }), "POST"), touches: true };
      case "CREDIT_DEPOSIT": {
        const rail = processKindOf(row) === "CARD_DEPOSIT" ? "card" : "bank";
        const transit = await postings.systemAccount.transit(tx, clientId, currency, rail);
        const fees = await postings.systemAccount.fees(tx, clientId, currency);
        if (row.target_currency && row.target_amount) {
          const legs = postings.purchaseCredit({
            requestId,
            currency,
            amount,
            fee,
            transit,
            fees,
            wallet,
            fxSource: await postings.systemAccount.fx(tx, clientId, currency),
            fxTarget: await postings.systemAccount.fx(tx, clientId, row.target_currency),
            targetCurrency: row.target_currency,
            targetAmount: BigInt(row.target_amount),
          });
          return { booking: booking(legs), touches: true };
        }
        const legs = postings.depositCredit({ requestId, currency, amount, fee, wallet, transit, fees });
        return { booking: booking(legs), touches: true };
      }
      case "MOVE": {
        const fees = await postings.systemAccount.fees(tx, clientId, currency);
        const destination = row.counterparty_wallet_id ?? "";
        if (row.type === "TRADE") {
          const target = row.target_currency ?? "";
          const fxSource = await postings.systemAccount.fx(tx, clientId, currency);
          const fxTarget = await postings.systemAccount.fx(tx, clientId, target);
          const legs = postings.fxTrade({
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
          });
          return { booking: booking(legs), touches: true };
        }
        const legs = postings.walletMove({
          requestId,
          currency,
          amount,
          fee,
          source: wallet,
          destination,
          fees,
        });
        return { booking: booking(legs), touches: true };
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
        return {
          booking: {
            legs,
            what: "reversal",
            refused: (result) =>
              new TransactionError(
                "CONFLICT",
                "REVERSAL_REFUSED",
                `the reversal cannot be booked: ${result.message}`,
              ),
          },
          touches: true,
        };
      }
      case "CHARGE_CARD":
        return { step: { kind: "CARD_CHARGE", key: "charge", input: { requestId } } };
      case "REFUND_CARD":
        return { step: { kind: "CARD_REFUND", key: "refund", input: { requestId } } };
      case "SEND_PAYOUT":
        return {
          step: {
            kind: payoutRailOf(row) === "card" ? "CARD_PAYOUT" : "BANK_PAYOUT",
            key: "payout",
            input: { requestId },
          },
        };
      case "TRACK_PAYOUT":
        return {
          step: {
            kind: payoutRailOf(row) === "card" ? "CARD_PAYOUT_STATUS" : "BANK_PAYOUT_STATUS",
            key: "payout-status",
            input: { requestId },
            runAt: facts.settlesAt,
          },
        };
      case "SEND_CRYPTO":
        return row.destination_address
          ? { step: { kind: "CHAIN_SEND", key: "chain", input: { requestId } } }
          : {};
      case "HOLD_APART_AND_RETURN": {
        const transferId = facts.transferId ?? "";
        const received = facts.receivedAmount ?? amount;
        const transit = await postings.systemAccount.transit(tx, clientId, currency, "bank");
        const unapplied = await postings.systemAccount.unapplied(tx, clientId, currency);
        const legs = postings.unappliedFunds({
          requestId,
          transferId,
          transit,
          unapplied,
          amount: received,
          currency,
        });
        return {
          booking: booking(legs, `unapplied:${transferId}`),
          step: {
            kind: "BANK_RETURN",
            key: `return:${transferId}`,
            input: { requestId, transferId, amount: received.toString() },
          },
        };
      }
    }
  }
}

/** What the ledger is asked to book for an effect, and what its refusal means to the caller. */
export interface Booking {
  legs: Leg[];
  /** Suffix of the operation id (`txn:<requestId>[:what]`). */
  what?: string | undefined;
  refused: (result: Extract<OperationResult, { ok: false }>) => Error;
}

export interface PlannedStep {
  kind: string;
  key: string;
  input: unknown;
  runAt?: Date | undefined;
}

export interface PlannedEffect {
  booking?: Booking | undefined;
  /** The effect changes the transaction's wallets (a WALLET_BALANCE event each). */
  touches?: boolean;
  step?: PlannedStep | undefined;
}

export function stepOf(row: Row, step: PlannedStep) {
  return {
    clientId: row.client_id,
    kind: step.kind,
    processType: PROCESS_TYPE,
    processId: row.request_id,
    idempotencyKey: `${row.request_id}:${step.key}`,
    input: step.input,
    runAt: step.runAt,
  };
}

/** Records the transaction's wallets as changed, with their balances from the ledger's answer. */
export function touch(touched: Touched, row: Row, balances: Account[]) {
  const after = (id: string) => balances.find((a) => a.id === id);
  if (row.wallet_id) touched.set(row.wallet_id, { userId: row.user_id, wallet: after(row.wallet_id) });
  if (row.counterparty_wallet_id)
    touched.set(row.counterparty_wallet_id, {
      userId: row.counterparty_user_id ?? row.user_id,
      wallet: after(row.counterparty_wallet_id),
    });
}

const isChange = (before: Row, row: Row, transition: Transition) =>
  before.status !== row.status || transition.from.includes("NEW");

/** How a transition changes the user's usage (usage.ts): counted in when recorded, out when it fails. */
export function usageChange(
  before: Row,
  row: Row,
  transition: Transition,
): { row: Row; sign: 1 | -1 } | undefined {
  if (transition.from.includes("NEW")) return counts(row.status) ? { row, sign: 1 } : undefined;
  return counts(before.status) && !counts(row.status) ? { row: before, sign: -1 } : undefined;
}

export function auditEntryOf(before: Row, row: Row, transition: Transition, event: ProcessEvent): AuditEntry {
  return {
    action: `transaction.${event.toLowerCase()}`,
    entityType: "transaction",
    entityId: row.request_id,
    before: transition.from.includes("NEW") ? null : { status: before.status },
    after: { status: row.status, ...(transition.effects?.length ? { effects: transition.effects } : {}) },
  };
}

/** The domain events of a transition, in order: monitoring, the status, then each wallet changed. */
export function eventsOf(
  before: Row,
  row: Row,
  transition: Transition,
  facts: EventFacts,
  touched: Touched,
): TransactionEvent[] {
  const snapshot = snapshotOf(row);
  const events: TransactionEvent[] = [];
  if (facts.monitoring)
    events.push({ type: "transaction.monitored", transaction: snapshot, monitoring: facts.monitoring });
  if (isChange(before, row, transition) && row.status !== "PENDING")
    events.push({ type: "transaction.status_changed", transaction: snapshot });
  for (const [walletId, { userId, wallet }] of touched)
    events.push({ type: "wallet.balance_changed", clientId: row.client_id, userId, walletId, wallet });
  return events;
}

function describe(event: ProcessEvent): string {
  return event.toLowerCase().replaceAll("_", " ");
}
