import type { Db } from "../../db/database.ts";
import { AmountError, parsePositiveAmount } from "../../lib/money.ts";
import { KNOWN_SCALES, toUsdCents } from "../../providers/rates/interface.ts";
import { getClient } from "../clients/service.ts";
import { ConfiguredFees, type FeeRule } from "../fees/service.ts";
import type { ValidationOutcome } from "../kyc/rules.ts";
import type { Kyc } from "../kyc/service.ts";
import * as ledger from "../ledger/service.ts";
import {
  DEFAULT_MONITORING,
  evaluate,
  type MonitoringConfig,
  type MonitoringResult,
  type SanctionsList,
} from "../monitoring/rules.ts";
import type { UsdPrices } from "../rates/service.ts";
import type { UserInfo } from "../users/schemas.ts";
import type { UserReads, Users } from "../users/service.ts";
import { TransactionError, type TransactionType, totalOf, usdRateNotSet } from "./types.ts";
import { UsageReads } from "./usage.ts";

/**
 * The quote stage every face shares: the amount parsed once at its currency's scale, the fee, the
 * USD value, the KYC gate and monitoring. A face asks for a quote, then records the transaction
 * with it; nothing about money is computed twice or differently per face.
 */

export interface QuoteRequest {
  clientId: string;
  userId: string;
  type: TransactionType;
  amount: string | number;
  currency: string;
  scenarioId?: string | undefined;
  /** Names and countries screened with the user's own (a card holder, a counterparty). */
  screen?: { names?: (string | undefined)[]; countries?: (string | undefined)[] } | undefined;
  /** Transfers and payments: the receiving user's status (anything but ACTIVE is refused). */
  counterpartyStatus?: "ACTIVE" | "INACTIVE" | "BLOCKED" | undefined;
  /** A blocked user is refused by monitoring; the KYC gate is not asked first (it would answer 422). */
  userBlocked?: boolean | undefined;
  /** The request's reads of its users (each read once per request). */
  reads?: UserReads | undefined;
  /** The request's reads of the user's usage (once per request). */
  usage?: UsageReads | undefined;
}

export interface Quote {
  amount: bigint;
  scale: number;
  fee: bigint;
  usdValue: bigint;
  monitoring: MonitoringResult;
}

/** Amounts whose USD value in cents needs more than 36 digits are refused (NUMERIC(38,0) headroom for sums). */
const MAX_USD_CENTS = 10n ** 36n;

export interface QuoteDependencies {
  db: Db;
  users: Users;
  kyc: Kyc;
  /** USD prices per client (the provider's, or the client's own rates: modules/rates). */
  rates: UsdPrices;
  sanctions: SanctionsList;
}

export class Quotes {
  constructor(private readonly deps: QuoteDependencies) {}

  /** Scale, amount, fee and USD value: the checks of the input alone (400s), before anything else. */
  async price(
    clientId: string,
    type: TransactionType,
    amountInput: string | number,
    currency: string,
    /** A fee a face decided itself (the Wallet API's commission profiles), instead of the client's fee rules. */
    feeOverride?: bigint | undefined,
  ) {
    const scale = await this.scaleOf(clientId, currency);
    const amount = parseAmountOrThrow(amountInput, scale);
    const price = await this.deps.rates.usdPrice(currency, clientId);
    if (price === undefined) throw usdRateNotSet(currency, "currency");
    const usdValue = toUsdCents(amount, scale, price);
    if (usdValue >= MAX_USD_CENTS)
      throw new TransactionError("INVALID", "INVALID_AMOUNT", "amount is too large", "amount");
    const fee = feeOverride ?? (await this.feeFor(clientId, type, currency, amount, scale));
    if (fee < 0n || (totalOf(type, amount, fee) === amount && fee > amount))
      throw new TransactionError("INVALID", "INVALID_FEE", "the fee does not fit the amount", "amount");
    return { amount, scale, fee, usdValue };
  }

  /** The client's KYC scenario on the transaction, on the user's usage: what the gate decides on. */
  async kycOutcome(request: QuoteRequest): Promise<ValidationOutcome> {
    const { clientId, userId, type, amount, currency, scenarioId, reads } = request;
    return this.deps.kyc.validate({
      clientId,
      userId,
      type,
      amount,
      currency,
      scenarioId,
      reads,
      usage: (request.usage ?? this.usageReads()).source(),
    });
  }

  /** The KYC gate: a 422 with the validation body unless the user may do it. */
  async gate(request: QuoteRequest): Promise<void> {
    if (request.userBlocked) return;
    const outcome = await this.kycOutcome(request);
    if (outcome.type === "MIN_INFO_MISSING")
      throw new TransactionError(
        "MORE_INFORMATION_NEEDED",
        "MIN_INFO_MISSING",
        "the user's information is not enough for this transaction",
        undefined,
        { fields: outcome.fields },
      );
    if (outcome.type === "MIN_ASSESSMENT_MISSING")
      throw new TransactionError(
        "MORE_INFORMATION_NEEDED",
        "MIN_ASSESSMENT_MISSING",
        "this transaction needs a higher KYC tier",
        undefined,
        { assessment: outcome.assessment },
      );
  }

