import { announceChange, cachedRead } from "../../db/cache.ts";
import type { Db } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import type { RequestContext } from "../../lib/context.ts";
import { DomainError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import type { RatesProvider } from "../../providers/rates/interface.ts";
import { writeAudit } from "../audit/service.ts";
import * as ledger from "../ledger/service.ts";
import * as repo from "./repo.ts";

/**
 * What a currency is worth in US dollars — the value monitoring, the KYC gate, the usage totals and
 * trades put on an amount. A currency the rates provider prices (USD, EUR, BTC, …) has the
 * provider's price, and no other: a client cannot revalue the market. Any other currency of a
 * client (its own points or e-money) has the rate the client's staff or the platform admin set:
 * a new version each time, never an update, with who set it, when, and from when it applies. The
 * rate in force is the newest version whose `effectiveFrom` has come.
 *
 * Rates are exact decimal strings (up to 15 digits before the point and 12 after, greater than
 * zero), NUMERIC(27,12) in SQL; the conversions that use them are integer arithmetic on bigints.
 */
export class RateError extends DomainError {}

export const MAX_RATE_WHOLE_DIGITS = 15;
export const MAX_RATE_DECIMALS = 12;
/** How far ahead a rate may be scheduled. */
export const MAX_SCHEDULE_DAYS = 366;
/** A given `effectiveFrom` this close behind the server's clock is "now" (clocks differ). */
export const PAST_TOLERANCE_MS = 60_000;

/** The USD price of a client's currency; undefined when it has none. */
export interface UsdPrices {
  usdPrice(currency: string, clientId: string): Promise<string | undefined>;
}

export type RateSource = "PROVIDER" | "CLIENT";

export interface UsdRateVersion {
  id: string;
  currency: string;
  version: number;
  rate: string;
  effectiveFrom: Date;
  setBy: { kind: string; id: string | null; role: string | null };
  createdAt: Date;
}

/** The rate in force: the provider's price, or the client's version in force. */
export interface RateInForce {
  currency: string;
  rate: string;
  source: RateSource;
  /** The client's version (null for the provider's price). */
  version: number | null;
  effectiveFrom: Date | null;
}

/** Parses a USD rate: a decimal greater than zero, ≤ 15 + 12 digits; a JSON number through its exact text. */
export function parseUsdRate(input: unknown): string {
  let text: string;
  if (typeof input === "number") {
    if (!Number.isFinite(input)) throw invalidRate("must be a finite number");
    text = String(input);
    if (/e/i.test(text))
      throw invalidRate("must be written without an exponent; send it as a decimal string");
  } else if (typeof input === "string") {
    text = input;
  } else {
    throw invalidRate('must be a decimal string such as "0.01"');
  }
  const match = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) throw invalidRate('must be a decimal number such as "0.01" (no sign, no exponent)');
  const whole = (match[1] ?? "").replace(/^0+(?=\d)/, "");
  const fraction = (match[2] ?? "").replace(/0+$/, "");
  if (whole.length > MAX_RATE_WHOLE_DIGITS)
    throw invalidRate(`has more than ${MAX_RATE_WHOLE_DIGITS} digits before the decimal point`);
  if (fraction.length > MAX_RATE_DECIMALS)
    throw invalidRate(`has more than ${MAX_RATE_DECIMALS} decimal places`);
  if (/^0*$/.test(whole + fraction))
    throw invalidRate("must be greater than zero (a currency with no value would blind monitoring)");
  return fraction ? `${whole}.${fraction}` : whole;
}

const invalidRate = (message: string) => new RateError("INVALID", "INVALID_RATE", `rate ${message}`, "rate");

