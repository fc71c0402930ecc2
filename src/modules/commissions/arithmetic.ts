import { DomainError, type DomainErrorKind } from "../../lib/errors.ts";
import { percentOf } from "../fees/service.ts";

/**
 * Commission arithmetic of the Wallet API's commission profiles: pure functions over bigint minor
 * units (never a float). A rule gives the fee of an amount; the profile's direction says who pays it.
 */

export type FeeDirection = "IN" | "OUT" | "SHARED";
export const FEE_DIRECTIONS = ["IN", "OUT", "SHARED"] as const satisfies readonly FeeDirection[];

export const RULE_TYPES = [
  "zero",
  "percent",
  "fixed",
  "greater_of_fixed_or_percent",
  "lesser_of_fixed_or_percent",
  "fixed_and_percent",
] as const;
export type RuleType = (typeof RULE_TYPES)[number];

export interface CommissionRule {
  /** Minor units, inclusive. */
  beginAmount: bigint;
  /** Minor units, inclusive; null: no upper bound. */
  endAmount: bigint | null;
  type: RuleType;
  /** Minor units. */
  valueFixed: bigint;
  /** A decimal percentage: "1.5" is 1.5 %. */
  valuePercent: string;
}

export interface Commission {
  direction: FeeDirection;
  transactionAmount: bigint;
  fee: bigint;
  /** What leaves the sender. */
  senderAmount: bigint;
  /** What reaches the recipient. */
  recipientAmount: bigint;
}

const kinds = {
  AMOUNT_BELOW_COMMISSION: "INVALID",
  INVALID_COMMISSION_PROFILE: "INVALID",
  CURRENCY_NOT_FOUND: "NOT_FOUND",
  COMMISSION_PROFILE_NOT_FOUND: "NOT_FOUND",
} as const satisfies Record<string, DomainErrorKind>;

export type CommissionErrorCode = keyof typeof kinds;

/** The commissions module's refusals (400 for bad input, 404 for an unknown profile or currency). */
export class CommissionError extends DomainError {
  declare readonly code: CommissionErrorCode;

  constructor(code: CommissionErrorCode, message: string, field?: string) {
    super(kinds[code], code, message, field);
  }
}

/** The fee one rule charges on `amount` (minor units): percentages rounded half up; never negative. */
export function ruleFee(rule: CommissionRule, amount: bigint): bigint {
  const percent = () => percentOf(amount, rule.valuePercent);
  let fee: bigint;
  switch (rule.type) {
    case "zero":
      fee = 0n;
      break;
    case "percent":
      fee = percent();
      break;
    case "fixed":
      fee = rule.valueFixed;
      break;
    case "greater_of_fixed_or_percent": {
      const p = percent();
      fee = p > rule.valueFixed ? p : rule.valueFixed;
      break;
    }
    case "lesser_of_fixed_or_percent": {
      const p = percent();
      fee = p < rule.valueFixed ? p : rule.valueFixed;
      break;
    }
    case "fixed_and_percent":
      fee = rule.valueFixed + percent();
      break;
    default: {
      const never: never = rule.type;
      throw new Error(`unknown commission rule type ${String(never)}`);
    }
  }
  return fee < 0n ? 0n : fee;
}

/**
 * Who pays the fee. OUT: the sender pays amount + fee, the recipient gets the amount. IN: the sender
 * pays the amount, the recipient gets amount − fee. SHARED: each pays half, the odd minor unit to
 * the sender. Always senderAmount = recipientAmount + fee. A recipient left with nothing (or less)
 * is refused: AMOUNT_BELOW_COMMISSION.
 */
export function applyDirection(amount: bigint, fee: bigint, direction: FeeDirection): Commission {
  if (fee < 0n) throw new RangeError("a commission fee cannot be negative");
  let senderShare: bigint;
  switch (direction) {
    case "OUT":
      senderShare = fee;
      break;
    case "IN":
      senderShare = 0n;
      break;
    case "SHARED":
      senderShare = (fee + 1n) / 2n; // ceil(fee / 2), fee ≥ 0
      break;
    default: {
      const never: never = direction;
      throw new Error(`unknown fee direction ${String(never)}`);
    }
  }
  const senderAmount = amount + senderShare;
  const recipientAmount = amount - (fee - senderShare);
  if (recipientAmount <= 0n) {
    throw new CommissionError(
      "AMOUNT_BELOW_COMMISSION",
      "the amount does not cover the commission: the recipient would receive nothing",
      "amount",
    );
  }
  return { direction, transactionAmount: amount, fee, senderAmount, recipientAmount };
}

/** Whether a rule's range (both ends inclusive, a null end unbounded) holds `amount`. */
export function ruleHolds(rule: CommissionRule, amount: bigint): boolean {
  return rule.beginAmount <= amount && (rule.endAmount === null || amount <= rule.endAmount);
}

/** The first rule whose range holds the amount. */
export function selectRule(rules: readonly CommissionRule[], amount: bigint): CommissionRule | undefined {
  return rules.find((rule) => ruleHolds(rule, amount));
}

/** Whether two rules' ranges share an amount (ends inclusive: [0, 100] and [100, 200] overlap). */
export function rangesOverlap(a: CommissionRule, b: CommissionRule): boolean {
  return (
    (a.endAmount === null || b.beginAmount <= a.endAmount) &&
    (b.endAmount === null || a.beginAmount <= b.endAmount)
  );
}
