// Over 400 lines on purpose: the admin routes of a client's set-up (create, read, patch, keys, webhook,
// OAuth secret), each thin; they share the client view and its schemas.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiError, errorResponses } from "../../http/errors.ts";
import { PLATFORM_ADMIN } from "../../lib/context.ts";
import { CLIENT_CHOSEN_ID } from "../../lib/ids.ts";
import {
  addSigningKey,
  CLIENT_MODES,
  type Client,
  createClient,
  getClient,
  listSigningKeys,
  revokeSigningKey,
  type SigningKey,
  updateClient,
} from "../../modules/clients/service.ts";
import { OPERATIONS } from "../../modules/commissions/service.ts";
import { feesConfigSchema } from "../../modules/fees/service.ts";
import { rotateSigningKey } from "../../modules/keys/service.ts";
import { kycConfigSchema } from "../../modules/kyc/rules.ts";
import { STAFF_ROLES } from "../../modules/logins/service.ts";
import { monitoringConfigSchema } from "../../modules/monitoring/rules.ts";
import { maskOneClick, oneClickSettingsSchema, rotateOAuthSecret } from "../../modules/oauth/clients.ts";
import { checkRedirectUris } from "../../modules/oauth/redirect-uris.ts";
import { privateDestinationRefusal } from "../../modules/webhooks/destinations.ts";
import type { Services } from "../../services.ts";

const jwk = z
  .record(z.string(), z.unknown())
  .meta({ description: "A public JWK", example: { kty: "EC", crv: "P-256", x: "…", y: "…" } });
const settingsSchema = z
  .object({
    rateLimitPerMinute: z.number().int().min(1).max(1_000_000).optional(),
    userTokenTtlSeconds: z.number().int().min(10).max(86_400).optional(),
    kyc: kycConfigSchema.optional(),
    monitoring: monitoringConfigSchema.optional(),
    fees: feesConfigSchema.optional(),
    oneClick: oneClickSettingsSchema
      .optional()
      .describe(
        "1-Click: redirect URIs, the operator's callback URL ({action}) and credentials (shown masked)",
      ),
    payin: z
      .object({
        minAmountFrom: z
          .string()
          .regex(/^\d{1,15}(\.\d{1,2})?$/, "a decimal amount of the fiat paid with")
          .optional(),
        maxAmountFrom: z
          .string()
          .regex(/^\d{1,15}(\.\d{1,2})?$/, "a decimal amount of the fiat paid with")
          .optional(),
        feePercent: z
          .string()
          .regex(/^(100(\.0{1,4})?|\d{1,2}(\.\d{1,4})?)$/, 'a percentage from 0 to 100 such as "1.5"')
          .optional(),
        feeFixed: z
          .string()
          .regex(/^\d{1,15}(\.\d{1,2})?$/, "a decimal amount of the fiat paid with")
          .optional(),
      })
      .strict()
      .optional()
      .describe("Pay-in limits and fees (defaults: 10 to 5,000 of the fiat, 1.5 % and no fixed fee)"),
    disabledWalletOperations: z
      .array(z.enum(OPERATIONS))
      .max(OPERATIONS.length)
      .optional()
      .describe("Wallet API operations switched off for this client (a 403)"),
  })
  .strict();

const modeSchema = z
  .enum(CLIENT_MODES)
  .describe(
    "sandbox: test mode — the sandbox providers and /sandbox controls serve the client, its webhook may point at a private address; live: neither",
  );

const keySchema = z.object({
  kid: z.string(),
  kty: z.string(),
  status: z.enum(["ACTIVE", "REVOKED"]),
  expiresAt: z.string().nullable(),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
});

const clientSchema = z
  .object({
    clientId: z.string(),
    name: z.string(),
    status: z.string(),
    mode: modeSchema,
    webhookUrl: z.string().nullable(),
    webhookEncryptionKeyId: z.string().nullable(),
    allowedOrigins: z.array(z.string()),
    settings: z.record(z.string(), z.unknown()),
    signingKeys: z.array(keySchema),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: "Client" });

const showKey = (k: SigningKey) => ({
  kid: k.kid,
  kty: String(k.jwk.kty),
  status: k.status,
  expiresAt: k.expiresAt?.toISOString() ?? null,
  createdAt: k.createdAt.toISOString(),
  revokedAt: k.revokedAt?.toISOString() ?? null,
});

const showClient = (client: Client, keys: SigningKey[]) => ({
  clientId: client.id,
  name: client.name,
  status: client.status,
  mode: client.mode,
  webhookUrl: client.webhookUrl,
  webhookEncryptionKeyId: client.webhookEncryptionKey?.kid ?? null,
  allowedOrigins: client.allowedOrigins,
  settings: maskOneClick(client.settings as Record<string, unknown>),
  signingKeys: keys.map(showKey),
  createdAt: client.createdAt.toISOString(),
  updatedAt: client.updatedAt.toISOString(),
});

