import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiError, errorResponses } from "../../http/errors.ts";
import { offsetOf, pageOf, pageQuery, toPage } from "../../http/pagination.ts";
import { PLATFORM_ADMIN } from "../../lib/context.ts";
import { CLIENT_CHOSEN_ID } from "../../lib/ids.ts";
import { findClient } from "../../modules/clients/service.ts";
import type { OneClickRow } from "../../modules/oneclick/service.ts";
import { stateOf } from "../../modules/oneclick/statuses.ts";
import type { Services } from "../../services.ts";

/**
 * Staff's side of the 1-Click flow: a client's 1-Click transactions by state, and what to do with
 * an INCONSISTENT one (the payment happened, the operator never accepted the transfer): retry the
 * transfer (the same step, the same txId) or mark it resolved with a note (the operator credited it
 * by other means); and what to do with a deposit monitoring held for review (350): approve it (the
 * flow goes on to authorize, pay and transfer) or deny it. All audited with the admin as the actor.
 */

const STATES = [
  "SUCCESSFUL",
  "REGISTERED",
  "PROCESSING",
  "WAITING_INPUT",
  "WAITING_APPROVAL",
  "INCONSISTENT",
  "FAILED",
  "CANCELLED",
] as const;

const clientId = z.string().regex(CLIENT_CHOSEN_ID).meta({ example: "acme" });
const txId = z
  .string()
  .regex(/^\d{1,18}$/, "a 1-Click txId")
  .meta({ example: "100001" });

const view = z
  .object({
    txId: z.string(),
    txRefId: z.string(),
    txState: z.enum(STATES),
    statusCode: z.number().int(),
    statusName: z.string(),
    identityProvider: z.string(),
    userId: z.string().nullable(),
    amount: z.string().nullable(),
    currency: z.string().nullable(),
    fee: z.string().nullable(),
    merchantTxId: z.string().nullable(),
    errCode: z.string().nullable(),
    errMsg: z.string().nullable(),
    resolution: z.unknown().nullable(),
    monitoring: z
      .object({ status: z.string(), risk: z.string(), reasons: z.array(z.string()) })
      .nullable()
      .meta({ description: "Monitoring's result on the deposit (why it waits for review)" }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: "OneClickTransaction" });

export const adminOneClickRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (
  app,
  { services },
) => {
  const admin = { tags: ["admin"], security: [{ adminBasic: [] }] };
  const db = services.database.db;
  const flow = services.oneClick;

  async function show(row: OneClickRow) {
    const amounts = await flow.amountsOf(row);
    const amount = amounts?.txAmount ?? null;
    const fee = amounts?.fee ?? null;
    return {
      txId: row.tx_id,
      txRefId: `${row.client_id}A${row.tx_id}`,
      txState: stateOf(row.status_code),
      statusCode: row.status_code,
      statusName: row.status_name,
      identityProvider: row.identity_provider,
      userId: row.user_id,
      amount,
      currency: row.currency,
      fee,
      merchantTxId: row.merchant_tx_id,
      errCode: row.err_code,
      errMsg: row.err_msg,
      resolution: typeof row.resolution === "string" ? JSON.parse(row.resolution) : (row.resolution ?? null),
      monitoring: (typeof row.monitoring === "string"
        ? JSON.parse(row.monitoring)
        : (row.monitoring ?? null)) as {
        status: string;
        risk: string;
        reasons: string[];
      } | null,
      createdAt: new Date(row.created_at).toISOString(),
      updatedAt: new Date(row.updated_at).toISOString(),
    };
  }

  async function clientOf(id: string) {
    if (!(await findClient(db, id))) throw ApiError.notFound(`client ${id}`);
  }

  app.get(
    "/clients/:clientId/oneclick/transactions",
    {
      schema: {
        ...admin,
        summary: "A client's 1-Click transactions, newest first (filter: state, e.g. INCONSISTENT)",
        params: z.object({ clientId }),
        querystring: pageQuery.extend({ state: z.enum(STATES).optional() }),
        response: { 200: pageOf(view), ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => {
      await clientOf(request.params.clientId);
      const { rows, total } = await flow.list(
        request.params.clientId,
        { state: request.query.state },
        offsetOf(request.query),
      );
      return toPage(await Promise.all(rows.map(show)), total, request.query);
    },
  );

  app.get(
    "/clients/:clientId/oneclick/transactions/:txId",
    {
      schema: {
        ...admin,
        summary: "One 1-Click transaction with its steps (callbacks, payment)",
        params: z.object({ clientId, txId }),
        response: {
          200: view.extend({
            steps: z.array(
              z.object({
                id: z.string(),
                kind: z.string(),
                status: z.string(),
                attempts: z.number().int(),
                maxAttempts: z.number().int(),
                lastError: z.string().nullable(),
              }),
            ),
          }),
          ...errorResponses(400, 401, 404),
        },
      },
    },
    async (request) => {
      await clientOf(request.params.clientId);
      const row = await flow.ofClient(request.params.clientId, request.params.txId);
      const steps = await flow.stepsOf(row);
      return {
        ...(await show(row)),
        steps: steps.map((s) => ({
          id: s.id,
          kind: s.kind,
          status: s.status,
          attempts: s.attempts,
          maxAttempts: s.maxAttempts,
          lastError: s.lastError,
        })),
      };
    },
  );

  app.post(
    "/clients/:clientId/oneclick/transactions/:txId/retry",
    {
      schema: {
        ...admin,
        summary: "Retry an INCONSISTENT transaction's failed step (the transfer callback, on the same txId)",
        params: z.object({ clientId, txId }),
        response: { 200: view, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request) => {
      await clientOf(request.params.clientId);
      return show(await flow.retry(request.params.clientId, request.params.txId, PLATFORM_ADMIN));
    },
  );

  app.post(
    "/clients/:clientId/oneclick/transactions/:txId/resolve",
    {
      schema: {
        ...admin,
        summary: "Mark an INCONSISTENT transfer resolved (the operator credited the user by other means)",
        params: z.object({ clientId, txId }),
        body: z.object({ note: z.string().trim().min(3).max(1000) }).strict(),
        response: { 200: view, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request) => {
      await clientOf(request.params.clientId);
      return show(
        await flow.resolve(request.params.clientId, request.params.txId, request.body.note, PLATFORM_ADMIN),
      );
    },
  );

  app.post(
    "/clients/:clientId/oneclick/transactions/:txId/review",
    {
      schema: {
        ...admin,
        summary:
          "Decide on a deposit monitoring held for review (350): APPROVE lets the money move, DENY refuses it",
        params: z.object({ clientId, txId }),
        body: z
          .object({
            decision: z.enum(["APPROVE", "DENY"]),
            note: z.string().trim().min(3).max(1000).meta({ example: "source of funds checked" }),
          })
          .strict(),
        response: { 200: view, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request) => {
      await clientOf(request.params.clientId);
      const { decision, note } = request.body;
      return show(
        await flow.review(request.params.clientId, request.params.txId, decision, note, PLATFORM_ADMIN),
      );
    },
  );
};
