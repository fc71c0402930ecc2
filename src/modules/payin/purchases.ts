import type { Db } from "../../db/database.ts";
import { DomainError } from "../../lib/errors.ts";
import { formatAmount, parseAmount } from "../../lib/money.ts";
import type { Chain } from "../../providers/chain/interface.ts";
import type { RatesProvider } from "../../providers/rates/interface.ts";
import type { Logins, Session } from "../logins/service.ts";
import type { NewPaymentMethod, PaymentMethods } from "../payment-methods/service.ts";
import { convert } from "../transactions/quote.ts";
import { type Transaction, TransactionError, type Transactions } from "../transactions/service.ts";
import type { Users } from "../users/service.ts";
import { type NumberedKind, numbersOf, refOf } from "./numbers.ts";
import {
  CRYPTOS,
  FIATS,
  fiatPerCrypto,
  type Offer,
  type Offers,
  type PayinSettings,
  payinSettings,
  price,
} from "./offers.ts";

/**
 * Pay-in purchases (`/v3/payin`): a customer with a card buys crypto at an offer's rate. The KYC
 * levels (KYC_0 = tier 1 for cards and offers, KYC_1 = tier 2 to pay), the offer's quote stage,
 * its payment — the offer claimed once, a core card deposit that buys the crypto, the offer given
 * back when the purchase was refused before anything was recorded — and where a purchase stands.
 */

export const KYC_0 = 1;
export const KYC_1 = 2;

export interface PayinDependencies {
  db: Db;
  offers: Offers;
  transactions: Transactions;
  paymentMethods: PaymentMethods;
  users: Users;
  logins: Logins;
  rates: RatesProvider;
  chain: Chain;
}

export type PurchaseStatus = "PENDING" | "SUCCESS" | "FAILURE";

/** The acquirer's words for where a purchase stands (text and code). */
export function statusText(t: Transaction): { text: string; code: string } {
  if (t.status === "AWAITING_PAYMENT" || t.status === "PENDING") return { text: "Pending", code: "PENDING" };
  // Held by monitoring for a person's review: the card is not charged until then.
  if (t.status === "MANUAL_REVIEW") return { text: "Pending review", code: "PENDING" };
  if (t.status === "CAPTURED" || t.status === "SETTLED") return { text: "Approved", code: "00" };
  if (t.statusDetail)
    return {
      text: t.statusDetail.message ?? t.statusDetail.responseCategory,
      code: t.statusDetail.responseCode,
    };
  return { text: t.status === "REFUSED" ? "Refused" : "Error", code: t.status };
}

/** Where a purchase stands: from its transaction, or (none recorded) from its offer. */
export function purchaseStatus(offer: Offer, t: Transaction | undefined): PurchaseStatus {
  if (!t) {
    if (offer.status === "PAID") return "PENDING";
    return offer.status === "OPEN" && offer.expiresAt.getTime() > Date.now() ? "PENDING" : "FAILURE";
  }
  if (t.status === "CAPTURED" || t.status === "SETTLED") return "SUCCESS";
  return t.status === "PENDING" || t.status === "AWAITING_PAYMENT" || t.status === "MANUAL_REVIEW"
    ? "PENDING"
    : "FAILURE";
}

type OfferInput = { fromCurrency: string; toCurrency: string; amount: string | number };

export class Payin {
  constructor(private readonly deps: PayinDependencies) {}

  /** The integer each card or offer is shown by on this face (Vault's ids; numbers.ts). */
  async numbers(session: Session, kind: NumberedKind, refs: readonly string[]): Promise<Map<string, number>> {
    return numbersOf(this.deps.db, session.clientId, kind, refs);
  }

  /**
   * The core's id behind an id the face was given: Ferry's own (`pm_…`, a UUID) as it is; an integer
   * (a JSON number or digits) looked up within the client — unknown → 404, as an unknown id is.
   */
  async resolve(session: Session, kind: NumberedKind, id: string | number): Promise<string> {
    if (typeof id === "string" && !/^[0-9]+$/.test(id)) return id;
    const ref = await refOf(this.deps.db, session.clientId, kind, Number(id));
    if (ref !== undefined) return ref;
    throw kind === "CARD"
      ? new DomainError("NOT_FOUND", "CARD_NOT_FOUND", `no card ${id}`, "cardId")
      : new DomainError("NOT_FOUND", "OFFER_NOT_FOUND", `no offer ${id}`, "offerId");
  }

