import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as ledger from "../src/modules/ledger/service.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { tokenFor } from "./page-forms.ts";
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

/** Wallet API flows: commissions, AML reviews, the KYC gate, templates, smart cards, idempotency, 3-D Secure. */

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ workers: true, settings: { sandboxPayoutDelayMs: 100, sandboxKycDelayMs: 50 } });
});
afterAll(() => t.close());

async function setting(settings: Record<string, unknown> = NO_KYC_LIMITS) {
  const { clientId, admin } = await walletClient(t, { settings });
  const { bankId } = await setUpUsd(admin);
  const accountant = await staff(t, admin, "accountant");
  const compliance = await staff(t, admin, "compliance_officer");
  const anna = await registerCustomer(t, clientId);
  const ben = await registerCustomer(t, clientId);
  const annaCoin = await openCoin(anna);
  const benCoin = await openCoin(ben);
  return { clientId, admin, accountant, compliance, bankId, anna, ben, annaCoin, benCoin };
}

const bankDetails = { fullName: "Anna Example", iban: "DE89370400440532013000", bic: "COBADEFFXXX" };

async function profile(admin: WalletCaller, operation: string, feeDirection: string, rules: unknown[]) {
  const made = await admin.call("POST", "/api/v1/commission-profiles", {
    operation,
    currency: "USD",
    feeDirection,
    rules,
  });
  expect(made.statusCode, made.body).toBe(201);
}

describe("commissions through HTTP", () => {
  it("IN: the recipient gets amount − fee; SHARED: each pays half, the odd cent to the sender; the fees account gets the fee", async () => {
    const s = await setting();
    await topUp(s.accountant, s.bankId, s.annaCoin, "100.00");
    await profile(s.admin, "TRANSFER", "IN", [
      { beginAmount: "0", endAmount: "20", type: "percent", valuePercent: "10" },
    ]);
    const inCalc = await s.anna.call("POST", `/api/v1/bank-top-ups/calculate`, {
      coinSerial: s.annaCoin,
      amount: "5",
    });
    expect(inCalc.json().commissionAmountPush).toBe("0.00");
    const sent = await s.anna.call("POST", "/api/v1/transfers", {
      paymentTool: { type: "COIN", srcValue: s.annaCoin, destValue: s.benCoin },
      amount: "10.00",
    });
    expect(sent.statusCode, sent.body).toBe(200);
    expect(await balances(s.anna, s.annaCoin)).toMatchObject({ amount: "90.00" });
    expect(await balances(s.ben, s.benCoin)).toMatchObject({ amount: "9.00" });

    // A newer profile wins: SHARED fixed 0.03 → the sender pays 0.02, the recipient 0.01.
    await profile(s.admin, "TRANSFER", "SHARED", [{ beginAmount: "0", type: "fixed", valueFixed: "0.03" }]);
    const shared = await s.anna.call("POST", "/api/v1/transfers", {
      paymentTool: { type: "COIN", srcValue: s.annaCoin, destValue: s.benCoin },
      amount: "10.00",
    });
    expect(shared.statusCode, shared.body).toBe(200);
    expect(await balances(s.anna, s.annaCoin)).toMatchObject({ amount: "79.98" });
    expect(await balances(s.ben, s.benCoin)).toMatchObject({ amount: "18.99" });
    const processes = (await s.anna.call("GET", "/api/v1/business-processes")).json().records;
    expect(processes[0]).toMatchObject({
      amount: "10.00",
      commission: "0.03",
      senderAmount: "10.02",
      netAmount: "9.99",
    });
    const fees = await ledger.systemAccountId(t.database.db, {
      clientId: s.clientId,
      currency: "USD",
      kind: "FEES",
    });
    const account = await ledger.getAccount(t.database.db, fees, s.clientId);
    expect(account.creditsPosted - account.debitsPosted).toBe(103n);
    await invariantsHold(t, s.clientId);
  });

  it("an amount that does not cover an IN commission is a 400 and moves nothing", async () => {
    const s = await setting();
    await topUp(s.accountant, s.bankId, s.annaCoin, "10.00");
    await profile(s.admin, "TRANSFER", "IN", [{ beginAmount: "0", type: "fixed", valueFixed: "1.00" }]);
    const tooSmall = await s.anna.call("POST", "/api/v1/transfers", {
      paymentTool: { type: "COIN", srcValue: s.annaCoin, destValue: s.benCoin },
      amount: "1.00",
    });
    expect(tooSmall.statusCode, tooSmall.body).toBe(400);
    expect(await balances(s.anna, s.annaCoin)).toMatchObject({ amount: "10.00" });
  });
});