/** A live client's operator callbacks (1-Click) keep to public addresses, as its webhook does. */
function assertCallbackDestination(settings: unknown, mode: "sandbox" | "live") {
  const callbackUrl = (settings as { oneClick?: { callbackUrl?: string } } | undefined)?.oneClick
    ?.callbackUrl;
  if (!callbackUrl) return;
  const refusal = privateDestinationRefusal(new URL(callbackUrl.replaceAll("{action}", "transfer")), mode);
  if (refusal) throw ApiError.invalid("oneClick.callbackUrl", refusal);
}

/** The 1-Click redirect URIs suit the client's mode (a live client's are https, loopback excepted). */
function assertRedirectUris(settings: unknown, mode: "sandbox" | "live") {
  const uris = (settings as { oneClick?: { redirectUris?: string[] } } | undefined)?.oneClick?.redirectUris;
  if (uris) checkRedirectUris(uris, mode);
}

const clientParams = z.object({ clientId: z.string().regex(CLIENT_CHOSEN_ID) });
const admin = { tags: ["admin"], security: [{ adminBasic: [] }] };

/** Platform-admin management of clients (tenants), their keys, and Ferry's own signing key. */
export const adminClientRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  const db = services.database.db;
  const view = async (client: Client) => showClient(client, await listSigningKeys(db, client.id));

  app.post(
    "/clients",
    {
      schema: {
        ...admin,
        summary: "Create a client",
        body: z
          .object({
            clientId: z
              .string()
              .regex(CLIENT_CHOSEN_ID)
              .optional()
              .describe("Defaults to one made from the name"),
            name: z.string().trim().min(1).max(200),
            mode: modeSchema.optional().describe("Default sandbox"),
            signingKeys: z.array(jwk).max(10).optional(),
            webhookUrl: z.string().max(2000).optional(),
            webhookEncryptionKey: jwk.optional(),
            allowedOrigins: z.array(z.string().max(300)).max(50).optional(),
            settings: settingsSchema.optional(),
          })
          .strict()
          .meta({ id: "CreateClientRequest" }),
        response: { 201: clientSchema, ...errorResponses(400, 401, 409) },
      },
    },
    async (request, reply) => {
      const { clientId, ...rest } = request.body;
      assertCallbackDestination(rest.settings, rest.mode ?? "sandbox");
      assertRedirectUris(rest.settings, rest.mode ?? "sandbox");
      const client = await createClient(db, { id: clientId, ...rest }, PLATFORM_ADMIN);
      reply.code(201);
      return view(client);
    },
  );

  app.get(
    "/clients/:clientId",
    {
      schema: {
        ...admin,
        summary: "A client",
        params: clientParams,
        response: { 200: clientSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => view(await getClient(db, request.params.clientId)),
  );

  app.patch(
    "/clients/:clientId",
    {
      schema: {
        ...admin,
        summary: "Change a client's webhook, origins, settings, status or mode",
        params: clientParams,
        body: z
          .object({
            name: z.string().trim().min(1).max(200).optional(),
            status: z.enum(["ACTIVE", "SUSPENDED"]).optional(),
            mode: modeSchema.optional(),
            webhookUrl: z.string().max(2000).nullable().optional(),
            webhookEncryptionKey: jwk.nullable().optional(),
            allowedOrigins: z.array(z.string().max(300)).max(50).optional(),
            settings: settingsSchema.optional(),
            oneClick: oneClickSettingsSchema
              .optional()
              .describe(
                "1-Click set-up (the same as settings.oneClick): redirect URIs, callback URL with {action}, callback credentials",
              ),
          })
          .strict()
          .meta({ id: "UpdateClientRequest" }),
        response: { 200: clientSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => {
      const { oneClick, ...change } = request.body;
      const settings = oneClick ? { ...(change.settings ?? {}), oneClick } : change.settings;
      const current = await getClient(db, request.params.clientId);
      // What the client's set-up will be (settings merge member by member) must suit its mode.
      const merged = { ...current.settings, ...(settings ?? {}) };
      const mode = change.mode ?? current.mode;
      assertCallbackDestination(merged, mode);
      // Checked when the 1-Click set-up or the mode is given (a stored URI that no longer passes
      // does not block an unrelated change, such as suspending the client).
      if (settings?.oneClick !== undefined || change.mode !== undefined) assertRedirectUris(merged, mode);
      return view(await updateClient(db, request.params.clientId, { ...change, settings }, PLATFORM_ADMIN));
    },
  );

  app.post(
    "/clients/:clientId/signing-keys",
    {
      schema: {
        ...admin,
        summary: "Add a signing key (rotation: several may be active)",
        params: clientParams,
        body: z.object({ jwk, expiresAt: z.iso.datetime().optional() }).strict(),
        response: { 201: keySchema, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const key = await addSigningKey(
        db,
        request.params.clientId,
        request.body.jwk,
        request.body.expiresAt ? new Date(request.body.expiresAt) : undefined,
        PLATFORM_ADMIN,
      );
      reply.code(201);
      return showKey(key);
    },
  );

  app.delete(
    "/clients/:clientId/signing-keys/:kid",
    {
      schema: {
        ...admin,
        summary: "Revoke a signing key",
        params: clientParams.extend({
          kid: z.string().regex(/^[A-Za-z0-9_-]{43}$/, "an RFC 7638 SHA-256 thumbprint"),
        }),
        response: { 204: z.null(), ...errorResponses(400, 401, 404) },
      },
    },
    async (request, reply) => {
      await revokeSigningKey(db, request.params.clientId, request.params.kid, PLATFORM_ADMIN);
      return reply.code(204).send(null);
    },
  );

  app.post(
    "/clients/:clientId/assessments/:requestId/decision",
    {
      schema: {
        ...admin,
        summary: "Decide an assessment UNDER_REVIEW",
        params: clientParams.extend({ requestId: z.string().regex(CLIENT_CHOSEN_ID) }),
        body: z
          .object({
            decision: z.enum(["ACCEPT", "REFUSE"]),
            tier: z.number().int().min(0).max(5).optional(),
            refusalReason: z
              .string()
              .regex(/^[A-Z_]{2,64}$/)
              .optional(),
          })
          .strict(),
        response: {
          200: z.object({
            requestId: z.string(),
            status: z.string(),
            tier: z.number().int(),
            refusalReason: z.string().nullable(),
          }),
          ...errorResponses(400, 401, 404, 409),
        },
      },
    },
    async (request) => {
      await getClient(db, request.params.clientId);
      const a = await services.kyc.decideReview(
        request.params.clientId,
        request.params.requestId,
        request.body,
        PLATFORM_ADMIN,
      );
      return { requestId: a.requestId, status: a.status, tier: a.tier, refusalReason: a.refusalReason };
    },
  );

  app.post(
    "/clients/:clientId/transactions/:requestId/review",
    {
      schema: {
        ...admin,
        summary: "Decide a transaction in MANUAL_REVIEW",
        description: "APPROVE: the transaction executes; DENY: it is REFUSED with no ledger effect.",
        params: clientParams.extend({ requestId: z.string().regex(CLIENT_CHOSEN_ID) }),
        body: z.object({ decision: z.enum(["APPROVE", "DENY"]) }).strict(),
        response: {
          200: z.object({ requestId: z.string(), status: z.string() }),
          ...errorResponses(400, 401, 404, 409),
        },
      },
    },
    async (request) => {
      await getClient(db, request.params.clientId);
      const t = await services.transactions.decideReview(
        request.params.clientId,
        request.params.requestId,
        request.body.decision,
        PLATFORM_ADMIN,
      );
      return { requestId: t.requestId, status: t.status };
    },
  );

  app.post(
    "/keys/rotate",
    {
      schema: {
        ...admin,
        summary: "Rotate Ferry's webhook signing key",
        description:
          "The new key signs from now on; the previous one stays published in /.well-known/jwks.json.",
        response: {
          200: z.object({ kid: z.string(), previousKid: z.string().nullable() }),
          ...errorResponses(401),
        },
      },
    },
    async () => rotateSigningKey(db, services.sealer, PLATFORM_ADMIN),
  );

  app.post(
    "/clients/:clientId/staff",
    {
      schema: {
        ...admin,
        summary: "Make a Wallet API staff user of a client (its first administrator)",
        description:
          "The login joins the client's system organization. Without `password` one is generated and shown in this answer only.",
        params: clientParams,
        body: z
          .object({
            login: z.string().min(3).max(254).meta({ example: "admin@example.com" }),
            role: z.enum(STAFF_ROLES),
            password: z.string().min(1).max(128).optional(),
          })
          .strict(),
        response: {
          201: z.object({
            userId: z.string(),
            login: z.string(),
            role: z.string(),
            password: z.string().optional(),
          }),
          ...errorResponses(400, 401, 404, 409),
        },
      },
    },
    async (request, reply) => {
      await getClient(db, request.params.clientId);
      const { login, password } = await services.logins.create(
        { clientId: request.params.clientId, actor: PLATFORM_ADMIN },
        request.body,
        { reveal: true },
      );
      reply.code(201);
      return { userId: login.id, login: login.login, role: login.role, ...(password ? { password } : {}) };
    },
  );

  app.post(
    "/clients/:clientId/oauth-secret",
    {
      schema: {
        ...admin,
        summary: "A new OAuth client secret for 1-Click (shown once; the old one stops working)",
        description:
          "The OAuth client_id is the client id. Ferry keeps only a hash of the secret and compares it in constant time.",
        params: clientParams,
        response: {
          201: z.object({ clientId: z.string(), clientSecret: z.string() }),
          ...errorResponses(400, 401, 404),
        },
      },
    },
    async (request, reply) => {
      const clientSecret = await rotateOAuthSecret(db, request.params.clientId, PLATFORM_ADMIN);
      reply.code(201);
      return { clientId: request.params.clientId, clientSecret };
    },
  );
};
