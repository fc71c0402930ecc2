import { createHash } from "node:crypto";
import { newId } from "../../lib/ids.ts";
import { formatAmount } from "../../lib/money.ts";
import type { Commission } from "../commissions/arithmetic.ts";
import type { Operation } from "../commissions/service.ts";
import type { Session } from "../logins/service.ts";
import type { MonitoringResult } from "../monitoring/rules.ts";
import { json, type Transaction, TransactionError } from "../transactions/service.ts";

/**
 * The Wallet API's view of a core transaction: its operation, its status in the wallet's words, and
 * how a commission maps onto the core. The core books a deposit's `amount` from the rail and
 * credits `amount − fee`; it books a withdrawal's and a transfer's `amount` to the recipient and
 * the `fee` on top. So a top-up's core amount is what the sender pays, a withdrawal's and a
 * transfer's is what the recipient gets; in both, sender = recipient + fee.
 */

export type WalletStatus =
  | "pending"
  | "waiting_for_approval"
  | "processed"
  | "declined"
  | "rejected"
  | "error";

/** The wallet's facts kept on the core transaction (`transactions.process`). */
export type WalletProcess = {
  operation: Operation;
  direction: Commission["direction"];
  transactionAmount: string;
  senderAmount: string;
  recipientAmount: string;
  commission: string;
  coinSerial: string;
  recipientSerial?: string;
  paymentTool?: string;
  description?: string;
  templateId?: string;
  destValue?: string;
};

/** The status a Wallet API caller sees, from the core's. */
export function walletStatus(t: Transaction): WalletStatus {
  switch (t.status) {
    case "MANUAL_REVIEW":
      return t.monitoring?.status === "MANUAL_REVIEW" ? "waiting_for_approval" : "pending";
    // Accepted by an accountant, its payout on its way: the decision is made (a second accept at
    // the same moment answers as the first did), what remains is the bank's.
    case "PENDING":
      return t.decision?.outcome === "accepted" ? "processed" : "pending";
    case "AWAITING_PAYMENT":
      return "pending";
    case "AUTHORIZED":
    case "CAPTURED":
    case "SETTLED":
      return "processed";
    case "REFUSED":
      return t.decision?.outcome === "declined" ? "declined" : "rejected";
    case "CANCELED":
      return "declined";
    case "REFUNDED":
    case "CHARGED_BACK":
      return "rejected";
    default:
      return "error";
  }
}

/** The wallet operation of a core transaction recorded without one (through another face). */
export const OPERATION_OF_TYPE: Record<string, Operation> = {
  DEPOSIT: "TOP_UP_BANK",
  WITHDRAWAL: "WITHDRAW_BANK",
  TRANSFER: "TRANSFER",
  PAYMENT: "TRANSFER",
  TRADE: "EXCHANGE",
};

/** A person's decision on a request, kept with it (transactions.decision). */
export function decisionBy(session: Session, outcome: string) {
  return { outcome, by: session.userId, role: session.role, at: new Date().toISOString() };
}

/** A compliance officer's precondition, checked on the locked row: monitoring holds it for review. */
export function mustBeInReview(row: { monitoring: unknown }) {
  if (json<MonitoringResult>(row.monitoring)?.status !== "MANUAL_REVIEW")
    throw new TransactionError(
      "CONFLICT",
      "NOT_IN_REVIEW",
      "this request is not waiting for a compliance review",
    );
}

/** The core's amount of a wallet operation (see the comment at the top). */
export function coreAmount(operation: Operation, commission: Commission): bigint {
  return operation === "TOP_UP_BANK" || operation === "TOP_UP_CARD"
    ? commission.senderAmount
    : commission.recipientAmount;
}

/**
 * The core request id of a wallet operation: derived from the caller's `Idempotency-Key` when it
 * gave one (a retry after a crash finds the same transaction), otherwise new.
 */
export function requestIdOf(session: Session, idempotencyKey: string | undefined): string {
  if (!idempotencyKey) return `w-${newId()}`;
  const digest = createHash("sha256")
    .update(`${session.clientId}\u0000${session.userId}\u0000${idempotencyKey}`)
    .digest("base64url");
  return `wk-${digest.slice(0, 40)}`;
}

export function processOf(
  operation: Operation,
  commission: Commission,
  scale: number,
  more: Omit<
    WalletProcess,
    "operation" | "direction" | "transactionAmount" | "senderAmount" | "recipientAmount" | "commission"
  >,
): WalletProcess {
  return {
    operation,
    direction: commission.direction,
    transactionAmount: formatAmount(commission.transactionAmount, scale),
    senderAmount: formatAmount(commission.senderAmount, scale),
    recipientAmount: formatAmount(commission.recipientAmount, scale),
    commission: formatAmount(commission.fee, scale),
    ...more,
  };
}
