import type { Db } from "../../db/database.ts";
import type { Actor } from "../../lib/context.ts";
import { writeAudit } from "../audit/service.ts";
import type { StepRunner } from "../steps/runner.ts";
import type { ExternalProcesses } from "../transactions/service.ts";
import {
  type From,
  findOneClickTransition,
  type OneClickEffect,
  type OneClickEvent,
} from "./process-table.ts";
import * as repo from "./repo.ts";
import { type OneClickRow, PROCESS_TYPE, requestIdOf } from "./repo.ts";
import { STATUS, type StatusName, stateOf, type TxState } from "./statuses.ts";

/** What an event carries into the row: who caused it, and the columns it sets with the status. */
export interface OneClickFacts {
  actor: Actor;
  set?: repo.RowChanges;
}

export type OneClickStepKind =
  | "OC_SIGNIN"
  | "OC_KYC_CHECK"
  | "OC_VERIFYUSER"
  | "OC_AUTHORIZE"
  | "OC_PAYMENT"
  | "OC_TRANSFER"
  | "OC_CANCEL";

const STEP_OF: Partial<Record<OneClickEffect, OneClickStepKind>> = {
  SIGNIN: "OC_SIGNIN",
  VERIFYUSER: "OC_VERIFYUSER",
  QUOTE: "OC_KYC_CHECK",
  AUTHORIZE: "OC_AUTHORIZE",
  PAY: "OC_PAYMENT",
  TRANSFER: "OC_TRANSFER",
  CANCEL: "OC_CANCEL",
};

export interface OneClickEngineDependencies {
  steps: StepRunner;
  /** The money core: posting recipes, usage buckets, the event sink. */
  core: ExternalProcesses;
  /** The proven person as a core user (the flow knows the provider and the sealed identity). */
  ensureUser(tx: Db, row: OneClickRow): Promise<void>;
}

/**
 * Applies the 1-Click table (process-table.ts): the only writer of a flow's status. Each change is
 * one call in the caller's database transaction: the row, its effects (steps scheduled, the
 * ledger recipe, the usage buckets, the core user), the audit row and the status event.
 */
export class OneClickEngine {
  constructor(private readonly deps: OneClickEngineDependencies) {}

  /** Records a new flow (the table's STARTED move from NEW). */
  async start(tx: Db, values: repo.NewRow, actor: Actor): Promise<OneClickRow> {
    const transition = findOneClickTransition("NEW", "STARTED", values.amount != null);
    if (!transition) throw new Error("the 1-Click table has no start");
    const row = await repo.insert(tx, { ...values, ...statusOf(transition.to) });
    await this.complete(tx, null, row, "STARTED", [], actor);
    return row;
  }

  /**
   * Applies `event` to a flow locked by the caller (`repo.lock`). Undefined when the table has no
   * such move from the flow's status (it moved on): the caller decides what that means — a late
   * answer kept on its step, or a 409 for staff.
   */
  async apply(
    tx: Db,
    row: OneClickRow,
    event: OneClickEvent,
    facts: OneClickFacts,
  ): Promise<OneClickRow | undefined> {
    const transition = findOneClickTransition(row.status_name as From, event, row.amount !== null);
    if (!transition) return undefined;
    const next = await repo.update(tx, row.tx_id, {
      // A flow that ends well (a retried transfer, a staff resolution) carries no error any more.
      ...(transition.to === "SUCCESS" ? { err_code: null, err_msg: null } : {}),
      ...facts.set,
      ...statusOf(transition.to),
    });
    await this.complete(tx, row, next, event, transition.effects ?? [], facts.actor);
    return next;
  }

  /** `apply`, for a move the caller knows the table has (a missing one is a defect, not a race). */
  async must(tx: Db, row: OneClickRow, event: OneClickEvent, facts: OneClickFacts): Promise<OneClickRow> {
    const next = await this.apply(tx, row, event, facts);
    if (!next) throw new Error(`1-Click ${row.tx_id}: no ${event} from ${row.status_name}`);
    return next;
  }

