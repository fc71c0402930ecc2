import { describe, expect, it } from "vitest";
import { evaluate, type MonitoringInput, normalizeName, SanctionsList } from "./rules.ts";

const sanctions = SanctionsList.load();
const now = new Date("2026-11-21T12:00:00Z");
const base: MonitoringInput = {
  userStatus: "ACTIVE",
  userCreatedAt: new Date("2026-01-01T00:00:00Z"),
  names: ["Ada Lovelace"],
  countries: ["DE"],
  amountUsdCents: 100_00n,
  last24hUsdCents: 0n,
  recentCount: 0,
  hasHistory: true,
  now,
};

describe("monitoring rules", () => {
  it("accepts an ordinary transaction", () => {
    expect(evaluate(base, undefined, sanctions)).toEqual({ status: "ACCEPT", risk: "LOW", reasons: [] });
  });

  it.each([
    [{ userStatus: "BLOCKED" as const }, "DENY", "USER_BLOCKED"],
    [{ counterpartyStatus: "BLOCKED" as const }, "DENY", "COUNTERPARTY_NOT_ACTIVE"],
    [{ counterpartyStatus: "INACTIVE" as const }, "DENY", "COUNTERPARTY_NOT_ACTIVE"],
    [{ names: ["Ivan Sanctionov"] }, "DENY", "SANCTIONS_MATCH"],
    [{ countries: ["KP"] }, "DENY", "PROHIBITED_COUNTRY"],
    [{ amountUsdCents: 10_000_00n }, "MANUAL_REVIEW", "LARGE_AMOUNT"],
    [{ last24hUsdCents: 24_950_00n }, "MANUAL_REVIEW", "DAILY_TOTAL_EXCEEDED"],
    [{ recentCount: 5 }, "MANUAL_REVIEW", "VELOCITY"],
    [
      { userCreatedAt: new Date("2026-11-21T06:00:00Z"), hasHistory: false, amountUsdCents: 1_000_00n },
      "MANUAL_REVIEW",
      "NEW_USER_LARGE_FIRST_AMOUNT",
    ],
    [{ countries: ["DE", "AF"] }, "MANUAL_REVIEW", "HIGH_RISK_COUNTRY"],
  ])("fires %o → %s %s", (change, status, reason) => {
    const result = evaluate({ ...base, ...change }, undefined, sanctions);
    expect(result.status).toBe(status);
    expect(result.reasons).toContain(reason);
    expect(result.risk).not.toBe("LOW");
  });

  it("does not fire just below each threshold", () => {
    const near = { ...base, amountUsdCents: 9_999_99n, last24hUsdCents: 15_000_00n, recentCount: 4 };
    expect(evaluate(near, undefined, sanctions).status).toBe("ACCEPT");
    const newButSmall = {
      ...base,
      userCreatedAt: new Date("2026-11-21T06:00:00Z"),
      hasHistory: false,
      amountUsdCents: 999_99n,
    };
    expect(evaluate(newButSmall, undefined, sanctions).status).toBe("ACCEPT");
  });

  it("takes a client's own thresholds", () => {
    expect(evaluate(base, { singleAmountReviewUsd: 50 }, sanctions).reasons).toEqual(["LARGE_AMOUNT"]);
    expect(evaluate({ ...base, countries: ["FR"] }, { prohibitedCountries: ["FR"] }, sanctions).status).toBe(
      "DENY",
    );
  });
});

describe("sanctions screening", () => {
  it("catches a listed name despite case, accents, spacing, punctuation and word order", () => {
    for (const variant of [
      "JOSE EMBARGO PEREZ",
      "josé   embargo-pérez",
      "José Embargo Pérez",
      "Pérez José Embargo",
      " ivan  SANCTIONOV ",
      "Ivan Sanctionov.",
    ]) {
      expect(sanctions.matches(variant), variant).toBe(true);
    }
    for (const clean of ["Jose Embargo", "Ivan Sanction", "Ada Lovelace", ""])
      expect(sanctions.matches(clean), clean).toBe(false);
  });

  it("loads an operator's CSV instead of the shipped list", () => {
    const own = SanctionsList.fromCsv('name,country\n"Smith, John",GB\n# comment\nJane Roe\n');
    expect(own.size).toBe(2);
    expect(own.matches("john smith")).toBe(true);
    expect(own.matches("JANE   ROE")).toBe(true);
    expect(own.matches("Ivan Sanctionov")).toBe(false);
    expect(normalizeName("Ñoño  O'Brien")).toBe("nono o brien");
  });
});
