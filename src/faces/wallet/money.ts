import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiError, errorResponses } from "../../http/errors.ts";
import type { idempotency } from "../../http/idempotency.ts";
import { formatAmount } from "../../lib/money.ts";
import { getBank } from "../../modules/catalog/service.ts";
import type { Operation } from "../../modules/commissions/service.ts";
import { isStaff, type Session } from "../../modules/logins/service.ts";
import type { MonitoringResult } from "../../modules/monitoring/rules.ts";
import {
  json,
  type Transaction,
  TransactionError,
  type WithdrawalInput,
} from "../../modules/transactions/service.ts";
import type { Services } from "../../services.ts";
import { contextOf, guard, sessionOf, walletSecurity } from "./access-control.ts";
import { decisionBy, mustBeInReview, WalletOperations, walletStatus } from "./operations.ts";
import {
  commissionAnswer,
  idempotencyHeaders,
  money,
  moneyInput,
  pageQueryString,
  serialInput,
} from "./schemas.ts";

export interface MoneyRouteOptions {
  services: Services;
  idempotent: ReturnType<typeof idempotency>;
}

const processRef = z
  .object({ id: z.string(), requestIdentifier: z.number().int(), status: z.string() })
  .meta({ id: "WalletProcessRef" });

const requestAnswer = z
  .object({
    process: processRef,
    requestIdentifier: z.number().int(),
    status: z.string(),
    paymentInstructions: z.object({ iban: z.string(), reference: z.string(), amount: money }).optional(),
    redirectUrl: z.string().optional(),
  })
  .meta({ id: "WalletRequest" });

const cardInput = z
  .object({
    cardNumber: z.string().regex(/^[0-9 ]{12,23}$/, "12–19 digits"),
    expirationMonth: z.number().int().min(1).max(12),
    expirationYear: z.number().int().min(2000).max(2100),
    cvv: z
      .string()
      .regex(/^[0-9]{3,4}$/, "3 or 4 digits")
      .optional(),
    cardHolder: z.string().trim().min(1).max(100),
  })
  .strict();

const bankDetailsInput = z
  .object({
    fullName: z.string().trim().min(1).max(140),
    iban: z.string().trim().min(15).max(42).optional(),
    bankAccountNumber: z.string().trim().min(4).max(34).optional(),
    bic: z
      .string()
      .regex(/^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$/)
      .optional(),
    swift: z
      .string()
      .regex(/^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$/)
      .optional(),
    bankId: z.uuid().optional(),
  })
  .strict();

const requestIdentifierParams = z.object({
  requestIdentifier: z.string().regex(/^[0-9]{1,18}$/, "a request number"),
});

