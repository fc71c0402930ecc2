// Over 400 lines on purpose: commission profiles' validation, storage and their bigint arithmetic
// (IN / OUT / SHARED, ranged rules) together, so that what is stored and what is charged agree.
import { z } from "zod";
import { announceChange, cachedRead } from "../../db/cache.ts";
import type { Db } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import type { Actor } from "../../lib/context.ts";
import { newId, UUID } from "../../lib/ids.ts";
import { AmountError, formatAmount, parseAmount } from "../../lib/money.ts";
import { writeAudit } from "../audit/service.ts";
import { findCurrency } from "../ledger/service.ts";
import {
  applyDirection,
  type Commission,
  CommissionError,
  type CommissionRule,
  FEE_DIRECTIONS,
  type FeeDirection,
  RULE_TYPES,
  rangesOverlap,
  ruleFee,
  selectRule,
} from "./arithmetic.ts";

/**
 * Commission profiles (Wallet API set-up): per operation and currency, who pays the fee (IN, OUT,
 * SHARED) and amount-ranged rules, valid between two optional dates. `quote` answers the commission
 * of one operation: the newest profile valid at the moment, the first rule whose range holds the
 * amount; no profile or no rule → zero fee.
 *
 * Inside, amounts are bigint minor units (`CommissionProfile`); the rules are stored as JSON with
 * amounts as minor-unit decimal strings. On the wire they are decimal strings in major units: a face
 * answers `showProfile(profile)` (which formats at the currency's scale, carried by the profile as
 * `scale`) and validates bodies with `commissionProfileInputSchema`. Cross-field checks (dates in
 * order, ranges in order and not overlapping, amounts at the currency's scale) are made by `create`,
 * not the schema, so the schema stays a plain object a face may extend.
 */

export const OPERATIONS = [
  "TOP_UP_BANK",
  "TOP_UP_CARD",
  "WITHDRAW_BANK",
  "WITHDRAW_CARD",
  "TRANSFER",
  "EXCHANGE",
] as const;
export type Operation = (typeof OPERATIONS)[number];

const PERCENT = /^\d{1,3}(\.\d{1,4})?$/;

function percentAtMost100(text: string): boolean {
  // zod runs a refinement even after the regex refused the text: only a percentage is weighed.
  if (!PERCENT.test(text)) return true;
  const [whole = "0", fraction = ""] = text.split(".");
  const wholeValue = BigInt(whole);
  return wholeValue < 100n || (wholeValue === 100n && /^0*$/.test(fraction));
}

/** An amount on the wire: a decimal string in major units ("10.00") or a JSON number. */
export const wireAmountSchema = z.union([
  z.string().regex(/^\d{1,38}(\.\d{1,18})?$/, 'must be a decimal amount in major units such as "10.00"'),
  z.number().nonnegative(),
]);

/** A percentage from 0 to 100 with up to 4 decimals: "1.5" is 1.5 %. */
export const wirePercentSchema = z.union([
  z
    .string()
    .regex(PERCENT, 'must be a percentage such as "1.5" (up to 4 decimals)')
    .refine(percentAtMost100, "must be at most 100"),
  z
    .number()
    .min(0)
    .max(100)
    .refine((n) => PERCENT.test(String(n)), "must have at most 4 decimals"),
]);

export const commissionRuleInputSchema = z
  .object({
    beginAmount: wireAmountSchema,
    endAmount: wireAmountSchema.nullable().optional().describe("Absent or null: no upper bound"),
    type: z.enum(RULE_TYPES),
    valueFixed: wireAmountSchema.optional().describe("Needed by the types with a fixed part"),
    valuePercent: wirePercentSchema.optional().describe("Needed by the types with a percent part"),
  })
  .strict();

export const commissionProfileInputSchema = z
  .object({
    operation: z.enum(OPERATIONS),
    currency: z.string().regex(/^[A-Z0-9]{2,12}$/),
    feeDirection: z.enum(FEE_DIRECTIONS),
    rules: z.array(commissionRuleInputSchema).max(50),
    beginDate: z.iso.datetime({ offset: true }).nullable().optional().describe("Absent: valid since ever"),
    endDate: z.iso.datetime({ offset: true }).nullable().optional().describe("Absent: valid forever"),
  })
  .strict();

