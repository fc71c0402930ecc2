import { z } from "zod";
import { guard, sessionOf, walletSecurity } from "../../http/wallet-session.ts";
import { formatAmount } from "../../lib/money.ts";
import type { Session } from "../../modules/logins/service.ts";
import { OFFER_SECONDS, type Offer } from "../../modules/payin/offers.ts";
import { statusText } from "../../modules/payin/purchases.ts";
import type { Services } from "../../services.ts";
import { errorResponses } from "./errors.ts";
import { decimal, fraction, numberOut, sendExact } from "./json.ts";
import {
  addressText,
  amountInput,
  cardId,
  crypto,
  fiat,
  masked,
  money,
  numberOf,
  offerId,
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

const fees = z.object({
  currency: z.string(),
  scale: z.number().int(),
  rate: numberOut.describe("The percentage fee as a fraction (0.015 = 1.5 %)"),
  partnerFee: numberOut,
  crypteriumGas: numberOut,
  additionalFee: numberOut,
  transactionFee: numberOut.describe("The fixed fee"),
  insuranceFee: z.null(),
  feeTableEnabled: z.boolean(),
  feeTable: z.null(),
});

const offerAnswer = z
  .object({
    offerId: z.number().int().describe("The offer's number on this face (Vault's ids are integers)"),
    expirationTime: z.string(),
    validSeconds: z.number().int(),
    fromCurrency: z.string(),
    toCurrency: z.string(),
    amount: numberOut,
    toAmount: numberOut,
    rate: z.object({
      rate: numberOut.describe("Fiat per 1 crypto"),
      currency: z.string(),
      commissionFix: numberOut,
      commissionPercentage: numberOut,
      minCrypto: numberOut,
      maxCrypto: numberOut,
    }),
    feeInfo: z.array(
      z.object({
        name: z.string(),
        value: numberOut,
        valueOld: numberOut,
        scale: z.number().int(),
        currency: z.string(),
      }),
    ),
    limit: z.object({
      value: numberOut.describe("The most one payment may be (= maxAmountFrom)"),
      currency: z.string(),
      minAmountFrom: numberOut,
      maxAmountFrom: numberOut,
    }),
    fees,
    status: z.enum(["OPEN", "PAID", "EXPIRED"]),
  })
  .meta({
    id: "PayinOffer",
    description: "Amounts, rates and fees are JSON numbers written from Ferry's exact decimals.",
  });

async function showOffer(services: Services, session: Session, offer: Offer) {
  const { fromScale, toScale, settings, rate, minCrypto, maxCrypto, status } =
    await services.payin.terms(offer);
  const fee = decimal(formatAmount(offer.fee, fromScale));
  const zero = decimal("0");
  return {
    offerId: await numberOf(services, session, "OFFER", offer.id),
    expirationTime: offer.expiresAt.toISOString(),
    validSeconds: OFFER_SECONDS,
    fromCurrency: offer.fromCurrency,
    toCurrency: offer.toCurrency,
    amount: decimal(formatAmount(offer.amount, fromScale)),
    toAmount: decimal(formatAmount(offer.toAmount, toScale)),
    rate: {
      rate: decimal(rate),
      currency: offer.fromCurrency,
      commissionFix: decimal(settings.feeFixed),
      commissionPercentage: decimal(settings.feePercent),
      minCrypto: decimal(minCrypto),
      maxCrypto: decimal(maxCrypto),
    },
    feeInfo: [
      { name: "transactionFee", value: fee, valueOld: fee, scale: fromScale, currency: offer.fromCurrency },
    ],
    limit: {
      value: decimal(settings.maxAmountFrom),
      currency: offer.fromCurrency,
      minAmountFrom: decimal(settings.minAmountFrom),
      maxAmountFrom: decimal(settings.maxAmountFrom),
    },
    fees: {
      currency: offer.fromCurrency,
      scale: fromScale,
      rate: fraction(settings.feePercent),
      partnerFee: zero,
      crypteriumGas: zero,
      additionalFee: zero,
      transactionFee: decimal(settings.feeFixed),
      insuranceFee: null,
      feeTableEnabled: false,
      feeTable: null,
    },
    status,
  };
}

/**
 * The numeric status code Vault's answers carry: 0–99 the acquirer's ISO 8583 response code (0
 * approved, 5 do not honour, 51 insufficient funds, …); Ferry's own states above it: 100 pending,
 * 101 pending review, 110 expired, 120 refused, 130 error, 199 an acquirer code that is not a number.
 */
export function statusCode(code: string, text: string): number {
  if (/^[0-9]{1,2}$/.test(code)) return Number(code);
  if (code === "PENDING") return text === "Pending review" ? 101 : 100;
  return { EXPIRED: 110, REFUSED: 120, ERROR: 130 }[code] ?? 199;
}

/** The card details Vault's payment answers carry; Ferry keeps no issuer data: null. */
const cardFacts = {
  paymentMode: null,
  cardBankName: null,
  cardCountryCode: null,
  cardCountryName: null,
};
const cardFactsSchema = {
  paymentMode: z.string().nullable().describe("Not known to Ferry: null"),
  cardBankName: z.string().nullable().describe("Not known to Ferry: null"),
  cardCountryCode: z.string().nullable().describe("Not known to Ferry: null"),
  cardCountryName: z.string().nullable().describe("Not known to Ferry: null"),
};

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
    async (request, reply) => {
      const session = sessionOf(request);
      const made = await services.payin.createOffer(session, request.body);
      return sendExact(reply, await showOffer(services, session, made));
    },
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
        params: z.object({ offerId }),
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
    async (request, reply) => {
      const session = sessionOf(request);
      const changed = await services.payin.requoteOffer(session, request.params.offerId, {
        amount: request.body.amount,
        fromCurrency: request.body.fromCurrency,
        toCurrency: request.body.toCurrency,
      });
      return sendExact(reply, await showOffer(services, session, changed));
    },
  );
}

