import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorResponses } from "../../http/errors.ts";
import { contextOf, guard, sessionOf, walletSecurity } from "../../http/wallet-session.ts";
import {
  type Bank,
  type CurrencyDetails,
  createBank,
  createCurrency,
  createIssuer,
  findCurrencyDetails,
  type Issuer,
  listBanks,
  listCurrencies,
  listIssuers,
} from "../../modules/catalog/service.ts";
import {
  commissionProfileInputSchema,
  commissionProfileViewSchema,
  OPERATIONS,
  showProfile,
} from "../../modules/commissions/service.ts";
import type { Services } from "../../services.ts";
import { pageAnswer, pageQueryString, toPageAnswer } from "./schemas.ts";
import type { WalletApp } from "./views.ts";

const currencySchema = z
  .object({
    id: z.string(),
    code: z.string(),
    digitalCode: z.string().nullable(),
    symbol: z.string().nullable(),
    name: z.string().nullable(),
    description: z.string().nullable(),
    fraction: z.number().int(),
    usdRate: z.string().nullable().meta({
      description:
        "USD per unit, in force now: the rates provider's price, or the rate the client's staff set; null: none yet (money does not move in it until one is set)",
      example: "0.01",
    }),
  })
  .meta({ id: "WalletCurrency" });

const showCurrency = (c: CurrencyDetails) => ({ ...c, usdRate: c.usdRate ?? null });

const issuerSchema = z
  .object({
    id: z.string(),
    sn: z.string(),
    name: z.string(),
    description: z.string().nullable(),
    snPrefix: z.string(),
    active: z.boolean(),
    currency: currencySchema.pick({ id: true, code: true, symbol: true, fraction: true }),
    createdAt: z.string(),
  })
  .meta({ id: "WalletIssuer" });

async function showIssuer(services: Services, clientId: string, issuer: Issuer) {
  const currency = await findCurrencyDetails(services.database.db, clientId, issuer.currency);
  return {
    id: issuer.id,
    sn: issuer.sn,
    name: issuer.name,
    description: issuer.description,
    snPrefix: issuer.snPrefix,
    active: issuer.active,
    currency: {
      id: currency?.id ?? "",
      code: issuer.currency,
      symbol: currency?.symbol ?? null,
      fraction: currency?.fraction ?? 0,
    },
    createdAt: issuer.createdAt.toISOString(),
  };
}

const bankSchema = z
  .object({
    bankId: z.string(),
    name: z.string(),
    bic: z.string(),
    swift: z.string(),
    address: z.string().nullable(),
    city: z.string().nullable(),
    zipCode: z.string().nullable(),
  })
  .meta({ id: "WalletBank" });

const showBank = (b: Bank) => ({
  bankId: b.id,
  name: b.name,
  bic: b.bic,
  swift: b.swift,
  address: b.address,
  city: b.city,
  zipCode: b.zipCode,
});

const BIC = /^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$/;
const text = (max: number) => z.string().trim().min(1).max(max);

/** Currencies, issuers, the bank catalog and commission profiles: administrators set them up. */
const tags = ["wallet: set-up"];

export const setupRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  currencies(app, services);
  issuerCreation(app, services);
  issuerList(app, services);
  bankCatalog(app, services);
  createCommissionProfile(app, services);
  listCommissionProfiles(app, services);
};

