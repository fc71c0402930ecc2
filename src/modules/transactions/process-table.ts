import { json, type TransactionStatus } from "./types.ts";

/**
 * The transition tables of a transaction's business processes: for each process kind, which event
 * moves it from which status to which, booking which ledger recipes and scheduling which provider
 * steps, under which guard. process.ts applies them; this file is the one place to read where any
 * status of any process type changes.
 */

export type ProcessKind = "CARD_DEPOSIT" | "BANK_DEPOSIT" | "WITHDRAWAL" | "MOVE";

export const PROCESS_TYPE = "transaction";

export type ProcessEvent =
  // monitoring, when the transaction is recorded
  | "ACCEPTED"
  | "HELD_FOR_REVIEW"
  | "DENIED"
  // staff review
  | "APPROVE"
  | "DENY"
  // the client: DELETE or feedback CANCELLED/REJECTED, feedback ERROR, SETTLED/ACCEPTED, REFUNDED, CHARGED_BACK
  | "CANCEL"
  | "FAIL"
  | "SETTLE"
  | "REFUND"
  | "CHARGEBACK"
  // the acquirer
  | "CHARGE_APPROVED"
  | "CHARGE_DECLINED"
  | "CHARGE_CHALLENGED"
  | "CHARGE_LOST"
  // the bank
  | "FUNDS_RECEIVED"
  | "PAYOUT_ACCEPTED"
  | "PAYOUT_SETTLED"
  | "PAYOUT_RETURNED"
  // the acquirer refused a payout to a card
  | "PAYOUT_DECLINED"
  // staff, resolving a payout that never got an answer: the bank says it never received it
  | "PAYOUT_NOT_SENT";

export type Effect =
  | "HOLD"
  | "RELEASE_HOLD"
  | "SETTLE_HOLD"
  | "CREDIT_DEPOSIT"
  | "MOVE"
  /** Every posted leg sent back (a refund the acquirer makes: through the card transit account). */
  | "REVERSE"
  /** Every posted leg sent back, the rail's side booked to the client's settlement account: the client reports it. */
  | "REVERSE_REPORTED"
  | "CHARGE_CARD"
  | "REFUND_CARD"
  | "SEND_PAYOUT"
  | "TRACK_PAYOUT"
  | "HOLD_APART_AND_RETURN"
  /** A purchase's crypto sent on to the user's address (when they gave one). */
  | "SEND_CRYPTO";

/** NO_CALL_IN_FLIGHT: no provider call of this process is under way or of unknown outcome (untried ones are cancelled). */
export type Guard = "NO_CALL_IN_FLIGHT";

export type From = TransactionStatus | "NEW";

export interface Transition {
  processes: readonly ProcessKind[];
  from: readonly From[];
  event: ProcessEvent;
  /** `null`: the status stays (a late outcome compensated). */
  to: TransactionStatus | null;
  effects?: readonly Effect[];
  guard?: Guard;
}

const ALL: readonly ProcessKind[] = ["CARD_DEPOSIT", "BANK_DEPOSIT", "WITHDRAWAL", "MOVE"];
const CLOSED: readonly TransactionStatus[] = ["CANCELED", "ERROR", "REFUSED", "REFUNDED", "CHARGED_BACK"];
const DONE: readonly TransactionStatus[] = ["CAPTURED", "SETTLED"];

