import { randomUUID } from "node:crypto";
import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from "fastify";
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from "fastify-type-provider-zod";
import { sql } from "kysely";
import type { Logger } from "pino";
import { z } from "zod";
import type { Config } from "./config.ts";
import { adminClientRoutes } from "./faces/admin/clients.ts";
import { adminLedgerRoutes } from "./faces/admin/ledger.ts";
import { adminOneClickRoutes } from "./faces/admin/oneclick.ts";
import { adminOperationsRoutes } from "./faces/admin/operations.ts";
import { adminRatesRoutes } from "./faces/admin/rates.ts";
import { oneClickFace } from "./faces/oneclick/index.ts";
import { sandboxIdentityRoutes } from "./faces/oneclick/sandbox-identity.ts";
import { payinFace } from "./faces/payin/index.ts";
import { platformFace } from "./faces/platform/index.ts";
import { sandboxKycRoutes } from "./faces/sandbox/kyc-verification.ts";
import { sandboxAcquirerRoutes, sandboxBankRoutes, sandboxOutboxRoutes } from "./faces/sandbox/routes.ts";
import { walletFace } from "./faces/wallet/index.ts";
import { requirePlatformAdmin } from "./http/basic-auth.ts";
import { ApiError, envelope, errorEnvelopeSchema, registerErrorHandling } from "./http/errors.ts";
import type { Metrics } from "./http/metrics.ts";
import { registerPageSecurity } from "./http/page-security.ts";
import { findUnstorableText } from "./http/storable-text.ts";
import { publishedJwks } from "./modules/keys/service.ts";
import type { Services } from "./services.ts";

export const FERRY_VERSION = "0.1.0";

/** The interactive reference's policy (Swagger UI sets element styles from its script). */
const SWAGGER_UI_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

declare module "fastify" {
  interface FastifyInstance {
    routeTable: { method: string; url: string }[];
  }
}

export interface AppDependencies {
  config: Pick<Config, "bodyLimitBytes" | "publicUrl" | "logLevel"> & Partial<Pick<Config, "sandboxRoutes">>;
  services: Services;
  metrics: Metrics;
  logger: Logger;
}

