import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiError, errorResponses } from "../../http/errors.ts";
import { contextOf, guard, walletSecurity } from "../../http/wallet-session.ts";
import { isStaff, type Login, ORGANIZATION_TYPES, ROLES } from "../../modules/logins/service.ts";
import type { Services } from "../../services.ts";
import {
  loginInput,
  organizationSchema,
  pageAnswer,
  pageBody,
  pageWindow,
  passwordInput,
  toPageAnswer,
} from "./schemas.ts";
import type { WalletApp } from "./views.ts";

const userRecord = z
  .object({
    id: z.string(),
    name: z.string(),
    createdAt: z.string(),
    active: z.boolean(),
    banned: z.boolean(),
    twoFactor: z.boolean(),
    contact: z.object({
      email: z.string().nullable(),
      phoneNumber: z.string().nullable(),
      emailVerified: z.boolean(),
      phoneVerified: z.boolean(),
    }),
    members: z.array(z.object({ id: z.string(), role: z.string(), organization: organizationSchema })),
  })
  .meta({ id: "WalletUser" });

function showUser(login: Login) {
  const email = login.login.includes("@") ? login.login : null;
  return {
    id: login.id,
    name: login.name ?? login.login,
    createdAt: login.createdAt.toISOString(),
    active: login.active,
    banned: !login.active,
    twoFactor: login.twoFactor,
    contact: {
      email,
      phoneNumber: email ? null : login.login,
      // A login was proven by its registration code; one made by staff, by the credentials sent to it.
      emailVerified: email !== null,
      phoneVerified: email === null,
    },
    members: [
      {
        id: login.id,
        role: login.role,
        organization: {
          id: login.organization.id,
          name: login.organization.name,
          type: login.organization.type,
        },
      },
    ],
  };
}

/** Organizations and the people in them (administrators; support reads). */
const tags = ["wallet: users"];

export const userRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  createOrganization(app, services);
  createAndChangeUser(app, services);
  listUsers(app, services);
};

function createOrganization(app: WalletApp, services: Services) {
  const { logins } = services;
  app.post(
    "/organizations",
    {
      preValidation: guard(services, "users.read"),
      schema: {
        tags,
        summary: "Page through organizations (filter by type)",
        security: walletSecurity,
        body: pageBody(z.object({ types: z.array(z.enum(ORGANIZATION_TYPES)).max(5).optional() }).strict()),
        response: {
          200: pageAnswer(organizationSchema.extend({ createdAt: z.string() })),
          ...errorResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const { clientId } = contextOf(request);
      const { organizations, total } = await logins.listOrganizations(
        clientId,
        pageWindow(request.body),
        request.body.filter?.types,
      );
      return toPageAnswer(
        organizations.map((o) => ({
          id: o.id,
          name: o.name,
          type: o.type,
          createdAt: o.createdAt.toISOString(),
        })),
        total,
        request.body,
      );
    },
  );
}

function createAndChangeUser(app: WalletApp, services: Services) {
  const { logins } = services;
  app.post(
    "/users",
    {
      preValidation: guard(services, "users.write"),
      schema: {
        tags,
        summary: "Create a staff user or a customer",
        description:
          "Staff join the system organization unless `organizationId` names another; a customer gets an organization of its own. Without `password`, the credentials go to the login (sandbox outbox, kind CREDENTIALS).",
        security: walletSecurity,
        body: z
          .object({
            login: loginInput,
            role: z.enum(ROLES),
            organizationId: z.uuid().optional(),
            legalType: z.enum(["individual", "corporation"]).optional(),
            password: passwordInput.optional(),
            name: z.string().min(1).max(200).optional(),
            twoFactor: z.boolean().optional(),
          })
          .strict()
          .meta({
            example: { login: "accountant@acme.example", role: "accountant", password: "Acc0unt#Pass" },
          }),
        response: {
          201: z.object({
            user: z.object({
              id: z.string(),
              members: z.array(z.object({ organization: z.object({ id: z.string() }) })),
            }),
          }),
          ...errorResponses(400, 401, 403, 404, 409),
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      if (!isStaff(body.role) && body.organizationId !== undefined)
        throw ApiError.invalid("organizationId", "a customer gets an organization of its own");
      const { login } = await logins.create(contextOf(request), body);
      reply.code(201);
      return { user: { id: login.id, members: [{ organization: { id: login.organization.id } }] } };
    },
  );

  app.patch(
    "/users/:userId",
    {
      preValidation: guard(services, "users.write"),
      schema: {
        tags,
        summary: "Switch a user's login on or off, or its two-factor login",
        description: "A user switched off is logged out at once (every token ends).",
        security: walletSecurity,
        params: z.object({ userId: z.string().min(1).max(255) }),
        body: z.object({ active: z.boolean().optional(), twoFactor: z.boolean().optional() }).strict(),
        response: { 200: userRecord, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => showUser(await logins.update(contextOf(request), request.params.userId, request.body)),
  );
}

function listUsers(app: WalletApp, services: Services) {
  const { logins } = services;
  app.post(
    "/users/view",
    {
      preValidation: guard(services, "users.read"),
      schema: {
        tags,
        summary: "Page through users",
        security: walletSecurity,
        body: pageBody(
          z
            .object({
              ids: z.array(z.string().max(255)).max(100).optional(),
              email: z.string().max(254).optional(),
              phone: z.string().max(32).optional(),
              text: z.string().max(100).optional(),
              roles: z
                .array(z.enum([...ROLES]))
                .max(6)
                .optional(),
              active: z.boolean().optional(),
              organizationIds: z.array(z.string().max(64)).max(100).optional(),
            })
            .strict(),
        ),
        response: { 200: pageAnswer(userRecord), ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const { clientId } = contextOf(request);
      const { logins: found, total } = await logins.view(
        clientId,
        request.body.filter ?? {},
        pageWindow(request.body),
      );
      return toPageAnswer(found.map(showUser), total, request.body);
    },
  );
}