export type CommissionRuleInput = z.input<typeof commissionRuleInputSchema>;
export type CommissionProfileInput = z.input<typeof commissionProfileInputSchema>;

export const commissionRuleViewSchema = z.object({
  beginAmount: z.string(),
  endAmount: z.string().nullable(),
  type: z.enum(RULE_TYPES),
  valueFixed: z.string(),
  valuePercent: z.string(),
});

export const commissionProfileViewSchema = z.object({
  id: z.string(),
  operation: z.enum(OPERATIONS),
  currency: z.string(),
  feeDirection: z.enum(FEE_DIRECTIONS),
  rules: z.array(commissionRuleViewSchema),
  beginDate: z.string().nullable(),
  endDate: z.string().nullable(),
  createdAt: z.string(),
});
export type CommissionProfileView = z.infer<typeof commissionProfileViewSchema>;

/** A profile as the module keeps it: amounts in minor units, `scale` its currency's. */
export interface CommissionProfile {
  id: string;
  clientId: string;
  operation: Operation;
  currency: string;
  /** The currency's scale (decimals), to format the amounts. */
  scale: number;
  feeDirection: FeeDirection;
  rules: CommissionRule[];
  /** Inclusive; null: since ever. */
  beginDate: Date | null;
  /** Exclusive; null: forever. */
  endDate: Date | null;
  createdAt: Date;
}

/** The wire view: amounts as decimal strings at the currency's scale, dates as ISO 8601. */
export function showProfile(
  profile: CommissionProfile,
  scale: number = profile.scale,
): CommissionProfileView {
  return {
    id: profile.id,
    operation: profile.operation,
    currency: profile.currency,
    feeDirection: profile.feeDirection,
    rules: profile.rules.map((rule) => ({
      beginAmount: formatAmount(rule.beginAmount, scale),
      endAmount: rule.endAmount === null ? null : formatAmount(rule.endAmount, scale),
      type: rule.type,
      valueFixed: formatAmount(rule.valueFixed, scale),
      valuePercent: rule.valuePercent,
    })),
    beginDate: profile.beginDate?.toISOString() ?? null,
    endDate: profile.endDate?.toISOString() ?? null,
    createdAt: profile.createdAt.toISOString(),
  };
}

// --- storage -------------------------------------------------------------------------------------

interface StoredRule {
  beginAmount: string;
  endAmount: string | null;
  type: CommissionRule["type"];
  valueFixed: string;
  valuePercent: string;
}

function storeRules(rules: CommissionRule[]): string {
  const stored: StoredRule[] = rules.map((rule) => ({
    beginAmount: rule.beginAmount.toString(),
    endAmount: rule.endAmount === null ? null : rule.endAmount.toString(),
    type: rule.type,
    valueFixed: rule.valueFixed.toString(),
    valuePercent: rule.valuePercent,
  }));
  return JSON.stringify(stored);
}

function loadRules(json: unknown): CommissionRule[] {
  const stored = (typeof json === "string" ? JSON.parse(json) : json) as StoredRule[];
  return stored.map((rule) => ({
    beginAmount: BigInt(rule.beginAmount),
    endAmount: rule.endAmount === null ? null : BigInt(rule.endAmount),
    type: rule.type,
    valueFixed: BigInt(rule.valueFixed),
    valuePercent: rule.valuePercent,
  }));
}

interface ProfileRow {
  client_id: string;
  id: string;
  operation: string;
  currency: string;
  fee_direction: string;
  rules: unknown;
  begin_date: Date | string | null;
  end_date: Date | string | null;
  created_at: Date | string;
}

function toProfile(row: ProfileRow, scale: number): CommissionProfile {
  return {
    id: row.id,
    clientId: row.client_id,
    operation: row.operation as Operation,
    currency: row.currency,
    scale,
    feeDirection: row.fee_direction as FeeDirection,
    rules: loadRules(row.rules),
    beginDate: row.begin_date === null ? null : new Date(row.begin_date),
    endDate: row.end_date === null ? null : new Date(row.end_date),
    createdAt: new Date(row.created_at),
  };
}

// --- validation ----------------------------------------------------------------------------------