describe("the AML check before accept", () => {
  it("MANUAL_REVIEW: waiting_for_approval; accept is a 409 until a compliance officer clears it; then the accountant accepts", async () => {
    const s = await setting({ ...NO_KYC_LIMITS, monitoring: { singleAmountReviewUsd: 50 } });
    for (const amount of ["40.00", "40.00", "20.00"]) await topUp(s.accountant, s.bankId, s.annaCoin, amount);
    const asked = await s.anna.call("POST", "/api/v1/bank-withdrawals/with-bank", {
      coinSerial: s.annaCoin,
      amount: "60.00",
      bankDetails,
    });
    expect(asked.json().status).toBe("waiting_for_approval");
    const rid = asked.json().requestIdentifier;
    const early = await s.accountant.call("POST", `/api/v1/bank-withdrawals/${rid}/accept`);
    expect(early.statusCode).toBe(409);
    expect(early.json().message).toMatch(/compliance officer/);
    // The accountant cannot clear it; the compliance officer can.
    expect((await s.accountant.call("POST", `/api/v1/aml-reviews/${rid}/clear`)).statusCode).toBe(403);
    const cleared = await s.compliance.call("POST", `/api/v1/aml-reviews/${rid}/clear`);
    expect(cleared.statusCode, cleared.body).toBe(200);
    expect(cleared.json().status).toBe("pending");
    expect((await s.compliance.call("POST", `/api/v1/aml-reviews/${rid}/clear`)).statusCode).toBe(409);
    const accepted = await s.accountant.call("POST", `/api/v1/bank-withdrawals/${rid}/accept`);
    expect(accepted.statusCode, accepted.body).toBe(200);
    expect(accepted.json().status).toBe("processed");
    await expect
      .poll(async () => (await balances(s.anna, s.annaCoin)).amount, { timeout: 10_000 })
      .toBe("40.00");
    // The trail names who cleared and who accepted, with their roles.
    const trail = await t.database.db
      .selectFrom("audit_log")
      .select(["action", "actor_id", "actor_role", "after"])
      .where("client_id", "=", s.clientId)
      .where("entity_id", "=", accepted.json().process.id)
      .orderBy("created_at")
      .execute();
    expect(trail.map((r) => r.action)).toContain("transaction.review_cleared");
    expect(
      trail.some((r) => r.actor_id === s.compliance.userId && r.actor_role === "compliance_officer"),
    ).toBe(true);
    expect(trail.some((r) => r.actor_id === s.accountant.userId && r.actor_role === "accountant")).toBe(true);
    await invariantsHold(t, s.clientId);
  });

  it("a staff-recorded payment the AML check holds waits for the clear, then the accountant's accept credits it once; nothing is sent back meanwhile", async () => {
    const s = await setting({ ...NO_KYC_LIMITS, monitoring: { singleAmountReviewUsd: 50 } });
    const held = await s.accountant.call("POST", "/api/v1/bank-top-ups/with-bank", {
      coinSerial: s.annaCoin,
      amount: "60.00",
      bankId: s.bankId,
      iban: "DE89370400440532013000",
      fullName: "Ada Lovelace",
    });
    expect(held.statusCode, held.body).toBe(200);
    expect(held.json().status).toBe("waiting_for_approval");
    // The payment reference the deposit was recorded with (the bank's records name it).
    const { provider_reference: reference } = await t.database.db
      .selectFrom("transactions")
      .select("provider_reference")
      .where("client_id", "=", s.clientId)
      .where("request_id", "=", held.json().process.id)
      .executeTakeFirstOrThrow();
    expect(reference).toMatch(/^FRY/);
    expect(await balances(s.anna, s.annaCoin)).toMatchObject({ amount: "0.00" });
    // The payment is not sent back to the payer while a compliance officer has not looked at it.
    const returned = (await t.services.bank.records()).filter(
      (r) => r.kind === "INCOMING" && r.paymentReference === reference && r.returnKey !== null,
    );
    expect(returned).toEqual([]);
    const rid = held.json().requestIdentifier;
    const cleared = await s.compliance.call("POST", `/api/v1/aml-reviews/${rid}/clear`);
    expect(cleared.statusCode, cleared.body).toBe(200);
    expect(cleared.json().status).toBe("pending");
    const accepted = await s.accountant.call("POST", `/api/v1/bank-top-ups/${rid}/accept`);
    expect(accepted.statusCode, accepted.body).toBe(200);
    expect(accepted.json().status).toBe("processed");
    expect(await balances(s.anna, s.annaCoin)).toMatchObject({ amount: "60.00" });
    // One payment arrived, once: one transfer at the bank, credited, never sent back.
    const incoming = (await t.services.bank.records()).filter(
      (r) => r.kind === "INCOMING" && r.paymentReference === reference,
    );
    expect(incoming.map((r) => (r.kind === "INCOMING" ? r.returnKey : "?"))).toEqual([null]);
    await invariantsHold(t, s.clientId);
  });

  it("a compliance officer rejects: the hold is released, accept is a 409", async () => {
    const s = await setting({ ...NO_KYC_LIMITS, monitoring: { singleAmountReviewUsd: 50 } });
    for (const amount of ["40.00", "40.00", "20.00"]) await topUp(s.accountant, s.bankId, s.annaCoin, amount);
    const asked = await s.anna.call("POST", "/api/v1/bank-withdrawals/with-bank", {
      coinSerial: s.annaCoin,
      amount: "60.00",
      bankDetails,
    });
    const rid = asked.json().requestIdentifier;
    const rejected = await s.compliance.call("POST", `/api/v1/aml-reviews/${rid}/reject`);
    expect(rejected.statusCode, rejected.body).toBe(200);
    expect(rejected.json().status).toBe("rejected");
    expect((await s.accountant.call("POST", `/api/v1/bank-withdrawals/${rid}/accept`)).statusCode).toBe(409);
    expect(await balances(s.anna, s.annaCoin)).toEqual({
      amount: "100.00",
      available: "100.00",
      held: "0.00",
    });
    await invariantsHold(t, s.clientId);
  });

  it("DENY (a prohibited country): the request is rejected at once, nothing held, accept is a 409", async () => {
    const s = await setting();
    await topUp(s.accountant, s.bankId, s.annaCoin, "100.00");
    const moved = await s.anna.call("PATCH", "/api/v1/profile", {
      name: { firstName: "Anna", lastName: "Example" },
      addresses: [{ street: "1 Main St", city: "Pyongyang", country: "KP" }],
    });
    expect(moved.statusCode, moved.body).toBe(200);
    const asked = await s.anna.call("POST", "/api/v1/bank-withdrawals/with-bank", {
      coinSerial: s.annaCoin,
      amount: "10.00",
      bankDetails,
    });
    expect(asked.statusCode, asked.body).toBe(200);
    expect(asked.json().status).toBe("rejected");
    expect(
      (await s.accountant.call("POST", `/api/v1/bank-withdrawals/${asked.json().requestIdentifier}/accept`))
        .statusCode,
    ).toBe(409);
    expect(await balances(s.anna, s.annaCoin)).toEqual({
      amount: "100.00",
      available: "100.00",
      held: "0.00",
    });
  });
});

