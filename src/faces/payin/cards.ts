import { z } from "zod";
import { guard, sessionOf, walletSecurity } from "../../http/wallet-session.ts";
import type { Services } from "../../services.ts";
import { errorResponses } from "./errors.ts";
import {
  billingAddress,
  cardAnswer,
  cardId,
  cardNumber,
  inThisFace,
  money,
  type PayinApp,
  showCard,
  tags,
  text,
} from "./schemas.ts";

/** Cards (add one, change its billing address) and the customer's data: cards, pairs, fees, limits. */
export function cardRoutes(app: PayinApp, services: Services) {
  addCard(app, services);
  changeBillingAddress(app, services);
  data(app, services);
}

function addCard(app: PayinApp, services: Services) {
  app.post(
    "/card",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags,
        summary: "Add a card with its billing address (sealed; never returned) (KYC_0)",
        description:
          "Luhn, expiry and address checked (400); a card another user holds → 409 (the sandbox's test cards are anyone's; a live client takes none: 400). The same card again answers the card.",
        security: walletSecurity,
        body: z
          .object({
            cardNumber,
            cardHolder: text(100, /^[\p{L} .'-]+$/u, "letters, spaces and . ' -"),
            cardExpirationMonth: z.number().int().min(1).max(12),
            cardExpirationYear: z.number().int().min(2000).max(2100),
            billingAddress,
          })
          .strict()
          .meta({
            example: {
              cardNumber: "4242424242424242",
              cardHolder: "Marie Curie",
              cardExpirationMonth: 12,
              cardExpirationYear: 2030,
              billingAddress: { address: "12 Rue de Rivoli", city: "Paris", countryCode: "FR", zip: "75001" },
            },
          }),
        response: { 200: cardAnswer, ...errorResponses(400, 401, 403, 409) },
      },
    },
    async (request) => {
      const body = request.body;
      const method = await services.payin
        .addCard(sessionOf(request), {
          type: "CREDIT_CARD",
          cardNumber: body.cardNumber,
          expirationMonth: body.cardExpirationMonth,
          expirationYear: body.cardExpirationYear,
          cardHolder: body.cardHolder,
          billingAddress: body.billingAddress,
        })
        .catch((error: unknown) => {
          throw inThisFace(error);
        });
      return showCard(method);
    },
  );
}

function changeBillingAddress(app: PayinApp, services: Services) {
  app.post(
    "/card/:cardId/billing-address",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags,
        summary: "Change a card's billing address",
        security: walletSecurity,
        params: z.object({ cardId }),
        body: billingAddress,
        response: { 200: cardAnswer, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) =>
      showCard(
        await services.payin.changeBillingAddress(sessionOf(request), request.params.cardId, request.body),
      ),
  );
}

function data(app: PayinApp, services: Services) {
  app.get(
    "/data",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags,
        summary: "The customer's cards, the pairs with their rates and scales, fees and limits (KYC_0)",
        security: walletSecurity,
        response: {
          200: z.object({
            cards: z.array(
              cardAnswer.extend({
                minAmountFrom: money,
                maxAmountFrom: money,
                billingAddressRequired: z.boolean(),
              }),
            ),
            pairs: z.array(
              z.object({
                currencyFrom: z.string(),
                currencyTo: z.string(),
                rate: z.string(),
                amountScaleFrom: z.number().int(),
                amountScaleTo: z.number().int(),
              }),
            ),
            fees: z.object({ currency: z.string(), rate: z.string(), transactionFee: money }),
            limits: z.object({ minAmountFrom: money, maxAmountFrom: money }),
            validTo: z.string(),
            validSeconds: z.number().int(),
          }),
          ...errorResponses(401, 403, 422),
        },
      },
    },
    async (request) => {
      const { cards, pairs, settings, feeCurrency } = await services.payin.data(sessionOf(request));
      const limits = { minAmountFrom: settings.minAmountFrom, maxAmountFrom: settings.maxAmountFrom };
      return {
        cards: cards.map((c) => ({ ...showCard(c), ...limits, billingAddressRequired: false })),
        pairs,
        fees: { currency: feeCurrency, rate: settings.feePercent, transactionFee: settings.feeFixed },
        limits,
        validTo: new Date(Date.now() + 30_000).toISOString(),
        validSeconds: 30,
      };
    },
  );
}
