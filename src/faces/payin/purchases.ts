import { z } from "zod";
import { guard, sessionOf, walletSecurity } from "../../http/wallet-session.ts";
import { formatAmount } from "../../lib/money.ts";
import { OFFER_SECONDS, type Offer } from "../../modules/payin/offers.ts";
import { statusText } from "../../modules/payin/purchases.ts";
import type { Services } from "../../services.ts";
import { errorResponses } from "./errors.ts";
import {
  addressText,
  amountInput,
  cardId,
  crypto,
  fiat,
  masked,
  money,
  type PayinApp,
  returnUrl,
  tags,
} from "./schemas.ts";

/** Offers, their payment and where a payment stands. */
export function purchaseRoutes(app: PayinApp, services: Services) {
  createOffer(app, services);
  changeOffer(app, services);
  pay(app, services);
  payCallback(app, services);
}

const offerAnswer = z
  .object({
    offerId: z.string(),
    expirationTime: z.string(),
    validSeconds: z.number().int(),
    fromCurrency: z.string(),
    toCurrency: z.string(),
    amount: money,
    toAmount: money,
    rate: z.object({
      rate: z.string(),
      currency: z.string(),
      commissionFix: money,
      commissionPercentage: z.string(),
      minCrypto: money,
      maxCrypto: money,
    }),
    feeInfo: z.array(
      z.object({ name: z.string(), value: money, scale: z.number().int(), currency: z.string() }),
    ),
    limit: z.object({ minAmountFrom: money, maxAmountFrom: money }),
    status: z.enum(["OPEN", "PAID", "EXPIRED"]),
  })
  .meta({ id: "PayinOffer" });

async function showOffer(services: Services, offer: Offer) {
  const { fromScale, toScale, settings, rate, minCrypto, maxCrypto, status } =
    await services.payin.terms(offer);
  return {
    offerId: offer.id,
    expirationTime: offer.expiresAt.toISOString(),
    validSeconds: OFFER_SECONDS,
    fromCurrency: offer.fromCurrency,
    toCurrency: offer.toCurrency,
    amount: formatAmount(offer.amount, fromScale),
    toAmount: formatAmount(offer.toAmount, toScale),
    rate: {
      rate,
      currency: offer.fromCurrency,
      commissionFix: settings.feeFixed,
      commissionPercentage: settings.feePercent,
      minCrypto,
      maxCrypto,
    },
    feeInfo: [
      {
        name: "transactionFee",
        value: formatAmount(offer.fee, fromScale),
        scale: fromScale,
        currency: offer.fromCurrency,
      },
    ],
    limit: { minAmountFrom: settings.minAmountFrom, maxAmountFrom: settings.maxAmountFrom },
    status,
  };
}

function createOffer(app: PayinApp, services: Services) {
  app.post(
    "/offer",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags,
        summary: "An offer: the rate held for 20 s, no money taken yet (KYC_0)",
        description:
          "Amount outside the limits → 400. Screened by monitoring: an offer monitoring denies cannot be paid (409 on pay).",
        security: walletSecurity,
        body: z
          .object({
            cardId,
            fromCurrency: fiat,
            toCurrency: crypto,
            amount: amountInput,
            operation: z.literal("PAYIN"),
            walletAddress: addressText
              .optional()
              .describe(
                "Where the crypto goes on the chain (default: the user's address for the currency, if any; none: it stays in the user's account)",
              ),
            successUrl: returnUrl.optional(),
            failUrl: returnUrl.optional(),
          })
          .strict()
          .meta({
            example: {
              cardId: "pm_01a2018b-3a7c-7c35-a8cc-dd90946776a2",
              fromCurrency: "EUR",
              toCurrency: "USDC",
              amount: "100.00",
              operation: "PAYIN",
            },
          }),
        response: { 200: offerAnswer, ...errorResponses(400, 401, 403, 404, 422) },
      },
    },
    async (request) =>
      showOffer(services, await services.payin.createOffer(sessionOf(request), request.body)),
  );
}