describe("operations a client switched off", () => {
  it("are a 403, priced or done", async () => {
    const s = await setting({ ...NO_KYC_LIMITS, disabledWalletOperations: ["TRANSFER"] });
    await topUp(s.accountant, s.bankId, s.annaCoin, "10.00");
    const body = {
      paymentTool: { type: "COIN", srcValue: s.annaCoin, destValue: s.benCoin },
      amount: "1.00",
    };
    const refused = await s.anna.call("POST", "/api/v1/transfers", body);
    expect(refused.statusCode, refused.body).toBe(403);
    expect(refused.json().message).toMatch(/switched off/);
    expect(await balances(s.anna, s.annaCoin)).toMatchObject({ amount: "10.00" });
  });
});

describe("the AML check runs again before accept", () => {
  it("a user blocked since the request was made: accept is a 409 naming the reason; decline still works", async () => {
    const s = await setting();
    await topUp(s.accountant, s.bankId, s.annaCoin, "100.00");
    const asked = await s.anna.call("POST", "/api/v1/bank-withdrawals/with-bank", {
      coinSerial: s.annaCoin,
      amount: "10.00",
      bankDetails,
    });
    expect(asked.json().status).toBe("pending");
    await t.services.users.update(
      { clientId: s.clientId, actor: { kind: "admin", id: "admin" } },
      s.anna.userId,
      { info: {}, mode: "merge", status: "BLOCKED", statusReason: "fraud suspected" },
    );
    const rid = asked.json().requestIdentifier;
    const accept = await s.accountant.call("POST", `/api/v1/bank-withdrawals/${rid}/accept`);
    expect(accept.statusCode, accept.body).toBe(409);
    expect(accept.json().message).toMatch(/AML check denies/);
    const decline = await s.accountant.call("POST", `/api/v1/bank-withdrawals/${rid}/decline`);
    expect(decline.json().status).toBe("declined");
    expect(await balances(s.anna, s.annaCoin)).toEqual({
      amount: "100.00",
      available: "100.00",
      held: "0.00",
    });
  });

  it("a top-up request of a user blocked since: accept is a 409, nothing credited", async () => {
    const s = await setting();
    const asked = await s.ben.call("POST", "/api/v1/bank-top-ups/create-request/with-bank", {
      coinSerial: s.benCoin,
      amount: "5.00",
    });
    expect(asked.json().status).toBe("pending");
    await t.services.users.update(
      { clientId: s.clientId, actor: { kind: "admin", id: "admin" } },
      s.ben.userId,
      { info: {}, mode: "merge", status: "BLOCKED", statusReason: "fraud suspected" },
    );
    const accept = await s.accountant.call(
      "POST",
      `/api/v1/bank-top-ups/${asked.json().requestIdentifier}/accept`,
    );
    expect(accept.statusCode, accept.body).toBe(409);
    expect(await balances(s.ben, s.benCoin)).toMatchObject({ amount: "0.00" });
  });
});

