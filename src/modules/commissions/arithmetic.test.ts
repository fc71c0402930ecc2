import { describe, expect, it } from "vitest";
import {
  applyDirection,
  CommissionError,
  type CommissionRule,
  type RuleType,
  rangesOverlap,
  ruleFee,
  selectRule,
} from "./arithmetic.ts";

const rule = (type: RuleType, valueFixed = 0n, valuePercent = "0", begin = 0n, end: bigint | null = null) =>
  ({ beginAmount: begin, endAmount: end, type, valueFixed, valuePercent }) satisfies CommissionRule;

describe("ruleFee", () => {
  it("computes every rule type", () => {
    expect(ruleFee(rule("zero", 500n, "10"), 100_00n)).toBe(0n);
    expect(ruleFee(rule("percent", 500n, "1.5"), 100_00n)).toBe(1_50n);
    expect(ruleFee(rule("fixed", 2_00n, "10"), 100_00n)).toBe(2_00n);
    // percent 1.5 % of 100.00 = 1.50 versus fixed 2.00
    expect(ruleFee(rule("greater_of_fixed_or_percent", 2_00n, "1.5"), 100_00n)).toBe(2_00n);
    expect(ruleFee(rule("greater_of_fixed_or_percent", 1_00n, "1.5"), 100_00n)).toBe(1_50n);
    expect(ruleFee(rule("lesser_of_fixed_or_percent", 2_00n, "1.5"), 100_00n)).toBe(1_50n);
    expect(ruleFee(rule("lesser_of_fixed_or_percent", 1_00n, "1.5"), 100_00n)).toBe(1_00n);
    expect(ruleFee(rule("fixed_and_percent", 25n, "1"), 100_00n)).toBe(1_25n);
  });

  it("rounds the percent half up to the minor unit", () => {
    expect(ruleFee(rule("percent", 0n, "1.5"), 33n)).toBe(0n); // 0.495
    expect(ruleFee(rule("percent", 0n, "1.5"), 34n)).toBe(1n); // 0.51
    expect(ruleFee(rule("percent", 0n, "50"), 1n)).toBe(1n); // 0.5 → 1
    expect(ruleFee(rule("percent", 0n, "0.0001"), 10n ** 30n)).toBe(10n ** 24n);
    expect(ruleFee(rule("percent", 0n, "100"), 12_345n)).toBe(12_345n);
  });
});

describe("applyDirection", () => {
  it("OUT: the sender pays amount + fee", () => {
    expect(applyDirection(100_00n, 1_50n, "OUT")).toEqual({
      direction: "OUT",
      transactionAmount: 100_00n,
      fee: 1_50n,
      senderAmount: 101_50n,
      recipientAmount: 100_00n,
    });
  });

  it("IN: the fee comes out of what the recipient gets", () => {
    expect(applyDirection(100_00n, 1_50n, "IN")).toMatchObject({
      senderAmount: 100_00n,
      recipientAmount: 98_50n,
    });
  });

  it("SHARED: each pays half, the odd minor unit to the sender", () => {
    expect(applyDirection(100_00n, 1_50n, "SHARED")).toMatchObject({
      senderAmount: 100_75n,
      recipientAmount: 99_25n,
    });
    expect(applyDirection(100_00n, 1_51n, "SHARED")).toMatchObject({
      fee: 1_51n,
      senderAmount: 100_76n,
      recipientAmount: 99_25n,
    });
    expect(applyDirection(10n, 1n, "SHARED")).toMatchObject({ senderAmount: 11n, recipientAmount: 10n });
  });

  it("zero fee leaves both sides at the amount", () => {
    for (const direction of ["IN", "OUT", "SHARED"] as const) {
      expect(applyDirection(5n, 0n, direction)).toMatchObject({ senderAmount: 5n, recipientAmount: 5n });
    }
  });

  it("refuses a recipient left with nothing: AMOUNT_BELOW_COMMISSION", () => {
    const refused = (amount: bigint, fee: bigint, direction: "IN" | "OUT" | "SHARED") => {
      try {
        applyDirection(amount, fee, direction);
      } catch (error) {
        return error;
      }
      return undefined;
    };
    const error = refused(1_00n, 1_00n, "IN");
    expect(error).toBeInstanceOf(CommissionError);
    expect(error).toMatchObject({ kind: "INVALID", code: "AMOUNT_BELOW_COMMISSION", field: "amount" });
    expect(refused(1_00n, 2_01n, "SHARED")).toBeInstanceOf(CommissionError); // recipient 100 − 100 = 0
    expect(refused(1_00n, 1_99n, "SHARED")).toBeUndefined(); // recipient 100 − 99 = 1
    expect(refused(0n, 0n, "OUT")).toBeInstanceOf(CommissionError);
    expect(refused(1n, 10n ** 12n, "OUT")).toBeUndefined(); // OUT: the sender pays it all
    expect(() => applyDirection(1n, -1n, "OUT")).toThrow(RangeError);
  });
});

describe("selectRule", () => {
  const rules = [
    rule("fixed", 1n, "0", 0n, 99_99n),
    rule("fixed", 2n, "0", 100_00n, 999_99n),
    rule("fixed", 3n, "0", 1000_00n, null),
  ];

  it("picks the rule whose range holds the amount, ends inclusive", () => {
    expect(selectRule(rules, 0n)?.valueFixed).toBe(1n);
    expect(selectRule(rules, 99_99n)?.valueFixed).toBe(1n);
    expect(selectRule(rules, 100_00n)?.valueFixed).toBe(2n);
    expect(selectRule(rules, 999_99n)?.valueFixed).toBe(2n);
    expect(selectRule(rules, 10n ** 30n)?.valueFixed).toBe(3n);
  });

  it("answers undefined outside every range, and the first of several", () => {
    expect(selectRule([rule("zero", 0n, "0", 10n, 20n)], 5n)).toBeUndefined();
    expect(selectRule([], 5n)).toBeUndefined();
    expect(
      selectRule([rule("fixed", 7n, "0", 0n, null), rule("fixed", 8n, "0", 0n, null)], 5n)?.valueFixed,
    ).toBe(7n);
  });

  it("sees overlapping ranges, ends inclusive", () => {
    expect(rangesOverlap(rule("zero", 0n, "0", 0n, 100n), rule("zero", 0n, "0", 100n, 200n))).toBe(true);
    expect(rangesOverlap(rule("zero", 0n, "0", 0n, 99n), rule("zero", 0n, "0", 100n, 200n))).toBe(false);
    expect(rangesOverlap(rule("zero", 0n, "0", 0n, null), rule("zero", 0n, "0", 10n ** 20n, null))).toBe(
      true,
    );
    expect(rangesOverlap(rule("zero", 0n, "0", 50n, null), rule("zero", 0n, "0", 0n, 49n))).toBe(false);
  });
});
