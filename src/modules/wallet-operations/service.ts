// Over 400 lines on purpose: every Wallet API operation is one method here, each the whole path of its request (checks → price → core call), so that the face calls one thing; the rules shared by them live in process.ts and decisions.ts.
import type { Db } from "../../db/database.ts";
import type { RequestContext } from "../../lib/context.ts";
import { formatAmount, parseAmount } from "../../lib/money.ts";
import { findCurrencyDetails, getBank } from "../catalog/service.ts";
import { getClient } from "../clients/service.ts";
import type { CommissionProfiles, Operation } from "../commissions/service.ts";
import * as ledger from "../ledger/service.ts";
import { isStaff, type Logins, type Session } from "../logins/service.ts";
import type { SmartCards } from "../smart-cards/service.ts";
import type { Templates } from "../templates/service.ts";
import { parseAmountOrThrow } from "../transactions/quote.ts";
import {
  type Transaction,
  TransactionError,
  type Transactions,
  type WithdrawalInput,
} from "../transactions/service.ts";
import { type Coin, type Wallets, walletFigures } from "../wallets/service.ts";
import { type DecidableKind, type Verb, WalletDecisions } from "./decisions.ts";
import { invalid, walletError } from "./errors.ts";
import { coreAmount, decisionBy, processOf, requestIdOf, type WalletProcess } from "./process.ts";

export interface WalletOperationDependencies {
  db: Db;
  wallets: Wallets;
  transactions: Transactions;
  commissions: CommissionProfiles;
  logins: Logins;
  smartCards: SmartCards;
  templates: Templates;
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

type Amount = string | number;
type Tool = { type: "COIN" | "SMART_CARD"; srcValue: string; destValue: string };
const SERIAL = /^[0-9]{12,32}$/;

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

  // ——— transfers, templates, smart cards ———

  /** One transfer: the sender's own account → another user's account, priced by the TRANSFER profile. */
  async transfer(
    session: Session,
    context: RequestContext,
    tool: Tool,
    amount: Amount,
    more: { description?: string | undefined; templateId?: string | undefined } = {},
  ): Promise<Transaction> {
    if (!SERIAL.test(tool.srcValue)) throw invalid("paymentTool.srcValue", "an account serial (digits)");
    const source = await this.coin(session, tool.srcValue, { own: true, field: "paymentTool.srcValue" });
    const destination = await this.destinationOf(session, tool.type, tool.destValue);
    if (destination.account.currency !== source.account.currency)
      throw invalid(
        "paymentTool.destValue",
        `the accounts hold different currencies (${source.account.currency} → ${destination.account.currency}); a transfer keeps its currency`,
      );
    if (destination.account.id === source.account.id)
      throw invalid("paymentTool.destValue", "the same account");
    const { commission, scale, currency } = await this.price(
      session.clientId,
      "TRANSFER",
      source.account.currency,
      amount,
    );
    // Known short before anything is recorded: a 402 at once (the ledger still decides, under its
    // lock, for transfers racing each other), rather than a transfer that waits in review for money
    // that is not there.
    if (walletFigures(source.account).availableBalance < commission.senderAmount)
      throw walletError(
        "PAYMENT_FAILED",
        "INSUFFICIENT_FUNDS",
        "the account's available balance is too low for amount + commission",
      );
    return this.deps.transactions.transfer(
      {
        kind: "TRANSFER",
        clientId: session.clientId,
        userId: session.userId,
        requestId: requestIdOf(session, context.requestId),
        amount: formatAmount(coreAmount("TRANSFER", commission), scale),
        currency,
        destinationUserId: destination.account.ownerId ?? "",
        sourceWalletId: source.account.id,
        destinationWalletId: destination.account.id,
        fee: commission.fee,
        process: processOf("TRANSFER", commission, scale, {
          coinSerial: source.serial,
          recipientSerial: destination.serial,
          paymentTool: tool.type,
          ...(tool.type === "SMART_CARD" ? { destValue: maskNumber(tool.destValue) } : {}),
          ...(more.description ? { description: more.description } : {}),
          ...(more.templateId ? { templateId: more.templateId } : {}),
        }),
      },
      context.actor,
    );
  }