/** When a new version applies: now, or a moment up to a year ahead; never the past (history is kept as it was). */
export function parseEffectiveFrom(input: string | Date | undefined, now: Date): Date {
  if (input === undefined) return now;
  const at = input instanceof Date ? input : new Date(input);
  if (Number.isNaN(at.getTime()) || (typeof input === "string" && !/^\d{4}-\d{2}-\d{2}T/.test(input)))
    throw new RateError(
      "INVALID",
      "INVALID_EFFECTIVE_FROM",
      "effectiveFrom must be an ISO 8601 date-time",
      "effectiveFrom",
    );
  if (at.getTime() < now.getTime() - PAST_TOLERANCE_MS)
    throw new RateError(
      "INVALID",
      "INVALID_EFFECTIVE_FROM",
      "effectiveFrom may not be in the past: the rates that valued past transactions stay as they were",
      "effectiveFrom",
    );
  if (at.getTime() > now.getTime() + MAX_SCHEDULE_DAYS * 86_400_000)
    throw new RateError(
      "INVALID",
      "INVALID_EFFECTIVE_FROM",
      `effectiveFrom may be at most ${MAX_SCHEDULE_DAYS} days ahead`,
      "effectiveFrom",
    );
  return at < now ? now : at;
}

const toVersion = (row: repo.RateRow): UsdRateVersion => ({
  id: row.id,
  currency: row.currency,
  version: row.version,
  rate: normalizeRate(row.usd_rate),
  effectiveFrom: row.effective_from,
  setBy: { kind: row.set_by_kind, id: row.set_by_id, role: row.set_by_role },
  createdAt: row.created_at,
});

/** NUMERIC(27,12) text ("0.010000000000") → the rate as it was given ("0.01"). */
function normalizeRate(text: string): string {
  if (!text.includes(".")) return text;
  return text.replace(/0+$/, "").replace(/\.$/, "");
}

/** The version in force at `now` among versions in force order. */
function inForceAt(versions: UsdRateVersion[], now: number): UsdRateVersion | undefined {
  let found: UsdRateVersion | undefined;
  for (const v of versions) if (v.effectiveFrom.getTime() <= now) found = v;
  return found;
}

const CACHE_TOPIC = "usd-rates";
const cacheKey = (clientId: string, currency: string) => `${clientId}\u0000${currency}`;

export class CurrencyRates implements UsdPrices {
  constructor(
    private readonly db: Db,
    private readonly provider: RatesProvider,
  ) {}

  /** The provider's price, or the client's rate in force; undefined when the currency has neither. */
  async usdPrice(currency: string, clientId: string, db: Db = this.db): Promise<string | undefined> {
    return (await this.inForce(clientId, currency, db))?.rate;
  }

  /** Whether the rates provider prices `currency` (then no client sets its rate). */
  async providerPrices(currency: string): Promise<boolean> {
    return (await this.provider.usdPrice(currency)) !== undefined;
  }

  async inForce(clientId: string, currency: string, db: Db = this.db): Promise<RateInForce | undefined> {
    const market = await this.provider.usdPrice(currency);
    if (market !== undefined)
      return { currency, rate: market, source: "PROVIDER", version: null, effectiveFrom: null };
    const current = inForceAt(await this.scheduled(db, clientId, currency), Date.now());
    return current && clientRate(current);
  }

  /** The rate in force of each of `currencies` (those with none are left out). */
  async inForceAll(clientId: string, currencies: string[]): Promise<Map<string, RateInForce>> {
    const out = new Map<string, RateInForce>();
    const own = new Map(
      (await repo.ratesInForce(this.db, clientId, new Date())).map((r) => [r.currency, toVersion(r)]),
    );
    for (const currency of currencies) {
      const market = await this.provider.usdPrice(currency);
      const version = own.get(currency);
      if (market !== undefined)
        out.set(currency, { currency, rate: market, source: "PROVIDER", version: null, effectiveFrom: null });
      else if (version) out.set(currency, clientRate(version));
    }
    return out;
  }

