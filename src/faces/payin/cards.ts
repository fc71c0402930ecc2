import { z } from "zod";
import { guard, sessionOf, walletSecurity } from "../../http/wallet-session.ts";
import type { Services } from "../../services.ts";
import { errorResponses } from "./errors.ts";
import { decimal, fraction, numberOut, sendExact } from "./json.ts";
import {
  billingAddress,
  cardAnswer,
  cardIdParam,
  cardNumber,
  inThisFace,
  numberOf,
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
  fiatRates(app, services);
}

function fiatRates(app: PayinApp, services: Services) {
  app.get(
    "/fiat-rates",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags,
        summary: "Fiat rates: how many of each fiat one unit of the customer's base fiat buys (KYC_0)",
        description:
          "The base is the customer's primary currency when it is a fiat Ferry sells crypto for (EUR, USD), else EUR. `rate` is a JSON number written from an exact decimal (8 places).",
        security: walletSecurity,
        response: {
          200: z.array(z.object({ baseCurrency: z.string(), symbolCurrency: z.string(), rate: numberOut })),
          ...errorResponses(401, 403, 422),
        },
      },
    },
    async (request, reply) => {
      const rates = await services.payin.fiatRates(sessionOf(request));
      return sendExact(
        reply,
        rates.map((r) => ({ ...r, rate: decimal(r.rate) })),
      );
    },
  );
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
      return showCard(method, await numberOf(services, sessionOf(request), "CARD", method.id));
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
        params: z.object({ cardId: cardIdParam }),
        body: billingAddress,
        response: { 200: cardAnswer, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const session = sessionOf(request);
      const card = await services.payin.changeBillingAddress(session, request.params.cardId, request.body);
      return showCard(card, await numberOf(services, session, "CARD", card.id));
    },
  );
}

/** A limit or fee object: a number and its currency. */
const valueIn = z.object({ value: numberOut, currency: z.string() });

function data(app: PayinApp, services: Services) {
  app.get(
    "/data",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags,
        summary: "The customer's cards, the pairs with their rates and scales, fees and limits (KYC_0)",
        description:
          "Amounts, rates and limits are JSON numbers written from Ferry's exact decimals (never through a float). `pairs[].rate` is fiat per 1 crypto; `fees.rate` the percentage fee as a fraction (0.015 = 1.5 %), `fees.transactionFee` the fixed fee. Ferry has no fee table, first-purchase limit or free-transaction promotion: `feeTable` and `feeInfo` are null, `freeTransactionsPromo` is 0 of 0, `firstPurchase` false; pairs are never locked; no fiat-to-fiat pairs.",
        security: walletSecurity,
        response: {
          200: z.object({
            cards: z.array(
              cardAnswer.extend({
                minAmountFrom: numberOut,
                maxAmountFrom: numberOut,
                billingAddressRequired: z.boolean(),
              }),
            ),
            pairs: z.array(
              z.object({
                lock: z.boolean(),
                currencyFrom: z.string(),
                currencyTo: z.string(),
                rate: numberOut,
                amountScaleFrom: z.number().int(),
                amountScaleTo: z.number().int(),
              }),
            ),
            fiatPairs: z.array(z.unknown()),
            fees: z.object({
              currency: z.string(),
              scale: z.number().int(),
              rate: numberOut,
              partnerFee: numberOut,
              crypteriumGas: numberOut,
              additionalFee: numberOut,
              transactionFee: numberOut,
              insuranceFee: z.null(),
              feeTableEnabled: z.boolean(),
              feeTable: z.null(),
            }),
            feeInfo: z.null(),
            feeTable: z.null(),
            limits: z.object({ minAmountFrom: numberOut, maxAmountFrom: numberOut }),
            defaultMinAmountFrom: numberOut,
            defaultMaxAmountFrom: numberOut,
            firstPurchase: z.boolean(),
            firstPurchaseLimit: valueIn,
            freeTransactionsPromo: z.object({ total: z.number().int(), available: z.number().int() }),
            billingAddressRequired: z.boolean(),
            validTo: z.string(),
            validSeconds: z.number().int(),
          }),
          ...errorResponses(401, 403, 422),
        },
      },
    },
    async (request, reply) => {
      const session = sessionOf(request);
      const { cards, pairs, settings, feeCurrency, feeScale } = await services.payin.data(session);
      const numbers = await services.payin.numbers(
        session,
        "CARD",
        cards.map((c) => c.id),
      );
      const min = decimal(settings.minAmountFrom);
      const max = decimal(settings.maxAmountFrom);
      const zero = decimal("0");
      return sendExact(reply, {
        cards: cards.map((c) => ({
          ...showCard(c, numbers.get(c.id) ?? 0),
          minAmountFrom: min,
          maxAmountFrom: max,
          billingAddressRequired: false,
        })),
        pairs: pairs.map((p) => ({ lock: false, ...p, rate: decimal(p.rate) })),
        fiatPairs: [],
        fees: {
          currency: feeCurrency,
          scale: feeScale,
          rate: fraction(settings.feePercent),
          partnerFee: zero,
          crypteriumGas: zero,
          additionalFee: zero,
          transactionFee: decimal(settings.feeFixed),
          insuranceFee: null,
          feeTableEnabled: false,
          feeTable: null,
        },
        feeInfo: null,
        feeTable: null,
        limits: { minAmountFrom: min, maxAmountFrom: max },
        defaultMinAmountFrom: min,
        defaultMaxAmountFrom: max,
        firstPurchase: false,
        firstPurchaseLimit: { value: zero, currency: feeCurrency },
        freeTransactionsPromo: { total: 0, available: 0 },
        // A card is added with its billing address (required in POST /v3/payin/card).
        billingAddressRequired: false,
        validTo: new Date(Date.now() + 30_000).toISOString(),
        validSeconds: 30,
      });
    },
  );
}
