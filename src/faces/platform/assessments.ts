import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiError, errorResponses } from "../../http/errors.ts";
import { assertTokenUser, clientOf } from "../../http/platform-auth.ts";
import { parsePositiveAmount } from "../../lib/money.ts";
import { TRANSACTION_TYPES } from "../../modules/kyc/rules.ts";
import { ASSESSMENT_STATUSES } from "../../modules/kyc/service.ts";
import { userInfoSchema } from "../../modules/users/schemas.ts";
import {
  type PlatformRouteOptions,
  requestIdHeaders,
  signedSecurity,
  userIdSchema,
  webhooksDisabled,
} from "./schemas.ts";

const amount = z
  .union([z.string().max(60), z.number()])
  .meta({ example: "100.50", description: "Decimal string in major units (a JSON number is accepted)" });

const assessmentSchema = z
  .object({
    requestId: z.string(),
    status: z.enum(ASSESSMENT_STATUSES),
    tier: z.number().int(),
    refusalReason: z.string().nullable(),
    date: z.string(),
  })
  .meta({ id: "Assessment" });

const validationSchema = z
  .object({
    type: z.enum(["NO_ERROR", "MIN_INFO_MISSING", "MIN_ASSESSMENT_MISSING"]),
    code: z.number().int(),
    fields: z.array(z.string()).optional(),
    assessment: z.object({ requiredTier: z.number().int(), currentTier: z.number().int() }).optional(),
  })
  .meta({ id: "ValidationResult" });

/** KYC: start an assessment, read the latest; validate a transaction before attempting it. */
export const assessmentRoutes: FastifyPluginAsyncZod<PlatformRouteOptions> = async (
  app,
  { services, authenticate, idempotent },
) => {
  const { kyc } = services;

  app.post(
    "/users/:userId/assessments",
    {
      preValidation: authenticate({ allowUserToken: true }),
      preHandler: idempotent.preHandler,
      onSend: idempotent.onSend,
      schema: {
        tags: ["platform: kyc"],
        summary: "Start a KYC assessment",
        description:
          "Answers 202 at once; the result follows on the webhook (USER_ASSESSMENT: PENDING, then the final status). Optional body: more information (merged into the user) and the intended transaction's USD value.",
        security: signedSecurity,
        headers: requestIdHeaders,
        params: z.object({ userId: userIdSchema }),
        body: userInfoSchema
          .extend({ intendedTransactionUsdValue: amount.optional() })
          .strict()
          .nullish()
          .meta({ id: "StartAssessmentRequest" }),
        response: {
          202: z
            .object({ requestId: z.string(), status: z.literal("PENDING") })
            .meta({ id: "AssessmentStarted" }),
          ...errorResponses(400, 401, 403, 404, 409, 429),
        },
      },
    },
    async (request, reply) => {
      assertTokenUser(request, request.params.userId);
      const { intendedTransactionUsdValue, ...info } = request.body ?? {};
      let intendedUsdCents: bigint | undefined;
      if (intendedTransactionUsdValue !== undefined) {
        try {
          intendedUsdCents = parsePositiveAmount(intendedTransactionUsdValue, 2);
        } catch (error) {
          throw ApiError.invalid("intendedTransactionUsdValue", (error as Error).message);
        }
      }
      const assessment = await kyc.start({
        clientId: clientOf(request).id,
        userId: request.params.userId,
        requestId: request.headers["x-request-id"],
        info: Object.keys(info).length > 0 ? info : undefined,
        intendedUsdCents,
        suppressWebhook: webhooksDisabled(request),
      });
      reply.code(202);
      return { requestId: assessment.requestId, status: "PENDING" as const };
    },
  );

  app.get(
    "/users/:userId/assessments",
    {
      preValidation: authenticate({ allowUserToken: true }),
      schema: {
        tags: ["platform: kyc"],
        summary: "The user's latest assessment",
        security: signedSecurity,
        params: z.object({ userId: userIdSchema }),
        response: { 200: assessmentSchema, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      assertTokenUser(request, request.params.userId);
      const latest = await kyc.latest(clientOf(request).id, request.params.userId);
      if (!latest) throw ApiError.notFound(`an assessment of user ${request.params.userId}`);
      return {
        requestId: latest.requestId,
        status: latest.status,
        tier: latest.tier,
        refusalReason: latest.refusalReason,
        date: latest.date.toISOString(),
      };
    },
  );

  app.post(
    "/transactions/validations",
    {
      preValidation: authenticate({ allowUserToken: true }),
      schema: {
        tags: ["platform: kyc"],
        summary: "May this user make this transaction?",
        description:
          "200 with NO_ERROR (code 0), MIN_INFO_MISSING (1001, with the missing `fields`) or MIN_ASSESSMENT_MISSING (1002, with the required and current tiers): the bodies a transaction gets with a 422. A user who is BLOCKED or INACTIVE may make none: 403 FORBIDDEN (4001) naming the status.",
        security: signedSecurity,
        headers: requestIdHeaders.partial(),
        body: z
          .object({
            transactionType: z.enum(TRANSACTION_TYPES),
            userId: userIdSchema,
            amount,
            currency: z.string().regex(/^[A-Z0-9]{2,12}$/),
          })
          .loose()
          .meta({ id: "ValidationRequest", description: "The transaction's body, with its transactionType" }),
        response: { 200: validationSchema, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      assertTokenUser(request, request.body.userId);
      return kyc.validateRequest({
        clientId: clientOf(request).id,
        userId: request.body.userId,
        type: request.body.transactionType,
        amount: request.body.amount,
        currency: request.body.currency,
        scenarioId: request.headers["x-scenario-id"],
      });
    },
  );
};
