import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listAudit } from "../src/modules/audit/service.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import {
  balances,
  invariantsHold,
  NO_KYC_LIMITS,
  openCoin,
  registerCustomer,
  setUpUsd,
  staff,
  topUp,
  type WalletCaller,
  walletClient,
} from "./wallet.ts";

/**
 * Issue 17, item 6: a currency the client's staff create (the operator's own points or e-money)
 * carries a USD rate that staff or the platform admin set, with its history, audited; money moves
 * in it, and monitoring and KYC value it at that rate.
 */

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ workers: true, settings: { sandboxPayoutDelayMs: 100 } });
});
afterAll(() => t.close());

/** Amounts at or above 50 USD are held for review; nothing else in the AML check fires. */
const SETTINGS = {
  ...NO_KYC_LIMITS,
  monitoring: {
    singleAmountReviewUsd: 50,
    dailyTotalReviewUsd: 1e12,
    newUserFirstAmountReviewUsd: 1e12,
    velocityCount: 1_000_000,
  },
};

const card = {
  cardNumber: "4242424242424242",
  expirationMonth: 12,
  expirationYear: 2030,
  cvv: "123",
  cardHolder: "Anna Example",
};
const bankDetails = { fullName: "Anna Example", iban: "DE89370400440532013000", bic: "COBADEFFXXX" };

/** A client whose administrator created PTS (no decimals) the way SDK.finance's front end does. */
async function pointsClient() {
  const { clientId, admin } = await walletClient(t, { settings: SETTINGS });
  const { bankId } = await setUpUsd(admin);
  const created = await admin.call("POST", "/api/v1/currencies", {
    code: "PTS",
    name: "Points",
    fraction: 0,
  });
  expect(created.statusCode, created.body).toBe(201);
  const issuer = await admin.call("POST", "/api/v1/issuers", {
    currencyCode: "PTS",
    name: "Points issuer",
    snPrefix: "77",
  });
  expect(issuer.statusCode, issuer.body).toBe(201);
  const accountant = await staff(t, admin, "accountant");
  const support = await staff(t, admin, "support");
  const anna = await registerCustomer(t, clientId);
  const ben = await registerCustomer(t, clientId);
  const annaCoin = await openCoin(anna, "PTS");
  const benCoin = await openCoin(ben, "PTS");
  return {
    clientId,
    admin,
    accountant,
    support,
    bankId,
    anna,
    ben,
    annaCoin,
    benCoin,
    ptsId: created.json().id as string,
  };
}

function setRate(who: WalletCaller, body: Record<string, unknown>) {
  return who.call("POST", "/api/v1/exchange-rates/rate", {
    outCurrencyId: "USD",
    direction: "sell",
    active: true,
    ...body,
  });
}

async function history(who: WalletCaller, code: string) {
  const response = await who.call("GET", `/api/v1/currencies/${code}/rates`);
  expect(response.statusCode, response.body).toBe(200);
  return response.json();
}

