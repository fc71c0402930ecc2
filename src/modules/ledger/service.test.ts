import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../../test/database.ts";
import { openFundedWallet } from "../../../test/fixtures.ts";
import type { FerryDatabase } from "../../db/database.ts";
import { createClient } from "../clients/service.ts";
import { LedgerError } from "./errors.ts";
import * as ledger from "./service.ts";
import { accountFigures } from "./types.ts";

let database: FerryDatabase;
let book: ledger.Ledger;

beforeAll(async () => {
  database = await createTestDatabase();
  book = new ledger.Ledger(database.db, { maxBatchSize: 100, maxInFlight: 2 });
  await createClient(database.db, { id: "acme", name: "Acme" });
  await createClient(database.db, { id: "globex", name: "Globex" });
  for (const clientId of ["acme", "globex"]) {
    await ledger.createCurrency(database.db, { clientId, code: "USD", scale: 2 });
    await ledger.createCurrency(database.db, { clientId, code: "EUR", scale: 2 });
  }
});
afterAll(async () => {
  await database.close();
});

let counter = 0;
const id = (prefix: string) => `${prefix}-${++counter}`;

const fundedWallet = (clientId: string, amount: bigint, currency = "USD") =>
  openFundedWallet(database.db, { clientId, currency, amount, ownerId: "u-1" });

describe("currencies and accounts", () => {
  it("creates a currency once; a different scale for the same code is refused", async () => {
    await expect(
      ledger.createCurrency(database.db, { clientId: "acme", code: "USD", scale: 2 }),
    ).resolves.toMatchObject({
      scale: 2,
    });
    await expect(
      ledger.createCurrency(database.db, { clientId: "acme", code: "USD", scale: 3 }),
    ).rejects.toMatchObject({
      code: "CURRENCY_EXISTS",
    });
    await expect(
      ledger.createCurrency(database.db, { clientId: "nobody", code: "USD", scale: 2 }),
    ).rejects.toMatchObject({
      code: "CLIENT_NOT_FOUND",
    });
    await expect(
      ledger.createCurrency(database.db, { clientId: "acme", code: "usd", scale: 2 }),
    ).rejects.toBeInstanceOf(LedgerError);
  });

  it("parses amounts at the currency's scale, refusing extra decimals, zero and negatives", async () => {
    await ledger.createCurrency(database.db, { clientId: "acme", code: "JPY", scale: 0 });
    await expect(ledger.parseCurrencyAmount(database.db, "acme", "USD", "10.50")).resolves.toMatchObject({
      minor: 1050n,
    });
    await expect(ledger.parseCurrencyAmount(database.db, "acme", "JPY", 1200)).resolves.toMatchObject({
      minor: 1200n,
    });
    for (const [code, amount] of [
      ["USD", "10.505"],
      ["JPY", "1.5"],
      ["USD", "0"],
      ["USD", "-1"],
      ["USD", "9".repeat(39)],
    ] as const) {
      await expect(
        ledger.parseCurrencyAmount(database.db, "acme", code, amount),
        `${code} ${amount}`,
      ).rejects.toMatchObject({
        code: "INVALID_AMOUNT",
        kind: "INVALID",
      });
    }
    await expect(ledger.parseCurrencyAmount(database.db, "acme", "XAU", "1")).rejects.toMatchObject({
      code: "CURRENCY_NOT_FOUND",
    });
    await expect(ledger.parseCurrencyAmount(database.db, "globex", "JPY", "1")).rejects.toMatchObject({
      code: "CURRENCY_NOT_FOUND",
    });
  });

  it("opens one system account per kind and currency, and many wallets", async () => {
    const fees1 = await ledger.openAccount(database.db, { clientId: "acme", currency: "EUR", kind: "FEES" });
    const fees2 = await ledger.openAccount(database.db, { clientId: "acme", currency: "EUR", kind: "FEES" });
    expect(fees2.id).toBe(fees1.id);
    const card = await ledger.openAccount(database.db, {
      clientId: "acme",
      currency: "EUR",
      kind: "TRANSIT",
      rail: "card",
    });
    const bank = await ledger.openAccount(database.db, {
      clientId: "acme",
      currency: "EUR",
      kind: "TRANSIT",
      rail: "bank",
    });
    expect(card.id).not.toBe(bank.id);
    const w1 = await ledger.openAccount(database.db, {
      clientId: "acme",
      currency: "EUR",
      kind: "USER_WALLET",
      ownerId: "u",
    });
    const w2 = await ledger.openAccount(database.db, {
      clientId: "acme",
      currency: "EUR",
      kind: "USER_WALLET",
      ownerId: "u",
    });
    expect(w1.id).not.toBe(w2.id);
    expect(w1.limitRule).toBe("NON_NEGATIVE");
    await expect(
      ledger.openAccount(database.db, {
        clientId: "acme",
        currency: "GBP",
        kind: "USER_WALLET",
        ownerId: "u",
      }),
    ).rejects.toMatchObject({ code: "CURRENCY_NOT_FOUND" });
    await expect(
      ledger.openAccount(database.db, { clientId: "acme", currency: "EUR", kind: "TRANSIT" }),
    ).rejects.toMatchObject({ code: "INVALID_ACCOUNT" });
  });

  it("hides another client's account", async () => {
    const { wallet } = await fundedWallet("acme", 0n);
    await expect(ledger.getAccount(database.db, wallet.id, "globex")).rejects.toMatchObject({
      code: "ACCOUNT_NOT_FOUND",
    });
    await expect(ledger.getAccount(database.db, wallet.id, "acme")).resolves.toMatchObject({ id: wallet.id });
    await expect(ledger.getAccount(database.db, "not-a-uuid")).rejects.toMatchObject({
      code: "ACCOUNT_NOT_FOUND",
    });
  });
});