const invalid = (field: string, message: string) =>
  new CommissionError("INVALID_COMMISSION_PROFILE", `${field} ${message}`, field);

function amountAt(value: string | number, scale: number, field: string): bigint {
  let minor: bigint;
  try {
    minor = parseAmount(value, scale);
  } catch (error) {
    if (error instanceof AmountError) throw invalid(field, error.message);
    throw error;
  }
  if (minor < 0n) throw invalid(field, "must not be negative");
  return minor;
}

const usesFixed = new Set<string>([
  "fixed",
  "greater_of_fixed_or_percent",
  "lesser_of_fixed_or_percent",
  "fixed_and_percent",
]);
const usesPercent = new Set<string>([
  "percent",
  "greater_of_fixed_or_percent",
  "lesser_of_fixed_or_percent",
  "fixed_and_percent",
]);

/** Converts the wire rules to minor units at `scale`, refusing misordered or overlapping ranges. */
export function parseRules(
  rules: z.output<typeof commissionRuleInputSchema>[],
  scale: number,
): CommissionRule[] {
  const parsed = rules.map((input, index): CommissionRule => {
    const at = `rules.${index}`;
    if (usesFixed.has(input.type) && input.valueFixed === undefined)
      throw invalid(`${at}.valueFixed`, `is required by the type ${input.type}`);
    if (usesPercent.has(input.type) && input.valuePercent === undefined)
      throw invalid(`${at}.valuePercent`, `is required by the type ${input.type}`);
    const beginAmount = amountAt(input.beginAmount, scale, `${at}.beginAmount`);
    const endAmount =
      input.endAmount === undefined || input.endAmount === null
        ? null
        : amountAt(input.endAmount, scale, `${at}.endAmount`);
    if (endAmount !== null && endAmount < beginAmount)
      throw invalid(`${at}.endAmount`, "must not be below beginAmount");
    return {
      beginAmount,
      endAmount,
      type: input.type,
      valueFixed: input.valueFixed === undefined ? 0n : amountAt(input.valueFixed, scale, `${at}.valueFixed`),
      valuePercent: input.valuePercent === undefined ? "0" : String(input.valuePercent),
    };
  });
  parsed.forEach((rule, index) => {
    const earlier = parsed.slice(0, index).findIndex((other) => rangesOverlap(other, rule));
    if (earlier >= 0) throw invalid(`rules.${index}`, `overlaps the amount range of rules.${earlier}`);
  });
  return parsed;
}

function parseInput(input: CommissionProfileInput): z.output<typeof commissionProfileInputSchema> {
  const result = commissionProfileInputSchema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue?.path.map(String).join(".") || "body";
  throw invalid(field, issue?.message ?? "is invalid");
}

// --- the service ---------------------------------------------------------------------------------

export interface CommissionQuery {
  operation: Operation;
  currency: string;
  /** Minor units. */
  amount: bigint;
  /** The moment whose profiles apply; now by default. */
  at?: Date | undefined;
}

export class CommissionProfiles {
  constructor(private readonly db: Db) {}

