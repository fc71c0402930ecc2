// Over 400 lines on purpose: each Wallet API money operation is one method, the whole path of its request (checks → price → one core call); transfers are in transfers.ts, decisions in decisions.ts.
import type { Db } from "../../db/database.ts";
import type { RequestContext } from "../../lib/context.ts";
import { formatAmount } from "../../lib/money.ts";
import { findCurrencyDetails, getBank } from "../catalog/service.ts";
import { getClient } from "../clients/service.ts";
import type { CommissionProfiles, Operation } from "../commissions/service.ts";
import * as ledger from "../ledger/service.ts";
import { isStaff, type Logins, type Session } from "../logins/service.ts";
import { parseAmountOrThrow } from "../transactions/quote.ts";
import {
  type Transaction,
  TransactionError,
  type Transactions,
  type WithdrawalInput,
} from "../transactions/service.ts";
import type { Coin, Wallets } from "../wallets/service.ts";
import { type DecidableKind, type Verb, WalletDecisions } from "./decisions.ts";
import { invalid, walletError } from "./errors.ts";
import { coreAmount, decisionBy, processOf, requestIdOf } from "./process.ts";

export interface WalletOperationDependencies {
  db: Db;
  wallets: Wallets;
  transactions: Transactions;
  commissions: CommissionProfiles;
  logins: Logins;
}

export interface CardDetails {
  cardNumber: string;
  expirationMonth: number;
  expirationYear: number;
  cvv?: string | undefined;
  cardHolder: string;
}

export interface BankDetails {
  fullName: string;
  iban?: string | undefined;
  bankAccountNumber?: string | undefined;
  bic?: string | undefined;
  swift?: string | undefined;
  bankId?: string | undefined;
}

export type Amount = string | number;

/**
 * The Wallet API's operations on the shared core (process.ts says how): each is a core deposit,
 * withdrawal or transfer priced by the client's commission profiles — with the rules of a
 * white-label wallet on top (accounts by serial, operations a client switched off, who may act on
 * which account, the request id from the Idempotency-Key) and the people's decisions
 * (decisions.ts). The Wallet face parses, calls one of these, and renders the answer.
 */
export class WalletOperations {
  private readonly decisions: WalletDecisions;

  constructor(private readonly deps: WalletOperationDependencies) {
    this.decisions = new WalletDecisions(deps.transactions, (session, number) =>
      this.byNumber(session, number),
    );
  }

  // ——— accounts ———

  /** A coin of the client by serial (404); `own`: it must be the caller's (403 otherwise). */
  async coin(session: Session, serial: string, options: { own: boolean; field?: string }): Promise<Coin> {
    const coin = await this.deps.wallets.bySerial(session.clientId, serial);
    if (!coin)
      throw walletError("NOT_FOUND", "ACCOUNT_NOT_FOUND", `no account ${serial}`, [
        { field: options.field ?? "coinSerial", message: "no such account" },
      ]);
    if (options.own && coin.account.ownerId !== session.userId)
      throw walletError("FORBIDDEN", "NOT_THE_OWNER", "only the account's owner may spend from it");
    return coin;
  }

  /** The caller's coins, each with whether it is the main (default) one of its currency. */
  async coins(session: Session): Promise<{ coin: Coin; main: boolean }[]> {
    const coins = await this.deps.wallets.coins(session.clientId, session.userId);
    const mains = new Map<string, string | undefined>();
    for (const c of coins)
      if (!mains.has(c.account.currency))
        mains.set(
          c.account.currency,
          await this.deps.wallets.defaultId(session.clientId, session.userId, c.account.currency),
        );
    return coins.map((coin) => ({ coin, main: coin.account.id === mains.get(coin.account.currency) }));
  }

  /** Opens a coin for the caller in a currency (under its first active issuer, or the one named). */
  async openCoin(
    session: Session,
    currencyCode: string,
    options: { name: string; issuerId?: string | undefined },
  ) {
    const { clientId, userId } = session;
    const coin = await this.deps.wallets.openCoin(clientId, userId, currencyCode, options);
    const main = await this.deps.wallets.defaultId(clientId, userId, coin.account.currency);
    return { coin, main: coin.account.id === main };
  }

