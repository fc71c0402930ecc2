import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { idempotency } from "../../http/idempotency.ts";
import { formatAmount } from "../../lib/money.ts";
import type { Commission } from "../../modules/commissions/arithmetic.ts";
import type { Transaction } from "../../modules/transactions/service.ts";
import {
  OPERATION_OF_TYPE,
  type WalletProcess,
  walletStatus,
} from "../../modules/wallet-operations/process.ts";
import type { WalletOperations } from "../../modules/wallet-operations/service.ts";
import type { Coin } from "../../modules/wallets/service.ts";
import { walletFigures } from "../../modules/wallets/service.ts";
import type { Services } from "../../services.ts";
import { money } from "./schemas.ts";

/** The Wallet API's answers: requests, business processes, coins and commissions in its own words. */

export interface MoneyRouteOptions {
  services: Services;
  idempotent: ReturnType<typeof idempotency>;
}

/** The app a Wallet route file registers its routes on. */
export type WalletApp = Parameters<FastifyPluginAsyncZod<MoneyRouteOptions>>[0];

export const processRef = z
  .object({ id: z.string(), requestIdentifier: z.number().int(), status: z.string() })
  .meta({ id: "WalletProcessRef" });

export const requestAnswer = z
  .object({
    process: processRef,
    requestIdentifier: z.number().int(),
    status: z.string(),
    paymentInstructions: z.object({ iban: z.string(), reference: z.string(), amount: money }).optional(),
    redirectUrl: z.string().optional(),
  })
  .meta({ id: "WalletRequest" });

/** The answer to a request: its process, requestIdentifier, status and what the payer needs next. */
export function requestAnswerOf(t: Transaction) {
  const status = walletStatus(t);
  const instructions = t.paymentInstructions as { iban: string; reference: string } | null;
  return {
    process: { id: t.requestId, requestIdentifier: Number(t.number), status },
    requestIdentifier: Number(t.number),
    status,
    ...(instructions
      ? {
          paymentInstructions: {
            iban: instructions.iban,
            reference: instructions.reference,
            amount: formatAmount(t.amount, t.scale),
          },
        }
      : {}),
    ...(t.redirectUrl ? { redirectUrl: t.redirectUrl } : {}),
  };
}

/** The commission object of the spec (amounts in major units). */
export function calculation(commission: Commission, scale: number, currency: string) {
  return {
    transactionAmount: formatAmount(commission.transactionAmount, scale),
    senderAmountPush: formatAmount(commission.senderAmount, scale),
    recipientAmountPush: formatAmount(commission.recipientAmount, scale),
    commissionAmountPush: formatAmount(commission.fee, scale),
    currency: { code: currency, fraction: scale },
  };
}

export const coinSchema = z
  .object({
    serial: z.string(),
    name: z.string(),
    amount: money,
    availableAmount: money,
    heldAmount: money,
    futureAmount: money,
    active: z.boolean(),
    type: z.string(),
    main: z.boolean(),
    issuerId: z.string().nullable(),
    currency: z.object({
      id: z.string(),
      code: z.string(),
      symbol: z.string().nullable(),
      name: z.string().nullable(),
      fraction: z.number().int(),
    }),
    createdAt: z.string(),
  })
  .meta({ id: "WalletCoin" });

/** A coin as `GET /coins` shows it. */
export async function showCoin(ops: WalletOperations, coin: Coin, main: boolean) {
  const details = await ops.currencyOf(coin);
  const scale = details.fraction;
  const f = walletFigures(coin.account);
  return {
    serial: coin.serial,
    name: coin.account.label ?? `${coin.account.currency} account`,
    amount: formatAmount(f.totalBalance, scale),
    availableAmount: formatAmount(f.availableBalance, scale),
    heldAmount: formatAmount(f.totalBalance - f.availableBalance, scale),
    futureAmount: formatAmount(f.pendingBalance, scale),
    active: true,
    type: "client",
    main,
    issuerId: coin.issuerId,
    currency: {
      id: details.id,
      code: coin.account.currency,
      symbol: details.symbol,
      name: details.name,
      fraction: scale,
    },
    createdAt: coin.account.createdAt.toISOString(),
  };
}

const legSchema = z.object({
  id: z.string(),
  type: z.string(),
  status: z.string(),
  debitAccountId: z.string(),
  creditAccountId: z.string(),
  amount: money,
  currency: z.string(),
  createdAt: z.string(),
});

export const processSchema = z
  .object({
    id: z.string(),
    type: z.string(),
    status: z.string(),
    requestIdentifier: z.number().int(),
    requestStatus: z.string(),
    amount: money,
    commission: money,
    netAmount: money,
    senderAmount: money,
    currency: z.string(),
    description: z.string().nullable(),
    createdAt: z.string(),
    transactions: z.array(legSchema),
  })
  .meta({ id: "WalletBusinessProcess" });

/** The business-process view of a transaction, with its ledger legs. */
export async function showProcess(ops: WalletOperations, t: Transaction) {
  const process = t.process as WalletProcess | null;
  const scale = t.scale;
  const legs = await ops.legsOf(t);
  const deposit = t.type === "DEPOSIT";
  return {
    id: t.requestId,
    type: process?.operation ?? OPERATION_OF_TYPE[t.type] ?? t.type,
    status: walletStatus(t),
    requestIdentifier: Number(t.number),
    requestStatus: t.status,
    amount: process?.transactionAmount ?? formatAmount(t.amount, scale),
    commission: process?.commission ?? formatAmount(t.fee, scale),
    netAmount: process?.recipientAmount ?? formatAmount(deposit ? t.amount - t.fee : t.amount, scale),
    senderAmount: process?.senderAmount ?? formatAmount(deposit ? t.amount : t.amount + t.fee, scale),
    currency: t.currency,
    description: process?.description ?? null,
    createdAt: t.createdAt.toISOString(),
    transactions: legs.map((l) => ({
      id: l.id,
      type: l.type,
      status: l.status,
      debitAccountId: l.debitAccountId,
      creditAccountId: l.creditAccountId,
      amount: formatAmount(l.amount, scale),
      currency: l.currency,
      createdAt: l.createdAt.toISOString(),
    })),
  };
}