describe("a currency staff create", () => {
  it("before a rate: money in it is refused as a set-up step (409), never the 400 'no rate'", async () => {
    const s = await pointsClient();
    const view = await s.admin.call("POST", "/api/v1/exchange-rates/view", {});
    expect(view.statusCode, view.body).toBe(200);
    const pts = view
      .json()
      .records.find((r: { inCurrency: { code: string } }) => r.inCurrency.code === "PTS");
    expect(pts).toMatchObject({ rate: null, active: false, outCurrency: { code: "USD" } });
    const refused = await s.accountant.call("POST", "/api/v1/bank-top-ups/with-bank", {
      coinSerial: s.annaCoin,
      amount: "100",
      bankId: s.bankId,
      iban: "DE89370400440532013000",
      fullName: "Ada Lovelace",
    });
    expect(refused.statusCode, refused.body).toBe(409);
    expect(refused.json().message).toMatch(/PTS has no USD rate yet/);
    expect(refused.body).not.toMatch(/no rate for/);
    expect(await balances(s.anna, s.annaCoin)).toMatchObject({ amount: "0" });
  });

  it("with a rate set by staff: top-up, card top-up, transfer and withdrawal move money; monitoring values it at the rate", async () => {
    const s = await pointsClient();
    const set = await setRate(s.admin, { rate: "0.01", inCurrencyId: s.ptsId });
    expect(set.statusCode, set.body).toBe(200);
    expect(set.json()).toMatchObject({
      id: s.ptsId,
      inCurrency: { id: s.ptsId, code: "PTS" },
      outCurrency: { code: "USD" },
      rate: "0.01",
      active: true,
      source: "CLIENT",
      version: 1,
    });

    // 4,000 PTS = 40 USD: under the 50 USD review threshold.
    await topUp(s.accountant, s.bankId, s.annaCoin, "4000");
    const carded = await s.anna.call("POST", "/api/v1/card-top-ups", {
      coinSerial: s.annaCoin,
      amount: "3000",
      card,
    });
    expect(carded.statusCode, carded.body).toBe(200);
    expect(carded.json().status).toBe("processed");
    const sent = await s.anna.call("POST", "/api/v1/transfers", {
      paymentTool: { type: "COIN", srcValue: s.annaCoin, destValue: s.benCoin },
      amount: "1000",
    });
    expect(sent.statusCode, sent.body).toBe(200);
    expect(sent.json().process.status).toBe("processed");
    const asked = await s.anna.call("POST", "/api/v1/bank-withdrawals/with-bank", {
      coinSerial: s.annaCoin,
      amount: "500",
      bankDetails,
    });
    expect(asked.statusCode, asked.body).toBe(200);
    expect(asked.json().status).toBe("pending");
    const accepted = await s.accountant.call(
      "POST",
      `/api/v1/bank-withdrawals/${asked.json().requestIdentifier}/accept`,
    );
    expect(accepted.statusCode, accepted.body).toBe(200);
    expect(await balances(s.ben, s.benCoin)).toMatchObject({ amount: "1000" });

    // 5,000 PTS = 50 USD at 0.01: held for review.
    const large = await s.anna.call("POST", "/api/v1/bank-withdrawals/with-bank", {
      coinSerial: s.annaCoin,
      amount: "5000",
      bankDetails,
    });
    expect(large.statusCode, large.body).toBe(200);
    expect(large.json().status).toBe("waiting_for_approval");

    // The rate changes: 5,000 PTS = 5 USD at 0.001, no longer held.
    expect((await setRate(s.admin, { rate: "0.001", inCurrencyId: "PTS" })).statusCode).toBe(200);
    await topUp(s.accountant, s.bankId, s.annaCoin, "9000");
    const small = await s.anna.call("POST", "/api/v1/transfers", {
      paymentTool: { type: "COIN", srcValue: s.annaCoin, destValue: s.benCoin },
      amount: "5000",
    });
    expect(small.statusCode, small.body).toBe(200);
    expect(small.json().process.status).toBe("processed");
    await invariantsHold(t, s.clientId);
  });

  it("the KYC gate values amounts in it at its rate", async () => {
    const brackets = (limit: number) => [
      { upToUsd: limit, requiredTier: 0 },
      { upToUsd: null, requiredTier: 3 },
    ];
    const { clientId, admin } = await walletClient(t, {
      settings: {
        ...SETTINGS,
        kyc: {
          scenarios: [
            {
              id: "points",
              brackets: Object.fromEntries(
                ["DEPOSIT", "WITHDRAWAL", "TRANSFER", "TRADE", "PAYMENT"].map((type) => [type, brackets(30)]),
              ),
            },
          ],
          defaultScenario: "points",
        },
      },
    });
    const created = await admin.call("POST", "/api/v1/currencies", {
      code: "PTS",
      name: "Points",
      fraction: 0,
      usdRate: "0.01",
    });
    expect(created.statusCode, created.body).toBe(201);
    const anna = await registerCustomer(t, clientId);
    const coin = await openCoin(anna, "PTS");
    // 2,000 PTS = 20 USD: within tier 0's 30 USD.
    const small = await anna.call("POST", "/api/v1/card-top-ups", { coinSerial: coin, amount: "2000", card });
    expect(small.statusCode, small.body).toBe(200);
    // Another 2,000 PTS: 40 USD in 30 days, beyond tier 0.
    const more = await anna.call("POST", "/api/v1/card-top-ups", { coinSerial: coin, amount: "2000", card });
    expect(more.statusCode, more.body).toBe(422);
    expect(await balances(anna, coin)).toMatchObject({ amount: "2000" });
  });

  it("keeps the history of its rates (who, when, from when) and audits each change", async () => {
    const s = await pointsClient();
    expect((await setRate(s.admin, { rate: "0.01", inCurrencyId: s.ptsId })).statusCode).toBe(200);
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const scheduled = await setRate(s.admin, { rate: 0.02, inCurrencyId: s.ptsId, effectiveFrom: later });
    expect(scheduled.statusCode, scheduled.body).toBe(200);
    // Scheduled for later: today's rate is still the first.
    expect(scheduled.json().rate).toBe("0.01");

    const h = await history(s.support, "PTS");
    expect(h).toMatchObject({
      currency: "PTS",
      current: { rate: "0.01", source: "CLIENT", version: 1 },
      totalRecords: 2,
    });
    expect(h.records).toEqual([
      {
        id: expect.any(String),
        version: 2,
        rate: "0.02",
        effectiveFrom: later,
        setBy: { kind: "staff", id: s.admin.userId, role: "administrator" },
        createdAt: expect.any(String),
      },
      expect.objectContaining({
        version: 1,
        rate: "0.01",
        setBy: expect.objectContaining({ kind: "staff" }),
      }),
    ]);

    const trail = await listAudit(t.database.db, s.clientId, "currency", "PTS");
    const changes = trail.filter((a) => a.action === "currency.usd_rate_set");
    expect(changes).toHaveLength(2);
    expect(changes[0]).toMatchObject({
      actor: { kind: "staff", id: s.admin.userId },
      after: { rate: "0.01", version: 1 },
    });
    expect(changes[0]?.before ?? null).toBeNull();
    expect(changes[1]).toMatchObject({
      before: { rate: "0.01", version: 1 },
      after: { rate: "0.02", version: 2 },
    });
  });

  it("a scheduled rate applies from its effectiveFrom (the cached rate moves on by itself)", async () => {
    const s = await pointsClient();
    expect((await setRate(s.admin, { rate: "0.01", inCurrencyId: "PTS" })).statusCode).toBe(200);
    expect(await t.services.currencyRates.usdPrice("PTS", s.clientId)).toBe("0.01");
    const soon = new Date(Date.now() + 1500).toISOString();
    const scheduled = await setRate(s.admin, { rate: "0.5", inCurrencyId: "PTS", effectiveFrom: soon });
    expect(scheduled.statusCode, scheduled.body).toBe(200);
    expect(scheduled.json()).toMatchObject({
      rate: "0.01",
      recorded: { version: 2, rate: "0.5", effectiveFrom: soon },
    });
    expect(await t.services.currencyRates.usdPrice("PTS", s.clientId)).toBe("0.01");
    await new Promise((resolve) => setTimeout(resolve, Date.parse(soon) - Date.now() + 50));
    expect(await t.services.currencyRates.usdPrice("PTS", s.clientId)).toBe("0.5");
    expect((await history(s.admin, "PTS")).current).toMatchObject({ rate: "0.5", version: 2 });
  });

  it("may be created with its first rate (usdRate, Ferry's own field): money moves at once", async () => {
    const { clientId, admin } = await walletClient(t, { settings: SETTINGS });
    const { bankId } = await setUpUsd(admin);
    const created = await admin.call("POST", "/api/v1/currencies", {
      code: "GEM",
      name: "Gems",
      fraction: 2,
      usdRate: "12.5",
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json()).toMatchObject({ code: "GEM", usdRate: "12.5" });
    const anna = await registerCustomer(t, clientId);
    const coin = await openCoin(anna, "GEM");
    await topUp(admin, bankId, coin, "3.00");
    expect(await balances(anna, coin)).toMatchObject({ amount: "3.00" });
    // 1.00 GEM = 12.50 USD: under the 50 USD threshold, a plain request.
    const held = await anna.call("POST", "/api/v1/bank-withdrawals/with-bank", {
      coinSerial: coin,
      amount: "1.00",
      bankDetails,
    });
    expect(held.json().status).toBe("pending");
    const h = await history(admin, "GEM");
    expect(h.records).toEqual([expect.objectContaining({ version: 1, rate: "12.5" })]);
    const trail = await listAudit(t.database.db, clientId, "currency", "GEM");
    expect(trail.map((a) => a.action)).toEqual(["currency.created", "currency.usd_rate_set"]);
  });

  it("only administrators set rates (403 for other roles); customers read rates but not their history", async () => {
    const s = await pointsClient();
    for (const who of [s.accountant, s.support, s.anna]) {
      const refused = await setRate(who, { rate: "0.01", inCurrencyId: s.ptsId });
      expect(refused.statusCode, refused.body).toBe(403);
    }
    expect((await s.anna.call("GET", "/api/v1/currencies/PTS/rates")).statusCode).toBe(403);
    expect((await s.anna.call("POST", "/api/v1/exchange-rates/view", {})).statusCode).toBe(200);
    expect((await history(s.support, "PTS")).records).toEqual([]);
  });

  it("bad rates → 400, nothing changes", async () => {
    const s = await pointsClient();
    expect((await setRate(s.admin, { rate: "0.01", inCurrencyId: s.ptsId })).statusCode).toBe(200);
    const bad: Record<string, unknown>[] = [
      { rate: "-1" },
      { rate: -1 },
      { rate: "0" },
      { rate: 0 },
      { rate: "0.000000000000" },
      { rate: "abc" },
      { rate: "1e3" },
      { rate: 1e-7 },
      { rate: "" },
      { rate: " 1" },
      { rate: "1.0000000000001" },
      { rate: "1234567890123456" },
      { rate: "NaN" },
      { rate: null },
      { rate: true },
      { rate: "0.01", active: false },
      { rate: "0.01", outCurrencyId: "EUR" },
      { rate: "0.01", effectiveFrom: "yesterday" },
      { rate: "0.01", effectiveFrom: new Date(Date.now() - 3_600_000).toISOString() },
      { rate: "0.01", effectiveFrom: new Date(Date.now() + 400 * 86_400_000).toISOString() },
      { rate: "0.01", surprise: 1 },
    ];
    for (const body of bad) {
      const response = await setRate(s.admin, { inCurrencyId: s.ptsId, ...body });
      expect(response.statusCode, `${JSON.stringify(body)}: ${response.body}`).toBe(400);
      expect(response.json()).toMatchObject({ type: "INVALID_REQUEST", code: 1000 });
    }
    const h = await history(s.admin, "PTS");
    expect(h.totalRecords).toBe(1);
    expect(h.current.rate).toBe("0.01");
    const trail = await listAudit(t.database.db, s.clientId, "currency", "PTS");
    expect(trail.filter((a) => a.action === "currency.usd_rate_set")).toHaveLength(1);
  });

  it("currencies the rates provider prices keep its price: a rate set for them is a 409", async () => {
    const s = await pointsClient();
    const refused = await setRate(s.admin, { rate: "2", inCurrencyId: "USD" });
    expect(refused.statusCode, refused.body).toBe(409);
    const view = await s.admin.call("POST", "/api/v1/exchange-rates/view", {
      ratePairs: [{ inCurrencyId: "USD", outCurrencyId: "USD" }],
    });
    expect(view.statusCode, view.body).toBe(200);
    expect(view.json().records).toEqual([
      expect.objectContaining({
        rate: "1",
        source: "PROVIDER",
        active: true,
        inCurrency: expect.objectContaining({ code: "USD" }),
      }),
    ]);
  });

  it("another client can neither read nor set this client's rates (404)", async () => {
    const a = await pointsClient();
    expect((await setRate(a.admin, { rate: "0.01", inCurrencyId: a.ptsId })).statusCode).toBe(200);
    const { admin: other } = await walletClient(t, { settings: SETTINGS });
    const byId = await setRate(other, { rate: "5", inCurrencyId: a.ptsId });
    expect(byId.statusCode, byId.body).toBe(404);
    const byCode = await setRate(other, { rate: "5", inCurrencyId: "PTS" });
    expect(byCode.statusCode, byCode.body).toBe(404);
    expect((await other.call("GET", "/api/v1/currencies/PTS/rates")).statusCode).toBe(404);
    const view = await other.call("POST", "/api/v1/exchange-rates/view", {
      ratePairs: [{ inCurrencyId: a.ptsId, outCurrencyId: "USD" }],
    });
    expect(view.statusCode, view.body).toBe(404);
    const all = (await other.call("POST", "/api/v1/exchange-rates/view", {})).json();
    expect(all.records.map((r: { id: string }) => r.id)).not.toContain(a.ptsId);
    expect((await history(a.admin, "PTS")).current.rate).toBe("0.01");
  });
});

describe("the platform admin's rates (/admin)", () => {
  it("sets and reads a client's currency rate, audited with the admin as actor", async () => {
    const s = await pointsClient();
    const set = await t.app.inject({
      method: "POST",
      url: `/admin/clients/${s.clientId}/currencies/PTS/rates`,
      headers: t.adminAuth,
      payload: { rate: "0.05" },
    });
    expect(set.statusCode, set.body).toBe(201);
    expect(set.json()).toMatchObject({ version: 1, rate: "0.05", setBy: { kind: "admin", id: "admin" } });
    const read = await t.app.inject({
      method: "GET",
      url: `/admin/clients/${s.clientId}/currencies/PTS/rates`,
      headers: t.adminAuth,
    });
    expect(read.statusCode, read.body).toBe(200);
    expect(read.json()).toMatchObject({ current: { rate: "0.05", version: 1 }, totalRecords: 1 });
    await topUp(s.accountant, s.bankId, s.annaCoin, "100");
    const trail = await listAudit(t.database.db, s.clientId, "currency", "PTS");
    expect(trail.find((a) => a.action === "currency.usd_rate_set")?.actor).toMatchObject({ kind: "admin" });

    for (const [url, payload, status] of [
      [`/admin/clients/no-such-client/currencies/PTS/rates`, { rate: "1" }, 404],
      [`/admin/clients/${s.clientId}/currencies/NOPE/rates`, { rate: "1" }, 404],
      [`/admin/clients/${s.clientId}/currencies/PTS/rates`, { rate: "0" }, 400],
      [`/admin/clients/${s.clientId}/currencies/PTS/rates`, { rate: "1,5" }, 400],
      [`/admin/clients/${s.clientId}/currencies/PTS/rates`, { rate: "1", surprise: 1 }, 400],
      [`/admin/clients/${s.clientId}/currencies/pts/rates`, { rate: "1" }, 400],
      [`/admin/clients/${s.clientId}/currencies/USD/rates`, { rate: "1" }, 409],
    ] as const) {
      const response = await t.app.inject({ method: "POST", url, headers: t.adminAuth, payload });
      expect(response.statusCode, `${url} ${JSON.stringify(payload)}: ${response.body}`).toBe(status);
    }
    expect((await history(s.admin, "PTS")).totalRecords).toBe(1);
  });
});