/** Builds the Fastify app: plumbing, error handler, documentation, health, and each face's routes. */
export async function buildApp(deps: AppDependencies): Promise<FastifyInstance> {
  const { services, metrics, config } = deps;
  const { database } = services;
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: config.bodyLimitBytes,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    // Idle keep-alive sockets are closed at shutdown; requests in flight finish first.
    forceCloseConnections: "idle",
    routerOptions: { ignoreTrailingSlash: true },
    // Errors the router raises before any route runs (bad URL encoding, an oversize path parameter).
    frameworkErrors: (error, request, reply) => {
      const message =
        error.code === "FST_ERR_MAX_PARAM_LENGTH" ? "a path parameter is too long" : "the URL is malformed";
      (reply as unknown as FastifyReply)
        .code(400)
        .send(
          envelope(
            new ApiError("INVALID_REQUEST", message, { errors: [{ field: "path", message }] }),
            request.id,
          ),
        );
    },
  }).withTypeProvider<ZodTypeProvider>();

  // Every route the app serves, for tests that must cover each one (auth, bad input).
  const routeTable: { method: string; url: string }[] = [];
  app.addHook("onRoute", (route) => {
    for (const method of [route.method].flat())
      if (method !== "HEAD") routeTable.push({ method, url: route.url });
  });
  app.decorate("routeTable", routeTable);

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandling(app);
  metrics.register(app);
  // Every HTML answer states who may frame it, with a strict policy (http/page-security.ts).
  registerPageSecurity(app);

  // JSON bodies: keep the raw bytes (request signatures and idempotency hash them), then parse
  // with Fastify's own parser (which refuses __proto__ and constructor pollution), then refuse text
  // the database cannot store (NUL, lone surrogates) as a 400 naming the field, on every face.
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request, body, done) => {
    request.rawBody = body as Buffer;
    parseJson(request, (body as Buffer).toString("utf8"), (error, parsed) => {
      if (error) return done(error, undefined);
      const unstorable = findUnstorableText(parsed);
      if (unstorable) return done(ApiError.invalid(unstorable.field, unstorable.message), undefined);
      done(null, parsed);
    });
  });

  // Shutting down: responses to requests still in flight close their keep-alive connection, so
  // the server's close is not held up by clients that would otherwise keep it open.
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
  });
  app.addHook("onSend", async (request, reply) => {
    reply.header("X-Trace-Id", request.id);
    if (closing) reply.header("Connection", "close");
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Ferry",
        version: FERRY_VERSION,
        description:
          "Ferry is a self-hostable payments and wallet platform. Amounts are decimal strings in major units; errors share one envelope.",
      },
      servers: [{ url: config.publicUrl }],
      components: {
        securitySchemes: {
          adminBasic: { type: "http", scheme: "basic", description: "Platform admin (user `admin`)" },
          clientId: { type: "apiKey", in: "header", name: "X-Client-Id", description: "The client's id" },
          signature: {
            type: "apiKey",
            in: "header",
            name: "X-Signature",
            description:
              "Detached JWS over the string to sign (six lines; seven with X-Request-Id, which is signed), with a Date header (see docs/platform-api.md)",
          },
          walletToken: {
            type: "http",
            scheme: "bearer",
            description:
              "A Wallet API access token (POST /api/v1/authorization); `Authorization: TOKEN <token>` is accepted too",
          },
          oauthClientBasic: {
            type: "http",
            scheme: "basic",
            description: "1-Click: the OAuth client_id (the Ferry client id) and its client secret",
          },
          userToken: {
            type: "apiKey",
            in: "header",
            name: "X-User-Token",
            description: "A one-time user token",
          },
        },
      },
      tags: [
        { name: "platform: users", description: "Platform API: users" },
        { name: "platform: kyc", description: "Platform API: assessments and validations" },
        { name: "platform: auth", description: "Platform API: user tokens" },
        { name: "platform: webhooks", description: "Platform API: webhook deliveries" },
        { name: "platform: wallets", description: "Platform API: wallets and payment information" },
        { name: "platform: transactions", description: "Platform API: deposits and other transactions" },
        { name: "wallet: access", description: "Wallet API: log in, register, recover a password" },
        { name: "wallet: users", description: "Wallet API: organizations, users, the caller's profile" },
        {
          name: "wallet: set-up",
          description: "Wallet API: currencies, issuers, banks, commission profiles",
        },
        { name: "wallet: accounts", description: "Wallet API: accounts (coins)" },
        { name: "wallet: money", description: "Wallet API: top-ups, withdrawals, AML reviews" },
        { name: "wallet: transfers", description: "Wallet API: transfers, templates, smart cards" },
        { name: "wallet: processes", description: "Wallet API: business processes" },
        { name: "payin: customer", description: "Pay-in API: the customer's profile and KYC levels" },
        { name: "payin", description: "Pay-in API: cards, rates, offers, payment" },
        {
          name: "1-click",
          description: "1-Click API: OAuth2 authorization code sign-up and deposit, token, status",
        },
        { name: "sandbox", description: "The sandbox providers' pages and simulators" },
        { name: "admin", description: "Platform administration (HTTP Basic)" },
        { name: "operations", description: "Health and metrics" },
      ],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(fastifySwaggerUi, {
    routePrefix: "/docs",
    uiConfig: { deepLinking: true },
    // Swagger UI's own files only: its scripts and styles from /docs/static, the specification
    // fetched from /docs/json; no inline script; nobody may frame it.
    staticCSP: SWAGGER_UI_POLICY,
  });

  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  app.get(
    "/health/live",
    {
      schema: {
        tags: ["operations"],
        summary: "Liveness: the process answers",
        response: { 200: z.object({ status: z.literal("ok") }) },
      },
      logLevel: "warn",
    },
    async () => ({ status: "ok" as const }),
  );

  app.get(
    "/health/ready",
    {
      schema: {
        tags: ["operations"],
        summary: "Readiness: the database answers",
        response: {
          200: z.object({ status: z.literal("ok"), database: z.enum(["postgres", "pglite"]) }),
          503: errorEnvelopeSchema,
        },
      },
      logLevel: "warn",
    },
    async () => {
      try {
        await sql`SELECT 1`.execute(database.db);
      } catch (error) {
        deps.logger.warn({ err: error }, "readiness check failed");
        throw new ApiError("SERVICE_UNAVAILABLE", "the database does not answer");
      }
      return { status: "ok" as const, database: database.kind };
    },
  );

  app.get(
    "/metrics",
    {
      schema: { tags: ["operations"], summary: "Prometheus metrics", produces: ["text/plain"] },
      logLevel: "warn",
    },
    async (_request, reply) => {
      reply.type(metrics.registry.contentType);
      return metrics.registry.metrics();
    },
  );

  app.get(
    "/.well-known/jwks.json",
    {
      schema: {
        tags: ["operations"],
        summary: "Ferry's public signing keys (current and previous), to verify webhooks",
        response: { 200: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }) },
      },
    },
    async (_request, reply) => {
      reply.header("Cache-Control", "public, max-age=300");
      return publishedJwks(database.db);
    },
  );

  await app.register(platformFace, { prefix: "/v1", services });
  await app.register(walletFace, { prefix: "/api/v1", services });
  await app.register(payinFace, { services });
  await app.register(oneClickFace, { services });
  // The sandbox's control routes serve sandbox clients only (faces/sandbox/access.ts); an
  // installation may switch them off altogether (FERRY_SANDBOX_ROUTES=off).
  if (config.sandboxRoutes !== false) {
    await app.register(sandboxAcquirerRoutes, { prefix: "/sandbox", services });
    await app.register(sandboxBankRoutes, { prefix: "/sandbox", services });
    await app.register(sandboxOutboxRoutes, { prefix: "/sandbox", services });
    await app.register(sandboxKycRoutes, { prefix: "/sandbox", services });
    await app.register(sandboxIdentityRoutes, { prefix: "/sandbox", services });
  }

  await app.register(
    async (admin) => {
      // onRequest: credentials are checked before the body and parameters are even parsed.
      admin.addHook("onRequest", requirePlatformAdmin(services.adminAuthenticator));
      await admin.register(adminLedgerRoutes, { db: database.db });
      await admin.register(adminClientRoutes, { services });
      await admin.register(adminOperationsRoutes, { services });
      await admin.register(adminOneClickRoutes, { services });
      await admin.register(adminRatesRoutes, { services });
    },
    { prefix: "/admin" },
  );

  return app;
}
