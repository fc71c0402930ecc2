import { z } from "zod";
import type { UserInfo } from "../users/schemas.ts";

/** The pieces of information KYC tiers ask for (the names of MIN_INFO_MISSING's `fields`). */
export const INFO_FIELDS = [
  "FULL_NAME",
  "EMAIL_ADDRESS",
  "PHYSICAL_ADDRESS",
  "BIRTH_DATE",
  "PHONE_NUMBER",
  "TOKEN_ADDRESS",
  "ID_DOCUMENT",
  "NATIONAL_ID",
  "SOURCE_OF_FUNDS",
] as const;
export type InfoField = (typeof INFO_FIELDS)[number];

export const TRANSACTION_TYPES = ["DEPOSIT", "WITHDRAWAL", "TRANSFER", "TRADE", "PAYMENT"] as const;
export type TransactionType = (typeof TRANSACTION_TYPES)[number];

/** Whether the user's information holds a field. */
export function hasField(info: UserInfo, field: InfoField): boolean {
  switch (field) {
    case "FULL_NAME":
      return Boolean(info.name?.firstName && info.name.lastName) || Boolean(info.businessName);
    case "EMAIL_ADDRESS":
      return (info.emails?.length ?? 0) > 0;
    case "PHYSICAL_ADDRESS":
      return (info.addresses?.length ?? 0) > 0;
    case "BIRTH_DATE":
      return Boolean(info.dateOfBirth);
    case "PHONE_NUMBER":
      return (info.phones?.length ?? 0) > 0;
    case "TOKEN_ADDRESS":
      return (info.tokenAddresses?.length ?? 0) > 0;
    case "ID_DOCUMENT":
      return Boolean(info.idDocument);
    case "NATIONAL_ID":
      return (info.piis ?? []).some((p) => p.type === "SSN" || p.type === "NATIONAL_ID");
    case "SOURCE_OF_FUNDS":
      return Boolean(info.sourceOfFunds);
  }
}

const infoField = z.enum(INFO_FIELDS);
const bracket = z
  .object({
    upToUsd: z
      .string()
      .regex(/^\d+(\.\d{1,2})?$/)
      .nullable()
      .describe("Cumulative 30-day USD total this bracket covers; null: no upper bound"),
    requiredTier: z.number().int().min(0).max(5),
  })
  .strict();

export const kycConfigSchema = z
  .object({
    /** What each tier adds to the one below (cumulative). */
    tiers: z
      .object({
        "1": z.array(infoField),
        "2": z.array(infoField),
        "3": z.array(infoField),
        "4": z.array(infoField),
        "5": z.array(infoField),
      })
      .strict()
      .optional(),
    scenarios: z
      .array(
        z
          .object({
            id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
            brackets: z.partialRecord(z.enum(TRANSACTION_TYPES), z.array(bracket).min(1)),
          })
          .strict(),
      )
      .max(50)
      .optional(),
    defaultScenario: z.string().optional(),
  })
  .strict();

export type KycConfig = z.infer<typeof kycConfigSchema>;

export interface Bracket {
  /** Cumulative USD total in cents this bracket covers; null: no upper bound. */
  upToUsdCents: bigint | null;
  requiredTier: number;
}

export interface Scenario {
  id: string;
  brackets: Partial<Record<TransactionType, Bracket[]>>;
}

/** The shipped tiers (platform-api.md). */
export const DEFAULT_TIERS: Record<1 | 2 | 3 | 4 | 5, InfoField[]> = {
  1: ["FULL_NAME", "EMAIL_ADDRESS", "PHYSICAL_ADDRESS", "BIRTH_DATE"],
  2: ["ID_DOCUMENT"],
  3: ["TOKEN_ADDRESS"],
  4: ["NATIONAL_ID"],
  5: ["SOURCE_OF_FUNDS"],
};

const usd = (dollars: number) => BigInt(dollars) * 100n;
const standard = (smallTier: number): Bracket[] => [
  { upToUsdCents: usd(1_000), requiredTier: smallTier },
  { upToUsdCents: usd(10_000), requiredTier: 2 },
  { upToUsdCents: null, requiredTier: 4 },
];

