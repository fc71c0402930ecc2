import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { registerTokenCors } from "../../http/cors.ts";
import { errorResponses } from "../../http/errors.ts";
import { idempotency } from "../../http/idempotency.ts";
import { guard, sessionOf, walletSecurity } from "../../http/wallet-session.ts";
import { userInfoSchema } from "../../modules/users/schemas.ts";
import type { Services } from "../../services.ts";
import { accessRoutes } from "./access.ts";
import { accountRoutes } from "./accounts.ts";
import { moneyRoutes } from "./money.ts";
import { ratesRoutes } from "./rates.ts";
import { setupRoutes } from "./setup.ts";
import { transferRoutes } from "./transfers.ts";
import { userRoutes } from "./users.ts";

/**
 * The Wallet API (/api/v1): a white-label wallet and its back office. Staff and end users log in
 * with a password (+ a code where two-factor is on) and call with a bearer access token; every
 * route checks the token's role against the permission table (access-control.ts).
 */
export const walletFace: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  const idempotent = idempotency(
    services.database.db,
    {
      header: "idempotency-key",
      required: false,
      // A user's keys are theirs: the same key from two users is two requests.
      scope: (request) => {
        const session = sessionOf(request);
        return `api:${session.clientId}:${session.userId}`;
      },
    },
    { ttlHours: services.settings.idempotencyTtlHours },
  );
  registerTokenCors(app, services.database.db, {
    allowHeaders: "authorization, content-type, idempotency-key, x-client-id",
    clientOf: (request) => {
      const named = request.headers["x-client-id"];
      return (
        request.walletSession?.clientId ??
        (typeof named === "string" && named !== "" ? named : services.settings.defaultClient)
      );
    },
  });
  await app.register(accessRoutes, { services });
  await app.register(userRoutes, { services });
  await app.register(setupRoutes, { services });
  await app.register(ratesRoutes, { services });
  await app.register(accountRoutes, { services });
  await app.register(moneyRoutes, { services, idempotent });
  await app.register(transferRoutes, { services, idempotent });

  app.patch(
    "/profile",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags: ["wallet: users"],
        summary: "The caller's personal information (name, birth date, address, …): merged, then a KYC check",
        description:
          "The same information the Platform API keeps for the user (kept sealed, never logged). When it changed, a KYC assessment starts in the background; the tier it grants lifts the user's limits on every face.",
        security: walletSecurity,
        body: userInfoSchema,
        response: {
          200: z.object({ status: z.literal("ok"), tier: z.number().int() }),
          ...errorResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const session = sessionOf(request);
      const context = { clientId: session.clientId, actor: { kind: "user" as const, id: session.userId } };
      const { user } = await services.kyc.mergeInfo(context, session.userId, request.body);
      return { status: "ok" as const, tier: user.tier };
    },
  );
};
