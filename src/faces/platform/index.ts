import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { sql } from "kysely";
import { idempotency } from "../../http/idempotency.ts";
import { clientOf, platformAuthentication } from "../../http/platform-auth.ts";
import type { Services } from "../../services.ts";
import { assessmentRoutes } from "./assessments.ts";
import { authRoutes } from "./auth.ts";
import { paymentInformationRoutes } from "./payment-information.ts";
import { transactionRoutes } from "./transactions.ts";
import { userRoutes } from "./users.ts";
import { walletRoutes } from "./wallets.ts";
import { webhookRoutes } from "./webhooks.ts";

const CORS_HEADERS =
  "content-type, x-client-id, x-user-token, x-request-id, x-scenario-id, x-disable-webhook";

/** The Platform API (/v1): signed requests from clients' backends, user tokens from their front ends. */
export const platformFace: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  const authenticate = platformAuthentication({
    db: services.database.db,
    rateLimitPerMinute: services.settings.rateLimitPerMinute,
  });

  // CORS preflight: a browser sends no X-Client-Id here, so the origin must be one that some client
  // allows; the request itself is then checked against its own client's origins.
  app.options("/*", { schema: { hide: true } }, async (request, reply) => {
    const origin = request.headers.origin;
    if (origin) {
      const allowed = await sql<{
        ok: number;
      }>`SELECT 1 AS ok FROM clients WHERE ${origin} = ANY(allowed_origins) LIMIT 1`.execute(
        services.database.db,
      );
      if (allowed.rows.length > 0) {
        reply.header("Access-Control-Allow-Origin", origin);
        reply.header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE");
        reply.header("Access-Control-Allow-Headers", CORS_HEADERS);
        reply.header("Access-Control-Max-Age", "600");
        reply.header("Vary", "Origin");
      }
    }
    reply.code(204).send();
  });

  const idempotent = idempotency(
    services.database.db,
    { header: "x-request-id", required: true, scope: (request) => `v1:${clientOf(request).id}` },
    { ttlHours: services.settings.idempotencyTtlHours },
  );
  const options = { services, authenticate, idempotent };
  await app.register(userRoutes, options);
  await app.register(assessmentRoutes, options);
  await app.register(authRoutes, options);
  await app.register(webhookRoutes, options);
  await app.register(walletRoutes, options);
  await app.register(paymentInformationRoutes, options);
  await app.register(transactionRoutes, options);
};
