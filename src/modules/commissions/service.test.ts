import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../../test/database.ts";
import type { FerryDatabase } from "../../db/database.ts";
import type { Actor } from "../../lib/context.ts";
import { listAudit } from "../audit/service.ts";
import { createClient } from "../clients/service.ts";
import * as ledger from "../ledger/service.ts";
import { CommissionError } from "./arithmetic.ts";
import { type CommissionProfileInput, CommissionProfiles, showProfile } from "./service.ts";

let database: FerryDatabase;
let profiles: CommissionProfiles;
const actor: Actor = { kind: "staff", id: "admin-1", roles: ["administrator"] };

beforeAll(async () => {
  database = await createTestDatabase();
  profiles = new CommissionProfiles(database.db);
  for (const id of ["acme", "globex"]) {
    await createClient(database.db, { id, name: id });
    await ledger.createCurrency(database.db, { clientId: id, code: "USD", scale: 2 });
    await ledger.createCurrency(database.db, { clientId: id, code: "JPY", scale: 0 });
  }
});
afterAll(async () => {
  await database.close();
});

const input = (overrides: Partial<CommissionProfileInput> = {}): CommissionProfileInput => ({
  operation: "TRANSFER",
  currency: "USD",
  feeDirection: "OUT",
  rules: [{ beginAmount: "0", type: "percent", valuePercent: "1.5" }],
  ...overrides,
});

const refusal = async (promise: Promise<unknown>) => {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a refusal");
};

describe("create, list, get", () => {
  it("creates a profile with rules in minor units, shows it at the currency's scale, and audits it", async () => {
    const profile = await profiles.create(
      "acme",
      input({
        operation: "WITHDRAW_BANK",
        feeDirection: "SHARED",
        rules: [
          { beginAmount: "0", endAmount: "99.99", type: "fixed", valueFixed: "1" },
          {
            beginAmount: 100,
            endAmount: null,
            type: "fixed_and_percent",
            valueFixed: 0.25,
            valuePercent: 1.5,
          },
        ],
        beginDate: "2024-01-01T00:00:00Z",
        endDate: "2030-01-01T00:00:00.000+00:00",
      }),
      actor,
      "req-1",
    );
    expect(profile.rules).toEqual([
      { beginAmount: 0n, endAmount: 99_99n, type: "fixed", valueFixed: 1_00n, valuePercent: "0" },
      {
        beginAmount: 100_00n,
        endAmount: null,
        type: "fixed_and_percent",
        valueFixed: 25n,
        valuePercent: "1.5",
      },
    ]);
    const view = showProfile(profile);
    expect(view).toMatchObject({
      id: profile.id,
      operation: "WITHDRAW_BANK",
      currency: "USD",
      feeDirection: "SHARED",
      rules: [
        { beginAmount: "0.00", endAmount: "99.99", type: "fixed", valueFixed: "1.00", valuePercent: "0" },
        {
          beginAmount: "100.00",
          endAmount: null,
          type: "fixed_and_percent",
          valueFixed: "0.25",
          valuePercent: "1.5",
        },
      ],
      beginDate: "2024-01-01T00:00:00.000Z",
      endDate: "2030-01-01T00:00:00.000Z",
    });
    expect(await profiles.get("acme", profile.id)).toEqual(profile);
    const stored = await database.db
      .selectFrom("commission_profiles")
      .select("rules")
      .where("id", "=", profile.id)
      .executeTakeFirstOrThrow();
    expect(stored.rules).toEqual([
      { beginAmount: "0", endAmount: "9999", type: "fixed", valueFixed: "100", valuePercent: "0" },
      {
        beginAmount: "10000",
        endAmount: null,
        type: "fixed_and_percent",
        valueFixed: "25",
        valuePercent: "1.5",
      },
    ]);
    const audit = await listAudit(database.db, "acme", "commission_profile", profile.id);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      action: "commission_profile.created",
      actor: { kind: "staff", id: "admin-1" },
      requestId: "req-1",
      after: view,
    });
  });

  it("lists a client's profiles, filtered and paged, and keeps clients apart", async () => {
    const jpy = await profiles.create("globex", input({ currency: "JPY" }), actor);
    const usd = await profiles.create("globex", input({ operation: "EXCHANGE" }), actor);
    const all = await profiles.list("globex", { offset: 0, limit: 10 });
    expect(all.total).toBe(2);
    expect(all.profiles.map((p) => p.id)).toEqual([jpy.id, usd.id]);
    expect(all.profiles[0]?.scale).toBe(0);
    expect(showProfile(jpy).rules[0]?.beginAmount).toBe("0");
    const page = await profiles.list("globex", { offset: 1, limit: 1 });
    expect(page).toMatchObject({ total: 2, profiles: [{ id: usd.id }] });
    expect(await profiles.list("globex", { offset: 0, limit: 10, currency: "JPY" })).toMatchObject({
      total: 1,
      profiles: [{ id: jpy.id }],
    });
    expect(await profiles.list("globex", { offset: 0, limit: 10, operation: "EXCHANGE" })).toMatchObject({
      total: 1,
      profiles: [{ id: usd.id }],
    });
    const acme = await profiles.list("acme", { offset: 0, limit: 100 });
    expect(acme.profiles.some((p) => p.id === jpy.id || p.id === usd.id)).toBe(false);
    // Another client's profile, an unknown id and a malformed id are all 404s.
    for (const id of [jpy.id, "0190f0a0-0000-7000-8000-000000000000", "not-a-uuid"]) {
      expect(await refusal(profiles.get("acme", id))).toMatchObject({
        kind: "NOT_FOUND",
        code: "COMMISSION_PROFILE_NOT_FOUND",
      });
    }
  });
});

