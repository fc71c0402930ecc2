import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorResponses } from "../../http/errors.ts";
import { assertTokenUser, clientOf } from "../../http/platform-auth.ts";
import type { PaymentMethod } from "../../modules/payment-methods/service.ts";
import { addressSchema } from "../../modules/users/schemas.ts";
import { type PlatformRouteOptions, signedSecurity, userIdSchema } from "./schemas.ts";

export const cardInputSchema = z
  .object({
    type: z.literal("CREDIT_CARD"),
    cardNumber: z.string().regex(/^[0-9 -]{12,23}$/, "12–19 digits"),
    expirationMonth: z.number().int().min(1).max(12),
    expirationYear: z.number().int().min(0).max(2100),
    cvv: z
      .string()
      .regex(/^\d{3,4}$/, "3 or 4 digits")
      .optional()
      .describe("Checked, never stored"),
    cardHolder: z.string().trim().min(1).max(100).optional(),
    billingAddress: addressSchema.optional(),
  })
  .strict();

export const bankInputSchema = z
  .object({
    type: z.literal("BANK_ACCOUNT"),
    iban: z.string().max(42).optional(),
    bankAccountNumber: z.string().max(34).optional(),
    accountHolderName: z.string().trim().min(1).max(100),
    bankSwiftCode: z
      .string()
      .regex(/^[A-Z0-9]{8}([A-Z0-9]{3})?$/, "a BIC/SWIFT code")
      .optional(),
    bankRoutingNumber: z
      .string()
      .regex(/^\d{9}$/, "9 digits")
      .optional(),
  })
  .strict();

const cryptoInputSchema = z
  .object({
    type: z.literal("CRYPTO"),
    currency: z.string().regex(/^[A-Z0-9]{2,12}$/),
    address: z.string().regex(/^[A-Za-z0-9:]{20,128}$/, "a chain address"),
  })
  .strict();

const methodSchema = z
  .object({
    id: z.string(),
    type: z.enum(["CREDIT_CARD", "BANK_ACCOUNT", "CRYPTO"]),
    last4: z.string().nullable(),
    bin: z.string().nullable().optional(),
    brand: z.string().nullable().optional(),
    expirationMonth: z.number().int().nullable().optional(),
    expirationYear: z.number().int().nullable().optional(),
    bankCode: z.string().nullable().optional(),
    currency: z.string().nullable().optional(),
    createdAt: z.string(),
  })
  .meta({ id: "PaymentInformation", description: "Cards come back as last4, BIN, brand and expiry only." });

export function showMethod(m: PaymentMethod) {
  const base = { id: m.id, type: m.type, last4: m.last4, createdAt: m.createdAt.toISOString() };
  if (m.type === "CREDIT_CARD")
    return {
      ...base,
      bin: m.bin,
      brand: m.brand,
      expirationMonth: m.expirationMonth,
      expirationYear: m.expirationYear,
    };
  if (m.type === "BANK_ACCOUNT") return { ...base, bankCode: m.bankCode };
  return { ...base, currency: m.currency };
}

const userParams = z.object({ userId: userIdSchema });

/** A user's saved payment methods. */
export const paymentInformationRoutes: FastifyPluginAsyncZod<PlatformRouteOptions> = async (
  app,
  { services, authenticate },
) => {
  const { paymentMethods, users, database } = services;

  app.get(
    "/users/:userId/payment-information",
    {
      preValidation: authenticate({ allowUserToken: true }),
      schema: {
        tags: ["platform: wallets"],
        summary: "The user's saved payment methods",
        security: signedSecurity,
        params: userParams,
        response: {
          200: z.object({ records: z.array(methodSchema) }),
          ...errorResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request) => {
      assertTokenUser(request, request.params.userId);
      const clientId = clientOf(request).id;
      await users.get(database.db, clientId, request.params.userId);
      return { records: (await paymentMethods.list(clientId, request.params.userId)).map(showMethod) };
    },
  );

  app.post(
    "/users/:userId/payment-information",
    {
      preValidation: authenticate({ allowUserToken: true }),
      schema: {
        tags: ["platform: wallets"],
        summary: "Save a card, bank account or crypto address",
        description:
          "Card numbers pass a Luhn check and are encrypted at rest; the CVV is checked for form and never stored. A card or account already saved by another user of the client is a 409; the same user saving it again gets the saved one (200). The sandbox's test cards are anyone's in a sandbox client (each user gets a card of their own) and no live client's (400). A BLOCKED or INACTIVE user is given none (403).",
        security: signedSecurity,
        params: userParams,
        body: z
          .discriminatedUnion("type", [cardInputSchema, bankInputSchema, cryptoInputSchema])
          .meta({ id: "PaymentInformationRequest" }),
        response: { 200: methodSchema, 201: methodSchema, ...errorResponses(400, 401, 403, 404, 409, 429) },
      },
    },
    async (request, reply) => {
      assertTokenUser(request, request.params.userId);
      const clientId = clientOf(request).id;
      const { cvv: _cvv, ...input } = request.body as typeof request.body & { cvv?: string };
      const { method, created } = await paymentMethods.add(clientId, request.params.userId, input);
      reply.code(created ? 201 : 200);
      return showMethod(method);
    },
  );
};
