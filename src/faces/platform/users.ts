import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorResponses } from "../../http/errors.ts";
import { offsetOf, pageOf, pageQuery, toPage } from "../../http/pagination.ts";
import { assertTokenUser, clientOf } from "../../http/platform-auth.ts";
import { userInfoSchema, userTypeSchema } from "../../modules/users/schemas.ts";
import { type PlatformRouteOptions, showUser, signedSecurity, userIdSchema, userSchema } from "./schemas.ts";

const createBody = userInfoSchema
  .extend({ id: userIdSchema, type: userTypeSchema })
  .strict()
  .meta({ id: "CreateUserRequest" });
const replaceBody = userInfoSchema
  .extend({ type: userTypeSchema })
  .strict()
  .meta({ id: "ReplaceUserRequest" });
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
      const user = await database.db
        .transaction()
        .execute((tx) => users.create(tx, { clientId: clientOf(request).id, id, type, info }));
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
      const result = await database.db
        .transaction()
        .execute((tx) => users.writeInfo(tx, clientId, request.params.userId, info, "replace", type));
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
        summary: "Merge information into a user",
        description: "Objects merge member by member; arrays and values given replace what was there.",
        security: signedSecurity,
        params,
        body: userInfoSchema.meta({ id: "PatchUserRequest" }),
        response: { 200: userSchema, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      assertTokenUser(request, request.params.userId);
      const clientId = clientOf(request).id;
      const result = await database.db
        .transaction()
        .execute((tx) => users.writeInfo(tx, clientId, request.params.userId, request.body, "merge"));
      if (result.changed) await refreshKyc(clientId, request.params.userId);
      return showUser(result.user);
    },
  );
};
