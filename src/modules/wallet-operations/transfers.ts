import type { RequestContext } from "../../lib/context.ts";
import { formatAmount, parseAmount } from "../../lib/money.ts";
import type { Session } from "../logins/service.ts";
import type { SmartCards } from "../smart-cards/service.ts";
import type { Templates } from "../templates/service.ts";
import type { Transaction, Transactions } from "../transactions/service.ts";
import { type Wallets, walletFigures } from "../wallets/service.ts";
import { invalid, walletError } from "./errors.ts";
import { coreAmount, processOf, requestIdOf, type WalletProcess } from "./process.ts";
import { type Amount, ownerOf, type WalletOperations } from "./service.ts";

type Tool = { type: "COIN" | "SMART_CARD"; srcValue: string; destValue: string };
const SERIAL = /^[0-9]{12,32}$/;

/**
 * The Wallet API's transfers between users (to an account or a smart card), priced by the TRANSFER
 * commission profile, their templates, and smart cards; on WalletOperations' accounts and pricing.
 */
export class WalletTransfers {
  constructor(
    private readonly ops: WalletOperations,
    private readonly deps: {
      wallets: Wallets;
      transactions: Transactions;
      smartCards: SmartCards;
      templates: Templates;
    },
  ) {}

  /** One transfer: the sender's own account → another user's account, priced by the TRANSFER profile. */
  async transfer(
    session: Session,
    context: RequestContext,
    tool: Tool,
    amount: Amount,
    more: { description?: string | undefined; templateId?: string | undefined } = {},
  ): Promise<Transaction> {
    if (!SERIAL.test(tool.srcValue)) throw invalid("paymentTool.srcValue", "an account serial (digits)");
    const source = await this.ops.coin(session, tool.srcValue, { own: true, field: "paymentTool.srcValue" });
    const destination = await this.destinationOf(session, tool.type, tool.destValue);
    if (destination.account.currency !== source.account.currency)
      throw invalid(
        "paymentTool.destValue",
        `the accounts hold different currencies (${source.account.currency} → ${destination.account.currency}); a transfer keeps its currency`,
      );
    if (destination.account.id === source.account.id)
      throw invalid("paymentTool.destValue", "the same account");
    const { commission, scale, currency } = await this.ops.price(
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
    const t = await this.ops.byId(session, processId);
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
    return this.ops.price(session.clientId, "TRANSFER", template.currency, amount);
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
    const coin = await this.ops.coin(session, serial, { own: true, field: "associatedCoinSerial" });
    return this.deps.smartCards.issue(context, session.userId, coin, name);
  }

  private async destinationOf(session: Session, type: "COIN" | "SMART_CARD", value: string) {
    if (type === "COIN") {
      if (!SERIAL.test(value)) throw invalid("paymentTool.destValue", "an account serial (digits)");
      return this.ops.coin(session, value, { own: false, field: "paymentTool.destValue" });
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

/** A card number as kept with a transfer: the first six and last four digits. */
export function maskNumber(number: string): string {
  const d = number.replace(/\D/g, "");
  return d.length > 10 ? `${d.slice(0, 6)}${"*".repeat(d.length - 10)}${d.slice(-4)}` : "****";
}