  /** The customer's KYC level must reach `tier` (KYC_0 = 1, KYC_1 = 2): a 422 naming it otherwise. */
  async requireLevel(session: Session, tier: number) {
    const user = await this.deps.users.get(this.deps.db, session.clientId, session.userId);
    if (user.tier < tier)
      throw new DomainError(
        "MORE_INFORMATION_NEEDED",
        "MIN_ASSESSMENT_MISSING",
        `this needs ${tier >= KYC_1 ? "KYC_1" : "KYC_0"} (the user is at tier ${user.tier})`,
        undefined,
        { assessment: { requiredTier: tier, currentTier: user.tier } },
      );
    return user;
  }

  /** One of the customer's cards (404 naming `cardId`). */
  async card(session: Session, cardId: string) {
    const cards = await this.deps.paymentMethods.list(session.clientId, session.userId);
    const found = cards.find((c) => c.id === cardId && c.type === "CREDIT_CARD");
    if (!found)
      throw new DomainError("NOT_FOUND", "CARD_NOT_FOUND", `no card ${cardId}`, undefined, {
        errors: [{ field: "cardId", message: "no such card" }],
      });
    return found;
  }

  /** Adds a card with its billing address (KYC_0). */
  async addCard(session: Session, card: NewPaymentMethod) {
    await this.requireLevel(session, KYC_0);
    return (await this.deps.paymentMethods.add(session.clientId, session.userId, card)).method;
  }

  /** Changes a card's billing address (KYC_0). */
  async changeBillingAddress(
    session: Session,
    cardRef: string | number,
    billingAddress: Record<string, unknown>,
  ) {
    await this.requireLevel(session, KYC_0);
    const cardId = await this.resolve(session, "CARD", cardRef);
    await this.card(session, cardId);
    return this.deps.paymentMethods.updateDetails(session.clientId, session.userId, cardId, {
      billingAddress,
    });
  }

  /** The customer's cards, the pairs with their rates and scales, the fees and limits (KYC_0). */
  async data(session: Session) {
    await this.requireLevel(session, KYC_0);
    const { clientId, userId } = session;
    const settings = await payinSettings(this.deps.db, clientId);
    const cards = (await this.deps.paymentMethods.list(clientId, userId)).filter(
      (c) => c.type === "CREDIT_CARD",
    );
    const primary = await this.deps.logins.primaryCurrency(clientId, userId);
    // The fee's fixed part is in the fiat paid with: shown in the customer's primary currency when it is one.
    const feeCurrency = (FIATS as readonly string[]).includes(primary ?? "") ? (primary as string) : "EUR";
    const scaleOf = (currency: string) => this.deps.transactions.quotes.scaleOf(clientId, currency);
    const pairs = [];
    for (const from of FIATS)
      for (const to of CRYPTOS) {
        const [fromPrice, toPrice] = await Promise.all([
          this.deps.rates.usdPrice(from),
          this.deps.rates.usdPrice(to),
        ]);
        if (!fromPrice || !toPrice) continue;
        pairs.push({
          currencyFrom: from,
          currencyTo: to,
          rate: fiatPerCrypto(fromPrice, toPrice),
          amountScaleFrom: await scaleOf(from),
          amountScaleTo: await scaleOf(to),
        });
      }
    return { cards, pairs, settings, feeCurrency, feeScale: await scaleOf(feeCurrency) };
  }

  /** An offer: the card and address checked, priced and screened, its rate held for 20 s (KYC_0). */
  async createOffer(
    session: Session,
    given: OfferInput & {
      /** Ferry's id or the number the Pay-in face showed. */
      cardId: string | number;
      walletAddress?: string | undefined;
      successUrl?: string | undefined;
      failUrl?: string | undefined;
    },
  ): Promise<Offer> {
    // The level first (a 422 says what is missing), then the card and the address.
    await this.requireLevel(session, KYC_0);
    const input = { ...given, cardId: await this.resolve(session, "CARD", given.cardId) };
    await this.card(session, input.cardId);
    const address = await this.addressFor(session, input.toCurrency, input.walletAddress);
    const { priced, monitoring } = await this.quote(session, input);
    return this.deps.offers.create({
      clientId: session.clientId,
      userId: session.userId,
      cardId: input.cardId,
      fromCurrency: input.fromCurrency,
      toCurrency: input.toCurrency,
      amount: priced.amount,
      fee: priced.fee,
      rate: priced.rate,
      toAmount: priced.toAmount,
      usdValue: priced.usdValue,
      monitoring,
      address,
      successUrl: input.successUrl ?? null,
      failUrl: input.failUrl ?? null,
    });
  }