describe("the KYC gate of the shared core", () => {
  it("a new customer's transfer needs tier 1 (422 naming the fields); their profile lifts it (the sandbox KYC)", async () => {
    const s = await setting({});
    await topUp(s.accountant, s.bankId, s.annaCoin, "50.00");
    const body = {
      paymentTool: { type: "COIN", srcValue: s.annaCoin, destValue: s.benCoin },
      amount: "5.00",
    };
    const blocked = await s.anna.call("POST", "/api/v1/transfers", body);
    expect(blocked.statusCode, blocked.body).toBe(422);
    expect(blocked.json().fields).toEqual(expect.arrayContaining(["FULL_NAME", "BIRTH_DATE"]));
    const given = await s.anna.call("PATCH", "/api/v1/profile", {
      name: { firstName: "Anna", lastName: "Example" },
      dateOfBirth: "1990-01-01",
      addresses: [{ street: "1 Main St", city: "Berlin", postalCode: "10115", country: "DE" }],
    });
    expect(given.statusCode, given.body).toBe(200);
    await expect
      .poll(async () => (await s.anna.call("POST", "/api/v1/transfers", body)).statusCode, {
        timeout: 10_000,
        interval: 200,
      })
      .toBe(200);
    expect(await balances(s.ben, s.benCoin)).toMatchObject({ amount: "5.00" });
  });
});

