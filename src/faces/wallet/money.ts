import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorResponses } from "../../http/errors.ts";
import { contextOf, guard, sessionOf, walletSecurity } from "../../http/wallet-session.ts";
import { DECIDABLE } from "../../modules/wallet-operations/decisions.ts";
import { commissionAnswer, idempotencyHeaders, moneyInput, serialInput } from "./schemas.ts";
import {
  calculation,
  type MoneyRouteOptions,
  requestAnswer,
  requestAnswerOf,
  type WalletApp,
} from "./views.ts";
import { cardInput, withdrawalRoutes } from "./withdrawals.ts";

export type { MoneyRouteOptions } from "./views.ts";

const requestIdentifierParams = z.object({
  requestIdentifier: z.string().regex(/^[0-9]{1,18}$/, "a request number"),
});

/** Commissions, top-ups, withdrawals, and people's decisions on them (accountants, compliance). */
export const moneyRoutes: FastifyPluginAsyncZod<MoneyRouteOptions> = async (app, options) => {
  calculations(app, options);
  bankTopUpRequest(app, options);
  staffBankTopUp(app, options);
  cardTopUp(app, options);
  withdrawalRoutes(app, options);
  decisions(app, options);
  amlReviews(app, options);
};

function calculations(app: WalletApp, { services }: MoneyRouteOptions) {
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
          body: z.object({ coinSerial: serialInput, amount: moneyInput }).strict(),
          response: { 200: commissionAnswer, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => {
        const { commission, scale, currency } = await services.walletOperations.calculate(
          sessionOf(request),
          operation,
          request.body.coinSerial,
          request.body.amount,
        );
        return calculation(commission, scale, currency);
      },
    );
  }
}

function bankTopUpRequest(app: WalletApp, { services, idempotent }: MoneyRouteOptions) {
  app.post(
    "/bank-top-ups/create-request/with-bank",
    {
      preValidation: guard(services, "own"),
      preHandler: idempotent.preHandler,
      onSend: idempotent.onSend,
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
    async (request) =>
      requestAnswerOf(
        await services.walletOperations.requestBankTopUp(
          sessionOf(request),
          contextOf(request),
          request.body,
        ),
      ),
  );
}

function staffBankTopUp(app: WalletApp, { services, idempotent }: MoneyRouteOptions) {
  app.post(
    "/bank-top-ups/with-bank",
    {
      preValidation: guard(services, "money.record"),
      preHandler: idempotent.preHandler,
      onSend: idempotent.onSend,
      schema: {
        tags: ["wallet: money"],
        summary: "Staff record a bank payment that arrived: the account is credited at once",
        description:
          "One operation: the top-up and its credit are recorded together (a failure records neither). A payment the AML check holds for review waits for a compliance officer, then an accountant's accept.",
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
    async (request) =>
      requestAnswerOf(
        await services.walletOperations.recordBankPayment(
          sessionOf(request),
          contextOf(request),
          request.body,
        ),
      ),
  );
}

function cardTopUp(app: WalletApp, { services, idempotent }: MoneyRouteOptions) {
  app.post(
    "/card-top-ups",
    {
      preValidation: guard(services, "own"),
      preHandler: idempotent.preHandler,
      onSend: idempotent.onSend,
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
    async (request) =>
      requestAnswerOf(
        await services.walletOperations.topUpByCard(sessionOf(request), contextOf(request), request.body),
      ),
  );
}

function decisions(app: WalletApp, { services }: MoneyRouteOptions) {
  for (const kind of Object.keys(DECIDABLE) as (keyof typeof DECIDABLE)[]) {
    for (const verb of ["accept", "decline"] as const) {
      const topUp = kind === "bank-top-ups";
      app.post(
        `/${kind}/:requestIdentifier/${verb}`,
        {
          preValidation: guard(services, "money.decide"),
          schema: {
            tags: ["wallet: money"],
            summary:
              verb === "accept"
                ? topUp
                  ? "Accountant: the money arrived, credit the account"
                  : "Accountant: post the hold and send the payout (after the AML check)"
                : topUp
                  ? "Accountant: decline the top-up"
                  : "Accountant: decline; the hold is released",
            description:
              verb === "accept"
                ? "Idempotent: a second accept returns the request as it is; accept after decline is a 409. A request the AML check holds for review needs a compliance officer first (409)."
                : "Idempotent: a second decline returns the request as it is; decline after accept is a 409.",
            security: walletSecurity,
            params: requestIdentifierParams,
            response: { 200: requestAnswer, ...errorResponses(400, 401, 403, 404, 409) },
          },
        },
        async (request) =>
          requestAnswerOf(
            await services.walletOperations.decide(
              sessionOf(request),
              contextOf(request),
              kind,
              verb,
              request.params.requestIdentifier,
            ),
          ),
      );
    }
  }
}

function amlReviews(app: WalletApp, { services }: MoneyRouteOptions) {
  const ops = services.walletOperations;
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
    async (request) =>
      requestAnswerOf(
        await ops.clearReview(sessionOf(request), contextOf(request), request.params.requestIdentifier),
      ),
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
    async (request) =>
      requestAnswerOf(
        await ops.rejectReview(sessionOf(request), contextOf(request), request.params.requestIdentifier),
      ),
  );
}
