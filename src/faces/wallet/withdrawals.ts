import { z } from "zod";
import { errorResponses } from "../../http/errors.ts";
import { contextOf, guard, sessionOf, walletSecurity } from "../../http/wallet-session.ts";
import { idempotencyHeaders, moneyInput, serialInput } from "./schemas.ts";
import { type MoneyRouteOptions, requestAnswer, requestAnswerOf, type WalletApp } from "./views.ts";

export const cardInput = z
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

const bic = z
  .string()
  .regex(/^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$/)
  .optional();

const bankDetailsInput = z
  .object({
    fullName: z.string().trim().min(1).max(140),
    iban: z.string().trim().min(15).max(42).optional(),
    bankAccountNumber: z.string().trim().min(4).max(34).optional(),
    bic,
    swift: bic,
    bankId: z.uuid().optional(),
  })
  .strict();

/** A customer's withdrawals (bank, card): amount + fee held at once, then an accountant decides. */
export function withdrawalRoutes(app: WalletApp, options: MoneyRouteOptions) {
  bankWithdrawal(app, options);
  cardWithdrawal(app, options);
}

function bankWithdrawal(app: WalletApp, { services, idempotent }: MoneyRouteOptions) {
  app.post(
    "/bank-withdrawals/with-bank",
    {
      preValidation: guard(services, "own"),
      preHandler: idempotent.preHandler,
      onSend: idempotent.onSend,
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
    async (request) =>
      requestAnswerOf(
        await services.walletOperations.withdrawToBank(sessionOf(request), contextOf(request), request.body),
      ),
  );
}

function cardWithdrawal(app: WalletApp, { services, idempotent }: MoneyRouteOptions) {
  app.post(
    "/card-withdrawals",
    {
      preValidation: guard(services, "own"),
      preHandler: idempotent.preHandler,
      onSend: idempotent.onSend,
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
    async (request) =>
      requestAnswerOf(
        await services.walletOperations.withdrawToCard(sessionOf(request), contextOf(request), request.body),
      ),
  );
}
