import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "./harness.ts";
import { balances, NO_KYC_LIMITS, openCoin, registerCustomer, staff, walletClient } from "./wallet.ts";

/** Wallet API set-up: currencies, issuers, the bank catalog, commission profiles, accounts. */

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

describe("set-up", () => {
  it("currencies: scale from fraction, a code once (409); a currency the ledger opened on its own gets its details", async () => {
    const { clientId, admin } = await walletClient(t);
    const made = await admin.call("POST", "/api/v1/currencies", {
      code: "BTC",
      symbol: "₿",
      name: "Bitcoin",
      description: "Bitcoin, to 8 decimals",
      fraction: 8,
    });
    expect(made.statusCode, made.body).toBe(201);
    expect(made.json()).toMatchObject({ code: "BTC", fraction: 8, name: "Bitcoin", id: expect.any(String) });
    const again = await admin.call("POST", "/api/v1/currencies", {
      code: "BTC",
      name: "Bitcoin",
      fraction: 8,
    });
    expect(again.statusCode).toBe(409);
    expect(again.json().errors[0].field).toBe("code");

    // The Platform API opened EUR with its usual scale (a first wallet): the details can be added once.
    await t.services.wallets.open(clientId, (await registerCustomer(t, clientId)).userId, "EUR");
    const eur = await admin.call("POST", "/api/v1/currencies", {
      code: "EUR",
      digitalCode: "978",
      symbol: "€",
      name: "Euro",
      fraction: 2,
    });
    expect(eur.statusCode, eur.body).toBe(201);
    expect(
      (await admin.call("POST", "/api/v1/currencies", { code: "EUR", name: "Euro", fraction: 2 })).statusCode,
    ).toBe(409);
    const listed = await admin.call("GET", "/api/v1/currencies");
    expect(listed.json().records.map((c: { code: string }) => c.code)).toEqual(["BTC", "EUR"]);
    for (const bad of [
      { code: "usd", name: "x", fraction: 2 },
      { code: "USD", name: "x", fraction: 19 },
      { code: "USD", name: "x", fraction: 2.5 },
      { code: "USD", name: "", fraction: 2 },
      { code: "USD", name: "x", fraction: 2, extra: true },
    ])
      expect((await admin.call("POST", "/api/v1/currencies", bad)).statusCode).toBe(400);
  });

  it("issuers: one currency each, several per currency, their prefix starts the serials; an unknown currency is a 404", async () => {
    const { clientId, admin } = await walletClient(t, { settings: NO_KYC_LIMITS });
    await admin.call("POST", "/api/v1/currencies", { code: "USD", name: "US dollar", fraction: 2 });
    const first = await admin.call("POST", "/api/v1/issuers", {
      currencyCode: "USD",
      name: "First",
      snPrefix: "11",
    });
    const second = await admin.call("POST", "/api/v1/issuers", {
      currencyCode: "USD",
      name: "Second",
      snPrefix: "22",
    });
    expect(first.statusCode, first.body).toBe(201);
    expect(second.statusCode).toBe(201);
    expect(first.json()).toMatchObject({
      currency: { code: "USD", fraction: 2 },
      snPrefix: "11",
      active: true,
      sn: expect.stringMatching(/^[0-9]{12}$/),
    });
    expect(
      (await admin.call("POST", "/api/v1/issuers", { currencyCode: "XYZ", name: "Nobody" })).statusCode,
    ).toBe(404);
    expect(
      (await admin.call("POST", "/api/v1/issuers", { currencyCode: "USD", name: "x", snPrefix: "12a" }))
        .statusCode,
    ).toBe(400);
    expect((await admin.call("GET", "/api/v1/issuers?currencyCode=USD")).json().records).toHaveLength(2);

    const anna = await registerCustomer(t, clientId);
    const byDefault = await openCoin(anna);
    expect(byDefault).toMatch(/^11[0-9]{16}$/);
    const named = await anna.call("POST", "/api/v1/coins", {
      name: "Savings",
      currencyCode: "USD",
      issuerId: second.json().id,
    });
    expect(named.statusCode, named.body).toBe(201);
    expect(named.json().coin).toMatchObject({
      serial: expect.stringMatching(/^22[0-9]{16}$/),
      name: "Savings",
      main: false,
      amount: "0.00",
    });
    const coins = (await anna.call("GET", "/api/v1/coins")).json().coins;
    expect(coins.map((c: { main: boolean }) => c.main)).toEqual([true, false]);
    expect((await anna.call("POST", "/api/v1/coins", { name: "x", currencyCode: "XYZ" })).statusCode).toBe(
      404,
    );
    expect(await balances(anna, byDefault)).toEqual({ amount: "0.00", available: "0.00", held: "0.00" });
  });

  it("bank catalog: BIC and SWIFT unique (409 naming which), formats checked; everyone logged in may read it", async () => {
    const { clientId, admin } = await walletClient(t);
    const bank = {
      name: "Commerzbank",
      bic: "COBADEFF",
      swift: "COBADEFFXXX",
      address: "Kaiserplatz",
      city: "Frankfurt",
      zipCode: "60311",
    };
    const made = await admin.call("POST", "/api/v1/bank-catalog", bank);
    expect(made.statusCode, made.body).toBe(201);
    expect(made.json()).toMatchObject({ bankId: expect.any(String), bic: "COBADEFF" });
    const sameBic = await admin.call("POST", "/api/v1/bank-catalog", { ...bank, swift: "COBADEFF001" });
    expect(sameBic.statusCode).toBe(409);
    expect(sameBic.json().errors[0].field).toBe("bic");
    const sameSwift = await admin.call("POST", "/api/v1/bank-catalog", { ...bank, bic: "COBADEF1" });
    expect(sameSwift.statusCode).toBe(409);
    expect(sameSwift.json().errors[0].field).toBe("swift");
    expect((await admin.call("POST", "/api/v1/bank-catalog", { ...bank, bic: "nope" })).statusCode).toBe(400);
    const anna = await registerCustomer(t, clientId);
    const page = await anna.call("GET", "/api/v1/bank-catalog?pageSize=10");
    expect(page.json()).toMatchObject({ totalRecords: 1, pageSize: 10 });
    const accountant = await staff(t, admin, "accountant");
    expect(
      (
        await accountant.call("POST", "/api/v1/bank-catalog", {
          ...bank,
          bic: "DEUTDEFF",
          swift: "DEUTDEFFXXX",
        })
      ).statusCode,
    ).toBe(403);
  });

  it("commission profiles: rules validated (overlaps, scale, dates), listed; a profile outside its dates does not apply", async () => {
    const { clientId, admin } = await walletClient(t);
    await admin.call("POST", "/api/v1/currencies", { code: "USD", name: "US dollar", fraction: 2 });
    const good = await admin.call("POST", "/api/v1/commission-profiles", {
      operation: "TOP_UP_CARD",
      currency: "USD",
      feeDirection: "IN",
      rules: [
        { beginAmount: "0", endAmount: "99.99", type: "fixed", valueFixed: "1" },
        { beginAmount: "100", type: "greater_of_fixed_or_percent", valueFixed: "2", valuePercent: "1.5" },
      ],
    });
    expect(good.statusCode, good.body).toBe(201);
    expect(good.json().rules[1]).toMatchObject({
      beginAmount: "100.00",
      endAmount: null,
      valuePercent: "1.5",
    });
    const future = await admin.call("POST", "/api/v1/commission-profiles", {
      operation: "TOP_UP_CARD",
      currency: "USD",
      feeDirection: "OUT",
      rules: [{ beginAmount: "0", type: "fixed", valueFixed: "50" }],
      beginDate: "2099-01-01T00:00:00Z",
    });
    expect(future.statusCode).toBe(201);
    for (const bad of [
      {
        rules: [
          { beginAmount: "0", endAmount: "10", type: "fixed", valueFixed: "1" },
          { beginAmount: "10", type: "fixed", valueFixed: "1" },
        ],
      },
      { rules: [{ beginAmount: "0", type: "fixed", valueFixed: "1.001" }] },
      { rules: [{ beginAmount: "0", type: "percent", valuePercent: "101" }] },
      { rules: [{ beginAmount: "0", type: "bogus" }] },
      { rules: [], beginDate: "2030-01-01T00:00:00Z", endDate: "2029-01-01T00:00:00Z" },
      { rules: [], feeDirection: "SIDEWAYS" },
    ]) {
      const answer = await admin.call("POST", "/api/v1/commission-profiles", {
        operation: "TRANSFER",
        currency: "USD",
        feeDirection: "OUT",
        ...bad,
      });
      expect(answer.statusCode, JSON.stringify(bad)).toBe(400);
    }
    expect(
      (await admin.call("GET", "/api/v1/commission-profiles?operation=TOP_UP_CARD")).json().totalRecords,
    ).toBe(2);
    const anna = await registerCustomer(t, clientId);
    const coin = await openCoin(anna);
    const calc = await anna.call("POST", "/api/v1/card-top-ups/calculate", {
      coinSerial: coin,
      amount: "200",
    });
    expect(calc.json()).toMatchObject({
      transactionAmount: "200.00",
      commissionAmountPush: "3.00",
      senderAmountPush: "200.00",
      recipientAmountPush: "197.00",
    });
  });
});
