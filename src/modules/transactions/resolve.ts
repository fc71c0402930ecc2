import type { NewPaymentMethod, PaymentMethods } from "../payment-methods/service.ts";
import type { User } from "../users/service.ts";
import type { Wallets } from "../wallets/service.ts";
import { type BankDestination, type CardSource, TransactionError } from "./types.ts";

/**
 * A card or bank account a transaction names: the saved one's id, or none for inline details not
 * saved (a refused transaction of a user who is not ACTIVE: issue 17.9).
 */
export interface MethodRef {
  id: string | null;
  last4: string | null;
}

/** The user a request names, as the request read them (their status decides what may be given). */
export type Owner = Pick<User, "id" | "status">;

/**
 * Finds what a request names: the user's wallets, saved or inline cards and bank accounts. To a
 * user who is not ACTIVE (whose transaction monitoring refuses) nothing is given: no wallet is
 * opened, no inline card or account saved (issue 17.9).
 */
export class Resolver {
  constructor(
    private readonly wallets: Wallets,
    private readonly paymentMethods: PaymentMethods,
  ) {}

  /** The user's wallet to pay from: the one named, or the user's wallet in that currency (402 if none). */
  async sourceWallet(
    clientId: string,
    userId: string,
    currency: string,
    walletId?: string,
  ): Promise<{ id: string }> {
    const wallet = await this.findWallet(clientId, userId, currency, walletId, "sourceWalletId");
    if (!wallet)
      throw new TransactionError(
        "PAYMENT_FAILED",
        "INSUFFICIENT_FUNDS",
        `the user has no ${currency} wallet`,
      );
    return wallet;
  }

  /**
   * The owner's wallet to credit: the one named, or their wallet in that currency (opened on first
   * use; for an owner who is not ACTIVE none is opened and the id is null).
   */
  async destinationWallet(
    clientId: string,
    owner: Owner,
    currency: string,
    walletId?: string,
  ): Promise<{ id: string | null }> {
    const named = walletId
      ? await this.findWallet(clientId, owner.id, currency, walletId, "destinationWalletId")
      : undefined;
    if (named) return named;
    if (owner.status !== "ACTIVE") {
      await this.wallets.ensureCurrency(clientId, currency); // the client's ledger books in it, as a new wallet would
      return { id: (await this.wallets.defaultId(clientId, owner.id, currency)) ?? null };
    }
    return this.wallets.defaultFor(clientId, owner.id, currency);
  }

  card(clientId: string, owner: Owner, source: CardSource) {
    return this.savedOrInline(
      clientId,
      owner,
      "CREDIT_CARD",
      source.paymentInformationId,
      inlineCardOf(source),
      "sourceMethod",
    );
  }

  bankAccount(clientId: string, owner: Owner, method: BankDestination) {
    return this.savedOrInline(
      clientId,
      owner,
      "BANK_ACCOUNT",
      method.paymentInformationId,
      inlineBankOf(method),
      "destinationMethod",
    );
  }

  private async findWallet(
    clientId: string,
    userId: string,
    currency: string,
    walletId: string | undefined,
    field: string,
  ) {
    if (!walletId) {
      const id = await this.wallets.defaultId(clientId, userId, currency);
      return id === undefined ? undefined : { id };
    }
    const wallet = await this.wallets.get(clientId, userId, walletId);
    if (wallet.currency !== currency)
      throw new TransactionError(
        "INVALID",
        "WALLET_CURRENCY",
        `the wallet holds ${wallet.currency}, not ${currency}`,
        field,
      );
    return wallet;
  }

  /** A saved payment method of the right type, or the inline one saved now as the owner's (if ACTIVE). */
  private async savedOrInline(
    clientId: string,
    owner: Owner,
    type: "CREDIT_CARD" | "BANK_ACCOUNT",
    savedId: string | undefined,
    inline: NewPaymentMethod | undefined,
    field: string,
  ): Promise<MethodRef> {
    const userId = owner.id;
    const what = type === "CREDIT_CARD" ? "card" : "bank account";
    if (savedId) {
      const { method } = await this.paymentMethods.reveal(clientId, userId, savedId);
      if (method.type !== type)
        throw new TransactionError(
          "INVALID",
          "WRONG_PAYMENT_METHOD",
          `the payment information is not a ${what}`,
          `${field}.paymentInformationId`,
        );
      return method;
    }
    if (!inline)
      throw new TransactionError(
        "INVALID",
        "PAYMENT_DETAILS_MISSING",
        `a ${what} needs paymentInformationId or its details`,
        field,
      );
    if (owner.status !== "ACTIVE") return { id: null, last4: lastDigitsOf(inline) };
    return (await this.paymentMethods.add(clientId, userId, inline, owner)).method;
  }
}

/** The inline card of a source method, if it carries one (else it names saved payment information). */
export function inlineCardOf(source: CardSource): NewPaymentMethod | undefined {
  if (
    source.paymentInformationId ||
    !source.cardNumber ||
    source.expirationMonth === undefined ||
    source.expirationYear === undefined
  )
    return undefined;
  return {
    type: "CREDIT_CARD",
    cardNumber: source.cardNumber,
    expirationMonth: source.expirationMonth,
    expirationYear: source.expirationYear,
    cardHolder: source.cardHolder,
    billingAddress: source.billingAddress,
  };
}

export function inlineBankOf(method: BankDestination): NewPaymentMethod | undefined {
  if (method.paymentInformationId || (!method.iban && !method.bankAccountNumber)) return undefined;
  if (!method.accountHolderName)
    throw new TransactionError(
      "INVALID",
      "BANK_DETAILS_MISSING",
      "accountHolderName is required",
      "destinationMethod.accountHolderName",
    );
  return {
    type: "BANK_ACCOUNT",
    iban: method.iban,
    bankAccountNumber: method.bankAccountNumber,
    accountHolderName: method.accountHolderName,
    bankSwiftCode: method.bankSwiftCode,
    bankRoutingNumber: method.bankRoutingNumber,
  };
}

/** The last four characters of an inline card or account number (what a transaction shows of it). */
function lastDigitsOf(method: NewPaymentMethod): string {
  const number =
    method.type === "CREDIT_CARD"
      ? method.cardNumber
      : method.type === "BANK_ACCOUNT"
        ? (method.iban ?? method.bankAccountNumber ?? "")
        : method.address;
  return number.replace(/[\s-]/g, "").slice(-4);
}