  /**
   * Sets a client's currency's USD rate (a new version), audited with the actor, in one transaction.
   * Bad input → 400, an unknown currency → 404, a currency the provider prices → 409.
   */
  async set(
    context: RequestContext,
    input: { currency: string; rate: unknown; effectiveFrom?: string | Date | undefined },
  ): Promise<{ recorded: UsdRateVersion; inForce: RateInForce | null }> {
    const rate = parseUsdRate(input.rate);
    const effectiveFrom = parseEffectiveFrom(input.effectiveFrom, new Date());
    await this.ownCurrency(context.clientId, input.currency);
    if (await this.providerPrices(input.currency))
      throw new RateError(
        "CONFLICT",
        "RATE_FROM_PROVIDER",
        `${input.currency} is priced by the rates provider; its rate cannot be set`,
        "currency",
      );
    return inTransaction(this.db, (tx) =>
      this.record(tx, context, { currency: input.currency, rate, effectiveFrom }),
    );
  }

  /**
   * Records a checked rate in the caller's transaction (a currency created with its first rate):
   * the version, its audit row (before → after), and the cache's invalidation.
   */
  async record(
    tx: Db,
    context: RequestContext,
    input: { currency: string; rate: string; effectiveFrom: Date },
  ): Promise<{ recorded: UsdRateVersion; inForce: RateInForce | null }> {
    const { clientId } = context;
    await repo.lockRates(tx, clientId, input.currency);
    const now = new Date();
    const before = inForceAt((await repo.ratesFrom(tx, clientId, input.currency, now)).map(toVersion), +now);
    const recorded = toVersion(
      await repo.insertRate(tx, {
        id: newId(),
        clientId,
        currency: input.currency,
        usdRate: input.rate,
        effectiveFrom: input.effectiveFrom,
        setBy: {
          kind: context.actor.kind,
          id: context.actor.id,
          role: context.actor.roles?.length ? context.actor.roles.join(",") : null,
        },
        requestId: context.requestId ?? null,
      }),
    );
    await writeAudit(tx, context, {
      action: "currency.usd_rate_set",
      entityType: "currency",
      entityId: input.currency,
      before: before ? auditView(before) : null,
      after: auditView(recorded),
    });
    await announceChange(tx, CACHE_TOPIC, cacheKey(clientId, input.currency));
    // `before` was in force at `now`; the new version is in force now unless it is scheduled.
    const current = recorded.effectiveFrom.getTime() <= +now ? recorded : before;
    return { recorded, inForce: current ? clientRate(current) : null };
  }

  /** A client currency's versions, newest first, and the rate in force. Unknown currency → 404. */
  async history(clientId: string, currency: string, page: { offset: number; limit: number }) {
    await this.ownCurrency(clientId, currency);
    const [{ rows, total }, inForce] = await Promise.all([
      repo.listRates(this.db, clientId, currency, page),
      this.inForce(clientId, currency),
    ]);
    return { inForce: inForce ?? null, versions: rows.map(toVersion), total };
  }

  private async ownCurrency(clientId: string, currency: string): Promise<void> {
    if (!(await ledger.findCurrency(this.db, clientId, currency)))
      throw new RateError("NOT_FOUND", "CURRENCY_NOT_FOUND", `no currency ${currency}`, "currency");
  }

  /** The versions in force from now on (cached: read on every quote of a client's own currency). */
  private async scheduled(db: Db, clientId: string, currency: string): Promise<UsdRateVersion[]> {
    const versions = await cachedRead(db, CACHE_TOPIC, cacheKey(clientId, currency), async () =>
      (await repo.ratesFrom(db, clientId, currency, new Date())).map(toVersion),
    );
    return versions ?? [];
  }
}

const clientRate = (v: UsdRateVersion): RateInForce => ({
  currency: v.currency,
  rate: v.rate,
  source: "CLIENT",
  version: v.version,
  effectiveFrom: v.effectiveFrom,
});

const auditView = (v: UsdRateVersion) => ({
  rate: v.rate,
  version: v.version,
  effectiveFrom: v.effectiveFrom.toISOString(),
});
