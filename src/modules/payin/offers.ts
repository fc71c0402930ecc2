import { sql } from "kysely";
import type { Db } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import { DomainError } from "../../lib/errors.ts";
import { newId, UUID } from "../../lib/ids.ts";
import { formatAmount, parseAmount } from "../../lib/money.ts";
import { type RatesProvider, toUsdCents } from "../../providers/rates/interface.ts";
import { getClient } from "../clients/service.ts";
import { percentOf } from "../fees/service.ts";
import type { MonitoringResult } from "../monitoring/rules.ts";
import { convert, parseAmountOrThrow, type Quotes } from "../transactions/quote.ts";

/**
 * Pay-in offers: persisted quotes of the core's quote stage (amount at the fiat's scale, fee, rate,
 * crypto amount, USD value, KYC gate, monitoring) that hold their rate for 20 seconds. Paying one
 * books a core card deposit that buys the crypto at the offer's rate — whatever the market did since.
 */

export const FIATS = ["EUR", "USD"] as const;
export const CRYPTOS = ["USDC", "USDT", "BTC", "ETH"] as const;
export const OFFER_SECONDS = 20;

export interface PayinSettings {
  /** Major units of the fiat currency. */
  minAmountFrom: string;
  maxAmountFrom: string;
  /** Percent of the amount, e.g. "1.5". */
  feePercent: string;
  /** Major units of the fiat currency. */
  feeFixed: string;
}

export const DEFAULT_PAYIN: PayinSettings = {
  minAmountFrom: "10",
  maxAmountFrom: "5000",
  feePercent: "1.5",
  feeFixed: "0",
};

export async function payinSettings(db: Db, clientId: string): Promise<PayinSettings> {
  const client = await getClient(db, clientId);
  return { ...DEFAULT_PAYIN, ...((client.settings as { payin?: Partial<PayinSettings> }).payin ?? {}) };
}

export interface Offer {
  id: string;
  clientId: string;
  userId: string;
  cardId: string;
  fromCurrency: string;
  toCurrency: string;
  amount: bigint;
  fee: bigint;
  rate: string;
  toAmount: bigint;
  usdValue: bigint;
  monitoring: MonitoringResult;
  address: string | null;
  successUrl: string | null;
  failUrl: string | null;
  status: "OPEN" | "PAID" | "EXPIRED";
  requestId: string | null;
  expiresAt: Date;
  createdAt: Date;
}

type OfferRow = {
  client_id: string;
  id: string;
  user_id: string;
  card_id: string;
  from_currency: string;
  to_currency: string;
  amount: string;
  fee: string;
  rate: string;
  to_amount: string;
  usd_value: string;
  monitoring: unknown;
  address: string | null;
  success_url: string | null;
  fail_url: string | null;
  status: string;
  request_id: string | null;
  expires_at: Date;
  created_at: Date;
};

export function toOffer(r: OfferRow): Offer {
  return {
    id: r.id,
    clientId: r.client_id,
    userId: r.user_id,
    cardId: r.card_id,
    fromCurrency: r.from_currency,
    toCurrency: r.to_currency,
    amount: BigInt(r.amount),
    fee: BigInt(r.fee),
    rate: r.rate,
    toAmount: BigInt(r.to_amount),
    usdValue: BigInt(r.usd_value),
    monitoring: (typeof r.monitoring === "string"
      ? JSON.parse(r.monitoring)
      : r.monitoring) as MonitoringResult,
    address: r.address,
    successUrl: r.success_url,
    failUrl: r.fail_url,
    status: r.status as Offer["status"],
    requestId: r.request_id,
    expiresAt: new Date(r.expires_at),
    createdAt: new Date(r.created_at),
  };
}

/** A price in fiat per unit of crypto, from the two USD prices: to 8 decimals, rounded down. */
export function fiatPerCrypto(fromPrice: string, toPrice: string): string {
  const units = convert(10n ** 8n, 8, toPrice, 8, fromPrice);
  return formatAmount(units, 8);
}

export interface Priced {
  amount: bigint;
  fee: bigint;
  toAmount: bigint;
  rate: string;
  usdValue: bigint;
  fromScale: number;
  toScale: number;
  fromPrice: string;
  toPrice: string;
  settings: PayinSettings;
}

