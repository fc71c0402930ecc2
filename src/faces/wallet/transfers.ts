import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorResponses } from "../../http/errors.ts";
import { contextOf, guard, sessionOf, walletSecurity } from "../../http/wallet-session.ts";
import { formatAmount } from "../../lib/money.ts";
import type { Template } from "../../modules/templates/service.ts";
import { walletStatus } from "../../modules/wallet-operations/process.ts";
import type { Services } from "../../services.ts";
import {
  commissionAnswer,
  idempotencyHeaders,
  money,
  moneyInput,
  pageAnswer,
  pageBody,
  pageWindow,
  serialInput,
  toPageAnswer,
} from "./schemas.ts";
import { calculation, type MoneyRouteOptions, type WalletApp } from "./views.ts";

const toolType = z.enum(["COIN", "SMART_CARD"]);

const templateSchema = z
  .object({
    id: z.string(),
    type: z.literal("TRANSFER"),
    name: z.string(),
    description: z.string().nullable(),
    amount: money.nullable(),
    senderCoin: z.string(),
    recipientCoin: z.string().nullable(),
    paymentToolDetails: z.object({
      type: toolType,
      srcValue: z.string(),
      destValue: z.string(),
      currency: z.string(),
    }),
    createdAt: z.string(),
  })
  .meta({ id: "WalletTransferTemplate" });

const smartCardSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    active: z.boolean(),
    cardNumber: z.string(),
    expirationDate: z.string(),
    expirationStatus: z.enum(["ACTIVE", "EXPIRED"]),
    associatedCoinSerial: z.string(),
    currencyCode: z.string(),
    availableAmount: money,
  })
  .meta({ id: "WalletSmartCard" });

const tags = ["wallet: transfers"];

/** Transfers between users (to an account or a smart card), templates, smart cards. */
export const transferRoutes: FastifyPluginAsyncZod<MoneyRouteOptions> = async (app, options) => {
  transfer(app, options);
  saveTemplate(app, options.services);
  templates(app, options.services);
  executeTemplate(app, options);
  smartCards(app, options.services);
};

async function showTemplate(services: Services, clientId: string, t: Template) {
  const scale = t.amount === null ? 0 : await services.transactions.quotes.scaleOf(clientId, t.currency);
  return {
    id: t.id,
    type: "TRANSFER" as const,
    name: t.name,
    description: t.description,
    amount: t.amount === null ? null : formatAmount(t.amount, scale),
    senderCoin: t.srcValue,
    recipientCoin: t.toolType === "COIN" ? t.destValue : null,
    paymentToolDetails: {
      type: t.toolType,
      srcValue: t.srcValue,
      destValue: t.destValue,
      currency: t.currency,
    },
    createdAt: t.createdAt.toISOString(),
  };
}

function transfer(app: WalletApp, { services, idempotent }: MoneyRouteOptions) {
  app.post(
    "/transfers",
    {
      preValidation: guard(services, "own"),
      preHandler: idempotent.preHandler,
      onSend: idempotent.onSend,
      schema: {
        tags,
        summary: "Send money from one of the caller's accounts to another user's account or smart card",
        description:
          "Same currency only (400); 402 when amount + commission do not fit the available balance.",
        security: walletSecurity,
        headers: idempotencyHeaders,
        body: z
          .object({
            paymentTool: z
              .object({
                type: toolType,
                srcValue: z.string().min(1).max(64),
                destValue: z.string().min(1).max(64),
              })
              .strict(),
            amount: moneyInput,
            description: z.string().max(500).optional(),
          })
          .strict()
          .meta({
            example: {
              paymentTool: { type: "COIN", srcValue: "4412345678901234", destValue: "4498765432109876" },
              amount: "30.00",
              description: "Lunch",
            },
          }),
        response: {
          200: z.object({
            process: z.object({ id: z.string(), requestIdentifier: z.number().int(), status: z.string() }),
          }),
          ...errorResponses(400, 401, 402, 403, 404, 409, 422),
        },
      },
    },
    async (request) => {
      const { paymentTool, amount, description } = request.body;
      const t = await services.walletTransfers.transfer(
        sessionOf(request),
        contextOf(request),
        paymentTool,
        amount,
        { description },
      );
      return { process: { id: t.requestId, requestIdentifier: Number(t.number), status: walletStatus(t) } };
    },
  );
}

