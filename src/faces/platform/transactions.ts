// Over 400 lines on purpose: the /v1 transaction resource, its eight routes and the schemas that
// generate their OpenAPI reference, in one file (one file per face resource).
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiError, errorResponses } from "../../http/errors.ts";
import { actorOf, assertTokenUser, clientOf } from "../../http/platform-auth.ts";
import { CLIENT_CHOSEN_ID } from "../../lib/ids.ts";
import { formatAmount } from "../../lib/money.ts";
import { TRANSACTION_STATUSES, type Transaction, totalOf } from "../../modules/transactions/service.ts";
import { addressSchema, userInfoSchema } from "../../modules/users/schemas.ts";
import {
  type PlatformRouteOptions,
  requestIdHeaders,
  signedSecurity,
  userIdSchema,
  webhooksDisabled,
} from "./schemas.ts";

const amount = z.union([z.string().max(60), z.number()]).meta({ example: "100.50" });
const currency = z.string().regex(/^[A-Z0-9]{2,12}$/, "an upper-case currency code such as EUR");

const cardSource = z
  .object({
    paymentMethodType: z.literal("CREDIT_CARD"),
    paymentInformationId: z
      .string()
      .regex(/^pm_[0-9a-f-]{36}$/)
      .optional(),
    cardNumber: z
      .string()
      .regex(/^[0-9 -]{12,23}$/, "12–19 digits")
      .optional(),
    expirationMonth: z.number().int().min(1).max(12).optional(),
    expirationYear: z.number().int().min(0).max(2100).optional(),
    cvv: z
      .string()
      .regex(/^\d{3,4}$/, "3 or 4 digits")
      .optional(),
    cardHolder: z.string().trim().min(1).max(100).optional(),
    billingAddress: addressSchema.optional(),
  })
  .strict();

const bankDestination = z
  .object({
    paymentMethodType: z.enum(["ACH", "WIRE"]),
    paymentInformationId: z
      .string()
      .regex(/^pm_[0-9a-f-]{36}$/)
      .optional(),
    iban: z.string().max(42).optional(),
    bankAccountNumber: z.string().max(34).optional(),
    accountHolderName: z.string().trim().min(1).max(100).optional(),
    bankSwiftCode: z
      .string()
      .regex(/^[A-Z0-9]{8}([A-Z0-9]{3})?$/)
      .optional(),
    bankRoutingNumber: z
      .string()
      .regex(/^\d{9}$/)
      .optional(),
  })
  .strict();

export const transactionSchema = z
  .object({
    requestId: z.string(),
    type: z.enum(["DEPOSIT", "WITHDRAWAL", "TRANSFER", "TRADE", "PAYMENT"]),
    status: z.enum(TRANSACTION_STATUSES),
    userId: z.string(),
    amount: z.string(),
    currency: z.string(),
    fee: z.string(),
    total: z.string(),
    walletId: z.string().nullable(),
    counterpartyUserId: z.string().nullable(),
    targetCurrency: z.string().nullable(),
    targetAmount: z.string().nullable(),
    rate: z.string().nullable().describe("Trades: the source's USD price / the target's USD price"),
    paymentMethod: z.object({ type: z.string(), last4: z.string().nullable().optional() }).nullable(),
    monitoring: z.object({ status: z.string(), risk: z.string(), reasons: z.array(z.string()) }).nullable(),
    statusDetail: z
      .object({ responseCode: z.string(), responseCategory: z.string(), message: z.string().optional() })
      .nullable(),
    redirectUrl: z.string().nullable(),
    paymentInstructions: z
      .object({ iban: z.string(), reference: z.string(), amount: z.string() })
      .nullable()
      .describe("Bank deposits: pay this amount to this IBAN with this reference"),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: "Transaction" });

export function showTransaction(t: Transaction) {
  return {
    requestId: t.requestId,
    type: t.type,
    status: t.status,
    userId: t.userId,
    amount: formatAmount(t.amount, t.scale),
    currency: t.currency,
    fee: formatAmount(t.fee, t.scale),
    total: formatAmount(totalOf(t.type, t.amount, t.fee), t.scale),
    walletId: t.walletId,
    counterpartyUserId: t.counterpartyUserId,
    targetCurrency: t.target?.currency ?? null,
    targetAmount: t.target ? formatAmount(t.target.amount, t.target.scale) : null,
    rate: t.target?.rate ?? null,
    paymentMethod: t.paymentMethod
      ? { type: t.paymentMethod.type, last4: t.paymentMethod.last4 ?? null }
      : null,
    monitoring: t.monitoring,
    statusDetail: t.statusDetail,
    redirectUrl: t.redirectUrl,
    paymentInstructions: t.paymentInstructions
      ? {
          iban: t.paymentInstructions.iban,
          reference: t.paymentInstructions.reference,
          amount: formatAmount(t.amount, t.scale),
        }
      : null,
    createdAt: t.createdAt.toISOString(),
    updatedAt: t.updatedAt.toISOString(),
  };
}

