import type { Db } from "../../db/database.ts";
import * as ledger from "../ledger/service.ts";
import type { Leg, Transfer } from "../ledger/types.ts";

/**
 * Posting recipes: the ledger legs of each business movement, named, pure, and each with its
 * inverse. The process table (process.ts) names which recipe a transition books; nothing else
 * builds legs. Leg ids are derived from the request id so a retried transition is a replay.
 *
 * Operation ids: every leg of transaction R belongs to an operation `txn:R` or `txn:R:<what>`, so
 * the ledger can say what one transaction moved (reversals, reconciliation).
 */

export const operationOf = (requestId: string, what?: string) =>
  what ? `txn:${requestId}:${what}` : `txn:${requestId}`;

export type Rail = "card" | "bank" | "chain";

/** The system accounts a recipe books against, opened on first use (one per client and currency). */
export const systemAccount = {
  transit: (tx: Db, clientId: string, currency: string, rail: Rail) =>
    ledger.systemAccountId(tx, { clientId, currency, kind: "TRANSIT", rail }),
  /** Money that arrived and belongs to no one yet (a transfer for a closed deposit), until returned. */
  unapplied: (tx: Db, clientId: string, currency: string) =>
    ledger.systemAccountId(tx, { clientId, currency, kind: "TRANSIT", rail: "bank-unapplied" }),
  fees: (tx: Db, clientId: string, currency: string) =>
    ledger.systemAccountId(tx, { clientId, currency, kind: "FEES" }),
  fx: (tx: Db, clientId: string, currency: string) =>
    ledger.systemAccountId(tx, { clientId, currency, kind: "FX" }),
  settlement: (tx: Db, clientId: string, currency: string) =>
    ledger.systemAccountId(tx, { clientId, currency, kind: "SETTLEMENT" }),
  /**
   * Opens (with the pool, so that their ids are cached) the system accounts a money movement in
   * `currency` books to, before its database transaction.
   */
  async warm(db: Db, clientId: string, currency: string) {
    await Promise.all([
      systemAccount.transit(db, clientId, currency, "card"),
      systemAccount.transit(db, clientId, currency, "bank"),
      systemAccount.fees(db, clientId, currency),
    ]);
  },
};

interface Movement {
  requestId: string;
  currency: string;
  amount: bigint;
  fee: bigint;
}

/** A captured deposit: the rail's transit account → the wallet (net of the fee), → fees (the fee). */
export function depositCredit(m: Movement & { transit: string; wallet: string; fees: string }): Leg[] {
  const legs: Leg[] = [];
  if (m.amount - m.fee > 0n)
    legs.push(single(`${m.requestId}:deposit`, m.transit, m.wallet, m.amount - m.fee, m.currency));
  if (m.fee > 0n) legs.push(single(`${m.requestId}:fee`, m.transit, m.fees, m.fee, m.currency));
  return legs;
}

/**
 * A captured purchase: the card's fiat, net of the fee, sold to the FX position; the crypto bought
 * from the FX position into the user's account; the fee to fees. All legs or none.
 */
export function purchaseCredit(
  m: Movement & {
    transit: string;
    fxSource: string;
    fxTarget: string;
    fees: string;
    wallet: string;
    targetCurrency: string;
    targetAmount: bigint;
  },
): Leg[] {
  const legs = [
    single(`${m.requestId}:sell`, m.transit, m.fxSource, m.amount - m.fee, m.currency),
    single(`${m.requestId}:buy`, m.fxTarget, m.wallet, m.targetAmount, m.targetCurrency),
  ];
  if (m.fee > 0n) legs.push(single(`${m.requestId}:fee`, m.transit, m.fees, m.fee, m.currency));
  return legs;
}

/** A purchase's crypto sent to the chain: the user's account → the chain's transit account. */
export function chainSend(m: {
  requestId: string;
  wallet: string;
  chainTransit: string;
  amount: bigint;
  currency: string;
}): Leg[] {
  return [single(`${m.requestId}:chain`, m.wallet, m.chainTransit, m.amount, m.currency)];
}