function saveTemplate(app: WalletApp, services: Services) {
  app.post(
    "/templates/transfer/operation/:businessProcessId",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags,
        summary: "Save one of the caller's past transfers as a template",
        security: walletSecurity,
        params: z.object({ businessProcessId: z.string().regex(/^[A-Za-z0-9_-]{3,255}$/) }),
        body: z
          .object({ name: z.string().trim().min(1).max(100), description: z.string().max(500).optional() })
          .strict(),
        response: { 201: z.object({ template: templateSchema }), ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const session = sessionOf(request);
      const template = await services.walletTransfers.saveTemplate(
        session,
        request.params.businessProcessId,
        request.body,
      );
      reply.code(201);
      return { template: await showTemplate(services, session.clientId, template) };
    },
  );
}

function templates(app: WalletApp, services: Services) {
  const ops = services.walletTransfers;
  app.post(
    "/templates/transfer/view",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags,
        summary: "Page through the caller's transfer templates",
        security: walletSecurity,
        body: pageBody(z.object({ paymentToolType: toolType.optional() }).strict()),
        response: { 200: pageAnswer(templateSchema), ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const session = sessionOf(request);
      const found = await ops.templates(
        session,
        request.body.filter?.paymentToolType,
        pageWindow(request.body),
      );
      return toPageAnswer(
        await Promise.all(found.templates.map((t) => showTemplate(services, session.clientId, t))),
        found.total,
        request.body,
      );
    },
  );
  app.post(
    "/templates/transfer/:transferTemplateId/calculate",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags,
        summary: "The commission of a transfer from a template",
        security: walletSecurity,
        params: z.object({ transferTemplateId: z.uuid() }),
        body: z.object({ amount: moneyInput }).strict(),
        response: { 200: commissionAnswer, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const { commission, scale, currency } = await ops.templateCommission(
        sessionOf(request),
        request.params.transferTemplateId,
        request.body.amount,
      );
      return calculation(commission, scale, currency);
    },
  );
}

function executeTemplate(app: WalletApp, { services, idempotent }: MoneyRouteOptions) {
  app.post(
    "/templates/transfer/:transferTemplateId/execute",
    {
      preValidation: guard(services, "own"),
      preHandler: idempotent.preHandler,
      onSend: idempotent.onSend,
      schema: {
        tags,
        summary: "Send a transfer from a template",
        security: walletSecurity,
        headers: idempotencyHeaders,
        params: z.object({ transferTemplateId: z.uuid() }),
        body: z.object({ amount: moneyInput }).strict(),
        response: {
          200: z.object({
            businessProcessId: z.string(),
            businessProcessStatus: z.string(),
            templateId: z.string(),
          }),
          ...errorResponses(400, 401, 402, 403, 404, 409, 422),
        },
      },
    },
    async (request) => {
      const { transaction, template } = await services.walletTransfers.executeTemplate(
        sessionOf(request),
        contextOf(request),
        request.params.transferTemplateId,
        request.body.amount,
      );
      return {
        businessProcessId: transaction.requestId,
        businessProcessStatus: walletStatus(transaction),
        templateId: template.id,
      };
    },
  );
}

function smartCards(app: WalletApp, services: Services) {
  const ops = services.walletTransfers;
  app.get(
    "/smart-cards/my",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags,
        summary: "The caller's smart cards (numbers masked)",
        security: walletSecurity,
        response: { 200: z.object({ records: z.array(smartCardSchema) }), ...errorResponses(401, 403) },
      },
    },
    async (request) => ({ records: await ops.smartCards(sessionOf(request)) }),
  );
  app.post(
    "/smart-cards/my",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags,
        summary: "Issue a smart card on one of the caller's accounts (the full number is shown this once)",
        security: walletSecurity,
        body: z
          .object({ name: z.string().trim().min(1).max(100), associatedCoinSerial: serialInput })
          .strict(),
        response: { 201: z.object({ smartCard: smartCardSchema }), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const smartCard = await ops.issueSmartCard(
        sessionOf(request),
        contextOf(request),
        request.body.associatedCoinSerial,
        request.body.name,
      );
      reply.code(201);
      return { smartCard };
    },
  );
}
