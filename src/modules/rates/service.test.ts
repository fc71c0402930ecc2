import { describe, expect, it } from "vitest";
import { toUsdCents } from "../../providers/rates/interface.ts";
import { parseEffectiveFrom, parseUsdRate } from "./service.ts";

describe("parseUsdRate", () => {
  it("keeps the rate exactly as a decimal string, without leading or trailing zeros", () => {
    expect(parseUsdRate("0.01")).toBe("0.01");
    expect(parseUsdRate("000.010000")).toBe("0.01");
    expect(parseUsdRate("12.5")).toBe("12.5");
    expect(parseUsdRate("100.000")).toBe("100");
    expect(parseUsdRate(0.000001)).toBe("0.000001");
    expect(parseUsdRate(64800)).toBe("64800");
    expect(parseUsdRate("999999999999999.999999999999")).toBe("999999999999999.999999999999");
    expect(parseUsdRate("0.000000000001")).toBe("0.000000000001");
  });

  it.each([
    ["0"],
    ["0.000000000000"],
    [0],
    ["-1"],
    [-0.5],
    ["1.0000000000001"],
    ["1000000000000000"],
    ["1e3"],
    [1e-7],
    [1e40],
    [Number.NaN],
    [Number.POSITIVE_INFINITY],
    [""],
    [" 1"],
    ["1,5"],
    [".5"],
    ["5."],
    ["0x10"],
    [null],
    [true],
    [{}],
  ])("refuses %j as a 400 on the field rate", (input) => {
    expect(() => parseUsdRate(input)).toThrowError(
      expect.objectContaining({ kind: "INVALID", field: "rate" }),
    );
  });

  it("values amounts exactly with the parsed rate (bigint arithmetic)", () => {
    // 12,345 points at 0.01 USD = 123.45 USD = 12,345 cents.
    expect(toUsdCents(12_345n, 0, parseUsdRate("0.01"))).toBe(12_345n);
    // 1 unit at the smallest rate rounds to 0 cents; 10^12 units are 1 USD.
    expect(toUsdCents(1n, 0, parseUsdRate("0.000000000001"))).toBe(0n);
    expect(toUsdCents(10n ** 12n, 0, parseUsdRate("0.000000000001"))).toBe(100n);
  });
});

describe("parseEffectiveFrom", () => {
  const now = new Date("2026-12-07T12:00:00Z");
  it("defaults to now; a moment within a minute behind is now; up to a year ahead is kept", () => {
    expect(parseEffectiveFrom(undefined, now)).toEqual(now);
    expect(parseEffectiveFrom("2026-12-07T11:59:30Z", now)).toEqual(now);
    expect(parseEffectiveFrom("2027-01-01T00:00:00Z", now)).toEqual(new Date("2027-01-01T00:00:00Z"));
  });
  it.each([["2026-12-07T11:00:00Z"], ["2028-01-01T00:00:00Z"], ["tomorrow"], ["2026-12-08"]])(
    "refuses %s",
    (input) => {
      expect(() => parseEffectiveFrom(input, now)).toThrowError(
        expect.objectContaining({ kind: "INVALID", field: "effectiveFrom" }),
      );
    },
  );
});