// biome-ignore format: one transition per line reads as the table it is
export const TRANSITIONS: readonly Transition[] = [
  // ——— recorded: monitoring decides where it starts ———
  { processes: ["CARD_DEPOSIT"], from: ["NEW"], event: "ACCEPTED", to: "PENDING", effects: ["CHARGE_CARD"] },
  { processes: ["BANK_DEPOSIT"], from: ["NEW"], event: "ACCEPTED", to: "AWAITING_PAYMENT" },
  { processes: ["WITHDRAWAL"], from: ["NEW"], event: "ACCEPTED", to: "PENDING", effects: ["HOLD", "SEND_PAYOUT"] },
  { processes: ["MOVE"], from: ["NEW"], event: "ACCEPTED", to: "CAPTURED", effects: ["MOVE"] },
  { processes: ["WITHDRAWAL"], from: ["NEW"], event: "HELD_FOR_REVIEW", to: "MANUAL_REVIEW", effects: ["HOLD"] },
  { processes: ["CARD_DEPOSIT", "BANK_DEPOSIT", "MOVE"], from: ["NEW"], event: "HELD_FOR_REVIEW", to: "MANUAL_REVIEW" },
  { processes: ALL, from: ["NEW"], event: "DENIED", to: "REFUSED" },

  // ——— staff review ———
  { processes: ["CARD_DEPOSIT"], from: ["MANUAL_REVIEW"], event: "APPROVE", to: "PENDING", effects: ["CHARGE_CARD"] },
  { processes: ["BANK_DEPOSIT"], from: ["MANUAL_REVIEW"], event: "APPROVE", to: "AWAITING_PAYMENT" },
  { processes: ["WITHDRAWAL"], from: ["MANUAL_REVIEW"], event: "APPROVE", to: "PENDING", effects: ["SEND_PAYOUT"] },
  { processes: ["MOVE"], from: ["MANUAL_REVIEW"], event: "APPROVE", to: "CAPTURED", effects: ["MOVE"] },
  { processes: ["WITHDRAWAL"], from: ["MANUAL_REVIEW"], event: "DENY", to: "REFUSED", effects: ["RELEASE_HOLD"] },
  { processes: ["CARD_DEPOSIT", "BANK_DEPOSIT", "MOVE"], from: ["MANUAL_REVIEW"], event: "DENY", to: "REFUSED" },

  // ——— the client ends one not yet executed (never while a provider call is under way) ———
  { processes: ["CARD_DEPOSIT"], from: ["MANUAL_REVIEW", "PENDING", "AWAITING_PAYMENT"], event: "CANCEL", to: "CANCELED", guard: "NO_CALL_IN_FLIGHT" },
  { processes: ["CARD_DEPOSIT"], from: ["MANUAL_REVIEW", "PENDING", "AWAITING_PAYMENT"], event: "FAIL", to: "ERROR", guard: "NO_CALL_IN_FLIGHT" },
  { processes: ["BANK_DEPOSIT"], from: ["MANUAL_REVIEW", "AWAITING_PAYMENT"], event: "CANCEL", to: "CANCELED" },
  { processes: ["BANK_DEPOSIT"], from: ["MANUAL_REVIEW", "AWAITING_PAYMENT"], event: "FAIL", to: "ERROR" },
  { processes: ["WITHDRAWAL"], from: ["MANUAL_REVIEW", "PENDING"], event: "CANCEL", to: "CANCELED", effects: ["RELEASE_HOLD"], guard: "NO_CALL_IN_FLIGHT" },
  { processes: ["WITHDRAWAL"], from: ["MANUAL_REVIEW", "PENDING"], event: "FAIL", to: "ERROR", effects: ["RELEASE_HOLD"], guard: "NO_CALL_IN_FLIGHT" },
  { processes: ["MOVE"], from: ["MANUAL_REVIEW"], event: "CANCEL", to: "CANCELED" },
  { processes: ["MOVE"], from: ["MANUAL_REVIEW"], event: "FAIL", to: "ERROR" },

  // ——— the client's word on an executed one ———
  { processes: ALL, from: ["CAPTURED"], event: "SETTLE", to: "SETTLED" },
  { processes: ["CARD_DEPOSIT"], from: DONE, event: "REFUND", to: "REFUNDED", effects: ["REVERSE", "REFUND_CARD"] },
  { processes: ["BANK_DEPOSIT", "WITHDRAWAL", "MOVE"], from: DONE, event: "REFUND", to: "REFUNDED", effects: ["REVERSE_REPORTED"] },
  { processes: ALL, from: DONE, event: "CHARGEBACK", to: "CHARGED_BACK", effects: ["REVERSE_REPORTED"] },

  // ——— the acquirer ———
  { processes: ["CARD_DEPOSIT"], from: ["PENDING", "AWAITING_PAYMENT"], event: "CHARGE_APPROVED", to: "CAPTURED", effects: ["CREDIT_DEPOSIT", "SEND_CRYPTO"] },
  { processes: ["CARD_DEPOSIT"], from: ["PENDING", "AWAITING_PAYMENT"], event: "CHARGE_DECLINED", to: "REFUSED" },
  { processes: ["CARD_DEPOSIT"], from: ["PENDING"], event: "CHARGE_CHALLENGED", to: "AWAITING_PAYMENT" },
  // No answer after the last attempt: whatever the acquirer did under the key is given back.
  { processes: ["CARD_DEPOSIT"], from: ["PENDING", "AWAITING_PAYMENT"], event: "CHARGE_LOST", to: "ERROR", effects: ["REFUND_CARD"] },
  // Late: the card was charged for a deposit that had ended meanwhile → refunded.
  { processes: ["CARD_DEPOSIT"], from: CLOSED, event: "CHARGE_LOST", to: null, effects: ["REFUND_CARD"] },
  { processes: ["CARD_DEPOSIT"], from: DONE, event: "CHARGE_LOST", to: null },
  { processes: ["CARD_DEPOSIT"], from: CLOSED, event: "CHARGE_APPROVED", to: null, effects: ["REFUND_CARD"] },
  { processes: ["CARD_DEPOSIT"], from: CLOSED, event: "CHARGE_DECLINED", to: null },
  { processes: ["CARD_DEPOSIT"], from: CLOSED, event: "CHARGE_CHALLENGED", to: null },

  // ——— the bank ———
  { processes: ["BANK_DEPOSIT"], from: ["AWAITING_PAYMENT"], event: "FUNDS_RECEIVED", to: "CAPTURED", effects: ["CREDIT_DEPOSIT"] },
  // Money for a deposit that does not take it (any more): held apart, then sent back.
  { processes: ["BANK_DEPOSIT"], from: ["MANUAL_REVIEW", ...CLOSED, ...DONE], event: "FUNDS_RECEIVED", to: null, effects: ["HOLD_APART_AND_RETURN"] },
  { processes: ["WITHDRAWAL"], from: ["PENDING"], event: "PAYOUT_ACCEPTED", to: "AUTHORIZED", effects: ["TRACK_PAYOUT"] },
  { processes: ["WITHDRAWAL"], from: ["AUTHORIZED"], event: "PAYOUT_SETTLED", to: "CAPTURED", effects: ["SETTLE_HOLD"] },
  { processes: ["WITHDRAWAL"], from: ["AUTHORIZED"], event: "PAYOUT_RETURNED", to: "ERROR", effects: ["RELEASE_HOLD"] },
  { processes: ["WITHDRAWAL"], from: ["PENDING"], event: "PAYOUT_NOT_SENT", to: "ERROR", effects: ["RELEASE_HOLD"] },
  { processes: ["WITHDRAWAL"], from: ["PENDING"], event: "PAYOUT_DECLINED", to: "REFUSED", effects: ["RELEASE_HOLD"] },
];

/** Events whose repetition on a transaction already in their target status is a no-op (the client said it twice). */
export const REPEATABLE: Partial<Record<ProcessEvent, TransactionStatus>> = {
  SETTLE: "SETTLED",
  REFUND: "REFUNDED",
  CHARGEBACK: "CHARGED_BACK",
  CANCEL: "CANCELED",
};

/** The rail a withdrawal pays out on: a card (the acquirer's payout) or a bank account. */
export function payoutRailOf(row: { payment_method?: unknown }): "card" | "bank" {
  return json<{ type: string }>(row.payment_method)?.type === "CREDIT_CARD" ? "card" : "bank";
}

export function processKindOf(row: { type: string; payment_method?: unknown }): ProcessKind {
  if (row.type === "WITHDRAWAL") return "WITHDRAWAL";
  if (row.type === "DEPOSIT")
    return json<{ type: string }>(row.payment_method)?.type === "CREDIT_CARD"
      ? "CARD_DEPOSIT"
      : "BANK_DEPOSIT";
  return "MOVE";
}

export function findTransition(kind: ProcessKind, from: From, event: ProcessEvent): Transition | undefined {
  return TRANSITIONS.find((t) => t.event === event && t.processes.includes(kind) && t.from.includes(from));
}
