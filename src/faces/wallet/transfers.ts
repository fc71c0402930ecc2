import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiError, errorResponses } from "../../http/errors.ts";
import type { RequestContext } from "../../lib/context.ts";
import { formatAmount, parseAmount } from "../../lib/money.ts";
import type { Session } from "../../modules/logins/service.ts";
import { SmartCards } from "../../modules/smart-cards/service.ts";
import { type Template, Templates } from "../../modules/templates/service.ts";
import { walletFigures } from "../../modules/wallets/service.ts";
import { contextOf, guard, sessionOf, walletSecurity } from "./access-control.ts";
import type { MoneyRouteOptions } from "./money.ts";
import { WalletOperations, walletStatus } from "./operations.ts";
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

/** Transfers between users (to an account or a smart card), templates, smart cards. */
export const transferRoutes: FastifyPluginAsyncZod<MoneyRouteOptions> = async (
  app,
  { services, idempotent },
) => {
  const ops = new WalletOperations(services);
  const cards = new SmartCards(services.database.db, services.sealer);
  const templates = new Templates(services.database.db);
  const owner = (session: Session) => ({ clientId: session.clientId, userId: session.userId });
  const scaleOf = (clientId: string, currency: string) =>
    services.transactions.quotes.scaleOf(clientId, currency);
  async function showTemplate(clientId: string, t: Template) {
    return {
      id: t.id,
      type: "TRANSFER" as const,
      name: t.name,
      description: t.description,
      amount: t.amount === null ? null : formatAmount(t.amount, await scaleOf(clientId, t.currency)),
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
  const tags = ["wallet: transfers"];

  /** The account a payment tool's destination names: a serial, or a smart card's number. */
  async function destinationOf(session: Session, type: "COIN" | "SMART_CARD", value: string) {
    if (type === "COIN") {
      if (!/^[0-9]{12,32}$/.test(value))
        throw ApiError.invalid("paymentTool.destValue", "an account serial (digits)");
      return ops.coin(session, value, { own: false, field: "paymentTool.destValue" });
    }
    const card = await cards.findByNumber(session.clientId, value);
    if (!card?.active)
      throw new ApiError("NOT_FOUND", "no active smart card with this number", {
        errors: [{ field: "paymentTool.destValue", message: "no such smart card" }],
      });
    const coin = await services.wallets.bySerial(session.clientId, card.serial);
    if (!coin) throw new ApiError("NOT_FOUND", "the smart card's account was not found");
    return coin;
  }

  /** One transfer: the sender's own account → another user's account, priced by the TRANSFER profile. */
  async function transfer(
    session: Session,
    context: RequestContext,
    tool: { type: "COIN" | "SMART_CARD"; srcValue: string; destValue: string },
    amount: string | number,
    more: { description?: string | undefined; templateId?: string | undefined },
  ) {
    if (!/^[0-9]{12,32}$/.test(tool.srcValue))
      throw ApiError.invalid("paymentTool.srcValue", "an account serial (digits)");
    const source = await ops.coin(session, tool.srcValue, { own: true, field: "paymentTool.srcValue" });
    const destination = await destinationOf(session, tool.type, tool.destValue);
    if (destination.account.currency !== source.account.currency)
      throw ApiError.invalid(
        "paymentTool.destValue",
        `the accounts hold different currencies (${source.account.currency} → ${destination.account.currency}); a transfer keeps its currency`,
      );
    if (destination.account.id === source.account.id)
      throw ApiError.invalid("paymentTool.destValue", "the same account");
    const { commission, scale, currency } = await ops.calculate(
      session.clientId,
      "TRANSFER",
      source.account.currency,
      amount,
    );
    // Known short before anything is recorded: a 402 at once (the ledger still decides, under its
    // lock, for transfers racing each other), rather than a transfer that waits in review for money
    // that is not there.
    if (walletFigures(source.account).availableBalance < commission.senderAmount)
      throw new ApiError(
        "INSUFFICIENT_FUNDS",
        "the account's available balance is too low for amount + commission",
      );
    return services.transactions.transfer(
      {
        kind: "TRANSFER",
        clientId: session.clientId,
        userId: session.userId,
        requestId: ops.requestId(session, context.requestId),
        amount: formatAmount(ops.coreAmount("TRANSFER", commission), scale),
        currency,
        destinationUserId: destination.account.ownerId ?? "",
        sourceWalletId: source.account.id,
        destinationWalletId: destination.account.id,
        fee: commission.fee,
        process: ops.processOf("TRANSFER", commission, scale, {
          coinSerial: source.serial,
          recipientSerial: destination.serial,
          paymentTool: tool.type,
          ...(tool.type === "SMART_CARD" ? { destValue: maskNumber(tool.destValue) } : {}),
          ...(more.description ? { description: more.description } : {}),
          ...(more.templateId ? { templateId: more.templateId } : {}),
        }),
      },
      context.actor,
    );
  }

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
      const t = await transfer(
        sessionOf(request),
        contextOf(request),
        request.body.paymentTool,
        request.body.amount,
        {
          description: request.body.description,
        },
      );
      return { process: { id: t.requestId, requestIdentifier: Number(t.number), status: walletStatus(t) } };
    },
  );

  // ——— templates ———

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
      const t = await ops.byId(session, request.params.businessProcessId);
      const process = t.process as {
        operation?: string;
        coinSerial?: string;
        recipientSerial?: string;
        paymentTool?: string;
      } | null;
      if (
        t.userId !== session.userId ||
        process?.operation !== "TRANSFER" ||
        !process.coinSerial ||
        !process.recipientSerial
      )
        throw new ApiError("NOT_FOUND", `no transfer ${request.params.businessProcessId} of yours to save`);
      // A template keeps the account serial even when the transfer went to a smart card: the card number is not kept in the clear.
      const template = await templates.save(owner(session), {
        name: request.body.name,
        description: request.body.description,
        srcValue: process.coinSerial,
        destValue: process.recipientSerial,
        currency: t.currency,
        amount: parseAmount((t.process as { transactionAmount?: string }).transactionAmount ?? "0", t.scale),
        sourceRequest: t.requestId,
      });
      reply.code(201);
      return { template: await showTemplate(session.clientId, template) };
    },
  );

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
      const found = await templates.list(
        owner(session),
        request.body.filter?.paymentToolType,
        pageWindow(request.body),
      );
      return toPageAnswer(
        await Promise.all(found.templates.map((t) => showTemplate(session.clientId, t))),
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
      const session = sessionOf(request);
      const template = await templates.get(owner(session), request.params.transferTemplateId);
      const { commission, scale, currency } = await ops.calculate(
        session.clientId,
        "TRANSFER",
        template.currency,
        request.body.amount,
      );
      return ops.calculation(commission, scale, currency);
    },
  );

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
      const session = sessionOf(request);
      const template = await templates.get(owner(session), request.params.transferTemplateId);
      const t = await transfer(
        session,
        contextOf(request),
        { type: "COIN", srcValue: template.srcValue, destValue: template.destValue },
        request.body.amount,
        { description: template.description ?? undefined, templateId: template.id },
      );
      return {
        businessProcessId: t.requestId,
        businessProcessStatus: walletStatus(t),
        templateId: template.id,
      };
    },
  );

  // ——— smart cards ———

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
    async (request) => {
      const session = sessionOf(request);
      return { records: await cards.list(session.clientId, session.userId) };
    },
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
      const session = sessionOf(request);
      const coin = await ops.coin(session, request.body.associatedCoinSerial, {
        own: true,
        field: "associatedCoinSerial",
      });
      const smartCard = await cards.issue(contextOf(request), session.userId, coin, request.body.name);
      reply.code(201);
      return { smartCard };
    },
  );
};

export function maskNumber(number: string): string {
  const digits = number.replace(/\D/g, "");
  return digits.length > 10
    ? `${digits.slice(0, 6)}${"*".repeat(digits.length - 10)}${digits.slice(-4)}`
    : "****";
}