/** Prices an amount of fiat in crypto now: limits (400), fee, the rate, the crypto it buys. */
export async function price(
  deps: { db: Db; quotes: Quotes; rates: RatesProvider },
  clientId: string,
  input: { fromCurrency: string; toCurrency: string; amount: string | number },
): Promise<Priced> {
  const { quotes } = deps;
  const settings = await payinSettings(deps.db, clientId);
  const fromScale = await quotes.scaleOf(clientId, input.fromCurrency);
  const toScale = await quotes.scaleOf(clientId, input.toCurrency);
  const amount = parseAmountOrThrow(input.amount, fromScale);
  const min = parseAmount(settings.minAmountFrom, fromScale);
  const max = parseAmount(settings.maxAmountFrom, fromScale);
  if (amount < min || amount > max)
    throw invalid(
      "amount",
      `must be between ${formatAmount(min, fromScale)} and ${formatAmount(max, fromScale)} ${input.fromCurrency}`,
    );
  const [fromPrice, toPrice] = await Promise.all([
    deps.rates.usdPrice(input.fromCurrency),
    deps.rates.usdPrice(input.toCurrency),
  ]);
  if (!fromPrice || !toPrice)
    throw invalid("toCurrency", `no rate for ${input.fromCurrency}→${input.toCurrency}`);
  const fee = percentOf(amount, settings.feePercent) + parseAmount(settings.feeFixed, fromScale);
  if (fee >= amount) throw invalid("amount", "does not cover the fee");
  const toAmount = convert(amount - fee, fromScale, fromPrice, toScale, toPrice);
  if (toAmount <= 0n) throw invalid("amount", "buys nothing at this rate");
  return {
    amount,
    fee,
    toAmount,
    rate: `${fromPrice}/${toPrice}`,
    usdValue: toUsdCents(amount, fromScale, fromPrice),
    fromScale,
    toScale,
    fromPrice,
    toPrice,
    settings,
  };
}

export class Offers {
  constructor(private readonly db: Db) {}