  /** Saves one of the caller's past transfers as a template (the account serial, never a card number). */
  async saveTemplate(
    session: Session,
    processId: string,
    input: { name: string; description?: string | undefined },
  ) {
    const t = await this.byId(session, processId);
    const process = t.process as Partial<WalletProcess> | null;
    if (
      t.userId !== session.userId ||
      process?.operation !== "TRANSFER" ||
      !process.coinSerial ||
      !process.recipientSerial
    )
      throw walletError("NOT_FOUND", "TRANSFER_NOT_FOUND", `no transfer ${processId} of yours to save`);
    return this.deps.templates.save(ownerOf(session), {
      name: input.name,
      description: input.description,
      srcValue: process.coinSerial,
      destValue: process.recipientSerial,
      currency: t.currency,
      amount: parseAmount(process.transactionAmount ?? "0", t.scale),
      sourceRequest: t.requestId,
    });
  }

  /** The caller's template (404 for anyone else's). */
  template(session: Session, id: string) {
    return this.deps.templates.get(ownerOf(session), id);
  }

  /** A page of the caller's templates. */
  templates(
    session: Session,
    toolType: "COIN" | "SMART_CARD" | undefined,
    page: { offset: number; limit: number },
  ) {
    return this.deps.templates.list(ownerOf(session), toolType, page);
  }

  /** The commission of a transfer from a template. */
  async templateCommission(session: Session, templateId: string, amount: Amount) {
    const template = await this.template(session, templateId);
    return this.price(session.clientId, "TRANSFER", template.currency, amount);
  }

  /** A transfer from a template, with its amount. */
  async executeTemplate(session: Session, context: RequestContext, templateId: string, amount: Amount) {
    const template = await this.template(session, templateId);
    const transaction = await this.transfer(
      session,
      context,
      { type: "COIN", srcValue: template.srcValue, destValue: template.destValue },
      amount,
      { description: template.description ?? undefined, templateId: template.id },
    );
    return { transaction, template };
  }

  /** The caller's smart cards (numbers masked). */
  smartCards(session: Session) {
    return this.deps.smartCards.list(session.clientId, session.userId);
  }

  /** Issues a smart card on one of the caller's accounts (the full number is in this answer only). */
  async issueSmartCard(session: Session, context: RequestContext, serial: string, name: string) {
    const coin = await this.coin(session, serial, { own: true, field: "associatedCoinSerial" });
    return this.deps.smartCards.issue(context, session.userId, coin, name);
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
  private async destinationOf(session: Session, type: "COIN" | "SMART_CARD", value: string) {
    if (type === "COIN") {
      if (!SERIAL.test(value)) throw invalid("paymentTool.destValue", "an account serial (digits)");
      return this.coin(session, value, { own: false, field: "paymentTool.destValue" });
    }
    const card = await this.deps.smartCards.findByNumber(session.clientId, value);
    if (!card?.active)
      throw walletError("NOT_FOUND", "SMART_CARD_NOT_FOUND", "no active smart card with this number", [
        { field: "paymentTool.destValue", message: "no such smart card" },
      ]);
    const coin = await this.deps.wallets.bySerial(session.clientId, card.serial);
    if (!coin) throw walletError("NOT_FOUND", "ACCOUNT_NOT_FOUND", "the smart card's account was not found");
    return coin;
  }
}

const ownerOf = (session: Session) => ({ clientId: session.clientId, userId: session.userId });
const digits = (cardNumber: string) => cardNumber.replaceAll(" ", "");

/** `an***@example.com`, `4917******67`: enough to recognise, not enough to contact. */
export function maskLogin(login: string): string {
  const at = login.indexOf("@");
  if (at > 0) return `${login.slice(0, Math.min(2, at))}***${login.slice(at)}`;
  return login.length > 4 ? `${login.slice(0, 4)}${"*".repeat(login.length - 6)}${login.slice(-2)}` : "***";
}

/** A card number as kept with a transfer: the first six and last four digits. */
export function maskNumber(number: string): string {
  const d = number.replace(/\D/g, "");
  return d.length > 10 ? `${d.slice(0, 6)}${"*".repeat(d.length - 10)}${d.slice(-4)}` : "****";
}
