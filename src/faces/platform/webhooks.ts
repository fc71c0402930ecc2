import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorResponses } from "../../http/errors.ts";
import { offsetOf, pageOf, pageQuery, toPage } from "../../http/pagination.ts";
import { clientOf } from "../../http/platform-auth.ts";
import { listDeliveries, redeliver, sendTestEvent } from "../../modules/webhooks/service.ts";
import { type PlatformRouteOptions, signedSecurity } from "./schemas.ts";

const deliverySchema = z
  .object({
    id: z.string(),
    eventId: z.string(),
    eventType: z.string(),
    status: z.enum(["PENDING", "SUCCEEDED", "FAILED"]),
    attempts: z.array(
      z.object({
        attempt: z.number().int(),
        startedAt: z.string(),
        durationMs: z.number().int(),
        statusCode: z.number().int().nullable(),
        error: z.string().nullable(),
      }),
    ),
    nextAttemptAt: z.string().nullable(),
    createdAt: z.string(),
    deliveredAt: z.string().nullable(),
  })
  .meta({ id: "WebhookDelivery" });

/** The client's view of its webhook deliveries. */
export const webhookRoutes: FastifyPluginAsyncZod<PlatformRouteOptions> = async (
  app,
  { services, authenticate },
) => {
  const db = services.database.db;

  app.get(
    "/webhooks/deliveries",
    {
      preValidation: authenticate(),
      schema: {
        tags: ["platform: webhooks"],
        summary: "Deliveries with their attempts, newest first",
        security: signedSecurity,
        querystring: pageQuery.strict(),
        response: {
          200: pageOf(deliverySchema).meta({ id: "WebhookDeliveryPage" }),
          ...errorResponses(400, 401, 429),
        },
      },
    },
    async (request) => {
      const { records, total } = await listDeliveries(db, clientOf(request).id, offsetOf(request.query));
      return toPage(records, total, request.query);
    },
  );

  app.post(
    "/webhooks/deliveries/:deliveryId/redeliver",
    {
      preValidation: authenticate(),
      schema: {
        tags: ["platform: webhooks"],
        summary: "Send a delivery's event again (as a new delivery)",
        security: signedSecurity,
        params: z.object({ deliveryId: z.string().regex(/^whd_[0-9a-f-]{36}$/, "a delivery id (whd_…)") }),
        response: {
          202: z.object({ id: z.string(), eventId: z.string() }),
          ...errorResponses(400, 401, 404, 409, 429),
        },
      },
    },
    async (request, reply) => {
      const delivery = await redeliver(db, clientOf(request).id, request.params.deliveryId);
      reply.code(202);
      return delivery;
    },
  );

  app.post(
    "/webhooks/test",
    {
      preValidation: authenticate(),
      schema: {
        tags: ["platform: webhooks"],
        summary: "Send a TEST event to the webhook",
        security: signedSecurity,
        response: { 202: z.object({ eventId: z.string() }), ...errorResponses(401, 409, 429) },
      },
    },
    async (request, reply) => {
      const client = clientOf(request);
      const eventId = await sendTestEvent(db, client.id);
      reply.code(202);
      return { eventId };
    },
  );
};
