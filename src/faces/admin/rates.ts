import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorResponses } from "../../http/errors.ts";
import { offsetOf, pageQuery } from "../../http/pagination.ts";
import { PLATFORM_ADMIN } from "../../lib/context.ts";
import { CLIENT_CHOSEN_ID } from "../../lib/ids.ts";
import { getClient } from "../../modules/clients/service.ts";
import { inForceSchema, rateVersionSchema, showInForce, showVersion } from "../../modules/rates/schemas.ts";
import type { Services } from "../../services.ts";

/** The platform admin sets and reads a client's currency's USD rate (the same versions staff set). */
export const adminRatesRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  const db = services.database.db;
  const params = z.object({
    clientId: z.string().regex(CLIENT_CHOSEN_ID).describe("The client's id"),
    code: z
      .string()
      .regex(/^[A-Z0-9]{2,12}$/, "a currency code")
      .describe("The client's currency"),
  });

  app.post(
    "/clients/:clientId/currencies/:code/rates",
    {
      schema: {
        tags: ["admin"],
        summary: "Set a client's currency's USD rate: a new version, audited with the admin as actor",
        description:
          "For a currency the rates provider does not price (a client's own points or e-money). 400 for a bad rate or date, 404 for an unknown client or currency, 409 for a currency the provider prices.",
        security: [{ adminBasic: [] }],
        params,
        body: z
          .object({
            rate: z.union([z.string().max(40), z.number()]).meta({
              description: "USD per unit: > 0, up to 15 digits and 12 decimals, a decimal string",
              example: "0.01",
            }),
            effectiveFrom: z.iso
              .datetime({ offset: true })
              .optional()
              .meta({ description: "When it applies (default: now); up to a year ahead, never in the past" }),
          })
          .strict()
          .meta({ example: { rate: "0.01" } }),
        response: { 201: rateVersionSchema, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const { clientId, code } = request.params;
      await getClient(db, clientId);
      const { recorded } = await services.currencyRates.set(
        { clientId, actor: PLATFORM_ADMIN },
        { currency: code, rate: request.body.rate, effectiveFrom: request.body.effectiveFrom },
      );
      reply.code(201);
      return showVersion(recorded);
    },
  );

  app.get(
    "/clients/:clientId/currencies/:code/rates",
    {
      schema: {
        tags: ["admin"],
        summary: "A client's currency's USD rates: the one in force and every version, newest first",
        security: [{ adminBasic: [] }],
        params,
        querystring: pageQuery.strict(),
        response: {
          200: z.object({
            currency: z.string(),
            current: inForceSchema,
            records: z.array(rateVersionSchema),
            pageNumber: z.number().int(),
            pageSize: z.number().int(),
            totalRecords: z.number().int(),
            totalPages: z.number().int(),
          }),
          ...errorResponses(400, 401, 404),
        },
      },
    },
    async (request) => {
      const { clientId, code } = request.params;
      await getClient(db, clientId);
      const { inForce, versions, total } = await services.currencyRates.history(
        clientId,
        code,
        offsetOf(request.query),
      );
      return {
        currency: code,
        current: showInForce(inForce),
        records: versions.map(showVersion),
        pageNumber: request.query.page,
        pageSize: request.query.size,
        totalRecords: total,
        totalPages: Math.ceil(total / request.query.size),
      };
    },
  );
};
