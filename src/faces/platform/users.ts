import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiError, errorResponses } from "../../http/errors.ts";
import { offsetOf, pageOf, pageQuery, toPage } from "../../http/pagination.ts";
import { actorOf, assertTokenUser, clientOf } from "../../http/platform-auth.ts";
import { userInfoSchema, userStatusSchema, userTypeSchema } from "../../modules/users/schemas.ts";
import {
  type PlatformRouteOptions,
  showUser,
  signedSecurity,
  userIdSchema,
  userSchema,
  webhooksDisabled,
} from "./schemas.ts";

const createBody = userInfoSchema
  .extend({ id: userIdSchema, type: userTypeSchema })
  .strict()
  .meta({ id: "CreateUserRequest" });
const replaceBody = userInfoSchema
  .extend({ type: userTypeSchema })
  .strict()
  .meta({ id: "ReplaceUserRequest" });
const patchBody = userInfoSchema
  .extend({
    status: userStatusSchema
      .optional()
      .describe(
        "BLOCKED: monitoring refuses the user's money-moving requests; INACTIVE: recorded and announced; ACTIVE: as created",
      ),
    statusReason: z
      .string()
      .regex(
        /^[A-Z0-9_]{2,64}$/,
        "a reason code such as FRAUD_SUSPECTED (no PII: it is sent in the USER event)",
      )
      .optional()
      .describe("Why, as a code; given with status (a status without one clears it)"),
  })
  .strict()
  .meta({ id: "PatchUserRequest" });
const params = z.object({ userId: userIdSchema });

/** /v1/users: create, read (no PII), list, replace and merge a user's information. */
export const userRoutes: FastifyPluginAsyncZod<PlatformRouteOptions> = async (
  app,
  { services, authenticate },
) => {
  const { users, kyc, database } = services;

  /** A user whose information changed and who was assessed before gets a background KYC refresh. */
  const refreshKyc = async (clientId: string, userId: string) => {
    if (await kyc.latest(clientId, userId)) await kyc.start({ clientId, userId, solicited: false });
  };

  app.post(
    "/users",
    {
      preValidation: authenticate(),
      schema: {
        tags: ["platform: users"],
        summary: "Create a user",
        description:
          "The id is the client's own (USER_ID). The information is PII: kept encrypted, never shown back.",
        security: signedSecurity,
        body: createBody,
        response: { 201: userSchema, ...errorResponses(400, 401, 403, 409, 429) },
      },
    },
    async (request, reply) => {
      const { id, type, ...info } = request.body;
      const user = await users.register(
        { clientId: clientOf(request).id, id, type, info },
        { suppressWebhook: webhooksDisabled(request) },
      );
      reply.code(201);
      return showUser(user);
    },
  );

  app.get(
    "/users",
    {
      preValidation: authenticate(),
      schema: {
        tags: ["platform: users"],
        summary: "Page through users",
        security: signedSecurity,
        querystring: pageQuery.strict(),
        response: { 200: pageOf(userSchema).meta({ id: "UserPage" }), ...errorResponses(400, 401, 429) },
      },
    },
    async (request) => {
      const { users: page, total } = await users.list(clientOf(request).id, offsetOf(request.query));
      return toPage(page.map(showUser), total, request.query);
    },
  );

  app.get(
    "/users/:userId",
    {
      preValidation: authenticate({ allowUserToken: true }),
      schema: {
        tags: ["platform: users"],
        summary: "A user (no PII)",
        security: signedSecurity,
        params,
        response: { 200: userSchema, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      assertTokenUser(request, request.params.userId);
      return showUser(await users.get(database.db, clientOf(request).id, request.params.userId));
    },
  );

  app.put(
    "/users/:userId",
    {
      preValidation: authenticate(),
      schema: {
        tags: ["platform: users"],
        summary: "Replace a user's information",
        security: signedSecurity,
        params,
        body: replaceBody,
        response: { 200: userSchema, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      const clientId = clientOf(request).id;
      const { type, ...info } = request.body;
      const result = await users.update({ clientId, actor: actorOf(request) }, request.params.userId, {
        info,
        mode: "replace",
        type,
      });
      if (result.changed) await refreshKyc(clientId, request.params.userId);
      return showUser(result.user);
    },
  );

  app.patch(
    "/users/:userId",
    {
      preValidation: authenticate({ allowUserToken: true }),
      schema: {
        tags: ["platform: users"],
        summary: "Merge information into a user; block or unblock the user",
        description:
          "Objects merge member by member; arrays and values given replace what was there. `status` (signed requests only) blocks, deactivates or reactivates the user, with a USER webhook event.",
        security: signedSecurity,
        params,
        body: patchBody,
        response: { 200: userSchema, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      assertTokenUser(request, request.params.userId);
      const clientId = clientOf(request).id;
      const { userId } = request.params;
      const { status, statusReason, ...info } = request.body;
      if (status !== undefined || statusReason !== undefined) {
        // The end user's front end must not unblock its own user.
        if (request.userToken) throw new ApiError("FORBIDDEN", "a user token cannot change a user's status");
        if (status === undefined) throw ApiError.invalid("statusReason", "is given together with status");
      }
      const result = await users.update(
        { clientId, actor: actorOf(request) },
        userId,
        { info, mode: "merge", status, statusReason },
        { suppressWebhook: webhooksDisabled(request) },
      );
      if (result.changed) await refreshKyc(clientId, userId);
      return showUser(result.user);
    },
  );
};
