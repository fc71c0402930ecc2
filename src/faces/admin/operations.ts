import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiError, errorResponses } from "../../http/errors.ts";
import { offsetOf, pageOf, pageQuery, toPage } from "../../http/pagination.ts";
import { PLATFORM_ADMIN } from "../../lib/context.ts";
import { CLIENT_CHOSEN_ID } from "../../lib/ids.ts";
import { listAudit } from "../../modules/audit/service.ts";
import { STEP_STATUSES, type Step } from "../../modules/steps/runner.ts";
import type { Services } from "../../services.ts";

const clientId = z.string().regex(CLIENT_CHOSEN_ID).meta({ example: "acme" });

const stepSchema = z
  .object({
    id: z.uuid(),
    clientId: z.string(),
    kind: z.string().meta({ example: "BANK_PAYOUT" }),
    processType: z.string(),
    processId: z.string().describe("The transaction's request id"),
    status: z.enum(STEP_STATUSES),
    attempts: z.number().int(),
    maxAttempts: z.number().int(),
    nextAttemptAt: z.string(),
    lastError: z.string().nullable(),
    createdAt: z.string(),
    finishedAt: z.string().nullable(),
  })
  .meta({ id: "ProviderStep" });

const showStep = (s: Step) => ({
  id: s.id,
  clientId: s.clientId,
  kind: s.kind,
  processType: s.processType,
  processId: s.processId,
  status: s.status,
  attempts: s.attempts,
  maxAttempts: s.maxAttempts,
  nextAttemptAt: s.nextAttemptAt.toISOString(),
  lastError: s.lastError,
  createdAt: s.createdAt.toISOString(),
  finishedAt: s.finishedAt?.toISOString() ?? null,
});

const reconciliationSchema = z
  .object({
    ok: z.boolean(),
    checkedAt: z.string(),
    checked: z.number().int().describe("Transactions compared with their providers' records"),
    inFlight: z.number().int().describe("Transactions skipped: a provider call of theirs is under way"),
    mismatches: z.array(
      z.object({
        clientId: z.string(),
        provider: z.string(),
        reference: z.string().nullable(),
        providerStatus: z.string(),
        providerAmount: z.string().describe("What the provider moved, in minor units (+ in, − out)"),
        ledgerAmount: z
          .string()
          .describe("What the ledger booked on the rail's transit account, in minor units"),
        requestId: z.string(),
      }),
    ),
  })
  .meta({ id: "ReconciliationReport" });

/**
 * Operating the core: reconciliation with the providers, the provider steps (failed ones can be
 * retried), and a transaction's audit trail.
 */
export const adminOperationsRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (
  app,
  { services },
) => {
  const admin = { tags: ["admin"], security: [{ adminBasic: [] }] };
  const db = services.database.db;

  app.get(
    "/reconciliation",
    {
      schema: {
        ...admin,
        summary: "Compare the providers' records with the ledger",
        description:
          "Every card charge and refund, bank payout and incoming transfer against the legs its transaction booked on the rail's transit account.",
        querystring: z.object({ clientId: clientId.optional() }).strict(),
        response: { 200: reconciliationSchema, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const report = await services.reconcile(request.query.clientId);
      if (!request.query.clientId) services.metrics?.recordReconciliation(report.mismatches.length);
      return report;
    },
  );

  app.get(
    "/steps",
    {
      schema: {
        ...admin,
        summary: "Provider steps, newest first",
        description: "Filter by client and status; FAILED steps never got an answer and wait for staff.",
        querystring: pageQuery
          .extend({
            clientId: clientId.optional(),
            status: z.enum(STEP_STATUSES).optional(),
          })
          .strict(),
        response: { 200: pageOf(stepSchema), ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const { clientId: cid, status } = request.query;
      const { steps, total } = await services.steps.list({ clientId: cid, status }, offsetOf(request.query));
      return toPage(steps.map(showStep), total, request.query);
    },
  );

  app.post(
    "/steps/:stepId/retry",
    {
      schema: {
        ...admin,
        summary: "Try a FAILED step again from its first attempt",
        description:
          "The same path as a face's own staff retry: the step's process is told in the same transaction (a 1-Click flow left INCONSISTENT is processing again). A step whose failure ended its process for good answers 409.",
        params: z.object({ stepId: z.uuid() }),
        response: { 200: stepSchema, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request) => {
      const step = await services.steps.retry(undefined, request.params.stepId, PLATFORM_ADMIN);
      if (!step) throw new ApiError("NOT_FOUND", "no FAILED step with this id");
      await services.steps.run(step.id);
      const [now] = (
        await services.steps.stepsOf(db, step.clientId, step.processType, step.processId)
      ).filter((s) => s.id === step.id);
      return showStep(now ?? step);
    },
  );

  app.post(
    "/steps/:stepId/resolve",
    {
      schema: {
        ...admin,
        summary: "Resolve a FAILED step with what the provider said",
        description:
          "For a step that never got an answer, after asking the provider: `EXECUTED` (the call was carried out; a payout needs the bank's `reference`) or `NOT_EXECUTED` (it was not: a payout's hold is released, the withdrawal ends ERROR). Kinds that can only be retried answer 409. The decision is audited.",
        params: z.object({ stepId: z.uuid() }),
        body: z
          .object({
            outcome: z.enum(["EXECUTED", "NOT_EXECUTED"]),
            note: z
              .string()
              .trim()
              .min(1)
              .max(500)
              .meta({ example: "Bank support: payout never received (ticket 4411)" }),
            reference: z.string().trim().min(1).max(100).optional().meta({ example: "sbxpo_0193…" }),
          })
          .strict(),
        response: { 200: stepSchema, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request) => {
      const step = await services.steps.resolve(request.params.stepId, request.body, PLATFORM_ADMIN);
      if (!step) throw new ApiError("NOT_FOUND", "no FAILED step with this id");
      for (const open of await services.steps.stepsOf(db, step.clientId, step.processType, step.processId))
        if (open.status === "PENDING") await services.steps.run(open.id);
      return showStep(step);
    },
  );

  app.get(
    "/clients/:clientId/transactions/:requestId/trail",
    {
      schema: {
        ...admin,
        summary: "A transaction's audit trail and provider steps",
        params: z.object({ clientId, requestId: z.string().regex(CLIENT_CHOSEN_ID) }),
        response: {
          200: z.object({
            audit: z.array(
              z.object({
                action: z.string(),
                actor: z.object({ kind: z.string(), id: z.string().nullable() }),
                before: z.unknown(),
                after: z.unknown(),
                requestId: z.string().nullable(),
                createdAt: z.string(),
              }),
            ),
            steps: z.array(stepSchema),
          }),
          ...errorResponses(400, 401, 404),
        },
      },
    },
    async (request) => {
      const { clientId: cid, requestId } = request.params;
      const steps = await services.transactions.stepsOf(cid, requestId);
      const audit = await listAudit(db, cid, "transaction", requestId);
      return {
        audit: audit.map((a) => ({
          action: a.action,
          actor: { kind: a.actor.kind, id: a.actor.id },
          before: a.before ?? null,
          after: a.after ?? null,
          requestId: a.requestId,
          createdAt: a.createdAt.toISOString(),
        })),
        steps: steps.map(showStep),
      };
    },
  );
};