function changeOffer(app: PayinApp, services: Services) {
  app.put(
    "/offer/:offerId",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags,
        summary: "Change an open offer: re-quoted with a new 20 s expiry (an expired or paid offer → 409)",
        security: walletSecurity,
        params: z.object({ offerId: z.uuid() }),
        body: z
          .object({
            amount: amountInput,
            toAmount: amountInput
              .optional()
              .describe(
                "Vault's expected crypto amount: accepted, not used (the offer is re-quoted from `amount`)",
              ),
            fromCurrency: fiat,
            toCurrency: crypto,
            operation: z.literal("PAYIN"),
          })
          .strict(),
        response: { 200: offerAnswer, ...errorResponses(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request) =>
      showOffer(
        services,
        await services.payin.requoteOffer(sessionOf(request), request.params.offerId, {
          amount: request.body.amount,
          fromCurrency: request.body.fromCurrency,
          toCurrency: request.body.toCurrency,
        }),
      ),
  );
}

const payAnswer = z
  .object({
    offerId: z.string(),
    authLink: z.string().nullable(),
    transactionStatus: z.string(),
    transactionStatusCode: z.string(),
    maskedPan: z.string(),
    transactionAmount: money,
    transactionDate: z.string(),
    successUrl: z.string().nullable(),
    failUrl: z.string().nullable(),
  })
  .meta({ id: "PayinPayment" });

function pay(app: PayinApp, services: Services) {
  app.post(
    "/pay/:offerId",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags,
        summary: "Pay an offer: the card charged, the crypto bought at the offer's rate (KYC_1)",
        description:
          "A declined card is a 200 with the acquirer's text and code (nothing moved); 3-D Secure answers `Pending` with `authLink`; paying twice returns the first result (one charge); an expired offer → 409 without a charge.",
        security: walletSecurity,
        params: z.object({ offerId: z.uuid() }),
        body: z
          .object({
            cardCVV: z.string().regex(/^[0-9]{3,4}$/, "3 or 4 digits"),
            successUrl: returnUrl.optional(),
            failUrl: returnUrl.optional(),
            fingerprint: z
              .record(z.string().max(64), z.unknown())
              .optional()
              .describe("Browser data (accepted, not used by the sandbox)"),
          })
          .strict(),
        response: { 200: payAnswer, ...errorResponses(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request) => {
      const session = sessionOf(request);
      const { cardCVV, successUrl, failUrl } = request.body;
      const { offer, transaction: t } = await services.payin.pay(session, request.params.offerId, {
        cvv: cardCVV,
        successUrl,
        failUrl,
      });
      const words = statusText(t);
      const returns = t.process as { successUrl?: string; failUrl?: string } | null;
      return {
        offerId: offer.id,
        authLink: t.status === "AWAITING_PAYMENT" ? t.redirectUrl : null,
        transactionStatus: words.text,
        transactionStatusCode: words.code,
        maskedPan: masked(await services.payin.maskedPanOf(session, offer)),
        transactionAmount: formatAmount(t.amount, t.scale),
        transactionDate: t.createdAt.toISOString(),
        successUrl: returns?.successUrl ?? null,
        failUrl: returns?.failUrl ?? null,
      };
    },
  );
}

function payCallback(app: PayinApp, services: Services) {
  app.get(
    "/pay-callback",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags,
        summary:
          "Where a payment stands: PENDING, SUCCESS or FAILURE, with the chain's transaction hash once sent (KYC_1)",
        security: walletSecurity,
        querystring: z.object({ offerId: z.uuid() }).strict(),
        response: {
          200: z.object({
            offerId: z.string(),
            status: z.enum(["PENDING", "SUCCESS", "FAILURE"]),
            amount: money,
            currency: z.string(),
            cryptoAmount: money,
            cryptoCurrency: z.string(),
            maskedPan: z.string(),
            transactionStatus: z.string(),
            transactionStatusCode: z.string(),
            transactionDate: z.string().nullable(),
            chainTxHash: z.string().optional(),
            chainStatus: z.enum(["PENDING", "CONFIRMED"]).optional(),
          }),
          ...errorResponses(400, 401, 403, 404, 422),
        },
      },
    },
    async (request) => {
      const session = sessionOf(request);
      const found = await services.payin.status(session, request.query.offerId);
      const { offer, transaction: t, chain } = found;
      return {
        offerId: offer.id,
        status: found.status,
        amount: formatAmount(offer.amount, found.fromScale),
        currency: offer.fromCurrency,
        cryptoAmount: formatAmount(offer.toAmount, found.toScale),
        cryptoCurrency: offer.toCurrency,
        maskedPan: masked(await services.payin.maskedPanOf(session, offer)),
        transactionStatus: found.words.text,
        transactionStatusCode: found.words.code,
        transactionDate: t ? t.createdAt.toISOString() : null,
        ...(chain ? { chainTxHash: chain.hash, chainStatus: chain.state } : {}),
      };
    },
  );
}
