import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AmountError, formatAmount, MAX_AMOUNT, parseAmount, parsePositiveAmount } from "./money.ts";

describe("money", () => {
  it("parses decimal strings and JSON numbers exactly into minor units", () => {
    expect(parseAmount("100.50", 2)).toBe(10050n);
    expect(parseAmount("100.5", 2)).toBe(10050n);
    expect(parseAmount("100", 2)).toBe(10000n);
    expect(parseAmount("0.10", 1)).toBe(1n);
    expect(parseAmount(100.5, 2)).toBe(10050n);
    expect(parseAmount(0.1, 2)).toBe(10n);
    expect(parseAmount("1.000000000000000001", 18)).toBe(1_000_000_000_000_000_001n);
    expect(parseAmount("12", 0)).toBe(12n);
    expect(parseAmount(" 7.25 ", 2)).toBe(725n);
  });

  it("refuses more decimals than the scale, malformed text, and more than 38 digits", () => {
    for (const [value, scale] of [
      ["1.005", 2],
      ["1.5", 0],
      ["abc", 2],
      ["1e3", 2],
      ["1.", 2],
      [".5", 2],
      ["", 2],
      ["1,5", 2],
      ["9".repeat(39), 0],
      [1e21, 2],
      [Number.NaN, 2],
      [0.001, 2],
    ] as const) {
      expect(() => parseAmount(value, scale), String(value)).toThrow(AmountError);
    }
    expect(parseAmount("9".repeat(38), 0)).toBe(MAX_AMOUNT);
  });

  it("requires a positive amount where one is needed", () => {
    expect(() => parsePositiveAmount("0", 2)).toThrow(/greater than zero/);
    expect(() => parsePositiveAmount("-1", 2)).toThrow(/greater than zero/);
    expect(parsePositiveAmount("0.01", 2)).toBe(1n);
  });

  it("formats with exactly the currency's decimals, and round-trips", () => {
    expect(formatAmount(10050n, 2)).toBe("100.50");
    expect(formatAmount(5n, 2)).toBe("0.05");
    expect(formatAmount(-5n, 2)).toBe("-0.05");
    expect(formatAmount(42n, 0)).toBe("42");
    fc.assert(
      fc.property(
        fc.bigInt({ min: -MAX_AMOUNT, max: MAX_AMOUNT }),
        fc.integer({ min: 0, max: 18 }),
        (minor, scale) => {
          expect(parseAmount(formatAmount(minor, scale), scale)).toBe(minor);
        },
      ),
    );
  });
});