describe("templates and smart cards", () => {
  it("a transfer saved as a template, listed, calculated and executed", async () => {
    const s = await setting();
    await topUp(s.accountant, s.bankId, s.annaCoin, "100.00");
    await profile(s.admin, "TRANSFER", "OUT", [
      { beginAmount: "0", type: "fixed_and_percent", valueFixed: "0.10", valuePercent: "1" },
    ]);
    const sent = await s.anna.call("POST", "/api/v1/transfers", {
      paymentTool: { type: "COIN", srcValue: s.annaCoin, destValue: s.benCoin },
      amount: "10.00",
    });
    const processId = sent.json().process.id;
    // Only the sender may save it.
    expect(
      (await s.ben.call("POST", `/api/v1/templates/transfer/operation/${processId}`, { name: "x" }))
        .statusCode,
    ).toBe(404);
    const saved = await s.anna.call("POST", `/api/v1/templates/transfer/operation/${processId}`, {
      name: "Rent share",
    });
    expect(saved.statusCode, saved.body).toBe(201);
    const template = saved.json().template;
    expect(template).toMatchObject({
      name: "Rent share",
      amount: "10.00",
      senderCoin: s.annaCoin,
      recipientCoin: s.benCoin,
    });
    const list = await s.anna.call("POST", "/api/v1/templates/transfer/view", {
      filter: { paymentToolType: "COIN" },
    });
    expect(list.json().records.map((r: { id: string }) => r.id)).toEqual([template.id]);
    expect((await s.ben.call("POST", "/api/v1/templates/transfer/view", {})).json().totalRecords).toBe(0);
    const calc = await s.anna.call("POST", `/api/v1/templates/transfer/${template.id}/calculate`, {
      amount: "20",
    });
    expect(calc.json()).toMatchObject({
      senderAmountPush: "20.30",
      commissionAmountPush: "0.30",
      recipientAmountPush: "20.00",
    });
    const executed = await s.anna.call("POST", `/api/v1/templates/transfer/${template.id}/execute`, {
      amount: "20",
    });
    expect(executed.statusCode, executed.body).toBe(200);
    expect(executed.json()).toMatchObject({ businessProcessStatus: "processed", templateId: template.id });
    expect(await balances(s.anna, s.annaCoin)).toMatchObject({ amount: "69.50" });
    expect(await balances(s.ben, s.benCoin)).toMatchObject({ amount: "30.00" });
    expect(
      (await s.ben.call("POST", `/api/v1/templates/transfer/${template.id}/execute`, { amount: "1" }))
        .statusCode,
    ).toBe(404);
    await invariantsHold(t, s.clientId);
  });

  it("a smart card: the full number once, masked after; a transfer to it reaches its account", async () => {
    const s = await setting();
    await topUp(s.accountant, s.bankId, s.annaCoin, "100.00");
    expect(
      (await s.anna.call("POST", "/api/v1/smart-cards/my", { name: "x", associatedCoinSerial: s.benCoin }))
        .statusCode,
    ).toBe(403);
    const issued = await s.ben.call("POST", "/api/v1/smart-cards/my", {
      name: "Ben's card",
      associatedCoinSerial: s.benCoin,
    });
    expect(issued.statusCode, issued.body).toBe(201);
    const number = issued.json().smartCard.cardNumber;
    expect(number).toMatch(/^990001[0-9]{10}$/);
    const mine = await s.ben.call("GET", "/api/v1/smart-cards/my");
    expect(mine.json().records[0]).toMatchObject({
      associatedCoinSerial: s.benCoin,
      currencyCode: "USD",
      expirationStatus: "ACTIVE",
    });
    expect(mine.json().records[0].cardNumber).toBe(`${number.slice(0, 6)}******${number.slice(-4)}`);
    expect(mine.body).not.toContain(number);
    const sent = await s.anna.call("POST", "/api/v1/transfers", {
      paymentTool: { type: "SMART_CARD", srcValue: s.annaCoin, destValue: number },
      amount: "12.34",
    });
    expect(sent.statusCode, sent.body).toBe(200);
    expect(await balances(s.ben, s.benCoin)).toMatchObject({ amount: "12.34" });
    const unknown = await s.anna.call("POST", "/api/v1/transfers", {
      paymentTool: { type: "SMART_CARD", srcValue: s.annaCoin, destValue: "9900010000000000" },
      amount: "1.00",
    });
    expect(unknown.statusCode).toBe(404);
    // The card number is not in any stored row in the clear.
    const rows = await t.database.db.selectFrom("smart_cards").selectAll().execute();
    expect(JSON.stringify(rows)).not.toContain(number);
    await invariantsHold(t, s.clientId);
  });
});