  async create(
    clientId: string,
    input: CommissionProfileInput,
    actor: Actor,
    requestId?: string,
  ): Promise<CommissionProfile> {
    const data = parseInput(input);
    const currency = await findCurrency(this.db, clientId, data.currency);
    if (!currency) {
      throw new CommissionError("CURRENCY_NOT_FOUND", `no currency ${data.currency}`, "currency");
    }
    const rules = parseRules(data.rules, currency.scale);
    const beginDate = data.beginDate ? new Date(data.beginDate) : null;
    const endDate = data.endDate ? new Date(data.endDate) : null;
    if (beginDate && endDate && beginDate.getTime() >= endDate.getTime()) {
      throw invalid("endDate", "must be after beginDate");
    }
    return inTransaction(this.db, async (tx) => {
      const row = await tx
        .insertInto("commission_profiles")
        .values({
          client_id: clientId,
          id: newId(),
          operation: data.operation,
          currency: data.currency,
          fee_direction: data.feeDirection,
          rules: storeRules(rules),
          begin_date: beginDate,
          end_date: endDate,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      const profile = toProfile(row, currency.scale);
      await announceChange(tx, "commission-profiles", profilesKey(clientId, input.operation, input.currency));
      await writeAudit(
        tx,
        { clientId, actor, requestId },
        {
          action: "commission_profile.created",
          entityType: "commission_profile",
          entityId: profile.id,
          after: showProfile(profile),
        },
      );
      return profile;
    });
  }

  /** A client's profiles, oldest first. */
  async list(
    clientId: string,
    query: {
      offset: number;
      limit: number;
      operation?: Operation | undefined;
      currency?: string | undefined;
    },
  ): Promise<{ profiles: CommissionProfile[]; total: number }> {
    let base = this.db
      .selectFrom("commission_profiles as p")
      .innerJoin("ledger_currencies as c", (join) =>
        join.onRef("c.client_id", "=", "p.client_id").onRef("c.code", "=", "p.currency"),
      )
      .where("p.client_id", "=", clientId);
    if (query.operation !== undefined) base = base.where("p.operation", "=", query.operation);
    if (query.currency !== undefined) base = base.where("p.currency", "=", query.currency);
    const [rows, count] = await Promise.all([
      base
        .selectAll("p")
        .select("c.scale")
        .orderBy("p.created_at")
        .orderBy("p.id")
        .offset(query.offset)
        .limit(query.limit)
        .execute(),
      base.select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow(),
    ]);
    return { profiles: rows.map((row) => toProfile(row, row.scale)), total: Number(count.n) };
  }

  /** One of the client's profiles; another client's, or none: COMMISSION_PROFILE_NOT_FOUND (404). */
  async get(clientId: string, id: string): Promise<CommissionProfile> {
    const notFound = () => new CommissionError("COMMISSION_PROFILE_NOT_FOUND", `no commission profile ${id}`);
    if (!UUID.test(id)) throw notFound();
    const row = await this.db
      .selectFrom("commission_profiles as p")
      .innerJoin("ledger_currencies as c", (join) =>
        join.onRef("c.client_id", "=", "p.client_id").onRef("c.code", "=", "p.currency"),
      )
      .selectAll("p")
      .select("c.scale")
      .where("p.client_id", "=", clientId)
      .where("p.id", "=", id)
      .executeTakeFirst();
    if (!row) throw notFound();
    return toProfile(row, row.scale);
  }

  /**
   * The commission of one operation: the newest profile for the operation and currency whose dates
   * hold `at` (begin inclusive, end exclusive), then its first rule whose range holds the amount. No
   * profile: zero fee, direction OUT; no rule: zero fee in the profile's direction. Throws
   * AMOUNT_BELOW_COMMISSION when the recipient would get nothing.
   */
  async quote(clientId: string, query: CommissionQuery, db: Db = this.db): Promise<Commission> {
    const at = (query.at ?? new Date()).getTime();
    // The operation's profiles, newest first, kept in the process cache (a new profile announces
    // itself to every process); the one whose dates hold `at` applies.
    const profiles = await cachedRead(
      db,
      "commission-profiles",
      profilesKey(clientId, query.operation, query.currency),
      async () =>
        (
          await db
            .selectFrom("commission_profiles")
            .select(["fee_direction", "rules", "begin_date", "end_date"])
            .where("client_id", "=", clientId)
            .where("operation", "=", query.operation)
            .where("currency", "=", query.currency)
            .orderBy("created_at", "desc")
            .orderBy("id", "desc")
            .limit(500)
            .execute()
        ).map((r) => ({
          direction: r.fee_direction as FeeDirection,
          rules: loadRules(r.rules),
          begin: r.begin_date ? new Date(r.begin_date).getTime() : null,
          end: r.end_date ? new Date(r.end_date).getTime() : null,
        })),
    );
    const profile = (profiles ?? []).find(
      (p) => (p.begin === null || p.begin <= at) && (p.end === null || p.end > at),
    );
    if (!profile) return applyDirection(query.amount, 0n, "OUT");
    const rule = selectRule(profile.rules, query.amount);
    return applyDirection(query.amount, rule ? ruleFee(rule, query.amount) : 0n, profile.direction);
  }
}

const profilesKey = (clientId: string, operation: string, currency: string) =>
  [clientId, operation, currency].join("\u0000");
