import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorResponses } from "../../http/errors.ts";
import { offsetOf, pageOf, pageQuery, toPage } from "../../http/pagination.ts";
import { assertTokenUser, clientOf } from "../../http/platform-auth.ts";
import { formatAmount } from "../../lib/money.ts";
import type { Account } from "../../modules/ledger/types.ts";
import { entryDirection, walletFigures } from "../../modules/wallets/service.ts";
import { type PlatformRouteOptions, signedSecurity, userIdSchema } from "./schemas.ts";

const money = z.string().meta({ example: "100.50" });
const walletSchema = z
  .object({
    id: z.uuid(),
    currency: z.string(),
    label: z.string().nullable(),
    availableBalance: money,
    pendingBalance: money,
    totalBalance: money,
    createdAt: z.string(),
  })
  .meta({ id: "Wallet" });

const entrySchema = z
  .object({
    transferId: z.string(),
    operationId: z.string(),
    type: z.enum(["SINGLE", "PENDING", "POST", "VOID"]),
    status: z.enum(["POSTED", "PENDING", "VOIDED", "EXPIRED"]),
    direction: z.enum(["DEBIT", "CREDIT"]),
    amount: money,
    createdAt: z.string(),
  })
  .meta({ id: "WalletEntry" });

function showWallet(account: Account, scale: number) {
  const f = walletFigures(account);
  return {
    id: account.id,
    currency: account.currency,
    label: account.label,
    availableBalance: formatAmount(f.availableBalance, scale),
    pendingBalance: formatAmount(f.pendingBalance, scale),
    totalBalance: formatAmount(f.totalBalance, scale),
    createdAt: account.createdAt.toISOString(),
  };
}

const userParams = z.object({ userId: userIdSchema });

/** A user's wallets (ledger accounts) and their history. */
export const walletRoutes: FastifyPluginAsyncZod<PlatformRouteOptions> = async (
  app,
  { services, authenticate },
) => {
  const { wallets, users, database } = services;

  app.get(
    "/users/:userId/wallets",
    {
      preValidation: authenticate({ allowUserToken: true }),
      schema: {
        tags: ["platform: wallets"],
        summary: "The user's wallets with their balances",
        security: signedSecurity,
        params: userParams,
        response: {
          200: z.object({ records: z.array(walletSchema) }),
          ...errorResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request) => {
      assertTokenUser(request, request.params.userId);
      const clientId = clientOf(request).id;
      await users.get(database.db, clientId, request.params.userId);
      const list = await wallets.list(clientId, request.params.userId);
      return { records: await Promise.all(list.map(async (w) => showWallet(w, await wallets.scaleOf(w)))) };
    },
  );

  app.post(
    "/users/:userId/wallets",
    {
      preValidation: authenticate(),
      schema: {
        tags: ["platform: wallets"],
        summary: "Open a wallet",
        description: "For an ACTIVE user: a BLOCKED or INACTIVE user is given no wallet (403).",
        security: signedSecurity,
        params: userParams,
        body: z
          .object({
            currency: z.string().regex(/^[A-Z0-9]{2,12}$/, "an upper-case currency code such as EUR"),
            label: z.string().trim().min(1).max(100).optional(),
          })
          .strict()
          .meta({ id: "OpenWalletRequest" }),
        response: { 201: walletSchema, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      const clientId = clientOf(request).id;
      const wallet = await wallets.open(
        clientId,
        request.params.userId,
        request.body.currency,
        request.body.label,
      );
      reply.code(201);
      return showWallet(wallet, await wallets.scaleOf(wallet));
    },
  );

  app.get(
    "/users/:userId/wallets/:walletId/history",
    {
      preValidation: authenticate({ allowUserToken: true }),
      schema: {
        tags: ["platform: wallets"],
        summary: "The wallet's ledger entries, newest first",
        security: signedSecurity,
        params: userParams.extend({ walletId: z.uuid() }),
        querystring: pageQuery.strict(),
        response: {
          200: pageOf(entrySchema).meta({ id: "WalletHistory" }),
          ...errorResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request) => {
      assertTokenUser(request, request.params.userId);
      const { wallet, transfers, total } = await wallets.history(
        clientOf(request).id,
        request.params.userId,
        request.params.walletId,
        offsetOf(request.query),
      );
      const scale = await wallets.scaleOf(wallet);
      return toPage(
        transfers.map((t) => ({
          transferId: t.id,
          operationId: t.operationId,
          type: t.type,
          status: t.status,
          direction: entryDirection(wallet.id, t),
          amount: formatAmount(t.amount, scale),
          createdAt: t.createdAt.toISOString(),
        })),
        total,
        request.query,
      );
    },
  );
};