const payAnswer = z
  .object({
    offerId: z.number().int(),
    authLink: z.string().nullable(),
    transactionStatus: z.string(),
    transactionStatusCode: z.number().int().meta({ example: 0 }),
    originalTransactionStatus: z.string(),
    originalTransactionStatusCode: z.number().int(),
    maskedPan: z.string(),
    transactionAmount: money,
    transactionDate: z.string(),
    successUrl: z.string().nullable(),
    failUrl: z.string().nullable(),
    cancelUrl: z.null().describe("Ferry has no cancel return: null"),
    ...cardFactsSchema,
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
        params: z.object({ offerId }),
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
        offerId: await numberOf(services, session, "OFFER", offer.id),
        authLink: t.status === "AWAITING_PAYMENT" ? t.redirectUrl : null,
        transactionStatus: words.text,
        transactionStatusCode: statusCode(words.code, words.text),
        originalTransactionStatus: words.text,
        originalTransactionStatusCode: statusCode(words.code, words.text),
        maskedPan: masked(await services.payin.maskedPanOf(session, offer)),
        transactionAmount: formatAmount(t.amount, t.scale),
        transactionDate: t.createdAt.toISOString(),
        successUrl: returns?.successUrl ?? null,
        failUrl: returns?.failUrl ?? null,
        cancelUrl: null,
        ...cardFacts,
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
        querystring: z.object({ offerId }).strict(),
        response: {
          200: z.object({
            offerId: z.number().int(),
            status: z.enum(["PENDING", "SUCCESS", "FAILURE"]),
            amount: numberOut,
            currency: z.string(),
            cryptoAmount: numberOut,
            cryptoCurrency: z.string(),
            maskedPan: z.string(),
            transactionAmount: money.nullable().describe("What the card was charged (a string, as Vault's)"),
            transactionStatus: z.string(),
            transactionStatusCode: z.number().int(),
            originalTransactionStatus: z.string(),
            originalTransactionStatusCode: z.number().int(),
            transactionDate: z.string().nullable(),
            blockedAmount: z
              .object({ value: numberOut, currency: z.string() })
              .describe("Ferry holds no funds on this face: 0"),
            ...cardFactsSchema,
            chainTxHash: z.string().optional(),
            chainStatus: z.enum(["PENDING", "CONFIRMED"]).optional(),
          }),
          ...errorResponses(400, 401, 403, 404, 422),
        },
      },
    },
    async (request, reply) => {
      const session = sessionOf(request);
      const found = await services.payin.status(session, request.query.offerId);
      const { offer, transaction: t, chain } = found;
      const code = statusCode(found.words.code, found.words.text);
      return sendExact(reply, {
        offerId: await numberOf(services, session, "OFFER", offer.id),
        status: found.status,
        amount: decimal(formatAmount(offer.amount, found.fromScale)),
        currency: offer.fromCurrency,
        cryptoAmount: decimal(formatAmount(offer.toAmount, found.toScale)),
        cryptoCurrency: offer.toCurrency,
        maskedPan: masked(await services.payin.maskedPanOf(session, offer)),
        transactionAmount: t ? formatAmount(t.amount, t.scale) : null,
        transactionStatus: found.words.text,
        transactionStatusCode: code,
        originalTransactionStatus: found.words.text,
        originalTransactionStatusCode: code,
        transactionDate: t ? t.createdAt.toISOString() : null,
        blockedAmount: { value: decimal("0"), currency: offer.fromCurrency },
        ...cardFacts,
        ...(chain ? { chainTxHash: chain.hash, chainStatus: chain.state } : {}),
      });
    },
  );
}