describe("transfers", () => {
  it("moves money, refuses an overdraft, and replays a retried id", async () => {
    const { wallet } = await fundedWallet("acme", 10_00n);
    const other = await ledger.openAccount(database.db, {
      clientId: "acme",
      currency: "USD",
      kind: "USER_WALLET",
      ownerId: "u-2",
    });
    const leg = {
      type: "SINGLE" as const,
      id: id("t"),
      debitAccountId: wallet.id,
      creditAccountId: other.id,
      amount: 6_00n,
      currency: "USD",
    };
    const first = await book.submit({ clientId: "acme", legs: [leg] });
    expect(first).toMatchObject({ ok: true, replayed: false });
    const again = await book.submit({ clientId: "acme", legs: [leg] });
    expect(again).toMatchObject({ ok: true, replayed: true });
    const different = await book.submit({ clientId: "acme", legs: [{ ...leg, amount: 1n }] });
    expect(different).toMatchObject({ ok: false, code: "EXISTS_WITH_DIFFERENT_PARAMETERS" });
    const overdraft = await book.submit({ clientId: "acme", legs: [{ ...leg, id: id("t") }] });
    expect(overdraft).toMatchObject({ ok: false, code: "EXCEEDS_LIMIT" });
    const after = await ledger.getAccount(database.db, wallet.id);
    expect(accountFigures(after)).toMatchObject({ balance: 4_00n, available: 4_00n });
    expect((await ledger.getAccount(database.db, other.id)).creditsPosted).toBe(6_00n);
  });

  it("refuses mismatched currencies, the same account, another client's account, bad amounts", async () => {
    const { wallet } = await fundedWallet("acme", 10_00n);
    const eur = await ledger.openAccount(database.db, {
      clientId: "acme",
      currency: "EUR",
      kind: "USER_WALLET",
      ownerId: "u",
    });
    const theirs = await ledger.openAccount(database.db, {
      clientId: "globex",
      currency: "USD",
      kind: "USER_WALLET",
      ownerId: "u",
    });
    const base = { type: "SINGLE" as const, debitAccountId: wallet.id, amount: 1n, currency: "USD" };
    const cases: [Partial<typeof base> & { creditAccountId: string }, string][] = [
      [{ creditAccountId: eur.id }, "CURRENCY_MISMATCH"],
      [{ creditAccountId: wallet.id }, "SAME_ACCOUNT"],
      [{ creditAccountId: theirs.id }, "ACCOUNT_NOT_FOUND"],
      [{ creditAccountId: "nope" }, "ACCOUNT_NOT_FOUND"],
      [{ creditAccountId: eur.id, currency: "EUR" }, "CURRENCY_MISMATCH"],
      [{ creditAccountId: theirs.id, amount: 0n }, "ACCOUNT_NOT_FOUND"],
    ];
    for (const [change, code] of cases) {
      const result = await book.submit({ clientId: "acme", legs: [{ ...base, id: id("bad"), ...change }] });
      expect(result, code).toMatchObject({ ok: false, code });
    }
    const other = await ledger.openAccount(database.db, {
      clientId: "acme",
      currency: "USD",
      kind: "USER_WALLET",
      ownerId: "u",
    });
    for (const amount of [0n, -5n, 10n ** 38n]) {
      const result = await book.submit({
        clientId: "acme",
        legs: [{ ...base, id: id("amt"), creditAccountId: other.id, amount }],
      });
      expect(result.ok).toBe(false);
    }
    expect(accountFigures(await ledger.getAccount(database.db, wallet.id)).balance).toBe(10_00n);
  });

  it("commits all legs of an operation or none", async () => {
    const { wallet } = await fundedWallet("acme", 10_00n);
    const fees = await ledger.openAccount(database.db, { clientId: "acme", currency: "USD", kind: "FEES" });
    const merchant = await ledger.openAccount(database.db, {
      clientId: "acme",
      currency: "USD",
      kind: "USER_WALLET",
      ownerId: "m",
    });
    const pay = (amount: bigint, fee: bigint) =>
      book.submit({
        clientId: "acme",
        legs: [
          {
            type: "SINGLE",
            id: id("pay"),
            debitAccountId: wallet.id,
            creditAccountId: merchant.id,
            amount,
            currency: "USD",
          },
          {
            type: "SINGLE",
            id: id("fee"),
            debitAccountId: wallet.id,
            creditAccountId: fees.id,
            amount: fee,
            currency: "USD",
          },
        ],
      });
    expect(await pay(9_50n, 1_00n)).toMatchObject({ ok: false, code: "EXCEEDS_LIMIT", legIndex: 1 });
    expect(accountFigures(await ledger.getAccount(database.db, wallet.id)).balance).toBe(10_00n);
    expect((await ledger.getAccount(database.db, merchant.id)).creditsPosted).toBe(0n);
    expect(await pay(9_00n, 1_00n)).toMatchObject({ ok: true });
    expect(accountFigures(await ledger.getAccount(database.db, wallet.id)).balance).toBe(0n);
  });

  it("holds, posts in part (releasing the rest), voids, and expires", async () => {
    const { wallet } = await fundedWallet("acme", 100_00n);
    const transit = await ledger.openAccount(database.db, {
      clientId: "acme",
      currency: "USD",
      kind: "TRANSIT",
      rail: "bank",
    });
    const hold = (amount: bigint, expiresAt?: Date) =>
      book.submit({
        clientId: "acme",
        legs: [
          {
            type: "PENDING",
            id: id("hold"),
            debitAccountId: wallet.id,
            creditAccountId: transit.id,
            amount,
            currency: "USD",
            expiresAt,
          },
        ],
      });
    const h1 = await hold(30_00n);
    const h2 = await hold(20_00n);
    const h3 = await hold(10_00n, new Date(Date.now() + 200));
    if (!h1.ok || !h2.ok || !h3.ok) throw new Error("holds refused");
    expect(accountFigures(await ledger.getAccount(database.db, wallet.id))).toMatchObject({
      balance: 100_00n,
      available: 40_00n,
      held: 60_00n,
    });
    expect(await hold(40_01n)).toMatchObject({ ok: false, code: "EXCEEDS_LIMIT" });

    const post = await book.submit({
      clientId: "acme",
      legs: [{ type: "POST", id: id("post"), pendingId: h1.transfers[0]?.id ?? "", amount: 25_00n }],
    });
    expect(post).toMatchObject({ ok: true });
    const again = await book.submit({
      clientId: "acme",
      legs: [{ type: "POST", id: id("post"), pendingId: h1.transfers[0]?.id ?? "" }],
    });
    expect(again).toMatchObject({ ok: false, code: "PENDING_ALREADY_POSTED" });
    const tooMuch = await book.submit({
      clientId: "acme",
      legs: [{ type: "POST", id: id("post"), pendingId: h2.transfers[0]?.id ?? "", amount: 20_01n }],
    });
    expect(tooMuch).toMatchObject({ ok: false, code: "POST_AMOUNT_EXCEEDS_PENDING" });
    const voided = await book.submit({
      clientId: "acme",
      legs: [{ type: "VOID", id: id("void"), pendingId: h2.transfers[0]?.id ?? "" }],
    });
    expect(voided).toMatchObject({ ok: true });
    expect(await ledger.getTransfer(database.db, "acme", h2.transfers[0]?.id ?? "")).toMatchObject({
      status: "VOIDED",
    });

    await new Promise((resolve) => setTimeout(resolve, 250));
    const lateVoid = await book.submit({
      clientId: "acme",
      legs: [{ type: "VOID", id: id("void"), pendingId: h3.transfers[0]?.id ?? "" }],
    });
    expect(lateVoid).toMatchObject({ ok: false, code: "PENDING_EXPIRED" });
    expect(await ledger.expirePendingTransfers(database.db)).toBeGreaterThanOrEqual(1);
    expect(await ledger.getTransfer(database.db, "acme", h3.transfers[0]?.id ?? "")).toMatchObject({
      status: "EXPIRED",
    });

    expect(accountFigures(await ledger.getAccount(database.db, wallet.id))).toMatchObject({
      balance: 75_00n,
      available: 75_00n,
      held: 0n,
    });
    const report = await ledger.checkInvariants(database.db);
    expect(report).toMatchObject({ ok: true });
    const entries = await ledger.listEntries(database.db, wallet.id, { offset: 0, limit: 50 });
    expect(entries.total).toBe(6); // funding, three holds, the post, the void
    expect(entries.transfers[0]?.type).toBe("VOID");
  });

  it("a batch with a refused operation still commits its neighbours", async () => {
    const { wallet } = await fundedWallet("acme", 5_00n);
    const other = await ledger.openAccount(database.db, {
      clientId: "acme",
      currency: "USD",
      kind: "USER_WALLET",
      ownerId: "u",
    });
    const leg = (amount: bigint) => ({
      type: "SINGLE" as const,
      id: id("b"),
      debitAccountId: wallet.id,
      creditAccountId: other.id,
      amount,
      currency: "USD",
    });
    const results = await book.submitBatch([
      { clientId: "acme", legs: [leg(3_00n)] },
      { clientId: "acme", legs: [leg(3_00n)] },
      { clientId: "acme", legs: [leg(2_00n)] },
    ]);
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
    expect(accountFigures(await ledger.getAccount(database.db, wallet.id)).balance).toBe(0n);
  });
});