function currencies(app: WalletApp, services: Services) {
  const db = services.database.db;
  app.post(
    "/currencies",
    {
      preValidation: guard(services, "setup.write"),
      schema: {
        tags,
        summary: "Add a currency (its scale from `fraction`)",
        security: walletSecurity,
        body: z
          .object({
            code: z.string().regex(/^[A-Z0-9]{2,12}$/, "2–12 of A–Z 0–9"),
            digitalCode: z
              .string()
              .regex(/^[0-9]{1,4}$/, "the ISO 4217 number")
              .optional(),
            symbol: text(8).optional(),
            name: text(100),
            description: text(500).optional(),
            fraction: z.number().int().min(0).max(18),
            usdRate: z
              .union([z.string().max(40), z.number()])
              .optional()
              .meta({
                description:
                  "Ferry's own field: the currency's first USD rate (USD per unit, > 0, up to 15 digits and 12 decimals). Without it, a currency the rates provider does not price has no value until staff set one (POST /api/v1/exchange-rates/rate), and money does not move in it until then",
                example: "0.01",
              }),
          })
          .strict()
          .meta({
            example: {
              code: "EUR",
              digitalCode: "978",
              symbol: "\u20ac",
              name: "Euro",
              description: "The euro",
              fraction: 2,
            },
          }),
        response: { 201: currencySchema, ...errorResponses(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      reply.code(201);
      return showCurrency(await createCurrency(db, contextOf(request), request.body, services.currencyRates));
    },
  );

  app.get(
    "/currencies",
    {
      preValidation: guard(services, "setup.read"),
      schema: {
        tags,
        summary: "The client's currencies",
        security: walletSecurity,
        response: { 200: z.object({ records: z.array(currencySchema) }), ...errorResponses(401, 403) },
      },
    },
    async (request) => ({
      records: (await listCurrencies(db, sessionOf(request).clientId, services.currencyRates)).map(
        showCurrency,
      ),
    }),
  );
}

function issuerCreation(app: WalletApp, services: Services) {
  const db = services.database.db;
  app.post(
    "/issuers",
    {
      preValidation: guard(services, "setup.write"),
      schema: {
        tags,
        summary: "Add an issuer of a currency (its prefix starts the serials of accounts opened under it)",
        security: walletSecurity,
        body: z
          .object({
            currencyCode: z.string().regex(/^[A-Z0-9]{2,12}$/),
            name: text(100),
            description: text(500).optional(),
            snPrefix: z
              .string()
              .regex(/^[0-9]{0,8}$/, "up to 8 digits")
              .optional(),
          })
          .strict()
          .meta({
            example: {
              currencyCode: "EUR",
              name: "Acme e-money",
              description: "Issues the wallet's euros",
              snPrefix: "44",
            },
          }),
        response: { 201: issuerSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const context = contextOf(request);
      const issuer = await createIssuer(db, context, request.body);
      reply.code(201);
      return showIssuer(services, context.clientId, issuer);
    },
  );
}

function issuerList(app: WalletApp, services: Services) {
  const db = services.database.db;
  app.get(
    "/issuers",
    {
      preValidation: guard(services, "setup.read"),
      schema: {
        tags,
        summary: "The client's issuers",
        security: walletSecurity,
        querystring: z
          .object({
            currencyCode: z
              .string()
              .regex(/^[A-Z0-9]{2,12}$/)
              .optional(),
          })
          .strict(),
        response: { 200: z.object({ records: z.array(issuerSchema) }), ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const { clientId } = sessionOf(request);
      const issuers = await listIssuers(db, clientId, request.query.currencyCode);
      return { records: await Promise.all(issuers.map((i) => showIssuer(services, clientId, i))) };
    },
  );
}

function bankCatalog(app: WalletApp, services: Services) {
  const db = services.database.db;
  app.post(
    "/bank-catalog",
    {
      preValidation: guard(services, "setup.write"),
      schema: {
        tags,
        summary: "Add a bank to the catalog (BIC and SWIFT unique)",
        security: walletSecurity,
        body: z
          .object({
            name: text(200),
            bic: z.string().regex(BIC, "a BIC: 8 or 11 of A–Z 0–9"),
            swift: z.string().regex(BIC, "a SWIFT code: 8 or 11 of A–Z 0–9"),
            address: text(300).optional(),
            city: text(100).optional(),
            zipCode: text(20).optional(),
          })
          .strict()
          .meta({
            example: {
              name: "Commerzbank",
              bic: "COBADEFF",
              swift: "COBADEFFXXX",
              address: "Kaiserplatz",
              city: "Frankfurt am Main",
              zipCode: "60311",
            },
          }),
        response: { 201: bankSchema, ...errorResponses(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      reply.code(201);
      return showBank(await createBank(db, contextOf(request), request.body));
    },
  );

  app.get(
    "/bank-catalog",
    {
      preValidation: guard(services, "setup.read"),
      schema: {
        tags,
        summary: "The bank catalog",
        security: walletSecurity,
        querystring: pageQueryString.strict(),
        response: { 200: pageAnswer(bankSchema), ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const { pageNumber, pageSize } = request.query;
      const { banks, total } = await listBanks(db, sessionOf(request).clientId, {
        offset: pageNumber * pageSize,
        limit: pageSize,
      });
      return toPageAnswer(banks.map(showBank), total, request.query);
    },
  );
}

function createCommissionProfile(app: WalletApp, services: Services) {
  app.post(
    "/commission-profiles",
    {
      preValidation: guard(services, "setup.write"),
      schema: {
        tags,
        summary: "Add a commission profile for an operation and currency",
        description:
          "IN: the fee comes out of what the recipient gets; OUT: the sender pays amount + fee; SHARED: each pays half, the odd minor unit to the sender. The newest profile whose dates hold now applies, with its rule whose amount range holds the amount; none → no fee.",
        security: walletSecurity,
        body: commissionProfileInputSchema.meta({
          example: {
            operation: "TRANSFER",
            currency: "EUR",
            feeDirection: "SHARED",
            rules: [
              { beginAmount: "0", endAmount: "99.99", type: "fixed", valueFixed: "0.25" },
              {
                beginAmount: "100",
                type: "greater_of_fixed_or_percent",
                valueFixed: "1.00",
                valuePercent: "0.5",
              },
            ],
            beginDate: "2026-01-01T00:00:00Z",
          },
        }),
        response: { 201: commissionProfileViewSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const context = contextOf(request);
      const profile = await services.commissions.create(
        context.clientId,
        request.body,
        context.actor,
        context.requestId,
      );
      reply.code(201);
      return showProfile(profile);
    },
  );
}

function listCommissionProfiles(app: WalletApp, services: Services) {
  app.get(
    "/commission-profiles",
    {
      preValidation: guard(services, "setup.read"),
      schema: {
        tags,
        summary: "The client's commission profiles",
        security: walletSecurity,
        querystring: z
          .object({
            operation: z.enum(OPERATIONS).optional(),
            currency: z
              .string()
              .regex(/^[A-Z0-9]{2,12}$/)
              .optional(),
          })
          .extend(pageQueryString.shape)
          .strict(),
        response: { 200: pageAnswer(commissionProfileViewSchema), ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const { pageNumber, pageSize, operation, currency } = request.query;
      const { profiles, total } = await services.commissions.list(sessionOf(request).clientId, {
        offset: pageNumber * pageSize,
        limit: pageSize,
        operation,
        currency,
      });
      return toPageAnswer(
        profiles.map((p) => showProfile(p)),
        total,
        request.query,
      );
    },
  );
}