  /** Whose account a serial is, and its currency: the owner's display name, never their login. */
  async ownerOf(session: Session, serial: string) {
    const coin = await this.coin(session, serial, { own: false, field: "serial" });
    const owner = coin.account.ownerId ?? "";
    const login = await this.deps.logins.get(session.clientId, owner).catch(() => undefined);
    return {
      currency: coin.account.currency,
      owner: {
        id: owner,
        type: login?.organization.type ?? "individual",
        name: login?.name ?? maskLogin(login?.login ?? owner),
      },
    };
  }

  /** The currency's catalog details (symbol, name, fraction) for showing a coin. */
  async currencyOf(coin: Coin) {
    const found = await findCurrencyDetails(this.deps.db, coin.account.clientId, coin.account.currency);
    if (!found)
      throw new Error(`no currency ${coin.account.currency} for an account of ${coin.account.clientId}`);
    return found;
  }

  // ——— pricing ———

  /** The commission of an operation on `amount` (major units) from the coin `serial`. */
  async calculate(session: Session, operation: Operation, serial: string, amount: Amount) {
    const coin = await this.coinFor(session, serial);
    return { coin, ...(await this.price(session.clientId, operation, coin.account.currency, amount)) };
  }

  /** The commission of an operation on `amount` (major units) in `currency` (403 if switched off). */
  async price(clientId: string, operation: Operation, currency: string, amountInput: Amount) {
    const client = await getClient(this.deps.db, clientId);
    const disabled = (client.settings as { disabledWalletOperations?: string[] }).disabledWalletOperations;
    if (disabled?.includes(operation))
      throw walletError("FORBIDDEN", "OPERATION_DISABLED", `${operation} is switched off for this wallet`);
    const scale = await this.deps.transactions.quotes.scaleOf(clientId, currency);
    const amount = parseAmountOrThrow(amountInput, scale);
    const commission = await this.deps.commissions.quote(clientId, { operation, currency, amount });
    return { commission, scale, currency };
  }

  // ——— top-ups ———

  /** A customer asks to top up by bank transfer: payment instructions, pending until the money comes. */
  async requestBankTopUp(
    session: Session,
    context: RequestContext,
    input: {
      coinSerial: string;
      amount: Amount;
      bankId?: string | undefined;
      description?: string | undefined;
    },
  ): Promise<Transaction> {
    if (input.bankId) await getBank(this.deps.db, session.clientId, input.bankId);
    const { coin, commission, scale, currency } = await this.calculate(
      session,
      "TOP_UP_BANK",
      input.coinSerial,
      input.amount,
    );
    return this.deps.transactions.bankDeposit(
      {
        clientId: session.clientId,
        userId: session.userId,
        requestId: requestIdOf(session, context.requestId),
        amount: formatAmount(coreAmount("TOP_UP_BANK", commission), scale),
        currency,
        paymentMethodType: "WIRE",
        destinationWalletId: coin.account.id,
        fee: commission.fee,
        process: processOf("TOP_UP_BANK", commission, scale, {
          coinSerial: coin.serial,
          ...(input.description ? { description: input.description } : {}),
        }),
      },
      context.actor,
    );
  }

  /** Staff record a bank payment that arrived: the coin's owner credited at once, in one core operation. */
  async recordBankPayment(
    session: Session,
    context: RequestContext,
    input: {
      coinSerial: string;
      amount: Amount;
      bankId: string;
      iban?: string | undefined;
      bankAccountNumber?: string | undefined;
      description?: string | undefined;
    },
  ): Promise<Transaction> {
    if (!input.iban && !input.bankAccountNumber)
      throw invalid("iban", "the payer's iban or bankAccountNumber is needed");
    await getBank(this.deps.db, session.clientId, input.bankId);
    const coin = await this.coin(session, input.coinSerial, { own: false });
    const { commission, scale, currency } = await this.price(
      session.clientId,
      "TOP_UP_BANK",
      coin.account.currency,
      input.amount,
    );
    return this.deps.transactions.recordBankPayment(
      {
        clientId: session.clientId,
        userId: coin.account.ownerId ?? "",
        requestId: requestIdOf(session, context.requestId),
        amount: formatAmount(coreAmount("TOP_UP_BANK", commission), scale),
        currency,
        paymentMethodType: "WIRE",
        destinationWalletId: coin.account.id,
        fee: commission.fee,
        process: processOf("TOP_UP_BANK", commission, scale, {
          coinSerial: coin.serial,
          paymentTool: "BANK",
          ...(input.description ? { description: input.description } : {}),
        }),
      },
      { actor: context.actor, decision: decisionBy(session, "recorded") },
    );
  }