/**
 * The shipped scenario: deposits up to 1,000 USD need tier 0, withdrawals tier 1; up to 10,000,
 * tier 2; above, tier 4. Transfers, trades and payments (which the spec leaves open) follow the
 * withdrawal brackets.
 */
export const DEFAULT_SCENARIO: Scenario = {
  id: "default",
  brackets: {
    DEPOSIT: standard(0),
    WITHDRAWAL: standard(1),
    TRANSFER: standard(1),
    TRADE: standard(1),
    PAYMENT: standard(1),
  },
};

export interface KycRules {
  tiers: Record<1 | 2 | 3 | 4 | 5, InfoField[]>;
  scenarios: Map<string, Scenario>;
  defaultScenarioId: string;
}

/** A client's rules: its configuration over the shipped defaults. */
export function kycRules(config: KycConfig | undefined): KycRules {
  const scenarios = new Map<string, Scenario>([[DEFAULT_SCENARIO.id, DEFAULT_SCENARIO]]);
  for (const s of config?.scenarios ?? []) {
    scenarios.set(s.id, {
      id: s.id,
      brackets: Object.fromEntries(
        Object.entries(s.brackets).map(([type, brackets]) => [
          type,
          brackets.map((b) => ({
            upToUsdCents: b.upToUsd === null ? null : BigInt(Math.round(Number(b.upToUsd) * 100)),
            requiredTier: b.requiredTier,
          })),
        ]),
      ),
    });
  }
  const tiers = config?.tiers
    ? {
        1: config.tiers["1"],
        2: config.tiers["2"],
        3: config.tiers["3"],
        4: config.tiers["4"],
        5: config.tiers["5"],
      }
    : DEFAULT_TIERS;
  const defaultScenarioId =
    config?.defaultScenario && scenarios.has(config.defaultScenario) ? config.defaultScenario : "default";
  return { tiers, scenarios, defaultScenarioId };
}

/** The fields a user needs for `tier` that their information lacks. */
export function missingFields(rules: KycRules, info: UserInfo, tier: number): InfoField[] {
  const missing: InfoField[] = [];
  for (let t = 1; t <= tier; t++) {
    for (const field of rules.tiers[t as 1 | 2 | 3 | 4 | 5]) {
      if (!hasField(info, field) && !missing.includes(field)) missing.push(field);
    }
  }
  return missing;
}

/** The highest tier the user's information supports (what an assessment can grant). */
export function supportedTier(rules: KycRules, info: UserInfo): number {
  let tier = 0;
  while (tier < 5 && missingFields(rules, info, tier + 1).length === 0) tier++;
  return tier;
}

/** The tier a transaction needs, given the user's cumulative USD total with it included. */
export function requiredTier(scenario: Scenario, type: TransactionType, cumulativeUsdCents: bigint): number {
  const brackets = scenario.brackets[type] ?? DEFAULT_SCENARIO.brackets[type] ?? [];
  for (const b of brackets) {
    if (b.upToUsdCents === null || cumulativeUsdCents <= b.upToUsdCents) return b.requiredTier;
  }
  return 5;
}

export type ValidationOutcome =
  | { type: "NO_ERROR"; code: 0 }
  | { type: "MIN_INFO_MISSING"; code: 1001; fields: InfoField[] }
  | { type: "MIN_ASSESSMENT_MISSING"; code: 1002; assessment: { requiredTier: number; currentTier: number } };

/** Whether a user may make a transaction: enough tier, or which information / assessment is missing. */
export function validateTransaction(
  rules: KycRules,
  scenario: Scenario,
  user: { tier: number; info: UserInfo },
  type: TransactionType,
  cumulativeUsdCents: bigint,
): ValidationOutcome {
  const needed = requiredTier(scenario, type, cumulativeUsdCents);
  if (user.tier >= needed) return { type: "NO_ERROR", code: 0 };
  const fields = missingFields(rules, user.info, needed);
  if (fields.length > 0) return { type: "MIN_INFO_MISSING", code: 1001, fields };
  return {
    type: "MIN_ASSESSMENT_MISSING",
    code: 1002,
    assessment: { requiredTier: needed, currentTier: user.tier },
  };
}
