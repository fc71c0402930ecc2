import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorResponses } from "../../http/errors.ts";
import { offsetOf, pageOf, pageQuery, toPage } from "../../http/pagination.ts";
import { CLIENT_CHOSEN_ID } from "../../lib/ids.ts";
import { formatAmount } from "../../lib/money.ts";
import * as ledger from "../../modules/ledger/service.ts";
import { type Account, accountFigures, type Transfer } from "../../modules/ledger/types.ts";

const amount = z.string().meta({ example: "100.50", description: "Decimal string in major units" });

const accountSchema = z
  .object({
    id: z.uuid(),
    clientId: z.string(),
    currency: z.string(),
    scale: z.number().int(),
    kind: z.string(),
    ownerId: z.string().nullable(),
    rail: z.string().nullable(),
    label: z.string().nullable(),
    limitRule: z.string(),
    creditLimit: amount,
    debitsPosted: amount,
    creditsPosted: amount,
    debitsPending: amount,
    creditsPending: amount,
    balance: amount.describe("Posted credits minus posted debits"),
    availableBalance: amount.describe("Balance minus held (pending) debits"),
    createdAt: z.string(),
  })
  .meta({ id: "LedgerAccount" });

const entrySchema = z
  .object({
    transferId: z.string(),
    operationId: z.string(),
    type: z.enum(["SINGLE", "PENDING", "POST", "VOID"]),
    status: z.enum(["POSTED", "PENDING", "VOIDED", "EXPIRED"]),
    direction: z.enum(["DEBIT", "CREDIT"]),
    counterpartyAccountId: z.uuid(),
    amount,
    postedAmount: amount.nullable(),
    pendingId: z.string().nullable(),
    expiresAt: z.string().nullable(),
    metadata: z.unknown(),
    createdAt: z.string(),
  })
  .meta({ id: "LedgerEntry" });

const invariantsSchema = z
  .object({
    ok: z.boolean(),
    checkedAt: z.string(),
    accounts: z.number().int(),
    transfers: z.number().int(),
    unbalancedCurrencies: z.array(
      z.object({ clientId: z.string(), currency: z.string(), postedSum: z.string(), pendingSum: z.string() }),
    ),
    accountsNotMatchingEntries: z.array(
      z.object({
        accountId: z.string(),
        clientId: z.string(),
        stored: z.record(z.string(), z.string()),
        fromEntries: z.record(z.string(), z.string()),
      }),
    ),
    accountsOverLimit: z.array(z.object({ accountId: z.string(), clientId: z.string() })),
    transfersWithMismatchedAccounts: z.array(z.object({ transferId: z.string(), clientId: z.string() })),
  })
  .meta({ id: "LedgerInvariants" });

function showAccount(account: Account, scale: number) {
  const money = (value: bigint) => formatAmount(value, scale);
  const figures = accountFigures(account);
  return {
    id: account.id,
    clientId: account.clientId,
    currency: account.currency,
    scale,
    kind: account.kind,
    ownerId: account.ownerId,
    rail: account.rail,
    label: account.label,
    limitRule: account.limitRule,
    creditLimit: money(account.creditLimit),
    debitsPosted: money(account.debitsPosted),
    creditsPosted: money(account.creditsPosted),
    debitsPending: money(account.debitsPending),
    creditsPending: money(account.creditsPending),
    balance: money(figures.balance),
    availableBalance: money(figures.available),
    createdAt: account.createdAt.toISOString(),
  };
}

function showEntry(accountId: string, transfer: Transfer, scale: number) {
  const debit = transfer.debitAccountId === accountId;
  return {
    transferId: transfer.id,
    operationId: transfer.operationId,
    type: transfer.type,
    status: transfer.status,
    direction: debit ? ("DEBIT" as const) : ("CREDIT" as const),
    counterpartyAccountId: debit ? transfer.creditAccountId : transfer.debitAccountId,
    amount: formatAmount(transfer.amount, scale),
    postedAmount: transfer.postedAmount === null ? null : formatAmount(transfer.postedAmount, scale),
    pendingId: transfer.pendingId,
    expiresAt: transfer.expiresAt?.toISOString() ?? null,
    metadata: transfer.metadata,
    createdAt: transfer.createdAt.toISOString(),
  };
}

/** Platform-admin reads of the ledger: its invariants, and an account with its entries. */
export const adminLedgerRoutes: FastifyPluginAsyncZod<{ db: ledger.Ledger["db"] }> = async (app, { db }) => {
  app.get(
    "/ledger/invariants",
    {
      schema: {
        tags: ["admin"],
        summary: "Check the ledger's invariants",
        description:
          "Per client and currency the balances sum to zero; every account's balances equal the sums of its entries; no account is beyond its limit. `ok: false` lists what is wrong.",
        security: [{ adminBasic: [] }],
        querystring: z
          .object({ clientId: z.string().regex(CLIENT_CHOSEN_ID).optional().describe("Only this client") })
          .strict(),
        response: { 200: invariantsSchema, ...errorResponses(400, 401) },
      },
    },
    async (request) => ledger.checkInvariants(db, request.query.clientId),
  );

  app.get(
    "/ledger/accounts/:accountId",
    {
      schema: {
        tags: ["admin"],
        summary: "An account and its entries",
        description: "The account's balances and the transfers that debit or credit it, newest first, paged.",
        security: [{ adminBasic: [] }],
        params: z.object({ accountId: z.uuid().describe("The account's id") }),
        querystring: pageQuery.strict(),
        response: {
          200: z
            .object({ account: accountSchema, entries: pageOf(entrySchema) })
            .meta({ id: "LedgerAccountWithEntries" }),
          ...errorResponses(400, 401, 404),
        },
      },
    },
    async (request) => {
      const account = await ledger.getAccount(db, request.params.accountId);
      const { scale } = await ledger.getCurrency(db, account.clientId, account.currency);
      const { transfers, total } = await ledger.listEntries(db, account.id, offsetOf(request.query));
      return {
        account: showAccount(account, scale),
        entries: toPage(
          transfers.map((t) => showEntry(account.id, t, scale)),
          total,
          request.query,
        ),
      };
    },
  );
};
