import { createHash } from "node:crypto";
import { ApiError } from "../../http/errors.ts";
import { newId } from "../../lib/ids.ts";
import { formatAmount } from "../../lib/money.ts";
import { findCurrencyDetails } from "../../modules/catalog/service.ts";
import { getClient } from "../../modules/clients/service.ts";
import type { Commission } from "../../modules/commissions/arithmetic.ts";
import type { Operation } from "../../modules/commissions/service.ts";
import * as ledger from "../../modules/ledger/service.ts";
import { isStaff, type Session } from "../../modules/logins/service.ts";
import type { MonitoringResult } from "../../modules/monitoring/rules.ts";
import { parseAmountOrThrow } from "../../modules/transactions/quote.ts";
import { json, type Transaction, TransactionError } from "../../modules/transactions/service.ts";
import type { Coin } from "../../modules/wallets/service.ts";
import { walletFigures } from "../../modules/wallets/service.ts";
import type { Services } from "../../services.ts";

/**
 * The Wallet API's operations on the shared core: each one is a core transaction (deposit,
 * withdrawal, transfer) priced by the client's commission profiles, with the face's view of it
 * (operation, direction, what the sender paid and the recipient got) kept on the transaction.
 *
 * How a commission maps onto the core: the core books a deposit's `amount` from the rail and
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
};

/** The status a Wallet API caller sees, from the core's. */
export function walletStatus(t: Transaction): WalletStatus {
  switch (t.status) {
    case "MANUAL_REVIEW":
      return t.monitoring?.status === "MANUAL_REVIEW" ? "waiting_for_approval" : "pending";
    case "PENDING":
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

const OPERATION_OF_TYPE: Record<string, Operation> = {
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

export class WalletOperations {
  constructor(private readonly services: Services) {}

  private get db() {
    return this.services.database.db;
  }

  /** A coin of the client by serial (404); `own`: it must be the caller's (403 otherwise). */
  async coin(session: Session, serial: string, options: { own: boolean; field?: string }): Promise<Coin> {
    const coin = await this.services.wallets.bySerial(session.clientId, serial);
    if (!coin)
      throw new ApiError("NOT_FOUND", `no account ${serial}`, {
        errors: [{ field: options.field ?? "coinSerial", message: "no such account" }],
      });
    if (options.own && coin.account.ownerId !== session.userId)
      throw new ApiError("FORBIDDEN", "only the account's owner may spend from it");
    return coin;
  }

  /** A customer may act on their own coins; staff (where the route lets them) on any of the client's. */
  async coinFor(session: Session, serial: string): Promise<Coin> {
    return this.coin(session, serial, { own: !isStaff(session.role) });
  }

  /** The commission of an operation on `amount` (major units) in `currency`. */
  async calculate(clientId: string, operation: Operation, currency: string, amountInput: string | number) {
    const client = await getClient(this.db, clientId);
    if (
      (client.settings as { disabledWalletOperations?: string[] }).disabledWalletOperations?.includes(
        operation,
      )
    )
      throw new ApiError("FORBIDDEN", `${operation} is switched off for this wallet`);
    const scale = await this.services.transactions.quotes.scaleOf(clientId, currency);
    const amount = parseAmountOrThrow(amountInput, scale);
    const commission = await this.services.commissions.quote(clientId, { operation, currency, amount });
    return { commission, scale, currency };
  }

  /** The core's amount of a wallet operation (see the module comment). */
  coreAmount(operation: Operation, commission: Commission): bigint {
    return operation === "TOP_UP_BANK" || operation === "TOP_UP_CARD"
      ? commission.senderAmount
      : commission.recipientAmount;
  }

  /**
   * The core request id of a wallet operation: derived from the caller's `Idempotency-Key` when it
   * gave one (a retry after a crash finds the same transaction), otherwise new.
   */
  requestId(session: Session, idempotencyKey: string | undefined): string {
    if (!idempotencyKey) return `w-${newId()}`;
    const digest = createHash("sha256")
      .update(`${session.clientId}\u0000${session.userId}\u0000${idempotencyKey}`)
      .digest("base64url");
    return `wk-${digest.slice(0, 40)}`;
  }

  processOf(
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

  /** A process by its requestIdentifier, seen by `session` (a customer: only their own). */
  async byRequestIdentifier(session: Session, requestIdentifier: string): Promise<Transaction> {
    const found = await this.services.transactions.findByNumber(session.clientId, requestIdentifier);
    if (
      !found ||
      (!isStaff(session.role) &&
        found.userId !== session.userId &&
        found.counterpartyUserId !== session.userId)
    )
      throw new ApiError("NOT_FOUND", `no request ${requestIdentifier}`);
    return found;
  }

  /** A process by its id (the core request id), seen by `session`. */
  async byId(session: Session, id: string): Promise<Transaction> {
    const found = await this.services.transactions.get(session.clientId, id).catch((error: unknown) => {
      if (error instanceof TransactionError && error.kind === "NOT_FOUND") return undefined;
      throw error;
    });
    if (
      !found ||
      (!isStaff(session.role) &&
        found.userId !== session.userId &&
        found.counterpartyUserId !== session.userId)
    )
      throw new ApiError("NOT_FOUND", `no business process ${id}`);
    return found;
  }

  /** The business-process view of a transaction, with its ledger legs. */
  async show(t: Transaction, options: { legs?: boolean } = {}) {
    const process = t.process as WalletProcess | null;
    const scale = t.scale;
    const legs =
      options.legs === false
        ? []
        : await ledger.listEntriesOfGroup(this.db, t.clientId, `txn:${t.requestId}`);
    const amount = process?.transactionAmount ?? formatAmount(t.amount, scale);
    return {
      id: t.requestId,
      type: process?.operation ?? OPERATION_OF_TYPE[t.type] ?? t.type,
      status: walletStatus(t),
      requestIdentifier: Number(t.number),
      requestStatus: t.status,
      amount,
      commission: process?.commission ?? formatAmount(t.fee, scale),
      netAmount:
        process?.recipientAmount ?? formatAmount(t.type === "DEPOSIT" ? t.amount - t.fee : t.amount, scale),
      senderAmount:
        process?.senderAmount ?? formatAmount(t.type === "DEPOSIT" ? t.amount : t.amount + t.fee, scale),
      currency: t.currency,
      description: process?.description ?? null,
      createdAt: t.createdAt.toISOString(),
      transactions: legs.map((l) => ({
        id: l.id,
        type: l.type,
        status: l.status,
        debitAccountId: l.debitAccountId,
        creditAccountId: l.creditAccountId,
        amount: formatAmount(l.amount, scale),
        currency: l.currency,
        createdAt: l.createdAt.toISOString(),
      })),
    };
  }

  /** The commission object of the spec (amounts in major units). */
  calculation(commission: Commission, scale: number, currency: string) {
    return {
      transactionAmount: formatAmount(commission.transactionAmount, scale),
      senderAmountPush: formatAmount(commission.senderAmount, scale),
      recipientAmountPush: formatAmount(commission.recipientAmount, scale),
      commissionAmountPush: formatAmount(commission.fee, scale),
      currency: { code: currency, fraction: scale },
    };
  }

  /** A coin as `GET /coins` shows it. */
  async showCoin(coin: Coin, mainId: string | undefined) {
    const found = await findCurrencyDetails(this.db, coin.account.clientId, coin.account.currency);
    if (!found)
      throw new Error(`no currency ${coin.account.currency} for an account of ${coin.account.clientId}`);
    const details = { id: found.id, symbol: found.symbol, name: found.name, scale: found.fraction };
    const f = walletFigures(coin.account);
    const held = f.totalBalance - f.availableBalance;
    return {
      serial: coin.serial,
      name: coin.account.label ?? `${coin.account.currency} account`,
      amount: formatAmount(f.totalBalance, details.scale),
      availableAmount: formatAmount(f.availableBalance, details.scale),
      heldAmount: formatAmount(held, details.scale),
      futureAmount: formatAmount(f.pendingBalance, details.scale),
      active: true,
      type: "client",
      main: coin.account.id === mainId,
      issuerId: coin.issuerId,
      currency: {
        id: details.id,
        code: coin.account.currency,
        symbol: details.symbol,
        name: details.name,
        fraction: details.scale,
      },
      createdAt: coin.account.createdAt.toISOString(),
    };
  }
}
