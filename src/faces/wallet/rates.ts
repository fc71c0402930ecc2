import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorResponses } from "../../http/errors.ts";
import { contextOf, guard, sessionOf, walletSecurity } from "../../http/wallet-session.ts";
import { type RatePair, ratePairs, setRatePair } from "../../modules/catalog/exchange-rates.ts";
import { inForceSchema, rateVersionSchema, showInForce, showVersion } from "../../modules/rates/schemas.ts";
import type { Services } from "../../services.ts";
import { pageQueryString, toPageAnswer } from "./schemas.ts";

/**
 * Currency rates: SDK.finance's exchange-rates paths (`/exchange-rates/view`, `/exchange-rates/rate`)
 * over Ferry's one USD rate per currency, and Ferry's own history of a currency's rates.
 */

const currencyRef = z
  .string()
  .min(2)
  .max(64)
  .meta({ description: "A currency's id, or its code", example: "PTS" });

const currencyShort = z.object({
  id: z.string().nullable(),
  sn: z.string(),
  code: z.string(),
  symbol: z.string().nullable(),
});

const pairSchema = z
  .object({
    id: z.string().nullable().meta({ description: "The pair's id: its in-currency's id" }),
    inCurrency: currencyShort,
    outCurrency: currencyShort,
    rate: z.string().nullable().meta({
      description: "USD per unit of the in-currency, a decimal string; null: none set yet",
      example: "0.01",
    }),
    direction: z.literal("sell"),
    active: z.boolean().meta({ description: "Whether the currency has a rate in force" }),
    source: z.enum(["PROVIDER", "CLIENT"]).nullable().meta({
      description:
        "PROVIDER: the rates provider's price (cannot be set); CLIENT: set by staff or the platform admin",
    }),
    version: z.number().int().nullable().meta({ description: "The client's rate version in force" }),
    effectiveFrom: z.string().nullable(),
  })
  .meta({ id: "WalletExchangeRate" });

const short = (c: RatePair["inCurrency"]) => ({ id: c.id, sn: c.code, code: c.code, symbol: c.symbol });

const showPair = (p: RatePair) => ({
  id: p.id,
  inCurrency: short(p.inCurrency),
  outCurrency: short(p.outCurrency),
  rate: p.rate,
  direction: "sell" as const,
  active: p.rate !== null,
  source: p.inForce?.source ?? null,
  version: p.inForce?.version ?? null,
  effectiveFrom: p.inForce?.effectiveFrom?.toISOString() ?? null,
});

const rateInput = z.union([z.string().max(40), z.number()]).meta({
  description:
    "USD per unit of the in-currency: > 0, up to 15 digits and 12 decimals (a JSON number is taken by its exact text)",
  example: "0.01",
});

export const ratesRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  const db = services.database.db;
  const tags = ["wallet: set-up"];

  app.post(
    "/exchange-rates/view",
    {
      preValidation: guard(services, "setup.read"),
      schema: {
        tags,
        summary: "Currency rates (SDK.finance's path): each currency's USD rate",
        description:
          "Ferry keeps one USD rate per currency, so every pair is `<currency> → USD`. Without a filter: every currency of the client. A currency of another client is unknown (404).",
        security: walletSecurity,
        body: z
          .object({
            inCurrencyId: currencyRef.optional(),
            outCurrencyId: currencyRef.optional().meta({ description: "USD (its id or the code)" }),
            ratePairs: z
              .array(z.object({ inCurrencyId: currencyRef, outCurrencyId: currencyRef }).strict())
              .max(100)
              .optional(),
          })
          .strict()
          .meta({ example: { ratePairs: [{ inCurrencyId: "PTS", outCurrencyId: "USD" }] } }),
        response: { 200: z.object({ records: z.array(pairSchema) }), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => ({
      records: (await ratePairs(db, services.currencyRates, sessionOf(request).clientId, request.body)).map(
        showPair,
      ),
    }),
  );

  app.post(
    "/exchange-rates/rate",
    {
      preValidation: guard(services, "rates.write"),
      schema: {
        tags,
        summary: "Set a currency's USD rate (SDK.finance's path): a new version, audited",
        description:
          "The pair's out-currency must be USD. Currencies the rates provider prices keep its price (409). `direction` is accepted and ignored (one rate, no spread); `active: false` is refused (a rate cannot be switched off). `effectiveFrom` (Ferry's own) schedules the rate up to a year ahead.",
        security: walletSecurity,
        body: z
          .object({
            rate: rateInput,
            inCurrencyId: currencyRef,
            outCurrencyId: currencyRef.meta({ description: "USD (its id or the code)", example: "USD" }),
            direction: z.string().max(16).optional().meta({ description: "Accepted and ignored" }),
            active: z.boolean().optional(),
            effectiveFrom: z.iso.datetime({ offset: true }).optional().meta({
              description: "When the rate applies (default: now); never in the past",
              example: "2026-01-01T00:00:00Z",
            }),
          })
          .strict()
          .meta({
            example: {
              rate: "0.01",
              inCurrencyId: "PTS",
              outCurrencyId: "USD",
              direction: "sell",
              active: true,
            },
          }),
        response: {
          200: pairSchema.extend({ recorded: rateVersionSchema }),
          ...errorResponses(400, 401, 403, 404, 409),
        },
      },
    },
    async (request) => {
      const { pair, recorded } = await setRatePair(
        db,
        services.currencyRates,
        contextOf(request),
        request.body,
      );
      return { ...showPair(pair), recorded: showVersion(recorded) };
    },
  );

  app.get(
    "/currencies/:code/rates",
    {
      preValidation: guard(services, "rates.read"),
      schema: {
        tags,
        summary: "A currency's USD rates: the one in force and every version, newest first (Ferry's own)",
        security: walletSecurity,
        params: z.object({ code: z.string().regex(/^[A-Z0-9]{2,12}$/, "a currency code") }),
        querystring: pageQueryString.strict(),
        response: {
          200: z.object({
            currency: z.string(),
            current: inForceSchema,
            pageNumber: z.number().int(),
            pageSize: z.number().int(),
            totalRecords: z.number().int(),
            totalPages: z.number().int(),
            records: z.array(rateVersionSchema),
          }),
          ...errorResponses(400, 401, 403, 404),
        },
      },
    },
    async (request) => {
      const { pageNumber, pageSize } = request.query;
      const { inForce, versions, total } = await services.currencyRates.history(
        sessionOf(request).clientId,
        request.params.code,
        { offset: pageNumber * pageSize, limit: pageSize },
      );
      return {
        currency: request.params.code,
        current: showInForce(inForce),
        ...toPageAnswer(versions.map(showVersion), total, { pageNumber, pageSize }),
      };
    },
  );
};