describe("refusals", () => {
  const invalid = async (body: CommissionProfileInput, field: string, clientId = "acme") => {
    const error = await refusal(profiles.create(clientId, body, actor));
    expect(error).toBeInstanceOf(CommissionError);
    expect(error).toMatchObject({ kind: "INVALID", code: "INVALID_COMMISSION_PROFILE", field });
  };

  it("refuses overlapping rules, naming the later one", async () => {
    await invalid(
      input({
        rules: [
          { beginAmount: "0", endAmount: "100", type: "zero" },
          { beginAmount: "200", type: "zero" },
          { beginAmount: "100", endAmount: "150", type: "zero" },
        ],
      }),
      "rules.2",
    );
    await invalid(
      input({
        rules: [
          { beginAmount: "50", type: "zero" },
          { beginAmount: "0", endAmount: "49.99", type: "zero" },
          { beginAmount: "1000", endAmount: "2000", type: "zero" },
        ],
      }),
      "rules.2",
    );
  });

  it("refuses amounts finer than the currency's scale", async () => {
    await invalid(input({ rules: [{ beginAmount: "0.001", type: "zero" }] }), "rules.0.beginAmount");
    await invalid(
      input({ currency: "JPY", rules: [{ beginAmount: "0", type: "fixed", valueFixed: "1.5" }] }),
      "rules.0.valueFixed",
    );
    await invalid(
      input({ rules: [{ beginAmount: 0, endAmount: 10.005, type: "zero" }] }),
      "rules.0.endAmount",
    );
    // Trailing zeros beyond the scale say nothing finer: accepted.
    await expect(
      profiles.create("acme", input({ rules: [{ beginAmount: "1.000", type: "zero" }] }), actor),
    ).resolves.toMatchObject({ rules: [{ beginAmount: 1_00n }] });
  });

  it("refuses misordered amounts and dates, bad percents, missing values and unknown fields", async () => {
    await invalid(
      input({ rules: [{ beginAmount: "10", endAmount: "9.99", type: "zero" }] }),
      "rules.0.endAmount",
    );
    await invalid(input({ beginDate: "2025-01-01T00:00:00Z", endDate: "2025-01-01T00:00:00Z" }), "endDate");
    await invalid(
      input({ rules: [{ beginAmount: "0", type: "percent", valuePercent: "100.01" }] }),
      "rules.0.valuePercent",
    );
    await invalid(
      input({ rules: [{ beginAmount: "0", type: "percent", valuePercent: "1.23456" }] }),
      "rules.0.valuePercent",
    );
    await invalid(input({ rules: [{ beginAmount: "0", type: "percent" }] }), "rules.0.valuePercent");
    await invalid(input({ rules: [{ beginAmount: "0", type: "fixed" }] }), "rules.0.valueFixed");
    await invalid(input({ rules: [{ beginAmount: "-1", type: "zero" }] }), "rules.0.beginAmount");
    await invalid({ ...input(), extra: 1 } as CommissionProfileInput, "body");
    await invalid(input({ operation: "BRIBE" as "TRANSFER" }), "operation");
  });

  it("answers an unknown currency with 404 on the field currency", async () => {
    expect(await refusal(profiles.create("acme", input({ currency: "XAU" }), actor))).toMatchObject({
      kind: "NOT_FOUND",
      code: "CURRENCY_NOT_FOUND",
      field: "currency",
    });
  });
});