  /** A top-up from a card through the acquirer; a declined card is a 402 and nothing moves. */
  async topUpByCard(
    session: Session,
    context: RequestContext,
    input: { coinSerial: string; amount: Amount; card: CardDetails },
  ): Promise<Transaction> {
    const { coin, commission, scale, currency } = await this.calculate(
      session,
      "TOP_UP_CARD",
      input.coinSerial,
      input.amount,
    );
    const { card } = input;
    const t = await this.deps.transactions.deposit(
      {
        clientId: session.clientId,
        userId: session.userId,
        requestId: requestIdOf(session, context.requestId),
        amount: formatAmount(coreAmount("TOP_UP_CARD", commission), scale),
        currency,
        destinationWalletId: coin.account.id,
        fee: commission.fee,
        sourceMethod: { paymentMethodType: "CREDIT_CARD", ...card, cardNumber: digits(card.cardNumber) },
        process: processOf("TOP_UP_CARD", commission, scale, {
          coinSerial: coin.serial,
          paymentTool: "CARD",
        }),
      },
      context.actor,
    );
    if (t.status === "REFUSED" && t.statusDetail)
      throw walletError(
        "PAYMENT_FAILED",
        "PAYMENT_FAILED",
        `the card was declined: ${t.statusDetail.message ?? t.statusDetail.responseCategory}`,
        [{ field: "card", message: `${t.statusDetail.responseCode} ${t.statusDetail.message ?? ""}`.trim() }],
      );
    return t;
  }

  // ——— withdrawals ———

  /** A customer's withdrawal to a bank account: recorded to wait for an accountant, amount + fee held. */
  async withdrawToBank(
    session: Session,
    context: RequestContext,
    input: { coinSerial: string; amount: Amount; bankDetails: BankDetails; description?: string | undefined },
  ): Promise<Transaction> {
    const details = input.bankDetails;
    if (!details.iban && !details.bankAccountNumber)
      throw invalid("bankDetails.iban", "an iban or a bankAccountNumber is needed");
    const bank = details.bankId ? await getBank(this.deps.db, session.clientId, details.bankId) : undefined;
    return this.withdraw(session, context, "WITHDRAW_BANK", input, {
      paymentMethodType: "WIRE",
      iban: details.iban?.replaceAll(" ", ""),
      bankAccountNumber: details.bankAccountNumber,
      accountHolderName: details.fullName,
      bankSwiftCode: details.swift ?? details.bic ?? bank?.swift,
    });
  }

  /** A customer's withdrawal to a card: recorded to wait for an accountant, amount + fee held. */
  async withdrawToCard(
    session: Session,
    context: RequestContext,
    input: {
      coinSerial: string;
      amount: Amount;
      card: Omit<CardDetails, "cvv">;
      description?: string | undefined;
    },
  ): Promise<Transaction> {
    const { card } = input;
    return this.withdraw(session, context, "WITHDRAW_CARD", input, {
      paymentMethodType: "CREDIT_CARD",
      cardNumber: digits(card.cardNumber),
      expirationMonth: card.expirationMonth,
      expirationYear: card.expirationYear,
      cardHolder: card.cardHolder,
    });
  }

