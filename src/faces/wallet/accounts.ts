import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorResponses } from "../../http/errors.ts";
import { guard, sessionOf, walletSecurity } from "../../http/wallet-session.ts";
import type { Services } from "../../services.ts";
import { pageQueryString, serialInput } from "./schemas.ts";
import { coinSchema, processSchema, showCoin, showProcess, type WalletApp } from "./views.ts";

/** Accounts (coins) and business processes. */
export const accountRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  coins(app, services);
  openCoin(app, services);
  validateCoin(app, services);
  processes(app, services);
};

function coins(app: WalletApp, services: Services) {
  const ops = services.walletOperations;
  app.get(
    "/coins",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags: ["wallet: accounts"],
        summary: "The caller's accounts",
        security: walletSecurity,
        response: { 200: z.object({ coins: z.array(coinSchema) }), ...errorResponses(401, 403) },
      },
    },
    async (request) => {
      const found = await ops.coins(sessionOf(request));
      return { coins: await Promise.all(found.map(({ coin, main }) => showCoin(ops, coin, main))) };
    },
  );
}

function openCoin(app: WalletApp, services: Services) {
  const ops = services.walletOperations;
  app.post(
    "/coins",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags: ["wallet: accounts"],
        summary: "Open an account in a currency (under its first active issuer, or the one named)",
        security: walletSecurity,
        body: z
          .object({
            name: z.string().trim().min(1).max(100),
            currencyCode: z.string().regex(/^[A-Z0-9]{2,12}$/),
            issuerId: z.uuid().optional(),
          })
          .strict()
          .meta({ example: { name: "Everyday", currencyCode: "EUR" } }),
        response: { 201: z.object({ coin: coinSchema }), ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const { coin, main } = await ops.openCoin(sessionOf(request), request.body.currencyCode, {
        name: request.body.name,
        issuerId: request.body.issuerId,
      });
      reply.code(201);
      return { coin: await showCoin(ops, coin, main) };
    },
  );
}

function validateCoin(app: WalletApp, services: Services) {
  app.post(
    "/coins/validate",
    {
      preValidation: guard(services, "processes.read"),
      schema: {
        tags: ["wallet: accounts"],
        summary: "Whose account a serial is, and in which currency (before sending to it)",
        security: walletSecurity,
        body: z.object({ serial: serialInput }).strict(),
        response: {
          200: z.object({
            currency: z.object({ code: z.string() }),
            owner: z.object({ id: z.string(), type: z.string(), name: z.string() }),
          }),
          ...errorResponses(400, 401, 403, 404),
        },
      },
    },
    async (request) => {
      const { currency, owner } = await services.walletOperations.ownerOf(
        sessionOf(request),
        request.body.serial,
      );
      return { currency: { code: currency }, owner };
    },
  );
}

function processes(app: WalletApp, services: Services) {
  const ops = services.walletOperations;
  app.get(
    "/business-processes",
    {
      preValidation: guard(services, "processes.read"),
      schema: {
        tags: ["wallet: processes"],
        summary:
          "Page through business processes (staff: all of the client's; users: their own), newest first",
        security: walletSecurity,
        querystring: pageQueryString.strict(),
        response: {
          200: z.object({
            pageNumber: z.number().int(),
            pageSize: z.number().int(),
            totalRecords: z.number().int(),
            totalPages: z.number().int(),
            records: z.array(processSchema),
          }),
          ...errorResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const { pageNumber, pageSize } = request.query;
      const { transactions: found, total } = await ops.list(sessionOf(request), {
        offset: pageNumber * pageSize,
        limit: pageSize,
      });
      return {
        pageNumber,
        pageSize,
        totalRecords: total,
        totalPages: Math.ceil(total / pageSize),
        records: await Promise.all(found.map((t) => showProcess(ops, t))),
      };
    },
  );
  app.get(
    "/business-processes/:processId",
    {
      preValidation: guard(services, "processes.read"),
      schema: {
        tags: ["wallet: processes"],
        summary: "One business process with its ledger legs",
        security: walletSecurity,
        params: z.object({ processId: z.string().regex(/^[A-Za-z0-9_-]{3,255}$/) }),
        response: { 200: z.object({ process: processSchema }), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => ({
      process: await showProcess(ops, await ops.byId(sessionOf(request), request.params.processId)),
    }),
  );
}