  private async complete(
    tx: Db,
    before: OneClickRow | null,
    row: OneClickRow,
    event: OneClickEvent,
    effects: readonly OneClickEffect[],
    actor: Actor,
  ): Promise<void> {
    for (const effect of effects) await this.effect(tx, row, effect);
    await writeAudit(
      tx,
      { clientId: row.client_id, actor, requestId: requestIdOf(row.tx_id) },
      {
        action: before ? "oneclick.status_changed" : "oneclick.started",
        entityType: "oneclick",
        entityId: row.tx_id,
        before: before ? { statusCode: before.status_code, statusName: before.status_name } : null,
        after: { statusCode: row.status_code, statusName: row.status_name, event },
      },
    );
    if (row.amount !== null && row.currency !== null)
      await this.deps.core.record(tx, [{ type: "transaction.status_changed", transaction: snapshotOf(row) }]);
  }

  private async effect(tx: Db, row: OneClickRow, effect: OneClickEffect): Promise<void> {
    const step = STEP_OF[effect];
    if (step) {
      await this.deps.steps.schedule(tx, {
        clientId: row.client_id,
        kind: step,
        processType: PROCESS_TYPE,
        processId: requestIdOf(row.tx_id),
        idempotencyKey: `${requestIdOf(row.tx_id)}:${step.slice(3).toLowerCase()}`,
        input: { txId: row.tx_id },
      });
      return;
    }
    switch (effect) {
      case "ENSURE_USER":
        return this.deps.ensureUser(tx, row);
      case "CREDIT_DEPOSIT":
        return this.deps.core.creditSettlement(tx, depositOf(row));
      case "COUNT_USAGE":
        return this.deps.core.count(tx, usageOf(row), 1);
      case "UNCOUNT_USAGE":
        return this.deps.core.count(tx, usageOf(row), -1);
      default:
        throw new Error(`1-Click effect ${effect} has no step`);
    }
  }
}

const statusOf = (name: StatusName) => ({ status_code: STATUS[name], status_name: name });

function depositOf(row: OneClickRow) {
  if (row.amount === null || row.currency === null || row.user_id === null)
    throw new Error(`1-Click ${row.tx_id} is not a deposit of a user`);
  return {
    clientId: row.client_id,
    userId: row.user_id,
    requestId: requestIdOf(row.tx_id),
    currency: row.currency,
    amount: BigInt(row.amount),
    fee: BigInt(row.fee),
  };
}

function usageOf(row: OneClickRow) {
  if (row.usd_value === null || row.user_id === null)
    throw new Error(`1-Click ${row.tx_id} was not priced for a user`);
  return {
    client_id: row.client_id,
    user_id: row.user_id,
    // Counted in, and out, in the buckets of the moment the flow started (the same ones both times).
    created_at: row.created_at,
    type: "DEPOSIT",
    usd_value: row.usd_value,
  };
}

/** A deposit flow as the core's transactions are seen by the event sink (its TRANSACTION_STATUS and TRANSACTION_MONITORING webhooks). */
export function snapshotOf(row: OneClickRow) {
  return {
    clientId: row.client_id,
    requestId: requestIdOf(row.tx_id),
    userId: row.user_id,
    type: "DEPOSIT" as const,
    status: coreStatusOf(stateOf(row.status_code)),
    amount: BigInt(row.amount ?? 0),
    fee: BigInt(row.fee),
    currency: row.currency ?? "",
    paymentMethod: { type: "BANK_TRANSFER" },
    statusDetail: { responseCode: String(row.status_code), responseCategory: row.status_name },
  };
}

function coreStatusOf(state: TxState) {
  switch (state) {
    case "SUCCESSFUL":
      return "CAPTURED" as const;
    case "FAILED":
      return "REFUSED" as const;
    case "CANCELLED":
      return "CANCELED" as const;
    case "WAITING_APPROVAL":
      return "MANUAL_REVIEW" as const;
    default:
      return "PENDING" as const;
  }
}