  private async withdraw(
    session: Session,
    context: RequestContext,
    operation: "WITHDRAW_BANK" | "WITHDRAW_CARD",
    input: { coinSerial: string; amount: Amount; description?: string | undefined },
    destinationMethod: WithdrawalInput["destinationMethod"],
  ): Promise<Transaction> {
    const { coin, commission, scale, currency } = await this.calculate(
      session,
      operation,
      input.coinSerial,
      input.amount,
    );
    return this.deps.transactions.withdraw(
      {
        clientId: session.clientId,
        userId: session.userId,
        requestId: requestIdOf(session, context.requestId),
        amount: formatAmount(coreAmount(operation, commission), scale),
        currency,
        sourceWalletId: coin.account.id,
        fee: commission.fee,
        awaitApproval: true,
        destinationMethod,
        process: processOf(operation, commission, scale, {
          coinSerial: coin.serial,
          paymentTool: operation === "WITHDRAW_BANK" ? "BANK" : "CARD",
          ...(input.description ? { description: input.description } : {}),
        }),
      },
      context.actor,
    );
  }

  // ——— requests and their decisions ———

  /** A process by its requestIdentifier, seen by `session` (a customer: only their own). */
  async byNumber(session: Session, requestIdentifier: string): Promise<Transaction> {
    const found = await this.deps.transactions.findByNumber(session.clientId, requestIdentifier);
    if (!found || !this.sees(session, found))
      throw walletError("NOT_FOUND", "REQUEST_NOT_FOUND", `no request ${requestIdentifier}`);
    return found;
  }

  /** A process by its id (the core request id), seen by `session`. */
  async byId(session: Session, id: string): Promise<Transaction> {
    const found = await this.deps.transactions.get(session.clientId, id).catch((error: unknown) => {
      if (error instanceof TransactionError && error.kind === "NOT_FOUND") return undefined;
      throw error;
    });
    if (!found || !this.sees(session, found))
      throw walletError("NOT_FOUND", "PROCESS_NOT_FOUND", `no business process ${id}`);
    return found;
  }

  /** A page of business processes: staff see all of the client's, users their own. */
  list(session: Session, page: { offset: number; limit: number }) {
    return this.deps.transactions.list(
      session.clientId,
      { userId: isStaff(session.role) ? undefined : session.userId },
      page,
    );
  }

  /** A process's ledger legs. */
  legsOf(t: Transaction) {
    return ledger.listEntriesOfGroup(this.deps.db, t.clientId, `txn:${t.requestId}`);
  }

  /** An accountant's accept or decline (decisions.ts). */
  decide(
    session: Session,
    context: RequestContext,
    kind: DecidableKind,
    verb: Verb,
    requestIdentifier: string,
  ) {
    return this.decisions.decide(session, context, kind, verb, requestIdentifier);
  }

  /** A compliance officer clears a request the AML check held. */
  clearReview(session: Session, context: RequestContext, requestIdentifier: string) {
    return this.decisions.clear(session, context, requestIdentifier);
  }

  /** A compliance officer rejects a request the AML check held. */
  rejectReview(session: Session, context: RequestContext, requestIdentifier: string) {
    return this.decisions.reject(session, context, requestIdentifier);
  }

  /** A customer may act on their own coins; staff (where the route lets them) on any of the client's. */
  private coinFor(session: Session, serial: string): Promise<Coin> {
    return this.coin(session, serial, { own: !isStaff(session.role) });
  }

  private sees(session: Session, t: Transaction) {
    return isStaff(session.role) || t.userId === session.userId || t.counterpartyUserId === session.userId;
  }

  /** The account a payment tool's destination names: a serial, or a smart card's number. */
}

export const ownerOf = (session: Session) => ({ clientId: session.clientId, userId: session.userId });
export const digits = (cardNumber: string) => cardNumber.replaceAll(" ", "");

/** `an***@example.com`, `4917******67`: enough to recognise, not enough to contact. */
export function maskLogin(login: string): string {
  const at = login.indexOf("@");
  if (at > 0) return `${login.slice(0, Math.min(2, at))}***${login.slice(at)}`;
  return login.length > 4 ? `${login.slice(0, 4)}${"*".repeat(login.length - 6)}${login.slice(-2)}` : "***";
}
