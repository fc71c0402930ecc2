import { describe, expect, it } from "vitest";
import { ConfiguredFees, percentOf } from "./service.ts";

describe("fees", () => {
  it("computes percent (half up) plus fixed, per type and currency", () => {
    const fees = new ConfiguredFees([
      { transactionType: "DEPOSIT", percent: "1.5" },
      { transactionType: "DEPOSIT", currency: "EUR", percent: "1", fixed: "0.25" },
      { transactionType: "WITHDRAWAL", fixed: "2" },
    ]);
    expect(fees.feeFor({ transactionType: "DEPOSIT", currency: "USD", amount: 100_00n, scale: 2 })).toBe(
      1_50n,
    );
    expect(fees.feeFor({ transactionType: "DEPOSIT", currency: "EUR", amount: 100_00n, scale: 2 })).toBe(
      1_25n,
    );
    expect(fees.feeFor({ transactionType: "WITHDRAWAL", currency: "JPY", amount: 5000n, scale: 0 })).toBe(2n);
    expect(fees.feeFor({ transactionType: "TRANSFER", currency: "USD", amount: 100_00n, scale: 2 })).toBe(0n);
    expect(fees.feeFor({ transactionType: "WITHDRAWAL", currency: "USD", amount: 1_00n, scale: 2 })).toBe(
      1_00n,
    );
  });

  it("rounds half up in integers", () => {
    expect(percentOf(33n, "1.5")).toBe(0n); // 0.495
    expect(percentOf(34n, "1.5")).toBe(1n); // 0.51
    expect(percentOf(10_000_000_000_000_000_000n, "0.0001")).toBe(10_000_000_000_000n); // 1e19 × 1e-6
  });
});
