import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorResponses } from "../../http/errors.ts";
import { clientOf } from "../../http/platform-auth.ts";
import { issueUserToken } from "../../modules/tokens/service.ts";
import { type PlatformRouteOptions, userIdSchema } from "./schemas.ts";

/** POST /v1/auth/userToken: a one-time token for the client's front end. */
export const authRoutes: FastifyPluginAsyncZod<PlatformRouteOptions> = async (
  app,
  { services, authenticate },
) => {
  app.post(
    "/auth/userToken",
    {
      preValidation: authenticate(),
      schema: {
        tags: ["platform: auth"],
        summary: "Issue a one-time user token",
        description:
          "For exactly one request whose method and path match, for the bound user if one is given, until it expires. The front end sends it as X-User-Token with X-Client-Id. A bound user must exist (404) and be ACTIVE: a BLOCKED or INACTIVE user is given no token (403).",
        security: [{ clientId: [], signature: [] }],
        body: z
          .object({
            url: z
              .string()
              .regex(
                /^\/v1\/[A-Za-z0-9/_-]{1,500}$/,
                "a /v1 path without query, e.g. /v1/transactions/deposits",
              ),
            method: z.enum(["GET", "POST", "PUT", "PATCH", "DELETE"]),
            userId: userIdSchema.optional(),
          })
          .strict()
          .meta({ id: "UserTokenRequest" }),
        response: {
          201: z
            .object({
              accessToken: z.string(),
              expiresAt: z.number().int().describe("Epoch seconds"),
              tokenType: z.literal("JWT"),
            })
            .meta({ id: "UserToken" }),
          ...errorResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request, reply) => {
      const client = clientOf(request);
      const token = await issueUserToken(services.database.db, services.signingKeys, {
        clientId: client.id,
        method: request.body.method,
        path: request.body.url,
        userId: request.body.userId,
        ttlSeconds: client.settings.userTokenTtlSeconds ?? services.settings.userTokenTtlSeconds,
      });
      reply.code(201);
      return token;
    },
  );
};
