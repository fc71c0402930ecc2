import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";

export type MonitoringStatus = "ACCEPT" | "MANUAL_REVIEW" | "DENY";
export type Risk = "LOW" | "MEDIUM" | "HIGH";

export interface MonitoringResult {
  status: MonitoringStatus;
  risk: Risk;
  reasons: string[];
}

/** Per-client monitoring settings (`settings.monitoring`); absent members take the defaults. */
export const monitoringConfigSchema = z
  .object({
    singleAmountReviewUsd: z.number().positive().optional(),
    dailyTotalReviewUsd: z.number().positive().optional(),
    velocityCount: z.number().int().positive().optional(),
    velocityWindowMinutes: z.number().int().positive().optional(),
    newUserHours: z.number().int().positive().optional(),
    newUserFirstAmountReviewUsd: z.number().positive().optional(),
    prohibitedCountries: z.array(z.string().regex(/^[A-Z]{2}$/)).optional(),
    highRiskCountries: z.array(z.string().regex(/^[A-Z]{2}$/)).optional(),
  })
  .strict();
export type MonitoringConfig = z.infer<typeof monitoringConfigSchema>;

export const DEFAULT_MONITORING = {
  singleAmountReviewUsd: 10_000,
  dailyTotalReviewUsd: 25_000,
  velocityCount: 5,
  velocityWindowMinutes: 10,
  newUserHours: 24,
  newUserFirstAmountReviewUsd: 1_000,
  prohibitedCountries: ["KP", "IR", "SY", "CU"],
  highRiskCountries: ["AF", "MM", "YE", "SS", "LY", "VE", "BY", "RU"],
};

/** Everything the rules look at, gathered by the caller. Amounts in US cents. */
export interface MonitoringInput {
  userStatus: "ACTIVE" | "INACTIVE" | "BLOCKED";
  /** Transfers and payments: the receiving user's status. */
  counterpartyStatus?: "ACTIVE" | "INACTIVE" | "BLOCKED" | undefined;
  userCreatedAt: Date;
  /** Names to screen: the user's, the counterparty's, a card holder's. */
  names: string[];
  /** Countries involved: residence, citizenship, addresses, the card's billing address. */
  countries: string[];
  amountUsdCents: bigint;
  /** The user's total over the last 24 hours, this transaction excluded. */
  last24hUsdCents: bigint;
  /** The user's transactions in the velocity window, this one excluded. */
  recentCount: number;
  /** Whether the user made any transaction before this one. */
  hasHistory: boolean;
  now: Date;
}

const cents = (usd: number) => BigInt(Math.round(usd * 100));

/** Applies the rules: DENY beats MANUAL_REVIEW beats ACCEPT; every rule that fired is a reason. */
export function evaluate(
  input: MonitoringInput,
  config: MonitoringConfig | undefined,
  sanctions: SanctionsList,
): MonitoringResult {
  const c = { ...DEFAULT_MONITORING, ...config };
  const deny: string[] = [];
  const review: string[] = [];
  if (input.userStatus === "BLOCKED") deny.push("USER_BLOCKED");
  if (input.counterpartyStatus !== undefined && input.counterpartyStatus !== "ACTIVE")
    deny.push("COUNTERPARTY_NOT_ACTIVE");
  deny.push(...screenPerson(input, config, sanctions));
  const countries = [...new Set(input.countries.map((x) => x.toUpperCase().slice(0, 2)))];
  if (countries.some((x) => c.highRiskCountries.includes(x))) review.push("HIGH_RISK_COUNTRY");
  if (input.amountUsdCents >= cents(c.singleAmountReviewUsd)) review.push("LARGE_AMOUNT");
  if (input.last24hUsdCents + input.amountUsdCents > cents(c.dailyTotalReviewUsd))
    review.push("DAILY_TOTAL_EXCEEDED");
  if (input.recentCount + 1 > c.velocityCount) review.push("VELOCITY");
  const isNew = input.now.getTime() - input.userCreatedAt.getTime() < c.newUserHours * 3600_000;
  if (isNew && !input.hasHistory && input.amountUsdCents >= cents(c.newUserFirstAmountReviewUsd))
    review.push("NEW_USER_LARGE_FIRST_AMOUNT");
  if (deny.length > 0) return { status: "DENY", risk: "HIGH", reasons: [...deny, ...review] };
  if (review.length > 0)
    return { status: "MANUAL_REVIEW", risk: review.length > 1 ? "HIGH" : "MEDIUM", reasons: review };
  return { status: "ACCEPT", risk: "LOW", reasons: [] };
}

/**
 * The rules on a person alone, before any amount or history is known (1-Click screens the proven
 * identity before its data reaches the operator): a sanctions match, a prohibited country.
 */
export function screenPerson(
  person: { names: string[]; countries: string[] },
  config: MonitoringConfig | undefined,
  sanctions: SanctionsList,
): string[] {
  const prohibited = config?.prohibitedCountries ?? DEFAULT_MONITORING.prohibitedCountries;
  const reasons: string[] = [];
  if (person.names.some((name) => sanctions.matches(name))) reasons.push("SANCTIONS_MATCH");
  const countries = new Set(person.countries.map((x) => x.toUpperCase().slice(0, 2)));
  if ([...countries].some((x) => prohibited.includes(x))) reasons.push("PROHIBITED_COUNTRY");
  return reasons;
}

/**
 * Names normalized for screening: accents removed, case folded, punctuation and spacing collapsed,
 * so "JOSÉ  embargo-Pérez" matches "Jose Embargo Perez".
 */
export function normalizeName(name: string): string {
  return name
    .normalize("NFKD")
    .replace(/\p{M}+/gu, "")
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim();
}

export class SanctionsList {
  readonly #names: Set<string>;
  /** Token sets, so that word order does not hide a listed name ("Embargo Pérez José"). */
  readonly #tokenKeys: Set<string>;

  constructor(names: string[]) {
    const normalized = names.map(normalizeName).filter((n) => n.length > 0);
    this.#names = new Set(normalized);
    this.#tokenKeys = new Set(normalized.map(tokenKey));
  }

  get size(): number {
    return this.#names.size;
  }

  matches(name: string): boolean {
    const n = normalizeName(name);
    return n.length > 0 && (this.#names.has(n) || this.#tokenKeys.has(tokenKey(n)));
  }

  /** Reads a CSV: a header line `name[,country]`, then one entry a line; `#` lines are comments. */
  static fromCsv(text: string): SanctionsList {
    const names: string[] = [];
    for (const [i, raw] of text.split(/\r?\n/).entries()) {
      const line = raw.trim();
      if (!line || line.startsWith("#") || (i === 0 && /^name\b/i.test(line))) continue;
      const name = line.startsWith('"') ? line.slice(1, line.indexOf('"', 1)) : (line.split(",")[0] ?? "");
      if (name.trim()) names.push(name.trim());
    }
    return new SanctionsList(names);
  }

  /** The operator's list (FERRY_SANCTIONS_FILE) or the shipped one. */
  static load(file?: string): SanctionsList {
    const shipped = path.join(path.dirname(fileURLToPath(import.meta.url)), "sanctions.csv");
    return SanctionsList.fromCsv(fs.readFileSync(file ?? shipped, "utf8"));
  }
}

function tokenKey(normalized: string): string {
  return normalized.split(" ").sort().join(" ");
}