/** Accounts, top-ups, withdrawals, reviews and business processes. */
export const moneyRoutes: FastifyPluginAsyncZod<MoneyRouteOptions> = async (
  app,
  { services, idempotent },
) => {
  const ops = new WalletOperations(services);
  const { transactions, wallets } = services;
  const moneyHooks = { onSend: idempotent.onSend };

  /** The answer to a request: its process, requestIdentifier, status and what the payer needs next. */
  function answer(t: Transaction) {
    const status = walletStatus(t);
    const instructions = t.paymentInstructions as { iban: string; reference: string } | null;
    return {
      process: { id: t.requestId, requestIdentifier: Number(t.number), status },
      requestIdentifier: Number(t.number),
      status,
      ...(instructions
        ? {
            paymentInstructions: {
              iban: instructions.iban,
              reference: instructions.reference,
              amount: formatAmount(t.amount, t.scale),
            },
          }
        : {}),
      ...(t.redirectUrl ? { redirectUrl: t.redirectUrl } : {}),
    };
  }

  async function calculateFor(
    session: Session,
    operation: Operation,
    serial: string,
    amount: string | number,
  ) {
    const coin = await ops.coinFor(session, serial);
    const priced = await ops.calculate(session.clientId, operation, coin.account.currency, amount);
    return { coin, ...priced };
  }

  /**
   * A customer's withdrawal request (bank or card): priced by its commission profile, recorded to
   * wait for an accountant, amount + fee held at once.
   */
  async function requestWithdrawal(
    request: Parameters<typeof sessionOf>[0] & {
      body: { coinSerial: string; amount: string | number; description?: string | undefined };
    },
    operation: "WITHDRAW_BANK" | "WITHDRAW_CARD",
    paymentTool: "BANK" | "CARD",
    destinationMethod: WithdrawalInput["destinationMethod"],
  ): Promise<Transaction> {
    const session = sessionOf(request);
    const context = contextOf(request);
    const { body } = request;
    const { coin, commission, scale, currency } = await calculateFor(
      session,
      operation,
      body.coinSerial,
      body.amount,
    );
    return transactions.withdraw(
      {
        clientId: session.clientId,
        userId: session.userId,
        requestId: ops.requestId(session, context.requestId),
        amount: formatAmount(ops.coreAmount(operation, commission), scale),
        currency,
        sourceWalletId: coin.account.id,
        fee: commission.fee,
        awaitApproval: true,
        destinationMethod,
        process: ops.processOf(operation, commission, scale, {
          coinSerial: coin.serial,
          paymentTool,
          ...(body.description ? { description: body.description } : {}),
        }),
      },
      context.actor,
    );
  }

  // ——— accounts ———

  const coinSchema = z
    .object({
      serial: z.string(),
      name: z.string(),
      amount: money,
      availableAmount: money,
      heldAmount: money,
      futureAmount: money,
      active: z.boolean(),
      type: z.string(),
      main: z.boolean(),
      issuerId: z.string().nullable(),
      currency: z.object({
        id: z.string(),
        code: z.string(),
        symbol: z.string().nullable(),
        name: z.string().nullable(),
        fraction: z.number().int(),
      }),
      createdAt: z.string(),
    })
    .meta({ id: "WalletCoin" });

  app.get(
    "/coins",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags: ["wallet: accounts"],
        summary: "The caller's accounts",
        security: walletSecurity,
        response: { 200: z.object({ coins: z.array(coinSchema) }), ...errorResponses(401, 403) },
      },
    },
    async (request) => {
      const session = sessionOf(request);
      const coins = await wallets.coins(session.clientId, session.userId);
      const mains = new Map<string, string | undefined>();
      for (const c of coins)
        if (!mains.has(c.account.currency))
          mains.set(
            c.account.currency,
            await wallets.defaultId(session.clientId, session.userId, c.account.currency),
          );
      return { coins: await Promise.all(coins.map((c) => ops.showCoin(c, mains.get(c.account.currency)))) };
    },
  );

  app.post(
    "/coins",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags: ["wallet: accounts"],
        summary: "Open an account in a currency (under its first active issuer, or the one named)",
        security: walletSecurity,
        body: z
          .object({
            name: z.string().trim().min(1).max(100),
            currencyCode: z.string().regex(/^[A-Z0-9]{2,12}$/),
            issuerId: z.uuid().optional(),
          })
          .strict()
          .meta({ example: { name: "Everyday", currencyCode: "EUR" } }),
        response: { 201: z.object({ coin: coinSchema }), ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const session = sessionOf(request);
      const coin = await wallets.openCoin(session.clientId, session.userId, request.body.currencyCode, {
        name: request.body.name,
        issuerId: request.body.issuerId,
      });
      reply.code(201);
      const main = await wallets.defaultId(session.clientId, session.userId, coin.account.currency);
      return { coin: await ops.showCoin(coin, main) };
    },
  );

  app.post(
    "/coins/validate",
    {
      preValidation: guard(services, "processes.read"),
      schema: {
        tags: ["wallet: accounts"],
        summary: "Whose account a serial is, and in which currency (before sending to it)",
        security: walletSecurity,
        body: z.object({ serial: serialInput }).strict(),
        response: {
          200: z.object({
            currency: z.object({ code: z.string() }),
            owner: z.object({ id: z.string(), type: z.string(), name: z.string() }),
          }),
          ...errorResponses(400, 401, 403, 404),
        },
      },
    },
    async (request) => {
      const session = sessionOf(request);
      const coin = await ops.coin(session, request.body.serial, { own: false, field: "serial" });
      const owner = coin.account.ownerId ?? "";
      const login = await services.logins.get(session.clientId, owner).catch(() => undefined);
      return {
        currency: { code: coin.account.currency },
        owner: {
          id: owner,
          type: login?.organization.type ?? "individual",
          // Only the owner's display name: not their login (an e-mail or a phone number).
          name: login?.name ?? maskLogin(login?.login ?? owner),
        },
      };
    },
  );

  // ——— top-ups ———

  const calculateBody = z.object({ coinSerial: serialInput, amount: moneyInput }).strict();

  for (const [path, operation] of [
    ["/bank-top-ups/calculate", "TOP_UP_BANK"],
    ["/card-top-ups/calculate", "TOP_UP_CARD"],
    ["/bank-withdrawals/calculate", "WITHDRAW_BANK"],
    ["/card-withdrawals/calculate", "WITHDRAW_CARD"],
  ] as const) {
    app.post(
      path,
      {
        preValidation: guard(services, "processes.read"),
        schema: {
          tags: ["wallet: money"],
          summary: `The commission of ${operation.toLowerCase().replace("_", " ")}: what the sender pays and the recipient gets`,
          security: walletSecurity,
          body: calculateBody,
          response: { 200: commissionAnswer, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => {
        const { commission, scale, currency } = await calculateFor(
          sessionOf(request),
          operation,
          request.body.coinSerial,
          request.body.amount,
        );
        return ops.calculation(commission, scale, currency);
      },
    );
  }

  app.post(
    "/bank-top-ups/create-request/with-bank",
    {
      preValidation: guard(services, "own"),
      preHandler: idempotent.preHandler,
      ...moneyHooks,
      schema: {
        tags: ["wallet: money"],
        summary: "Ask to top up by bank transfer: payment instructions (IBAN + reference)",
        description:
          "Pending until the money arrives with the reference (the sandbox bank's incoming transfer) or an accountant accepts it.",
        security: walletSecurity,
        headers: idempotencyHeaders,
        body: z
          .object({
            coinSerial: serialInput,
            amount: moneyInput,
            bankId: z.uuid().optional(),
            description: z.string().max(500).optional(),
          })
          .strict()
          .meta({
            example: { coinSerial: "4412345678901234", amount: "250.00", description: "Salary top-up" },
          }),
        response: { 200: requestAnswer, ...errorResponses(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request) => {
      const session = sessionOf(request);
      const context = contextOf(request);
      if (request.body.bankId) await getBank(services.database.db, session.clientId, request.body.bankId);
      const { coin, commission, scale, currency } = await calculateFor(
        session,
        "TOP_UP_BANK",
        request.body.coinSerial,
        request.body.amount,
      );
      const t = await transactions.bankDeposit(
        {
          clientId: session.clientId,
          userId: session.userId,
          requestId: ops.requestId(session, context.requestId),
          amount: formatAmount(ops.coreAmount("TOP_UP_BANK", commission), scale),
          currency,
          paymentMethodType: "WIRE",
          destinationWalletId: coin.account.id,
          fee: commission.fee,
          process: ops.processOf("TOP_UP_BANK", commission, scale, {
            coinSerial: coin.serial,
            ...(request.body.description ? { description: request.body.description } : {}),
          }),
        },
        context.actor,
      );
      return answer(t);
    },
  );

  app.post(
    "/bank-top-ups/with-bank",
    {
      preValidation: guard(services, "money.record"),
      preHandler: idempotent.preHandler,
      ...moneyHooks,
      schema: {
        tags: ["wallet: money"],
        summary: "Staff record a bank payment that arrived: the account is credited at once",
        security: walletSecurity,
        headers: idempotencyHeaders,
        body: z
          .object({
            coinSerial: serialInput,
            amount: moneyInput,
            bankId: z.uuid(),
            iban: z.string().trim().min(15).max(42).optional(),
            bankAccountNumber: z.string().trim().min(4).max(34).optional(),
            fullName: z.string().trim().min(1).max(140),
            description: z.string().max(500).optional(),
          })
          .strict()
          .meta({
            example: {
              coinSerial: "4412345678901234",
              amount: "250.00",
              bankId: "01a2018b-3a7c-7c35-a8cc-dd90946776a2",
              iban: "DE89370400440532013000",
              fullName: "Anna Schmidt",
            },
          }),
        response: { 200: requestAnswer, ...errorResponses(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request) => {
      const session = sessionOf(request);
      const context = contextOf(request);
      if (!request.body.iban && !request.body.bankAccountNumber)
        throw ApiError.invalid("iban", "the payer's iban or bankAccountNumber is needed");
      await getBank(services.database.db, session.clientId, request.body.bankId);
      const coin = await ops.coin(session, request.body.coinSerial, { own: false });
      const owner = coin.account.ownerId ?? "";
      const { commission, scale, currency } = await ops.calculate(
        session.clientId,
        "TOP_UP_BANK",
        coin.account.currency,
        request.body.amount,
      );
      const created = await transactions.recordBankPayment(
        {
          clientId: session.clientId,
          userId: owner,
          requestId: ops.requestId(session, context.requestId),
          amount: formatAmount(ops.coreAmount("TOP_UP_BANK", commission), scale),
          currency,
          paymentMethodType: "WIRE",
          destinationWalletId: coin.account.id,
          fee: commission.fee,
          process: ops.processOf("TOP_UP_BANK", commission, scale, {
            coinSerial: coin.serial,
            paymentTool: "BANK",
            ...(request.body.description ? { description: request.body.description } : {}),
          }),
        },
        { actor: context.actor, decision: decisionBy(session, "recorded") },
      );
      return answer(created);
    },
  );

  for (const kind of ["bank-top-ups", "bank-withdrawals", "card-withdrawals"] as const) {
    app.post(
      `/${kind}/:requestIdentifier/accept`,
      {
        preValidation: guard(services, "money.decide"),
        schema: {
          tags: ["wallet: money"],
          summary:
            kind === "bank-top-ups"
              ? "Accountant: the money arrived, credit the account"
              : "Accountant: post the hold and send the payout (after the AML check)",
          description:
            "Idempotent: a second accept returns the request as it is; accept after decline is a 409. A request the AML check holds for review needs a compliance officer first (409).",
          security: walletSecurity,
          params: requestIdentifierParams,
          response: { 200: requestAnswer, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request) => answer(await decide(request, kind, "accept")),
    );
    app.post(
      `/${kind}/:requestIdentifier/decline`,
      {
        preValidation: guard(services, "money.decide"),
        schema: {
          tags: ["wallet: money"],
          summary:
            kind === "bank-top-ups"
              ? "Accountant: decline the top-up"
              : "Accountant: decline; the hold is released",
          description:
            "Idempotent: a second decline returns the request as it is; decline after accept is a 409.",
          security: walletSecurity,
          params: requestIdentifierParams,
          response: { 200: requestAnswer, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request) => answer(await decide(request, kind, "decline")),
    );
  }

  const KIND_OPERATIONS = {
    "bank-top-ups": ["TOP_UP_BANK"],
    "bank-withdrawals": ["WITHDRAW_BANK"],
    "card-withdrawals": ["WITHDRAW_CARD"],
  } as const;

  /** An accountant's accept or decline, idempotent, with exactly one winner when two decide at once. */
  async function decide(
    request: Parameters<typeof sessionOf>[0] & { params: { requestIdentifier: string } },
    kind: keyof typeof KIND_OPERATIONS,
    verb: "accept" | "decline",
  ): Promise<Transaction> {
    const session = sessionOf(request);
    const context = contextOf(request);
    const t = await ops.byRequestIdentifier(session, request.params.requestIdentifier);
    const operation = (t.process as { operation?: string } | null)?.operation;
    if (!operation || !(KIND_OPERATIONS[kind] as readonly string[]).includes(operation))
      throw new ApiError(
        "NOT_FOUND",
        `no ${kind.replace("-", " ").slice(0, -1)} request ${request.params.requestIdentifier}`,
      );
    const settled = decided(t, verb);
    if (settled) return settled;
    const record = decisionBy(session, verb === "accept" ? "accepted" : "declined");
    // Before accept, the AML check runs again with what is known now (a user blocked, a name on the
    // sanctions list or a country prohibited since the request was made): a DENY blocks the accept.
    if (verb === "accept" && (t.status === "MANUAL_REVIEW" || t.status === "AWAITING_PAYMENT")) {
      const screened = await transactions.screen(session.clientId, t.requestId);
      if (screened.status === "DENY")
        throw new ApiError(
          "CONFLICT",
          `the AML check denies this request (${screened.reasons.join(", ")}): decline it`,
        );
    }
    try {
      if (kind === "bank-top-ups") {
        if (verb === "decline")
          return await transactions.cancel(session.clientId, t.requestId, context.actor);
        const instructions = t.paymentInstructions as { reference?: string } | null;
        if (t.status !== "AWAITING_PAYMENT" || !instructions?.reference) throw notDecidable(t);
        const { transaction, outcome } = await transactions.incomingBankTransfer(
          instructions.reference,
          formatAmount(t.amount, t.scale),
          t.currency,
          `accept-${t.number}`,
          { actor: context.actor, decision: record },
        );
        if (outcome === "RETURNING") throw notDecidable(transaction);
        // A second accept at the same moment found the transfer recorded: the request as it is now.
        return outcome === "DUPLICATE" ? transactions.get(session.clientId, t.requestId) : transaction;
      }
      return await transactions.decideReview(
        session.clientId,
        t.requestId,
        verb === "accept" ? "APPROVE" : "DENY",
        context.actor,
        {
          record,
          check: (row) => {
            if (verb === "accept" && json<MonitoringResult>(row.monitoring)?.status === "MANUAL_REVIEW")
              throw new TransactionError(
                "CONFLICT",
                "AML_REVIEW_PENDING",
                "the AML check holds this request for review: a compliance officer must clear it first",
              );
          },
        },
      );
    } catch (error) {
      if (
        !(error instanceof TransactionError) ||
        error.kind !== "CONFLICT" ||
        error.code === "AML_REVIEW_PENDING"
      )
        throw error;
      // Someone decided at the same moment: the same decision is this one's answer, the other a 409.
      const now = await transactions.get(session.clientId, t.requestId);
      const same = decided(now, verb);
      if (same) return same;
      throw error;
    }
  }

  /** The request as it is when it was decided `verb` already; a 409 when decided the other way. */
  function decided(t: Transaction, verb: "accept" | "decline"): Transaction | undefined {
    const isTopUp = t.type === "DEPOSIT";
    const accepted = isTopUp
      ? ["CAPTURED", "SETTLED"].includes(t.status)
      : t.decision?.outcome === "accepted";
    const declined = isTopUp ? t.status === "CANCELED" : t.decision?.outcome === "declined";
    if ((verb === "accept" && accepted) || (verb === "decline" && declined)) return t;
    if (accepted || declined)
      throw new ApiError("CONFLICT", `this request was ${accepted ? "accepted" : "declined"} already`);
    if (!isTopUp && t.status !== "MANUAL_REVIEW") throw notDecidable(t);
    return undefined;
  }

  function notDecidable(t: Transaction) {
    if (t.status === "MANUAL_REVIEW" && t.monitoring?.status === "MANUAL_REVIEW")
      return new ApiError(
        "CONFLICT",
        "the AML check holds this request for review: a compliance officer must clear it first",
      );
    return new ApiError("CONFLICT", `this request cannot be decided any more (it is ${walletStatus(t)})`);
  }

  app.post(
    "/card-top-ups",
    {
      preValidation: guard(services, "own"),
      preHandler: idempotent.preHandler,
      ...moneyHooks,
      schema: {
        tags: ["wallet: money"],
        summary: "Top up from a card through the acquirer",
        description:
          "Approved: processed and credited. 3-D Secure: pending with redirectUrl to the hosted challenge page, credited once it is completed. Declined: 402 and nothing moves.",
        security: walletSecurity,
        headers: idempotencyHeaders,
        body: z
          .object({ coinSerial: serialInput, amount: moneyInput, card: cardInput })
          .strict()
          .meta({
            example: {
              coinSerial: "4412345678901234",
              amount: "50.00",
              card: {
                cardNumber: "4242424242424242",
                expirationMonth: 12,
                expirationYear: 2030,
                cvv: "123",
                cardHolder: "Anna Schmidt",
              },
            },
          }),
        response: { 200: requestAnswer, ...errorResponses(400, 401, 402, 403, 404, 409, 422) },
      },
    },
    async (request) => {
      const session = sessionOf(request);
      const context = contextOf(request);
      const { coin, commission, scale, currency } = await calculateFor(
        session,
        "TOP_UP_CARD",
        request.body.coinSerial,
        request.body.amount,
      );
      const card = request.body.card;
      const t = await transactions.deposit(
        {
          clientId: session.clientId,
          userId: session.userId,
          requestId: ops.requestId(session, context.requestId),
          amount: formatAmount(ops.coreAmount("TOP_UP_CARD", commission), scale),
          currency,
          destinationWalletId: coin.account.id,
          fee: commission.fee,
          sourceMethod: {
            paymentMethodType: "CREDIT_CARD",
            cardNumber: card.cardNumber.replaceAll(" ", ""),
            expirationMonth: card.expirationMonth,
            expirationYear: card.expirationYear,
            cvv: card.cvv,
            cardHolder: card.cardHolder,
          },
          process: ops.processOf("TOP_UP_CARD", commission, scale, {
            coinSerial: coin.serial,
            paymentTool: "CARD",
          }),
        },
        context.actor,
      );
      if (t.status === "REFUSED" && t.statusDetail)
        throw new ApiError(
          "PAYMENT_FAILED",
          `the card was declined: ${t.statusDetail.message ?? t.statusDetail.responseCategory}`,
          {
            errors: [
              {
                field: "card",
                message: `${t.statusDetail.responseCode} ${t.statusDetail.message ?? ""}`.trim(),
              },
            ],
          },
        );
      return answer(t);
    },
  );

  // ——— withdrawals ———

  app.post(
    "/bank-withdrawals/with-bank",
    {
      preValidation: guard(services, "own"),
      preHandler: idempotent.preHandler,
      ...moneyHooks,
      schema: {
        tags: ["wallet: money"],
        summary: "Ask to withdraw to a bank account: amount + fee are held at once",
        description:
          "402 when amount + fee do not fit the available balance (nothing is held). An accountant accepts (payout) or declines (hold released).",
        security: walletSecurity,
        headers: idempotencyHeaders,
        body: z
          .object({
            coinSerial: serialInput,
            amount: moneyInput,
            bankDetails: bankDetailsInput,
            description: z.string().max(500).optional(),
          })
          .strict()
          .meta({
            example: {
              coinSerial: "4412345678901234",
              amount: "40.00",
              bankDetails: { fullName: "Anna Schmidt", iban: "DE89370400440532013000", bic: "COBADEFFXXX" },
              description: "Rent",
            },
          }),
        response: { 200: requestAnswer, ...errorResponses(400, 401, 402, 403, 404, 409, 422) },
      },
    },
    async (request) => {
      const session = sessionOf(request);
      const details = request.body.bankDetails;
      if (!details.iban && !details.bankAccountNumber)
        throw ApiError.invalid("bankDetails.iban", "an iban or a bankAccountNumber is needed");
      const bank = details.bankId
        ? await getBank(services.database.db, session.clientId, details.bankId)
        : undefined;
      const swift = details.swift ?? details.bic ?? bank?.swift;
      const t = await requestWithdrawal(request, "WITHDRAW_BANK", "BANK", {
        paymentMethodType: "WIRE",
        iban: details.iban?.replaceAll(" ", ""),
        bankAccountNumber: details.bankAccountNumber,
        accountHolderName: details.fullName,
        bankSwiftCode: swift,
      });
      return answer(t);
    },
  );

  app.post(
    "/card-withdrawals",
    {
      preValidation: guard(services, "own"),
      preHandler: idempotent.preHandler,
      ...moneyHooks,
      schema: {
        tags: ["wallet: money"],
        summary: "Ask to withdraw to a card: amount + fee are held at once",
        description:
          "402 when amount + fee do not fit the available balance (nothing is held). An accountant accepts (the acquirer's payout to the card) or declines (hold released). A card the acquirer declines ends the request `rejected`, its hold released.",
        security: walletSecurity,
        headers: idempotencyHeaders,
        body: z
          .object({
            coinSerial: serialInput,
            amount: moneyInput,
            card: cardInput.omit({ cvv: true }),
            description: z.string().max(500).optional(),
          })
          .strict()
          .meta({
            example: {
              coinSerial: "4412345678901234",
              amount: "30.00",
              card: {
                cardNumber: "5555555555554444",
                expirationMonth: 12,
                expirationYear: 2031,
                cardHolder: "Anna Schmidt",
              },
            },
          }),
        response: { 200: requestAnswer, ...errorResponses(400, 401, 402, 403, 404, 409, 422) },
      },
    },
    async (request) => {
      const card = request.body.card;
      const t = await requestWithdrawal(request, "WITHDRAW_CARD", "CARD", {
        paymentMethodType: "CREDIT_CARD",
        cardNumber: card.cardNumber.replaceAll(" ", ""),
        expirationMonth: card.expirationMonth,
        expirationYear: card.expirationYear,
        cardHolder: card.cardHolder,
      });
      return answer(t);
    },
  );

  // ——— AML reviews (compliance officers) ———

  app.post(
    "/aml-reviews/:requestIdentifier/clear",
    {
      preValidation: guard(services, "review.decide"),
      schema: {
        tags: ["wallet: money"],
        summary: "Compliance officer: clear a request the AML check held for review",
        description:
          "A withdrawal then waits for an accountant's accept; a top-up request or a transfer continues at once.",
        security: walletSecurity,
        params: requestIdentifierParams,
        response: { 200: requestAnswer, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const session = sessionOf(request);
      const context = contextOf(request);
      const t = await ops.byRequestIdentifier(session, request.params.requestIdentifier);
      const waitsForAccountant = t.type === "WITHDRAWAL" && t.process !== null;
      const after = waitsForAccountant
        ? await transactions.clearReview(session.clientId, t.requestId, context.actor)
        : await transactions.decideReview(session.clientId, t.requestId, "APPROVE", context.actor, {
            record: decisionBy(session, "cleared"),
            check: mustBeInReview,
          });
      return answer(after);
    },
  );

  app.post(
    "/aml-reviews/:requestIdentifier/reject",
    {
      preValidation: guard(services, "review.decide"),
      schema: {
        tags: ["wallet: money"],
        summary: "Compliance officer: reject a request the AML check held for review (a hold is released)",
        security: walletSecurity,
        params: requestIdentifierParams,
        response: { 200: requestAnswer, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const session = sessionOf(request);
      const context = contextOf(request);
      const t = await ops.byRequestIdentifier(session, request.params.requestIdentifier);
      return answer(
        await transactions.decideReview(session.clientId, t.requestId, "DENY", context.actor, {
          record: decisionBy(session, "rejected"),
          check: mustBeInReview,
        }),
      );
    },
  );

  // ——— business processes ———

  const legSchema = z.object({
    id: z.string(),
    type: z.string(),
    status: z.string(),
    debitAccountId: z.string(),
    creditAccountId: z.string(),
    amount: money,
    currency: z.string(),
    createdAt: z.string(),
  });
  const processSchema = z
    .object({
      id: z.string(),
      type: z.string(),
      status: z.string(),
      requestIdentifier: z.number().int(),
      requestStatus: z.string(),
      amount: money,
      commission: money,
      netAmount: money,
      senderAmount: money,
      currency: z.string(),
      description: z.string().nullable(),
      createdAt: z.string(),
      transactions: z.array(legSchema),
    })
    .meta({ id: "WalletBusinessProcess" });

  app.get(
    "/business-processes",
    {
      preValidation: guard(services, "processes.read"),
      schema: {
        tags: ["wallet: processes"],
        summary:
          "Page through business processes (staff: all of the client's; users: their own), newest first",
        security: walletSecurity,
        querystring: pageQueryString.strict(),
        response: {
          200: z.object({
            pageNumber: z.number().int(),
            pageSize: z.number().int(),
            totalRecords: z.number().int(),
            totalPages: z.number().int(),
            records: z.array(processSchema),
          }),
          ...errorResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const session = sessionOf(request);
      const { pageNumber, pageSize } = request.query;
      const { transactions: found, total } = await transactions.list(
        session.clientId,
        { userId: isStaff(session.role) ? undefined : session.userId },
        { offset: pageNumber * pageSize, limit: pageSize },
      );
      return {
        pageNumber,
        pageSize,
        totalRecords: total,
        totalPages: Math.ceil(total / pageSize),
        records: await Promise.all(found.map((t) => ops.show(t))),
      };
    },
  );

  app.get(
    "/business-processes/:processId",
    {
      preValidation: guard(services, "processes.read"),
      schema: {
        tags: ["wallet: processes"],
        summary: "One business process with its ledger legs",
        security: walletSecurity,
        params: z.object({ processId: z.string().regex(/^[A-Za-z0-9_-]{3,255}$/) }),
        response: { 200: z.object({ process: processSchema }), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => ({
      process: await ops.show(await ops.byId(sessionOf(request), request.params.processId)),
    }),
  );
};

/** `an***@example.com`, `4917******67`: enough to recognise, not enough to contact. */
function maskLogin(login: string): string {
  const at = login.indexOf("@");
  if (at > 0) return `${login.slice(0, Math.min(2, at))}***${login.slice(at)}`;
  return login.length > 4 ? `${login.slice(0, 4)}${"*".repeat(login.length - 6)}${login.slice(-2)}` : "***";
}
