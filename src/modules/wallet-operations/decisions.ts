import type { RequestContext } from "../../lib/context.ts";
import { formatAmount } from "../../lib/money.ts";
import type { Session } from "../logins/service.ts";
import type { MonitoringResult } from "../monitoring/rules.ts";
import { json, type Transaction, TransactionError, type Transactions } from "../transactions/service.ts";
import { walletError } from "./errors.ts";
import { decisionBy, mustBeInReview, walletStatus } from "./process.ts";

/**
 * People's decisions on wallet requests: an accountant accepts or declines a top-up request or a
 * withdrawal, a compliance officer clears or rejects what the AML check held. Each is idempotent
 * (the same decision again answers the request as it is) with exactly one winner when two decide
 * at once; the other decision after one is a 409.
 */

/** The requests an accountant decides, by the Wallet API's path, and the operations each covers. */
export const DECIDABLE = {
  "bank-top-ups": ["TOP_UP_BANK"],
  "bank-withdrawals": ["WITHDRAW_BANK"],
  "card-withdrawals": ["WITHDRAW_CARD"],
} as const;

export type DecidableKind = keyof typeof DECIDABLE;
export type Verb = "accept" | "decline";

export class WalletDecisions {
  constructor(
    private readonly transactions: Transactions,
    private readonly byNumber: (session: Session, requestIdentifier: string) => Promise<Transaction>,
  ) {}

  /** An accountant's accept or decline of request `requestIdentifier` of `kind`. */
  async decide(
    session: Session,
    context: RequestContext,
    kind: DecidableKind,
    verb: Verb,
    requestIdentifier: string,
  ): Promise<Transaction> {
    const t = await this.byNumber(session, requestIdentifier);
    const operation = (t.process as { operation?: string } | null)?.operation;
    if (!operation || !(DECIDABLE[kind] as readonly string[]).includes(operation))
      throw walletError(
        "NOT_FOUND",
        "REQUEST_NOT_FOUND",
        `no ${kind.replace("-", " ").slice(0, -1)} request ${requestIdentifier}`,
      );
    const settled = decided(t, verb);
    if (settled) return settled;
    // Before accept, the AML check runs again with what is known now (a user blocked, a name on the
    // sanctions list or a country prohibited since the request was made): a DENY blocks the accept.
    if (verb === "accept" && (t.status === "MANUAL_REVIEW" || t.status === "AWAITING_PAYMENT")) {
      const screened = await this.transactions.screen(session.clientId, t.requestId);
      if (screened.status === "DENY")
        throw walletError(
          "CONFLICT",
          "AML_DENIED",
          `the AML check denies this request (${screened.reasons.join(", ")}): decline it`,
        );
    }
    try {
      return await this.apply(session, context, kind, verb, t);
    } catch (error) {
      if (
        !(error instanceof TransactionError) ||
        error.kind !== "CONFLICT" ||
        error.code === "AML_REVIEW_PENDING"
      )
        throw error;
      // Someone decided at the same moment: the same decision is this one's answer, the other a 409.
      const same = decided(await this.transactions.get(session.clientId, t.requestId), verb);
      if (same) return same;
      throw error;
    }
  }

  /** A compliance officer clears a request the AML check held: a withdrawal then waits for an accountant. */
  async clear(session: Session, context: RequestContext, requestIdentifier: string): Promise<Transaction> {
    const t = await this.byNumber(session, requestIdentifier);
    const waitsForAccountant = t.type === "WITHDRAWAL" && t.process !== null;
    return waitsForAccountant
      ? this.transactions.clearReview(session.clientId, t.requestId, context.actor)
      : this.transactions.decideReview(session.clientId, t.requestId, "APPROVE", context.actor, {
          record: decisionBy(session, "cleared"),
          check: mustBeInReview,
        });
  }

  /** A compliance officer rejects a request the AML check held (a hold is released). */
  async reject(session: Session, context: RequestContext, requestIdentifier: string): Promise<Transaction> {
    const t = await this.byNumber(session, requestIdentifier);
    return this.transactions.decideReview(session.clientId, t.requestId, "DENY", context.actor, {
      record: decisionBy(session, "rejected"),
      check: mustBeInReview,
    });
  }

  private async apply(
    session: Session,
    context: RequestContext,
    kind: DecidableKind,
    verb: Verb,
    t: Transaction,
  ): Promise<Transaction> {
    const { transactions } = this;
    const record = decisionBy(session, verb === "accept" ? "accepted" : "declined");
    if (kind !== "bank-top-ups")
      return transactions.decideReview(
        session.clientId,
        t.requestId,
        verb === "accept" ? "APPROVE" : "DENY",
        context.actor,
        {
          record,
          check: (row) => {
            if (verb === "accept" && json<MonitoringResult>(row.monitoring)?.status === "MANUAL_REVIEW")
              throw new TransactionError(
                "CONFLICT",
                "AML_REVIEW_PENDING",
                "the AML check holds this request for review: a compliance officer must clear it first",
              );
          },
        },
      );
    if (verb === "decline") return transactions.cancel(session.clientId, t.requestId, context.actor);
    const instructions = t.paymentInstructions as { reference?: string } | null;
    if (t.status !== "AWAITING_PAYMENT" || !instructions?.reference) throw notDecidable(t);
    const { transaction, outcome } = await transactions.incomingBankTransfer(
      instructions.reference,
      formatAmount(t.amount, t.scale),
      t.currency,
      `accept-${t.number}`,
      { actor: context.actor, decision: record },
    );
    if (outcome === "RETURNING") throw notDecidable(transaction);
    // A second accept at the same moment found the transfer recorded: the request as it is now.
    return outcome === "DUPLICATE" ? transactions.get(session.clientId, t.requestId) : transaction;
  }
}

/** The request as it is when it was decided `verb` already; a 409 when decided the other way. */
function decided(t: Transaction, verb: Verb): Transaction | undefined {
  const isTopUp = t.type === "DEPOSIT";
  const accepted = isTopUp ? ["CAPTURED", "SETTLED"].includes(t.status) : t.decision?.outcome === "accepted";
  const declined = isTopUp ? t.status === "CANCELED" : t.decision?.outcome === "declined";
  if ((verb === "accept" && accepted) || (verb === "decline" && declined)) return t;
  if (accepted || declined)
    throw walletError(
      "CONFLICT",
      "ALREADY_DECIDED",
      `this request was ${accepted ? "accepted" : "declined"} already`,
    );
  if (!isTopUp && t.status !== "MANUAL_REVIEW") throw notDecidable(t);
  return undefined;
}

function notDecidable(t: Transaction) {
  if (t.status === "MANUAL_REVIEW" && t.monitoring?.status === "MANUAL_REVIEW")
    return walletError(
      "CONFLICT",
      "AML_REVIEW_PENDING",
      "the AML check holds this request for review: a compliance officer must clear it first",
    );
  return walletError(
    "CONFLICT",
    "NOT_DECIDABLE",
    `this request cannot be decided any more (it is ${walletStatus(t)})`,
  );
}