describe("idempotency, validation of serials, card top-ups", () => {
  it("Idempotency-Key: the same request returns the first answer (replayed), a different body is a 409, one transfer", async () => {
    const s = await setting();
    await topUp(s.accountant, s.bankId, s.annaCoin, "100.00");
    const body = {
      paymentTool: { type: "COIN", srcValue: s.annaCoin, destValue: s.benCoin },
      amount: "7.00",
    };
    const headers = { "idempotency-key": "transfer-0001" };
    const first = await s.anna.call("POST", "/api/v1/transfers", body, headers);
    const second = await s.anna.call("POST", "/api/v1/transfers", body, headers);
    expect(second.statusCode).toBe(200);
    expect(second.headers["idempotent-replayed"]).toBe("true");
    expect(second.json()).toEqual(first.json());
    const changed = await s.anna.call("POST", "/api/v1/transfers", { ...body, amount: "8.00" }, headers);
    expect(changed.statusCode).toBe(409);
    // Another user's same key is their own request.
    await topUp(s.accountant, s.bankId, s.benCoin, "10.00");
    const bens = await s.ben.call(
      "POST",
      "/api/v1/transfers",
      { paymentTool: { type: "COIN", srcValue: s.benCoin, destValue: s.annaCoin }, amount: "1.00" },
      headers,
    );
    expect(bens.statusCode, bens.body).toBe(200);
    expect(await balances(s.anna, s.annaCoin)).toMatchObject({ amount: "94.00" });
  });

  it("coins/validate names the owner's currency and type without their login; an unknown serial is a 404", async () => {
    const s = await setting();
    const valid = await s.anna.call("POST", "/api/v1/coins/validate", { serial: s.benCoin });
    expect(valid.statusCode, valid.body).toBe(200);
    expect(valid.json()).toMatchObject({
      currency: { code: "USD" },
      owner: { id: s.ben.userId, type: "individual" },
    });
    expect(valid.body).not.toContain(s.ben.login);
    expect(
      (await s.anna.call("POST", "/api/v1/coins/validate", { serial: "440000000000000000" })).statusCode,
    ).toBe(404);
  });

  it("3-D Secure: pending with the challenge page, credited when it is completed; the timeout card is charged once", async () => {
    const s = await setting();
    const card = {
      cardNumber: "4000000000003220",
      expirationMonth: 12,
      expirationYear: 2030,
      cvv: "123",
      cardHolder: "Anna Example",
    };
    const challenged = await s.anna.call("POST", "/api/v1/card-top-ups", {
      coinSerial: s.annaCoin,
      amount: "15.00",
      card,
    });
    expect(challenged.statusCode, challenged.body).toBe(200);
    expect(challenged.json()).toMatchObject({
      status: "pending",
      redirectUrl: expect.stringContaining("/sandbox/"),
    });
    const url = new URL(challenged.json().redirectUrl);
    const reference = url.pathname.split("/").pop();
    const completed = await t.app.inject({
      method: "POST",
      url: `/sandbox/acquirer/challenge/${reference}`,
      headers: { "content-type": "application/x-www-form-urlencoded" },
      payload: `decision=complete&csrf=${tokenFor(t, `/sandbox/acquirer/challenge/${reference}`)}`,
    });
    expect(completed.statusCode, completed.body).toBeLessThan(400);
    expect(await balances(s.anna, s.annaCoin)).toMatchObject({ amount: "15.00" });

    const timeout = await s.ben.call("POST", "/api/v1/card-top-ups", {
      coinSerial: s.benCoin,
      amount: "9.00",
      card: { ...card, cardNumber: "4000000000000119" },
    });
    expect(timeout.statusCode, timeout.body).toBe(200);
    await expect
      .poll(async () => (await balances(s.ben, s.benCoin)).amount, { timeout: 10_000 })
      .toBe("9.00");
    const charges = await t.database.db
      .selectFrom("sandbox_acquirer_charges")
      .select(["outcome"])
      .where("idempotency_key", "like", `${s.clientId}:%`)
      .where("card_last4", "=", "0119")
      .execute();
    expect(charges).toEqual([{ outcome: "APPROVED" }]);
    await invariantsHold(t, s.clientId);
  });
});