describe("quote", () => {
  it("no profile: zero fee, direction OUT", async () => {
    await expect(
      profiles.quote("acme", { operation: "TOP_UP_CARD", currency: "JPY", amount: 500n }),
    ).resolves.toEqual({
      direction: "OUT",
      transactionAmount: 500n,
      fee: 0n,
      senderAmount: 500n,
      recipientAmount: 500n,
    });
  });

  it("uses the newest profile whose dates hold the moment (begin inclusive, end exclusive)", async () => {
    const q = (at: Date) =>
      profiles.quote("globex", { operation: "TOP_UP_BANK", currency: "USD", amount: 100_00n, at });
    const fixed = (valueFixed: string) => [{ beginAmount: "0", type: "fixed" as const, valueFixed }];
    await profiles.create("globex", input({ operation: "TOP_UP_BANK", rules: fixed("1") }), actor);
    await profiles.create(
      "globex",
      input({
        operation: "TOP_UP_BANK",
        feeDirection: "IN",
        rules: fixed("2"),
        beginDate: "2025-01-01T00:00:00Z",
        endDate: "2025-02-01T00:00:00Z",
      }),
      actor,
    );
    // Newer, but valid only from 2030: 2025 still gets the second one.
    await profiles.create(
      "globex",
      input({ operation: "TOP_UP_BANK", rules: fixed("3"), beginDate: "2030-01-01T00:00:00Z" }),
      actor,
    );
    await expect(q(new Date("2024-12-31T23:59:59.999Z"))).resolves.toMatchObject({
      fee: 1_00n,
      direction: "OUT",
    });
    await expect(q(new Date("2025-01-01T00:00:00Z"))).resolves.toMatchObject({
      fee: 2_00n,
      direction: "IN",
      senderAmount: 100_00n,
      recipientAmount: 98_00n,
    });
    await expect(q(new Date("2025-02-01T00:00:00Z"))).resolves.toMatchObject({ fee: 1_00n });
    await expect(q(new Date("2031-01-01T00:00:00Z"))).resolves.toMatchObject({
      fee: 3_00n,
      senderAmount: 103_00n,
    });
    // Another operation or currency is not affected.
    await expect(
      profiles.quote("globex", { operation: "WITHDRAW_CARD", currency: "USD", amount: 100_00n }),
    ).resolves.toMatchObject({ fee: 0n });
  });

  it("picks the rule by amount range; outside every range: zero fee in the profile's direction", async () => {
    await profiles.create(
      "acme",
      input({
        operation: "WITHDRAW_CARD",
        feeDirection: "SHARED",
        rules: [
          { beginAmount: "1", endAmount: "99.99", type: "fixed", valueFixed: "1.01" },
          {
            beginAmount: "100",
            endAmount: "1000",
            type: "greater_of_fixed_or_percent",
            valueFixed: "2",
            valuePercent: "1",
          },
        ],
      }),
      actor,
    );
    const q = (amount: bigint) =>
      profiles.quote("acme", { operation: "WITHDRAW_CARD", currency: "USD", amount });
    await expect(q(50_00n)).resolves.toMatchObject({
      direction: "SHARED",
      fee: 1_01n,
      senderAmount: 50_51n,
      recipientAmount: 49_50n,
    });
    await expect(q(100_00n)).resolves.toMatchObject({ fee: 2_00n });
    await expect(q(1000_00n)).resolves.toMatchObject({ fee: 10_00n });
    await expect(q(1000_01n)).resolves.toMatchObject({
      direction: "SHARED",
      fee: 0n,
      senderAmount: 1000_01n,
    });
    await expect(q(99n)).resolves.toMatchObject({ fee: 0n });
    // 1.00 with a fee of 1.01 shared: the recipient would get 1.00 − 0.50 = 0.50 — accepted; IN would not be.
    await expect(q(1_00n)).resolves.toMatchObject({ recipientAmount: 50n, senderAmount: 1_51n });
  });

  it("refuses an amount the commission swallows: AMOUNT_BELOW_COMMISSION", async () => {
    await profiles.create(
      "acme",
      input({
        operation: "TOP_UP_BANK",
        feeDirection: "IN",
        rules: [{ beginAmount: "0", type: "fixed", valueFixed: "5" }],
      }),
      actor,
    );
    expect(
      await refusal(profiles.quote("acme", { operation: "TOP_UP_BANK", currency: "USD", amount: 5_00n })),
    ).toMatchObject({ code: "AMOUNT_BELOW_COMMISSION", field: "amount" });
    await expect(
      profiles.quote("acme", { operation: "TOP_UP_BANK", currency: "USD", amount: 5_01n }),
    ).resolves.toMatchObject({ recipientAmount: 1n });
  });
});
