import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
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
  walletClient,
} from "./wallet.ts";

/** Wallet API money flows through HTTP: top-ups, withdrawals, transfers, with the ledger checked after each. */

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ workers: true, settings: { sandboxPayoutDelayMs: 100 } });
});
afterAll(() => t.close());

async function setting() {
  const { clientId, admin } = await walletClient(t, { settings: NO_KYC_LIMITS });
  const { bankId } = await setUpUsd(admin);
  const accountant = await staff(t, admin, "accountant");
  const anna = await registerCustomer(t, clientId);
  const ben = await registerCustomer(t, clientId);
  const annaCoin = await openCoin(anna);
  const benCoin = await openCoin(ben);
  return { clientId, admin, accountant, bankId, anna, ben, annaCoin, benCoin };
}

describe("Wallet API money", () => {
  it("a staff-recorded bank payment is credited at once; a transfer moves it; the processes show the legs", async () => {
    const s = await setting();
    expect(s.annaCoin).toMatch(/^44[0-9]{16}$/);
    await topUp(s.accountant, s.bankId, s.annaCoin, "100.00");
    expect(await balances(s.anna, s.annaCoin)).toEqual({
      amount: "100.00",
      available: "100.00",
      held: "0.00",
    });

    const sent = await s.anna.call("POST", "/api/v1/transfers", {
      paymentTool: { type: "COIN", srcValue: s.annaCoin, destValue: s.benCoin },
      amount: "30.00",
      description: "lunch",
    });
    expect(sent.statusCode, sent.body).toBe(200);
    expect(sent.json().process.status).toBe("processed");
    expect(await balances(s.anna, s.annaCoin)).toMatchObject({ amount: "70.00" });
    expect(await balances(s.ben, s.benCoin)).toMatchObject({ amount: "30.00" });

    const mine = await s.anna.call("GET", "/api/v1/business-processes");
    expect(mine.statusCode, mine.body).toBe(200);
    const records = mine.json().records;
    expect(records.map((r: { type: string }) => r.type)).toEqual(["TRANSFER", "TOP_UP_BANK"]);
    expect(records[0]).toMatchObject({
      amount: "30.00",
      commission: "0.00",
      netAmount: "30.00",
      status: "processed",
      description: "lunch",
    });
    expect(records[0].transactions).toHaveLength(1);
    // Ben sees the transfer he received; the accountant sees both customers' processes.
    expect((await s.ben.call("GET", "/api/v1/business-processes")).json().totalRecords).toBe(1);
    expect((await s.accountant.call("GET", "/api/v1/business-processes")).json().totalRecords).toBe(2);
    await invariantsHold(t, s.clientId);
  });

  it("a transfer beyond the balance is a 402 and moves nothing; another currency is a 400; someone else's account is a 403", async () => {
    const s = await setting();
    await topUp(s.accountant, s.bankId, s.annaCoin, "10.00");
    const tooMuch = await s.anna.call("POST", "/api/v1/transfers", {
      paymentTool: { type: "COIN", srcValue: s.annaCoin, destValue: s.benCoin },
      amount: "10.01",
    });
    expect(tooMuch.statusCode, tooMuch.body).toBe(402);
    expect(await balances(s.anna, s.annaCoin)).toMatchObject({ amount: "10.00" });

    const eur = await s.admin.call("POST", "/api/v1/currencies", { code: "EUR", name: "Euro", fraction: 2 });
    expect(eur.statusCode).toBe(201);
    const benEur = await openCoin(s.ben, "EUR");
    const crossCurrency = await s.anna.call("POST", "/api/v1/transfers", {
      paymentTool: { type: "COIN", srcValue: s.annaCoin, destValue: benEur },
      amount: "1.00",
    });
    expect(crossCurrency.statusCode, crossCurrency.body).toBe(400);

    const notMine = await s.anna.call("POST", "/api/v1/transfers", {
      paymentTool: { type: "COIN", srcValue: s.benCoin, destValue: s.annaCoin },
      amount: "1.00",
    });
    expect(notMine.statusCode, notMine.body).toBe(403);
    await invariantsHold(t, s.clientId);
  });

  it("a staff-recorded bank payment is one operation: a failure while crediting leaves no request behind, and the retry credits once", async () => {
    const s = await setting();
    const engine = t.services.transactions.engine;
    const apply = engine.apply.bind(engine);
    // The credit fails (the database went away between recording the payment and crediting it).
    const failing = vi.spyOn(engine, "apply").mockImplementation(async (tx, ctx, row, event, facts) => {
      if (event === "FUNDS_RECEIVED") throw new Error("the connection was lost while crediting");
      return apply(tx, ctx, row, event, facts);
    });
    const body = {
      coinSerial: s.annaCoin,
      amount: "80.00",
      bankId: s.bankId,
      iban: "DE89370400440532013000",
      fullName: "Ada Lovelace",
    };
    const headers = { "idempotency-key": "staff-payment-1" };
    try {
      const broken = await s.accountant.call("POST", "/api/v1/bank-top-ups/with-bank", body, headers);
      expect(broken.statusCode, broken.body).toBe(500);
    } finally {
      failing.mockRestore();
    }
    // Nothing of it is left: no pending top-up request waiting for an accountant, nothing credited.
    const after = await s.accountant.call("GET", "/api/v1/business-processes");
    expect(after.json().totalRecords, after.body).toBe(0);
    expect(await balances(s.anna, s.annaCoin)).toMatchObject({ amount: "0.00" });

    // The staff member sends it again: credited, once.
    const again = await s.accountant.call("POST", "/api/v1/bank-top-ups/with-bank", body, headers);
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json().status).toBe("processed");
    expect(await balances(s.anna, s.annaCoin)).toMatchObject({ amount: "80.00" });
    expect((await s.accountant.call("GET", "/api/v1/business-processes")).json().totalRecords).toBe(1);
    await invariantsHold(t, s.clientId);
  });

  it("a withdrawal holds amount + fee at once; accept sends the payout; decline releases the hold; accept/decline idempotent, crossed → 409", async () => {
    const s = await setting();
    const profile = await s.admin.call("POST", "/api/v1/commission-profiles", {
      operation: "WITHDRAW_BANK",
      currency: "USD",
      feeDirection: "OUT",
      rules: [{ beginAmount: "0", type: "fixed", valueFixed: "1.50" }],
    });
    expect(profile.statusCode, profile.body).toBe(201);
    await topUp(s.accountant, s.bankId, s.annaCoin, "100.00");

    const calc = await s.anna.call("POST", "/api/v1/bank-withdrawals/calculate", {
      coinSerial: s.annaCoin,
      amount: "40",
    });
    expect(calc.json()).toMatchObject({
      transactionAmount: "40.00",
      senderAmountPush: "41.50",
      recipientAmountPush: "40.00",
      commissionAmountPush: "1.50",
    });

    const bankDetails = { fullName: "Anna Example", iban: "DE89370400440532013000", bic: "COBADEFFXXX" };
    const first = await s.anna.call("POST", "/api/v1/bank-withdrawals/with-bank", {
      coinSerial: s.annaCoin,
      amount: "40",
      bankDetails,
    });
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json().status).toBe("pending");
    expect(await balances(s.anna, s.annaCoin)).toEqual({
      amount: "100.00",
      available: "58.50",
      held: "41.50",
    });

    const tooBig = await s.anna.call("POST", "/api/v1/bank-withdrawals/with-bank", {
      coinSerial: s.annaCoin,
      amount: "58",
      bankDetails,
    });
    expect(tooBig.statusCode, tooBig.body).toBe(402);
    expect(await balances(s.anna, s.annaCoin)).toMatchObject({ available: "58.50" });

    // A customer cannot accept; the accountant can, twice with the same answer.
    const rid = first.json().requestIdentifier;
    expect((await s.anna.call("POST", `/api/v1/bank-withdrawals/${rid}/accept`)).statusCode).toBe(403);
    const accepted = await s.accountant.call("POST", `/api/v1/bank-withdrawals/${rid}/accept`);
    expect(accepted.statusCode, accepted.body).toBe(200);
    expect(accepted.json().status).toBe("processed");
    const again = await s.accountant.call("POST", `/api/v1/bank-withdrawals/${rid}/accept`);
    expect(again.statusCode, again.body).toBe(200);
    expect((await s.accountant.call("POST", `/api/v1/bank-withdrawals/${rid}/decline`)).statusCode).toBe(409);

    const second = await s.anna.call("POST", "/api/v1/bank-withdrawals/with-bank", {
      coinSerial: s.annaCoin,
      amount: "10",
      bankDetails,
    });
    const rid2 = second.json().requestIdentifier;
    const declined = await s.accountant.call("POST", `/api/v1/bank-withdrawals/${rid2}/decline`);
    expect(declined.statusCode, declined.body).toBe(200);
    expect(declined.json().status).toBe("declined");
    expect((await s.accountant.call("POST", `/api/v1/bank-withdrawals/${rid2}/decline`)).statusCode).toBe(
      200,
    );
    expect((await s.accountant.call("POST", `/api/v1/bank-withdrawals/${rid2}/accept`)).statusCode).toBe(409);

    // The payout settles (sandbox delay): the first hold is posted, the second was released.
    await expect
      .poll(async () => (await balances(s.anna, s.annaCoin)).amount, { timeout: 10_000 })
      .toBe("58.50");
    expect(await balances(s.anna, s.annaCoin)).toEqual({ amount: "58.50", available: "58.50", held: "0.00" });
    await invariantsHold(t, s.clientId);
  });

  it("a customer's bank top-up request: payment instructions, then the accountant accepts (or declines)", async () => {
    const s = await setting();
    const asked = await s.anna.call("POST", "/api/v1/bank-top-ups/create-request/with-bank", {
      coinSerial: s.annaCoin,
      amount: "25.00",
    });
    expect(asked.statusCode, asked.body).toBe(200);
    expect(asked.json()).toMatchObject({
      status: "pending",
      paymentInstructions: { reference: expect.stringMatching(/^FRY/) },
    });
    const rid = asked.json().requestIdentifier;
    const accepted = await s.accountant.call("POST", `/api/v1/bank-top-ups/${rid}/accept`);
    expect(accepted.statusCode, accepted.body).toBe(200);
    expect(accepted.json().status).toBe("processed");
    expect((await s.accountant.call("POST", `/api/v1/bank-top-ups/${rid}/accept`)).statusCode).toBe(200);
    expect(await balances(s.anna, s.annaCoin)).toMatchObject({ amount: "25.00" });

    // The sandbox bank's incoming transfer with the reference credits a request, as on /v1.
    const third = await s.anna.call("POST", "/api/v1/bank-top-ups/create-request/with-bank", {
      coinSerial: s.annaCoin,
      amount: "12.00",
    });
    const arrived = await t.app.inject({
      method: "POST",
      url: "/sandbox/bank/incoming",
      headers: t.adminAuth,
      payload: { reference: third.json().paymentInstructions.reference, amount: "12.00", currency: "USD" },
    });
    expect(arrived.statusCode, arrived.body).toBe(200);
    expect(arrived.json().outcome).toBe("CREDITED");
    expect(await balances(s.anna, s.annaCoin)).toMatchObject({ amount: "37.00" });
    const late = await s.accountant.call(
      "POST",
      `/api/v1/bank-top-ups/${third.json().requestIdentifier}/accept`,
    );
    expect(late.json().status).toBe("processed");

    const other = await s.anna.call("POST", "/api/v1/bank-top-ups/create-request/with-bank", {
      coinSerial: s.annaCoin,
      amount: "5.00",
    });
    const rid2 = other.json().requestIdentifier;
    expect((await s.accountant.call("POST", `/api/v1/bank-top-ups/${rid2}/decline`)).json().status).toBe(
      "declined",
    );
    expect((await s.accountant.call("POST", `/api/v1/bank-top-ups/${rid2}/accept`)).statusCode).toBe(409);
    expect(await balances(s.anna, s.annaCoin)).toMatchObject({ amount: "37.00" });
    await invariantsHold(t, s.clientId);
  });

  it("card top-ups: approved credits, a declined card is a 402 with nothing moved", async () => {
    const s = await setting();
    const card = {
      cardNumber: "4242424242424242",
      expirationMonth: 12,
      expirationYear: 2030,
      cvv: "123",
      cardHolder: "Anna Example",
    };
    const approved = await s.anna.call("POST", "/api/v1/card-top-ups", {
      coinSerial: s.annaCoin,
      amount: "20.00",
      card,
    });
    expect(approved.statusCode, approved.body).toBe(200);
    expect(approved.json().status).toBe("processed");
    expect(await balances(s.anna, s.annaCoin)).toMatchObject({ amount: "20.00" });
    const declined = await s.ben.call("POST", "/api/v1/card-top-ups", {
      coinSerial: s.benCoin,
      amount: "20.00",
      card: { ...card, cardNumber: "4000000000000002" },
    });
    expect(declined.statusCode, declined.body).toBe(402);
    expect(await balances(s.ben, s.benCoin)).toMatchObject({ amount: "0.00" });
    await invariantsHold(t, s.clientId);
  });

  it("card withdrawals: held at once, the acquirer's payout on accept (settled: the hold posted); a declined card releases the hold", async () => {
    const s = await setting();
    await topUp(s.accountant, s.bankId, s.annaCoin, "100.00");
    const card = {
      cardNumber: "5555555555554444",
      expirationMonth: 12,
      expirationYear: 2031,
      cardHolder: "Anna Example",
    };
    const asked = await s.anna.call("POST", "/api/v1/card-withdrawals", {
      coinSerial: s.annaCoin,
      amount: "30.00",
      card,
    });
    expect(asked.statusCode, asked.body).toBe(200);
    expect(asked.json().status).toBe("pending");
    expect(await balances(s.anna, s.annaCoin)).toEqual({
      amount: "100.00",
      available: "70.00",
      held: "30.00",
    });
    // The bank route does not take a card withdrawal's request number, nor the other way round.
    const rid = asked.json().requestIdentifier;
    expect((await s.accountant.call("POST", `/api/v1/bank-withdrawals/${rid}/accept`)).statusCode).toBe(404);
    const accepted = await s.accountant.call("POST", `/api/v1/card-withdrawals/${rid}/accept`);
    expect(accepted.statusCode, accepted.body).toBe(200);
    expect(accepted.json().status).toBe("processed");
    await expect
      .poll(async () => (await balances(s.anna, s.annaCoin)).amount, { timeout: 10_000 })
      .toBe("70.00");

    const declinedCard = await s.anna.call("POST", "/api/v1/card-withdrawals", {
      coinSerial: s.annaCoin,
      amount: "10.00",
      card: { ...card, cardNumber: "4000000000000002" },
    });
    const rid2 = declinedCard.json().requestIdentifier;
    const refused = await s.accountant.call("POST", `/api/v1/card-withdrawals/${rid2}/accept`);
    expect(refused.statusCode, refused.body).toBe(200);
    expect(refused.json().status).toBe("rejected");
    expect(await balances(s.anna, s.annaCoin)).toEqual({ amount: "70.00", available: "70.00", held: "0.00" });
    const tooBig = await s.anna.call("POST", "/api/v1/card-withdrawals", {
      coinSerial: s.annaCoin,
      amount: "70.01",
      card,
    });
    expect(tooBig.statusCode, tooBig.body).toBe(402);
    await invariantsHold(t, s.clientId);
  });
});