/** A withdrawal's hold: amount to the bank transit account, fee to the fees account, both pending. */
export function withdrawalHold(m: Movement & { wallet: string; transit: string; fees: string }): Leg[] {
  const legs: Leg[] = [
    {
      type: "PENDING",
      id: `${m.requestId}:hold`,
      debitAccountId: m.wallet,
      creditAccountId: m.transit,
      amount: m.amount,
      currency: m.currency,
    },
  ];
  if (m.fee > 0n)
    legs.push({
      type: "PENDING",
      id: `${m.requestId}:hold-fee`,
      debitAccountId: m.wallet,
      creditAccountId: m.fees,
      amount: m.fee,
      currency: m.currency,
    });
  return legs;
}

/** The payout settled: the holds become final. */
export function withdrawalSettle(m: { requestId: string; fee: bigint }): Leg[] {
  return resolveHolds(m, "POST");
}

/** The payout will not happen (denied, cancelled, returned): the holds are released. */
export function withdrawalRelease(m: { requestId: string; fee: bigint }): Leg[] {
  return resolveHolds(m, "VOID");
}

function resolveHolds(m: { requestId: string; fee: bigint }, action: "POST" | "VOID"): Leg[] {
  const verb = action.toLowerCase();
  const legs: Leg[] = [{ type: action, id: `${m.requestId}:${verb}`, pendingId: `${m.requestId}:hold` }];
  if (m.fee > 0n)
    legs.push({ type: action, id: `${m.requestId}:${verb}-fee`, pendingId: `${m.requestId}:hold-fee` });
  return legs;
}

/** Wallet to wallet (transfer, payment): amount to the destination, fee to the fees account. */
export function walletMove(m: Movement & { source: string; destination: string; fees: string }): Leg[] {
  const legs = [single(`${m.requestId}:move`, m.source, m.destination, m.amount, m.currency)];
  if (m.fee > 0n) legs.push(single(`${m.requestId}:fee`, m.source, m.fees, m.fee, m.currency));
  return legs;
}

/** An exchange: the source (net of fee) sold to the FX position, the target bought from it, the fee to fees. */
export function fxTrade(
  m: Movement & {
    source: string;
    target: string;
    fxSource: string;
    fxTarget: string;
    fees: string;
    targetCurrency: string;
    targetAmount: bigint;
  },
): Leg[] {
  const legs = [
    single(`${m.requestId}:sell`, m.source, m.fxSource, m.amount - m.fee, m.currency),
    single(`${m.requestId}:buy`, m.fxTarget, m.target, m.targetAmount, m.targetCurrency),
  ];
  if (m.fee > 0n) legs.push(single(`${m.requestId}:fee`, m.source, m.fees, m.fee, m.currency));
  return legs;
}

/** Money that arrived for a deposit that no longer takes it: held apart until the bank sends it back. */
export function unappliedFunds(m: {
  requestId: string;
  transferId: string;
  transit: string;
  unapplied: string;
  amount: bigint;
  currency: string;
}): Leg[] {
  return [single(`${m.requestId}:unapplied:${m.transferId}`, m.transit, m.unapplied, m.amount, m.currency)];
}

/** The inverse of `unappliedFunds`, booked when the bank has sent the money back. */
export function returnedFunds(m: {
  requestId: string;
  transferId: string;
  transit: string;
  unapplied: string;
  amount: bigint;
  currency: string;
}): Leg[] {
  return [single(`${m.requestId}:returned:${m.transferId}`, m.unapplied, m.transit, m.amount, m.currency)];
}

/**
 * The inverse of what a transaction moved: every posted movement (single legs and posted holds,
 * of every type) sent back the other way, with ids derived from the originals. Pending holds are
 * not movements yet: a transaction with one open is not reversible (its hold is released instead).
 */
export function inverse(transfers: Transfer[], suffix: string): Leg[] {
  return transfers
    .filter((t) => (t.type === "SINGLE" || t.type === "POST") && t.status === "POSTED")
    .map((t) => single(`${t.id}:${suffix}`, t.creditAccountId, t.debitAccountId, t.amount, t.currency));
}

function single(id: string, debit: string, credit: string, amount: bigint, currency: string): Leg {
  return { type: "SINGLE", id, debitAccountId: debit, creditAccountId: credit, amount, currency };
}