  /** Monitoring of a priced transaction. */
  async monitor(request: QuoteRequest, usdValue: bigint): Promise<MonitoringResult> {
    const config = await this.monitoringConfig(request.clientId);
    const reads = request.reads ?? this.deps.users.reads(request.clientId);
    const [user, info, figures] = await Promise.all([
      reads.user(request.userId),
      reads.info(request.userId),
      (request.usage ?? this.usageReads()).figures(request.clientId, request.userId),
    ]);
    const usage = {
      last24hUsdCents: figures.last24hUsdCents,
      recentCount: figures.recentCount,
      hasHistory: figures.hasHistory,
    };
    const personName = [info.name?.firstName, info.name?.middleName, info.name?.lastName]
      .filter(Boolean)
      .join(" ");
    const names = [
      personName,
      info.businessName ?? "",
      ...(request.screen?.names ?? []).map((n) => n ?? ""),
    ].filter((n) => n.length > 0);
    const countries = [...countriesOf(info), ...(request.screen?.countries ?? [])].filter(
      (c): c is string => typeof c === "string",
    );
    return evaluate(
      {
        userStatus: user.status,
        userCreatedAt: user.createdAt,
        counterpartyStatus: request.counterpartyStatus,
        names,
        countries,
        amountUsdCents: usdValue,
        ...usage,
        now: new Date(),
      },
      config,
      this.deps.sanctions,
    );
  }

  /** A reader of usage figures for one request (the gate and monitoring share its one read). */
  usageReads(): UsageReads {
    return new UsageReads(this.deps.db, async (clientId) => {
      const config = await this.monitoringConfig(clientId);
      return config.velocityWindowMinutes ?? DEFAULT_MONITORING.velocityWindowMinutes;
    });
  }

  private async monitoringConfig(clientId: string): Promise<MonitoringConfig> {
    const client = await getClient(this.deps.db, clientId);
    return ((client.settings as { monitoring?: MonitoringConfig }).monitoring ?? {}) as MonitoringConfig;
  }

  /** Price, gate and monitoring in the order the faces need them. */
  async quote(request: QuoteRequest): Promise<Quote> {
    const priced = await this.price(request.clientId, request.type, request.amount, request.currency);
    await this.gate(request);
    return { ...priced, monitoring: await this.monitor(request, priced.usdValue) };
  }

  async scaleOf(clientId: string, currency: string, db: Db = this.deps.db): Promise<number> {
    const scale = (await ledger.findCurrency(db, clientId, currency))?.scale ?? KNOWN_SCALES[currency];
    if (scale === undefined)
      throw new TransactionError(
        "INVALID",
        "UNKNOWN_CURRENCY",
        `currency ${currency} is not supported`,
        "currency",
      );
    return scale;
  }

  private async feeFor(
    clientId: string,
    type: TransactionType,
    currency: string,
    amount: bigint,
    scale: number,
  ) {
    const client = await getClient(this.deps.db, clientId);
    return new ConfiguredFees((client.settings as { fees?: FeeRule[] }).fees ?? []).feeFor({
      transactionType: type,
      currency,
      amount,
      scale,
    });
  }
}

export function parseAmountOrThrow(amount: string | number, scale: number): bigint {
  try {
    return parsePositiveAmount(amount, scale);
  } catch (error) {
    if (error instanceof AmountError)
      throw new TransactionError("INVALID", "INVALID_AMOUNT", `amount ${error.message}`, "amount");
    throw error;
  }
}

export function fullName(info: UserInfo): string {
  return (
    [info.name?.firstName, info.name?.middleName, info.name?.lastName].filter(Boolean).join(" ") ||
    info.businessName ||
    ""
  );
}

export function countriesOf(info: UserInfo): string[] {
  return [
    info.countryOfResidence,
    info.countryOfCitizenship,
    ...(info.addresses ?? []).map((a) => a.country),
  ].filter((c): c is string => typeof c === "string");
}

/** `amount` at `scale` priced `fromPrice` USD, in units of a currency priced `toPrice` at `toScale`, rounded down. */
export function convert(
  amount: bigint,
  scale: number,
  fromPrice: string,
  toScale: number,
  toPrice: string,
): bigint {
  const [fw = "0", ff = ""] = fromPrice.split(".");
  const [tw = "0", tf = ""] = toPrice.split(".");
  const numerator = amount * BigInt(fw + ff) * 10n ** BigInt(tf.length) * 10n ** BigInt(toScale);
  const denominator = BigInt(tw + tf) * 10n ** BigInt(ff.length) * 10n ** BigInt(scale);
  return numerator / denominator;
}