  /** Re-quotes an open offer with a new 20 s expiry (an expired or paid one → 409). */
  async requoteOffer(session: Session, offerRef: string | number, input: OfferInput): Promise<Offer> {
    const offerId = await this.resolve(session, "OFFER", offerRef);
    const current = await this.deps.offers.get(session.clientId, session.userId, offerId);
    if (current.status !== "OPEN" || current.expiresAt.getTime() <= Date.now())
      throw new DomainError(
        "CONFLICT",
        current.status === "PAID" ? "OFFER_PAID" : "OFFER_EXPIRED",
        current.status === "PAID" ? "this offer is paid already" : "this offer has expired: make a new one",
      );
    const { priced, monitoring } = await this.quote(session, input);
    return this.deps.offers.requote(session.clientId, session.userId, offerId, {
      fromCurrency: input.fromCurrency,
      toCurrency: input.toCurrency,
      amount: priced.amount,
      fee: priced.fee,
      rate: priced.rate,
      toAmount: priced.toAmount,
      usdValue: priced.usdValue,
      monitoring,
    });
  }

  /**
   * Fiat rates (KYC_0): for the customer's base fiat (their primary currency when it is one of
   * FIATS, else EUR), how many of each fiat one unit buys, from the rates provider's USD prices
   * (exact decimals at 8 places). A fiat without a price is left out.
   */
  async fiatRates(session: Session) {
    await this.requireLevel(session, KYC_0);
    const primary = await this.deps.logins.primaryCurrency(session.clientId, session.userId);
    const base = (FIATS as readonly string[]).includes(primary ?? "") ? (primary as string) : "EUR";
    const basePrice = await this.deps.rates.usdPrice(base);
    const rates: { baseCurrency: string; symbolCurrency: string; rate: string }[] = [];
    if (!basePrice) return rates;
    for (const symbol of FIATS) {
      const price = await this.deps.rates.usdPrice(symbol);
      // fiatPerCrypto(a, b): how many of a's currency one unit of b's buys.
      if (price)
        rates.push({ baseCurrency: base, symbolCurrency: symbol, rate: fiatPerCrypto(price, basePrice) });
    }
    return rates;
  }

  /** What an offer shows: its scales, the client's pay-in settings, the rate and the crypto limits. */
  async terms(offer: Offer) {
    const quotes = this.deps.transactions.quotes;
    const fromScale = await quotes.scaleOf(offer.clientId, offer.fromCurrency);
    const toScale = await quotes.scaleOf(offer.clientId, offer.toCurrency);
    const settings: PayinSettings = await payinSettings(this.deps.db, offer.clientId);
    const [fromPrice, toPrice] = offer.rate.split("/") as [string, string];
    const cryptoOf = (fiatMajor: string) =>
      formatAmount(
        convert(parseAmount(fiatMajor, fromScale), fromScale, fromPrice, toScale, toPrice),
        toScale,
      );
    return {
      fromScale,
      toScale,
      settings,
      rate: fiatPerCrypto(fromPrice, toPrice),
      minCrypto: cryptoOf(settings.minAmountFrom),
      maxCrypto: cryptoOf(settings.maxAmountFrom),
      status:
        offer.status === "OPEN" && offer.expiresAt.getTime() <= Date.now()
          ? ("EXPIRED" as const)
          : offer.status,
    };
  }

  /**
   * Pays an offer (KYC_1): claimed once (paying twice answers the first purchase), then a core card
   * deposit that buys the crypto at the offer's rate. A purchase refused before anything was
   * recorded (no charge) gives the offer back, so that it can be paid again.
   */
  async pay(
    session: Session,
    offerRef: string | number,
    input: { cvv: string; successUrl?: string | undefined; failUrl?: string | undefined },
  ): Promise<{ offer: Offer; transaction: Transaction }> {
    await this.requireLevel(session, KYC_1);
    const offerId = await this.resolve(session, "OFFER", offerRef);
    const { transactions } = this.deps;
    const { offer, first } = await this.deps.offers.claim(session.clientId, session.userId, offerId);
    const requestId = offer.requestId ?? "";
    const recorded = await this.recorded(session, requestId);
    if (recorded) return { offer, transaction: recorded };
    try {
      return { offer, transaction: await this.purchase(session, offer, input) };
    } catch (error) {
      if (error instanceof TransactionError && error.code === "REQUEST_ID_USED")
        return { offer, transaction: await transactions.get(session.clientId, requestId) };
      // Refused before anything was recorded (no charge): the offer can be paid again.
      if (first && !(await this.recorded(session, requestId)))
        await this.deps.offers.release(session.clientId, offer.id);
      throw error;
    }
  }

