import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiError, errorResponses } from "../../http/errors.ts";
import { DomainError } from "../../lib/errors.ts";
import { formatAmount, parseAmount } from "../../lib/money.ts";
import type { Session } from "../../modules/logins/service.ts";
import {
  CRYPTOS,
  FIATS,
  fiatPerCrypto,
  OFFER_SECONDS,
  type Offer,
  Offers,
  payinSettings,
  price,
} from "../../modules/payin/offers.ts";
import { convert } from "../../modules/transactions/quote.ts";
import { type Transaction, TransactionError } from "../../modules/transactions/service.ts";
import type { Services } from "../../services.ts";
import { guard, sessionOf, walletSecurity } from "../wallet/access-control.ts";

const tags = ["payin"];
const money = z.string().meta({ example: "100.00" });
const amountInput = z.union([z.string().max(60), z.number()]).meta({ example: "100.00" });
const fiat = z.enum(FIATS);
const crypto = z.enum(CRYPTOS);
const addressText = z.string().trim().min(1).max(120);
const text = (max: number, pattern: RegExp, what: string) =>
  z.string().trim().min(1).max(max).regex(pattern, what);

const billingAddress = z
  .object({
    address: text(200, /^[\p{L}0-9\- /.,#']+$/u, "letters, digits and - / . , # '"),
    city: text(100, /^[\p{L}0-9\- /.,']+$/u, "letters, digits and - / . , '"),
    countryCode: z.string().regex(/^[A-Z]{2}$/, "an ISO 3166 alpha-2 country code"),
    zip: text(20, /^[A-Za-z0-9 -]+$/, "letters, digits, spaces and -"),
    state: text(100, /^[\p{L}0-9\- .']+$/u, "letters, digits and - . '").optional(),
  })
  .strict()
  .meta({ example: { address: "12 Rue de Rivoli", city: "Paris", countryCode: "FR", zip: "75001" } });

/** The core's names of a card's fields, as this face's body names them. */
const CARD_FIELDS: Record<string, string> = {
  expirationYear: "cardExpirationYear",
  expirationMonth: "cardExpirationMonth",
  paymentInformation: "cardNumber",
  sourceMethod: "cardNumber",
};

/** A payment-method error with the field named as in this face's request. */
function inThisFace(error: unknown): unknown {
  if (!(error instanceof DomainError) || !error.field || !CARD_FIELDS[error.field]) return error;
  const field = CARD_FIELDS[error.field] as string;
  return new DomainError(
    error.kind,
    error.code,
    error.message.replace(error.field, field),
    field,
    error.details,
  );
}

/** Where the browser goes back after 3-D Secure: a web address only (never `javascript:` or the like). */
const returnUrl = z
  .url()
  .max(2000)
  .refine((u) => /^https?:\/\//i.test(u), "an http or https address");

const KYC_0 = 1;
const KYC_1 = 2;

/** Cards, rates and limits, offers, payment and its status (`/v3/payin`). */
export const payinRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  const offers = new Offers(services.database.db);
  const { paymentMethods, transactions } = services;

  /** The customer's KYC level must reach `tier` (KYC_0 = 1, KYC_1 = 2): a 422 naming it otherwise. */
  async function requireLevel(session: Session, tier: number) {
    const user = await services.users.get(services.database.db, session.clientId, session.userId);
    if (user.tier < tier)
      throw new ApiError(
        "MIN_ASSESSMENT_MISSING",
        `this needs ${tier >= KYC_1 ? "KYC_1" : "KYC_0"} (the user is at tier ${user.tier})`,
        {
          assessment: { requiredTier: tier, currentTier: user.tier },
        },
      );
    return user;
  }

  async function card(session: Session, cardId: string) {
    const cards = await paymentMethods.list(session.clientId, session.userId);
    const found = cards.find((c) => c.id === cardId && c.type === "CREDIT_CARD");
    if (!found)
      throw new ApiError("NOT_FOUND", `no card ${cardId}`, {
        errors: [{ field: "cardId", message: "no such card" }],
      });
    return found;
  }

  const masked = (c: { bin: string | null; last4: string | null }) =>
    `${c.bin ?? "******"}******${c.last4 ?? "****"}`;

  // ——— cards ———

  const cardAnswer = z
    .object({
      cardId: z.string(),
      cardType: z.string().nullable(),
      maskedPan: z.string(),
      validationStatus: z.string(),
    })
    .meta({ id: "PayinCard" });

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
            cardNumber: z.string().regex(/^[0-9 ]{12,23}$/, "12–19 digits"),
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
      const session = sessionOf(request);
      const body = request.body;
      await requireLevel(session, KYC_0);
      const { method } = await paymentMethods
        .add(session.clientId, session.userId, {
          type: "CREDIT_CARD",
          cardNumber: body.cardNumber.replaceAll(" ", ""),
          expirationMonth: body.cardExpirationMonth,
          expirationYear: body.cardExpirationYear,
          cardHolder: body.cardHolder,
          billingAddress: body.billingAddress,
        })
        .catch((error: unknown) => {
          throw inThisFace(error);
        });
      return {
        cardId: method.id,
        cardType: method.brand,
        maskedPan: masked(method),
        validationStatus: "VALIDATED",
      };
    },
  );

  app.post(
    "/card/:cardId/billing-address",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags,
        summary: "Change a card's billing address",
        security: walletSecurity,
        params: z.object({ cardId: z.string().regex(/^pm_[0-9a-f-]{36}$/, "a card id") }),
        body: billingAddress,
        response: { 200: cardAnswer, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const session = sessionOf(request);
      await requireLevel(session, KYC_0);
      await card(session, request.params.cardId);
      const method = await paymentMethods.updateDetails(
        session.clientId,
        session.userId,
        request.params.cardId,
        {
          billingAddress: request.body,
        },
      );
      return {
        cardId: method.id,
        cardType: method.brand,
        maskedPan: masked(method),
        validationStatus: "VALIDATED",
      };
    },
  );

  // ——— data: cards, pairs, fees, limits ———

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
      const session = sessionOf(request);
      await requireLevel(session, KYC_0);
      const settings = await payinSettings(services.database.db, session.clientId);
      const cards = (await paymentMethods.list(session.clientId, session.userId)).filter(
        (c) => c.type === "CREDIT_CARD",
      );
      const primary = await services.logins.primaryCurrency(session.clientId, session.userId);
      const feeCurrency = (FIATS as readonly string[]).includes(primary ?? "") ? (primary as string) : "EUR";
      const pairs = [];
      for (const from of FIATS)
        for (const to of CRYPTOS) {
          const [fromPrice, toPrice] = await Promise.all([
            services.rates.usdPrice(from),
            services.rates.usdPrice(to),
          ]);
          if (!fromPrice || !toPrice) continue;
          pairs.push({
            currencyFrom: from,
            currencyTo: to,
            rate: fiatPerCrypto(fromPrice, toPrice),
            amountScaleFrom: await transactions.quotes.scaleOf(session.clientId, from),
            amountScaleTo: await transactions.quotes.scaleOf(session.clientId, to),
          });
        }
      return {
        cards: cards.map((c) => ({
          cardId: c.id,
          cardType: c.brand,
          maskedPan: masked(c),
          validationStatus: "VALIDATED",
          minAmountFrom: settings.minAmountFrom,
          maxAmountFrom: settings.maxAmountFrom,
          billingAddressRequired: false,
        })),
        pairs,
        // The fee's fixed part is in the fiat paid with: shown in the customer's primary currency when it is one.
        fees: { currency: feeCurrency, rate: settings.feePercent, transactionFee: settings.feeFixed },
        limits: { minAmountFrom: settings.minAmountFrom, maxAmountFrom: settings.maxAmountFrom },
        validTo: new Date(Date.now() + 30_000).toISOString(),
        validSeconds: 30,
      };
    },
  );

  // ——— offers ———

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

  const offerBody = z
    .object({
      cardId: z.string().regex(/^pm_[0-9a-f-]{36}$/, "a card id"),
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
    .strict();

  async function showOffer(offer: Offer) {
    const quotes = transactions.quotes;
    const fromScale = await quotes.scaleOf(offer.clientId, offer.fromCurrency);
    const toScale = await quotes.scaleOf(offer.clientId, offer.toCurrency);
    const settings = await payinSettings(services.database.db, offer.clientId);
    const [fromPrice, toPrice] = offer.rate.split("/") as [string, string];
    const rate = fiatPerCrypto(fromPrice, toPrice);
    const cryptoOf = (fiatMajor: string) =>
      formatAmount(
        convert(parseAmount(fiatMajor, fromScale), fromScale, fromPrice, toScale, toPrice),
        toScale,
      );
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
        minCrypto: cryptoOf(settings.minAmountFrom),
        maxCrypto: cryptoOf(settings.maxAmountFrom),
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
      status:
        offer.status === "OPEN" && offer.expiresAt.getTime() <= Date.now()
          ? ("EXPIRED" as const)
          : offer.status,
    };
  }

  /** The quote stage for an offer: price, the KYC gate (KYC_0) and monitoring. */
  async function quote(
    session: Session,
    body: { fromCurrency: string; toCurrency: string; amount: string | number },
  ) {
    await requireLevel(session, KYC_0);
    const priced = await price(
      { db: services.database.db, quotes: transactions.quotes, rates: services.rates },
      session.clientId,
      body,
    );
    const monitoring = await transactions.quotes.monitor(
      {
        clientId: session.clientId,
        userId: session.userId,
        type: "DEPOSIT",
        amount: body.amount,
        currency: body.fromCurrency,
      },
      priced.usdValue,
    );
    return { priced, monitoring };
  }

  /** The address the crypto goes to: the one given (checked for the currency), or the user's own. */
  async function addressFor(session: Session, currency: string, given: string | undefined) {
    if (given !== undefined) {
      if (!services.chain.validAddress(currency, given))
        throw ApiError.invalid("walletAddress", `not a ${currency} address`);
      return given;
    }
    const info = await services.users.info(services.database.db, session.clientId, session.userId);
    const own = info.tokenAddresses?.find((a) => a.currency === currency)?.address;
    return own && services.chain.validAddress(currency, own) ? own : null;
  }

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
        body: offerBody.meta({
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
    async (request) => {
      const session = sessionOf(request);
      const body = request.body;
      // The level first (a 422 says what is missing), then the card and the address.
      await requireLevel(session, KYC_0);
      await card(session, body.cardId);
      const address = await addressFor(session, body.toCurrency, body.walletAddress);
      const { priced, monitoring } = await quote(session, body);
      const offer = await offers.create({
        clientId: session.clientId,
        userId: session.userId,
        cardId: body.cardId,
        fromCurrency: body.fromCurrency,
        toCurrency: body.toCurrency,
        amount: priced.amount,
        fee: priced.fee,
        rate: priced.rate,
        toAmount: priced.toAmount,
        usdValue: priced.usdValue,
        monitoring,
        address,
        successUrl: body.successUrl ?? null,
        failUrl: body.failUrl ?? null,
      });
      return showOffer(offer);
    },
  );

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
            fromCurrency: fiat,
            toCurrency: crypto,
            operation: z.literal("PAYIN"),
          })
          .strict(),
        response: { 200: offerAnswer, ...errorResponses(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request) => {
      const session = sessionOf(request);
      const current = await offers.get(session.clientId, session.userId, request.params.offerId);
      if (current.status !== "OPEN" || current.expiresAt.getTime() <= Date.now())
        throw new ApiError(
          "CONFLICT",
          current.status === "PAID" ? "this offer is paid already" : "this offer has expired: make a new one",
        );
      const { priced, monitoring } = await quote(session, request.body);
      const offer = await offers.requote(session.clientId, session.userId, request.params.offerId, {
        fromCurrency: request.body.fromCurrency,
        toCurrency: request.body.toCurrency,
        amount: priced.amount,
        fee: priced.fee,
        rate: priced.rate,
        toAmount: priced.toAmount,
        usdValue: priced.usdValue,
        monitoring,
      });
      return showOffer(offer);
    },
  );

  // ——— pay ———

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

  /** The acquirer's words for where a purchase stands. */
  function statusText(t: Transaction): { text: string; code: string } {
    if (t.status === "AWAITING_PAYMENT" || t.status === "PENDING")
      return { text: "Pending", code: "PENDING" };
    // Held by monitoring for a person's review: the card is not charged until then.
    if (t.status === "MANUAL_REVIEW") return { text: "Pending review", code: "PENDING" };
    if (t.status === "CAPTURED" || t.status === "SETTLED") return { text: "Approved", code: "00" };
    if (t.statusDetail)
      return {
        text: t.statusDetail.message ?? t.statusDetail.responseCategory,
        code: t.statusDetail.responseCode,
      };
    return { text: t.status === "REFUSED" ? "Refused" : "Error", code: t.status };
  }

  async function maskedPanOf(session: Session, offer: Offer) {
    return masked(await card(session, offer.cardId).catch(() => ({ bin: null, last4: null })));
  }

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
      await requireLevel(session, KYC_1);
      const { offer, first } = await offers.claim(session.clientId, session.userId, request.params.offerId);
      const requestId = offer.requestId ?? "";
      let t = await transactions.get(session.clientId, requestId).catch(() => undefined);
      if (!t) {
        try {
          t = await transactions.deposit(
            {
              clientId: session.clientId,
              userId: session.userId,
              requestId,
              amount: formatAmount(
                offer.amount,
                await transactions.quotes.scaleOf(session.clientId, offer.fromCurrency),
              ),
              currency: offer.fromCurrency,
              fee: offer.fee,
              sourceMethod: {
                paymentMethodType: "CREDIT_CARD",
                paymentInformationId: offer.cardId,
                cvv: request.body.cardCVV,
              },
              purchase: {
                currency: offer.toCurrency,
                amount: offer.toAmount,
                rate: offer.rate,
                address: offer.address ?? undefined,
              },
              process: {
                operation: "PAYIN",
                offerId: offer.id,
                successUrl: request.body.successUrl ?? offer.successUrl ?? undefined,
                failUrl: request.body.failUrl ?? offer.failUrl ?? undefined,
              },
            },
            { kind: "user", id: session.userId, roles: [session.role] },
          );
        } catch (error) {
          if (error instanceof TransactionError && error.code === "REQUEST_ID_USED") {
            t = await transactions.get(session.clientId, requestId);
          } else {
            // Refused before anything was recorded (no charge): the offer can be paid again.
            if (first && !(await transactions.get(session.clientId, requestId).catch(() => undefined)))
              await offers.release(session.clientId, offer.id);
            throw error;
          }
        }
      }
      const { text: statusTextValue, code } = statusText(t);
      const returns = t.process as { successUrl?: string; failUrl?: string } | null;
      return {
        offerId: offer.id,
        authLink: t.status === "AWAITING_PAYMENT" ? t.redirectUrl : null,
        transactionStatus: statusTextValue,
        transactionStatusCode: code,
        maskedPan: await maskedPanOf(session, offer),
        transactionAmount: formatAmount(t.amount, t.scale),
        transactionDate: t.createdAt.toISOString(),
        successUrl: returns?.successUrl ?? null,
        failUrl: returns?.failUrl ?? null,
      };
    },
  );

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
      await requireLevel(session, KYC_1);
      const offer = await offers.get(session.clientId, session.userId, request.query.offerId);
      const fromScale = await transactions.quotes.scaleOf(session.clientId, offer.fromCurrency);
      const toScale = await transactions.quotes.scaleOf(session.clientId, offer.toCurrency);
      const t = offer.requestId
        ? await transactions.get(session.clientId, offer.requestId).catch(() => undefined)
        : undefined;
      const status: "PENDING" | "SUCCESS" | "FAILURE" = !t
        ? offer.status === "OPEN" && offer.expiresAt.getTime() > Date.now()
          ? "PENDING"
          : offer.status === "PAID"
            ? "PENDING"
            : "FAILURE"
        : t.status === "CAPTURED" || t.status === "SETTLED"
          ? "SUCCESS"
          : t.status === "PENDING" || t.status === "AWAITING_PAYMENT" || t.status === "MANUAL_REVIEW"
            ? "PENDING"
            : "FAILURE";
      const words = t
        ? statusText(t)
        : {
            text: status === "FAILURE" ? "Expired" : "Pending",
            code: status === "FAILURE" ? "EXPIRED" : "PENDING",
          };
      const hash = t?.chainTxHash ?? undefined;
      return {
        offerId: offer.id,
        status,
        amount: formatAmount(offer.amount, fromScale),
        currency: offer.fromCurrency,
        cryptoAmount: formatAmount(offer.toAmount, toScale),
        cryptoCurrency: offer.toCurrency,
        maskedPan: await maskedPanOf(session, offer),
        transactionStatus: words.text,
        transactionStatusCode: words.code,
        transactionDate: t ? t.createdAt.toISOString() : null,
        ...(hash ? { chainTxHash: hash, chainStatus: (await services.chain.status(hash)).state } : {}),
      };
    },
  );
};
