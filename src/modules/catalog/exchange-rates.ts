import type { Db } from "../../db/database.ts";
import type { RequestContext } from "../../lib/context.ts";
import { type CurrencyRates, parseUsdRate, type RateInForce, type UsdRateVersion } from "../rates/service.ts";
import {
  CatalogError,
  type CurrencyDetails,
  findCurrencyById,
  findCurrencyDetails,
  listCurrencies,
} from "./service.ts";

/**
 * Currency rates as SDK.finance's exchange-rates API shows them — pairs `in → out` — over what
 * Ferry keeps: one USD rate per currency (modules/rates). Every pair is therefore `<currency> → USD`;
 * a currency is named by its id or its code, and USD by its id or the code "USD" (a client may
 * have no USD currency of its own).
 */

export interface CurrencyRef {
  id: string | null;
  code: string;
  symbol: string | null;
}

export interface RatePair {
  /** The pair's id: its currency's id (one USD rate per currency). */
  id: string | null;
  inCurrency: CurrencyRef;
  outCurrency: CurrencyRef;
  /** USD per unit of the in-currency; null: none set yet. */
  rate: string | null;
  inForce: RateInForce | null;
}

const MAX_PAIRS = 100;

const refOf = (c: CurrencyDetails): CurrencyRef => ({ id: c.id, code: c.code, symbol: c.symbol });

/** A currency of the client by id or code; unknown → 404. */
async function currencyOf(db: Db, clientId: string, ref: string, field: string): Promise<CurrencyDetails> {
  const found =
    (await findCurrencyById(db, clientId, ref)) ??
    (/^[A-Z0-9]{2,12}$/.test(ref) ? await findCurrencyDetails(db, clientId, ref) : undefined);
  if (!found) throw new CatalogError("NOT_FOUND", "CURRENCY_NOT_FOUND", `no currency ${ref}`, field);
  return found;
}

/** USD as the out-currency: the client's own USD, or USD itself when the client has none. */
async function usdOf(db: Db, clientId: string, ref: string): Promise<CurrencyRef> {
  const usd = await findCurrencyDetails(db, clientId, "USD");
  if (ref === "USD" || (usd && ref === usd.id))
    return usd ? refOf(usd) : { id: null, code: "USD", symbol: "$" };
  throw new CatalogError(
    "INVALID",
    "RATES_ARE_IN_USD",
    "Ferry keeps each currency's rate in US dollars: outCurrencyId must be USD (its id or the code)",
    "outCurrencyId",
  );
}

function pairOf(currency: CurrencyDetails, usd: CurrencyRef, inForce: RateInForce | undefined): RatePair {
  return {
    id: currency.id,
    inCurrency: refOf(currency),
    outCurrency: usd,
    rate: inForce?.rate ?? null,
    inForce: inForce ?? null,
  };
}

/**
 * The pairs asked for (`ratePairs`, or one `inCurrencyId`), or every currency of the client → USD.
 * A currency of another client is unknown here (404).
 */
export async function ratePairs(
  db: Db,
  rates: CurrencyRates,
  clientId: string,
  filter: {
    inCurrencyId?: string | undefined;
    outCurrencyId?: string | undefined;
    ratePairs?: { inCurrencyId: string; outCurrencyId: string }[] | undefined;
  },
): Promise<RatePair[]> {
  const asked = [
    ...(filter.ratePairs ?? []),
    ...(filter.inCurrencyId !== undefined
      ? [{ inCurrencyId: filter.inCurrencyId, outCurrencyId: filter.outCurrencyId ?? "USD" }]
      : []),
  ].slice(0, MAX_PAIRS);
  if (asked.length === 0) {
    if (filter.outCurrencyId !== undefined) await usdOf(db, clientId, filter.outCurrencyId);
    const usd = await usdOf(db, clientId, "USD");
    const currencies = await listCurrencies(db, clientId);
    const inForce = await rates.inForceAll(
      clientId,
      currencies.map((c) => c.code),
    );
    return currencies.map((c) => pairOf(c, usd, inForce.get(c.code)));
  }
  const out: RatePair[] = [];
  for (const pair of asked) {
    const usd = await usdOf(db, clientId, pair.outCurrencyId);
    const currency = await currencyOf(db, clientId, pair.inCurrencyId, "inCurrencyId");
    out.push(pairOf(currency, usd, await rates.inForce(clientId, currency.code)));
  }
  return out;
}

/** Sets the pair's rate: a new USD rate version of its in-currency (audited; see CurrencyRates.set). */
export async function setRatePair(
  db: Db,
  rates: CurrencyRates,
  context: RequestContext,
  input: {
    inCurrencyId: string;
    outCurrencyId: string;
    rate: unknown;
    active?: boolean | undefined;
    effectiveFrom?: string | undefined;
  },
): Promise<{ pair: RatePair; recorded: UsdRateVersion }> {
  parseUsdRate(input.rate); // bad input is a 400 before anything is looked up
  if (input.active === false)
    throw new CatalogError(
      "INVALID",
      "RATE_CANNOT_BE_SWITCHED_OFF",
      "a currency's rate cannot be switched off (monitoring and KYC need its value): set a new rate instead",
      "active",
    );
  const usd = await usdOf(db, context.clientId, input.outCurrencyId);
  const currency = await currencyOf(db, context.clientId, input.inCurrencyId, "inCurrencyId");
  const { recorded, inForce } = await rates.set(context, {
    currency: currency.code,
    rate: input.rate,
    effectiveFrom: input.effectiveFrom,
  });
  return { pair: pairOf(currency, usd, inForce ?? undefined), recorded };
}