  async create(
    offer: Omit<Offer, "id" | "status" | "requestId" | "expiresAt" | "createdAt">,
  ): Promise<Offer> {
    const row = await this.db
      .insertInto("payin_offers")
      .values({
        client_id: offer.clientId,
        id: newId(),
        user_id: offer.userId,
        card_id: offer.cardId,
        from_currency: offer.fromCurrency,
        to_currency: offer.toCurrency,
        amount: offer.amount.toString(),
        fee: offer.fee.toString(),
        rate: offer.rate,
        to_amount: offer.toAmount.toString(),
        usd_value: offer.usdValue.toString(),
        monitoring: JSON.stringify(offer.monitoring),
        address: offer.address,
        success_url: offer.successUrl,
        fail_url: offer.failUrl,
        expires_at: sql<Date>`now() + make_interval(secs => ${OFFER_SECONDS})`,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toOffer(row as OfferRow);
  }

  /** The user's offer (404 for anyone else's). */
  async get(clientId: string, userId: string, id: string): Promise<Offer> {
    const row = UUID.test(id)
      ? await this.db
          .selectFrom("payin_offers")
          .selectAll()
          .where("client_id", "=", clientId)
          .where("user_id", "=", userId)
          .where("id", "=", id)
          .executeTakeFirst()
      : undefined;
    if (!row) throw new DomainError("NOT_FOUND", "OFFER_NOT_FOUND", `no offer ${id}`, "offerId");
    return toOffer(row as OfferRow);
  }

  /** Re-quotes an open offer with a new expiry (409 once expired or paid). */
  async requote(
    clientId: string,
    userId: string,
    id: string,
    change: Pick<
      Offer,
      "fromCurrency" | "toCurrency" | "amount" | "fee" | "rate" | "toAmount" | "usdValue" | "monitoring"
    >,
  ): Promise<Offer> {
    return inTransaction(this.db, async (tx) => {
      const current = await this.lock(tx, clientId, userId, id);
      assertOpen(current);
      const row = await tx
        .updateTable("payin_offers")
        .set({
          from_currency: change.fromCurrency,
          to_currency: change.toCurrency,
          amount: change.amount.toString(),
          fee: change.fee.toString(),
          rate: change.rate,
          to_amount: change.toAmount.toString(),
          usd_value: change.usdValue.toString(),
          monitoring: JSON.stringify(change.monitoring),
          expires_at: sql<Date>`now() + make_interval(secs => ${OFFER_SECONDS})`,
          updated_at: new Date(),
        })
        .where("client_id", "=", clientId)
        .where("id", "=", id)
        .returningAll()
        .executeTakeFirstOrThrow();
      return toOffer(row as OfferRow);
    });
  }

  /**
   * Claims an offer for payment, once: an open, unexpired offer becomes PAID with the request id
   * of its purchase; a paid one answers as it is (its purchase is the first payment's); an expired
   * one is a 409. Under the row's lock, so 20 payments at once claim it once.
   */
  async claim(clientId: string, userId: string, id: string): Promise<{ offer: Offer; first: boolean }> {
    return inTransaction(this.db, async (tx) => {
      const offer = await this.lock(tx, clientId, userId, id);
      if (offer.status === "PAID") return { offer, first: false };
      assertOpen(offer);
      if (offer.monitoring.status === "DENY")
        throw new DomainError(
          "CONFLICT",
          "OFFER_DENIED",
          `this offer cannot be paid: ${offer.monitoring.reasons.join(", ")}`,
        );
      const requestId = `po-${offer.id}`;
      const move = offerTransition("CLAIM");
      const row = await tx
        .updateTable("payin_offers")
        .set({ status: move.to, request_id: requestId, updated_at: new Date() })
        .where("client_id", "=", clientId)
        .where("id", "=", id)
        .where("status", "in", move.from)
        .returningAll()
        .executeTakeFirstOrThrow();
      return { offer: toOffer(row as OfferRow), first: true };
    });
  }

  /** Gives an offer back (its purchase was refused before anything was recorded). */
  async release(clientId: string, id: string): Promise<void> {
    const move = offerTransition("GIVE_BACK");
    await this.db
      .updateTable("payin_offers")
      .set({ status: move.to, request_id: null, updated_at: new Date() })
      .where("client_id", "=", clientId)
      .where("id", "=", id)
      .where("status", "in", move.from)
      .execute();
  }

  /** Marks the offers whose time is up (the worker). */
  async expire(limit = 500): Promise<number> {
    const move = offerTransition("EXPIRE");
    const { rows } = await sql<{ id: string }>`
      UPDATE payin_offers SET status = ${move.to}, updated_at = now()
       WHERE (client_id, id) IN (SELECT client_id, id FROM payin_offers
                                  WHERE status IN (${sql.join(move.from)}) AND expires_at < now() LIMIT ${limit})
      RETURNING id`.execute(this.db);
    return rows.length;
  }

  private async lock(tx: Db, clientId: string, userId: string, id: string): Promise<Offer> {
    const row = UUID.test(id)
      ? await tx
          .selectFrom("payin_offers")
          .selectAll()
          .where("client_id", "=", clientId)
          .where("user_id", "=", userId)
          .where("id", "=", id)
          .forUpdate()
          .executeTakeFirst()
      : undefined;
    if (!row) throw new DomainError("NOT_FOUND", "OFFER_NOT_FOUND", `no offer ${id}`, "offerId");
    return toOffer(row as OfferRow);
  }
}

/**
 * An offer's life, in the form of the core's process tables (transactions/process-table.ts): which
 * event moves it from which status to which. Every status write below names its event and is
 * conditional on the `from` statuses, so the table holds in the database too. A paid offer's
 * purchase is a core card deposit from then on (its own table).
 */
// biome-ignore format: one transition per line reads as the table it is
export const OFFER_TRANSITIONS = [
  { from: ["OPEN"], event: "CLAIM", to: "PAID" },       // a payment takes it (once, under the row lock)
  { from: ["PAID"], event: "GIVE_BACK", to: "OPEN" },   // its purchase was refused before anything was recorded
  { from: ["OPEN"], event: "EXPIRE", to: "EXPIRED" },   // its 20 s are up (the worker)
] as const satisfies readonly { from: readonly Offer["status"][]; event: string; to: Offer["status"] }[];

type OfferEvent = (typeof OFFER_TRANSITIONS)[number]["event"];

function offerTransition(event: OfferEvent): { from: Offer["status"][]; to: Offer["status"] } {
  const t = OFFER_TRANSITIONS.find((x) => x.event === event);
  if (!t) throw new Error(`no offer transition ${event}`);
  return { from: [...t.from], to: t.to };
}

const invalid = (field: string, message: string) =>
  new DomainError("INVALID", "INVALID_OFFER", `${field}: ${message}`, field);

/** An open offer, or a 409 saying why not. */
export function assertOpen(offer: Offer) {
  if (offer.status === "PAID") throw new DomainError("CONFLICT", "OFFER_PAID", "this offer is paid already");
  if (offer.status === "EXPIRED" || offer.expiresAt.getTime() <= Date.now())
    throw new DomainError("CONFLICT", "OFFER_EXPIRED", "this offer has expired: make a new one");
}
