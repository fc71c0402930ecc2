import type { RouteOptions } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorResponses } from "../../http/errors.ts";
import { idempotency } from "../../http/idempotency.ts";
import { clientOf, platformAuthentication } from "../../http/platform-auth.ts";
import { CLIENT_CHOSEN_ID } from "../../lib/ids.ts";
import { anyClientAllowsOrigin } from "../../modules/clients/service.ts";
import type { Services } from "../../services.ts";
import { assessmentRoutes } from "./assessments.ts";
import { authRoutes } from "./auth.ts";
import { paymentInformationRoutes } from "./payment-information.ts";
import { transactionRoutes } from "./transactions.ts";
import { userRoutes } from "./users.ts";
import { walletRoutes } from "./wallets.ts";
import { webhookRoutes } from "./webhooks.ts";

const STATE_CHANGING_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** The optional X-Request-Id of a state-changing route that does not require one (other headers kept). */
const optionalRequestIdHeader = z.looseObject({
  "x-request-id": z
    .string()
    .regex(CLIENT_CHOSEN_ID, "must match ^[A-Za-z0-9_-]{3,255}$")
    .optional()
    .describe("Optional request id: the same request sent again with it gets the first answer"),
});

const CORS_HEADERS =
  "content-type, x-client-id, x-user-token, x-request-id, x-scenario-id, x-disable-webhook";

/** The Platform API (/v1): signed requests from clients' backends, user tokens from their front ends. */
export const platformFace: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  const authenticate = platformAuthentication({
    db: services.database.db,
    rateLimitPerMinute: services.settings.rateLimitPerMinute,
    requestIdIsIdempotencyKey: true, // the onRoute hook below makes it so
  });

  // CORS preflight: a browser sends no X-Client-Id here, so the origin must be one that some client
  // allows; the request itself is then checked against its own client's origins.
  app.options("/*", { schema: { hide: true } }, async (request, reply) => {
    const origin = request.headers.origin;
    if (origin) {
      if (await anyClientAllowsOrigin(services.database.db, origin)) {
        reply.header("Access-Control-Allow-Origin", origin);
        reply.header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE");
        reply.header("Access-Control-Allow-Headers", CORS_HEADERS);
        reply.header("Access-Control-Max-Age", "600");
        reply.header("Vary", "Origin");
      }
    }
    reply.code(204).send();
  });

  // One key space per client for the whole face. Money-moving and assessment routes require an
  // X-Request-Id (their own preHandler); every other state-changing route honours one when sent.
  const requestIds = (required: boolean) =>
    idempotency(
      services.database.db,
      { header: "x-request-id", required, scope: (request) => `v1:${clientOf(request).id}` },
      { ttlHours: services.settings.idempotencyTtlHours },
    );
  const idempotent = requestIds(true);
  const idempotentWhenIdentified = requestIds(false);
  // Every state-changing route claims the X-Request-Id it is sent, so that a signed request sent
  // again (a retry after a timeout, twenty at once) gets the first answer or 409 in progress —
  // never a 401, never a second effect (platform-api.md, Authentication). The authentication relies
  // on it (requestIdIsIdempotencyKey): it does not remember signatures that carry an id.
  app.addHook("onRoute", (route) => {
    if (![route.method].flat().some((method) => STATE_CHANGING_METHODS.has(method))) return;
    if ([route.preHandler].flat().includes(idempotent.preHandler)) return;
    claimRequestIdOn(route, idempotentWhenIdentified);
  });
  const options = { services, authenticate, idempotent };
  await app.register(userRoutes, options);
  await app.register(assessmentRoutes, options);
  await app.register(authRoutes, options);
  await app.register(webhookRoutes, options);
  await app.register(walletRoutes, options);
  await app.register(paymentInformationRoutes, options);
  await app.register(transactionRoutes, options);
};

/**
 * Adds the optional X-Request-Id claim to a route: first among its preHandlers, and in its schema
 * (the header, and the 409s of an id in use) so that /openapi.json says so.
 */
function claimRequestIdOn(route: RouteOptions, claim: ReturnType<typeof idempotency>) {
  route.preHandler = [claim.preHandler, ...[route.preHandler ?? []].flat()];
  route.onSend = [claim.onSend, ...[route.onSend ?? []].flat()];
  if (!route.schema) return;
  route.schema.headers ??= optionalRequestIdHeader;
  const responses = route.schema.response as Record<number, unknown> | undefined;
  if (responses && responses[409] === undefined)
    route.schema.response = { ...responses, ...errorResponses(409) };
}