  /** Where a payment stands (KYC_1): the offer, its purchase if recorded, the status and the chain's. */
  async status(session: Session, offerRef: string | number) {
    await this.requireLevel(session, KYC_1);
    const offerId = await this.resolve(session, "OFFER", offerRef);
    const offer = await this.deps.offers.get(session.clientId, session.userId, offerId);
    const fromScale = await this.deps.transactions.quotes.scaleOf(session.clientId, offer.fromCurrency);
    const toScale = await this.deps.transactions.quotes.scaleOf(session.clientId, offer.toCurrency);
    const t = offer.requestId ? await this.recorded(session, offer.requestId) : undefined;
    const status = purchaseStatus(offer, t);
    const words = t
      ? statusText(t)
      : {
          text: status === "FAILURE" ? "Expired" : "Pending",
          code: status === "FAILURE" ? "EXPIRED" : "PENDING",
        };
    const hash = t?.chainTxHash ?? undefined;
    const chain = hash ? { hash, state: (await this.deps.chain.status(hash)).state } : undefined;
    return { offer, transaction: t, status, words, fromScale, toScale, chain };
  }

  /** The masked number of an offer's card (stars when the card is gone). */
  async maskedPanOf(session: Session, offer: Offer): Promise<{ bin: string | null; last4: string | null }> {
    return this.card(session, offer.cardId).catch(() => ({ bin: null, last4: null }));
  }

  private recorded(session: Session, requestId: string): Promise<Transaction | undefined> {
    return this.deps.transactions.get(session.clientId, requestId).catch(() => undefined);
  }

  private async purchase(
    session: Session,
    offer: Offer,
    input: { cvv: string; successUrl?: string | undefined; failUrl?: string | undefined },
  ): Promise<Transaction> {
    const { transactions } = this.deps;
    return transactions.deposit(
      {
        clientId: session.clientId,
        userId: session.userId,
        requestId: offer.requestId ?? "",
        amount: formatAmount(
          offer.amount,
          await transactions.quotes.scaleOf(session.clientId, offer.fromCurrency),
        ),
        currency: offer.fromCurrency,
        fee: offer.fee,
        sourceMethod: {
          paymentMethodType: "CREDIT_CARD",
          paymentInformationId: offer.cardId,
          cvv: input.cvv,
        },
        purchase: {
          currency: offer.toCurrency,
          amount: offer.toAmount,
          rate: offer.rate,
          address: offer.address ?? undefined,
        },
        process: {
          operation: "PAYIN",
          offerId: offer.id,
          successUrl: input.successUrl ?? offer.successUrl ?? undefined,
          failUrl: input.failUrl ?? offer.failUrl ?? undefined,
        },
      },
      { kind: "user", id: session.userId, roles: [session.role] },
    );
  }

  /** The quote stage for an offer: price, the KYC gate (KYC_0) and monitoring. */
  private async quote(session: Session, input: OfferInput) {
    await this.requireLevel(session, KYC_0);
    const { transactions } = this.deps;
    const priced = await price(
      { db: this.deps.db, quotes: transactions.quotes, rates: this.deps.rates },
      session.clientId,
      input,
    );
    const monitoring = await transactions.quotes.monitor(
      {
        clientId: session.clientId,
        userId: session.userId,
        type: "DEPOSIT",
        amount: input.amount,
        currency: input.fromCurrency,
      },
      priced.usdValue,
    );
    return { priced, monitoring };
  }

  /** The address the crypto goes to: the one given (checked for the currency), or the user's own. */
  private async addressFor(session: Session, currency: string, given: string | undefined) {
    const { chain } = this.deps;
    if (given !== undefined) {
      if (!chain.validAddress(currency, given))
        throw new DomainError(
          "INVALID",
          "INVALID_REQUEST",
          `walletAddress: not a ${currency} address`,
          undefined,
          {
            errors: [{ field: "walletAddress", message: `not a ${currency} address` }],
          },
        );
      return given;
    }
    const info = await this.deps.users.info(this.deps.db, session.clientId, session.userId);
    const own = info.tokenAddresses?.find((a) => a.currency === currency)?.address;
    return own && chain.validAddress(currency, own) ? own : null;
  }
}