/** The outcome of a money-moving request as an HTTP answer: done 201, under way 202, refused 402. */
function answerFor(t: Transaction): 201 | 202 {
  if (t.status === "REFUSED") {
    const insufficient = t.statusDetail?.responseCategory === "INSUFFICIENT_FUNDS";
    const message =
      t.statusDetail?.message ??
      (t.monitoring?.status === "DENY"
        ? `refused by transaction monitoring (${t.monitoring.reasons.join(", ")})`
        : "refused");
    throw new ApiError(insufficient ? "INSUFFICIENT_FUNDS" : "PAYMENT_FAILED", message);
  }
  return t.status === "CAPTURED" || t.status === "SETTLED" ? 201 : 202;
}

/** Transactions of the Platform API. */
export const transactionRoutes: FastifyPluginAsyncZod<PlatformRouteOptions> = async (
  app,
  { services, authenticate, idempotent },
) => {
  const { transactions } = services;

  app.post(
    "/transactions/deposits",
    {
      preValidation: authenticate({ allowUserToken: true }),
      preHandler: idempotent.preHandler,
      onSend: idempotent.onSend,
      schema: {
        tags: ["platform: transactions"],
        summary: "Fiat in by card or bank transfer",
        description:
          "KYC gate (422), monitoring (MANUAL_REVIEW → 202, DENY → 402), then the charge: approved → CAPTURED (201, the wallet credited net of fees); 3-D Secure → AWAITING_PAYMENT with redirectUrl (202); declined → 402. By bank (ACH, WIRE): AWAITING_PAYMENT with paymentInstructions, credited when the transfer arrives. `pii` is merged into the user; a change refreshes the KYC in the background.",
        security: signedSecurity,
        headers: requestIdHeaders,
        body: z
          .object({
            userId: userIdSchema,
            amount,
            currency,
            sourceMethod: z.discriminatedUnion("paymentMethodType", [
              cardSource,
              z.object({ paymentMethodType: z.enum(["ACH", "WIRE"]) }).strict(),
            ]),
            destinationWalletId: z.uuid().optional(),
            pii: userInfoSchema.optional(),
          })
          .strict()
          .meta({ id: "DepositRequest" }),
        response: {
          201: transactionSchema,
          202: transactionSchema,
          ...errorResponses(400, 401, 402, 403, 404, 409, 422, 429),
        },
      },
    },
    async (request, reply) => {
      assertTokenUser(request, request.body.userId);
      const { sourceMethod, ...rest } = request.body;
      const base = {
        clientId: clientOf(request).id,
        ...rest,
        requestId: request.headers["x-request-id"],
        scenarioId: request.headers["x-scenario-id"],
        suppressWebhook: webhooksDisabled(request),
      };
      const transaction =
        sourceMethod.paymentMethodType === "CREDIT_CARD"
          ? await transactions.deposit({ ...base, sourceMethod }, actorOf(request))
          : await transactions.bankDeposit(
              { ...base, paymentMethodType: sourceMethod.paymentMethodType },
              actorOf(request),
            );
      reply.code(answerFor(transaction));
      return showTransaction(transaction);
    },
  );

  const moneyRoute = {
    preValidation: authenticate({ allowUserToken: true }),
    preHandler: idempotent.preHandler,
    onSend: idempotent.onSend,
  };
  const common = (request: { headers: Record<string, string | string[] | undefined> }) => ({
    requestId: String(request.headers["x-request-id"]),
    scenarioId:
      typeof request.headers["x-scenario-id"] === "string" ? request.headers["x-scenario-id"] : undefined,
    suppressWebhook: request.headers["x-disable-webhook"] === "true",
  });
  const answers = {
    201: transactionSchema,
    202: transactionSchema,
    ...errorResponses(400, 401, 402, 403, 404, 409, 422, 429),
  };

  app.post(
    "/transactions/withdrawals",
    {
      ...moneyRoute,
      schema: {
        tags: ["platform: transactions"],
        summary: "Fiat out to a bank account",
        description:
          "Amount + fee are held on the wallet at once (402 if they do not fit); the payout goes to the bank (AUTHORIZED, 202); the hold is posted when the payout settles (CAPTURED) and voided if the bank returns it (ERROR) or the client cancels first (CANCELED).",
        security: signedSecurity,
        headers: requestIdHeaders,
        body: z
          .object({
            userId: userIdSchema,
            amount,
            currency,
            sourceWalletId: z.uuid().optional(),
            destinationMethod: bankDestination,
          })
          .strict()
          .meta({ id: "WithdrawalRequest" }),
        response: answers,
      },
    },
    async (request, reply) => {
      assertTokenUser(request, request.body.userId);
      const t = await transactions.withdraw(
        {
          clientId: clientOf(request).id,
          ...common(request),
          ...request.body,
        },
        actorOf(request),
      );
      reply.code(answerFor(t));
      return showTransaction(t);
    },
  );

  app.post(
    "/transactions/transfers",
    {
      ...moneyRoute,
      schema: {
        tags: ["platform: transactions"],
        summary: "User to user of the same client",
        description:
          "The sender pays amount + fee; both wallets change in one database transaction (CAPTURED, 201).",
        security: signedSecurity,
        headers: requestIdHeaders,
        body: z
          .object({
            userId: userIdSchema,
            destinationUserId: userIdSchema,
            amount,
            currency,
            sourceWalletId: z.uuid().optional(),
          })
          .strict()
          .meta({ id: "TransferRequest" }),
        response: answers,
      },
    },
    async (request, reply) => {
      assertTokenUser(request, request.body.userId);
      const t = await transactions.transfer(
        {
          kind: "TRANSFER",
          clientId: clientOf(request).id,
          ...common(request),
          ...request.body,
        },
        actorOf(request),
      );
      reply.code(answerFor(t));
      return showTransaction(t);
    },
  );

  app.post(
    "/transactions/payments",
    {
      ...moneyRoute,
      schema: {
        tags: ["platform: transactions"],
        summary: "Pay a merchant user from the user's wallet",
        security: signedSecurity,
        headers: requestIdHeaders,
        body: z
          .object({
            userId: userIdSchema,
            merchantUserId: userIdSchema,
            amount,
            currency,
            sourceWalletId: z.uuid().optional(),
            sourceMethod: z
              .object({ paymentMethodType: z.literal("WALLET") })
              .strict()
              .optional(),
          })
          .strict()
          .meta({ id: "PaymentRequest" }),
        response: answers,
      },
    },
    async (request, reply) => {
      assertTokenUser(request, request.body.userId);
      const { merchantUserId, sourceMethod: _wallet, ...rest } = request.body;
      const t = await transactions.transfer(
        {
          kind: "PAYMENT",
          clientId: clientOf(request).id,
          ...common(request),
          ...rest,
          destinationUserId: merchantUserId,
        },
        actorOf(request),
      );
      reply.code(answerFor(t));
      return showTransaction(t);
    },
  );

  app.post(
    "/transactions/trades",
    {
      ...moneyRoute,
      schema: {
        tags: ["platform: transactions"],
        summary: "Exchange between the user's wallets at the current rate",
        description:
          "Both legs (through the FX position accounts) or neither; the fee is taken in the source currency.",
        security: signedSecurity,
        headers: requestIdHeaders,
        body: z
          .object({
            userId: userIdSchema,
            amount,
            currency,
            targetCurrency: currency,
            sourceWalletId: z.uuid().optional(),
          })
          .strict()
          .meta({ id: "TradeRequest" }),
        response: answers,
      },
    },
    async (request, reply) => {
      assertTokenUser(request, request.body.userId);
      const t = await transactions.trade(
        {
          clientId: clientOf(request).id,
          ...common(request),
          ...request.body,
        },
        actorOf(request),
      );
      reply.code(answerFor(t));
      return showTransaction(t);
    },
  );

  app.delete(
    "/transactions/:requestId",
    {
      preValidation: authenticate(),
      schema: {
        tags: ["platform: transactions"],
        summary: "Cancel a transaction not yet executed",
        description:
          "→ CANCELED (holds released); otherwise 409. While a provider call for it is under way (a card charge, a payout) the answer is 409 with `retryable: true`: try again once its outcome is known.",
        security: signedSecurity,
        params: z.object({ requestId: z.string().regex(CLIENT_CHOSEN_ID) }),
        response: { 200: transactionSchema, ...errorResponses(400, 401, 404, 409, 429) },
      },
    },
    async (request) =>
      showTransaction(
        await transactions.cancel(clientOf(request).id, request.params.requestId, actorOf(request)),
      ),
  );

  app.post(
    "/transactions/:requestId/feedback",
    {
      preValidation: authenticate(),
      schema: {
        tags: ["platform: transactions"],
        summary: "The client's feedback on a transaction",
        description:
          "SETTLED/ACCEPTED close a captured transaction; REFUNDED/CHARGED_BACK reverse what it put on the ledger; CANCELLED/REJECTED/ERROR end one not yet executed.",
        security: signedSecurity,
        params: z.object({ requestId: z.string().regex(CLIENT_CHOSEN_ID) }),
        body: z
          .object({
            feedback: z.enum([
              "SETTLED",
              "ACCEPTED",
              "CANCELLED",
              "REJECTED",
              "REFUNDED",
              "CHARGED_BACK",
              "ERROR",
            ]),
            date: z.iso.datetime({ offset: true }).optional(),
            payload: z.record(z.string(), z.unknown()).optional(),
          })
          .strict()
          .meta({ id: "FeedbackRequest" }),
        response: { 200: transactionSchema, ...errorResponses(400, 401, 404, 409, 429) },
      },
    },
    async (request) =>
      showTransaction(
        await transactions.feedback(
          clientOf(request).id,
          request.params.requestId,
          request.body.feedback,
          actorOf(request),
        ),
      ),
  );

  app.get(
    "/transactions/:requestId",
    {
      preValidation: authenticate(),
      schema: {
        tags: ["platform: transactions"],
        summary: "A transaction by its request id",
        security: signedSecurity,
        params: z.object({ requestId: z.string().regex(CLIENT_CHOSEN_ID) }),
        response: { 200: transactionSchema, ...errorResponses(400, 401, 404, 429) },
      },
    },
    async (request) =>
      showTransaction(await transactions.get(clientOf(request).id, request.params.requestId)),
  );
};
