import type { Db } from "../../db/database.ts";
import { formatAmount } from "../../lib/money.ts";
import * as ledger from "../ledger/service.ts";
import type { MonitoringResult } from "../monitoring/rules.ts";
import { walletFigures } from "../wallets/service.ts";
import { recordEvent } from "../webhooks/service.ts";
import { json, type Row, totalOf } from "./types.ts";

/**
 * The outbox events of a transaction's changes, written in the transaction that makes them. The
 * payloads are the Platform face's webhook shapes (webhooks.md); they carry no PII.
 */

async function scaleOf(tx: Db, clientId: string, currency: string): Promise<number> {
  return (await ledger.getCurrency(tx, clientId, currency)).scale;
}

export async function announceMonitoring(tx: Db, row: Row, monitoring: MonitoringResult, suppress?: boolean) {
  const scale = await scaleOf(tx, row.client_id, row.currency);
  await recordEvent(tx, {
    clientId: row.client_id,
    userId: row.user_id,
    type: "TRANSACTION_MONITORING",
    suppressDelivery: suppress,
    data: {
      requestId: row.request_id,
      userId: row.user_id,
      transactionType: row.type,
      status: monitoring.status,
      risk: monitoring.risk,
      reasons: monitoring.reasons,
      amount: formatAmount(BigInt(row.amount), scale),
      currency: row.currency,
      date: new Date().toISOString(),
    },
  });
}

export async function announceStatus(tx: Db, row: Row, suppress?: boolean) {
  const scale = await scaleOf(tx, row.client_id, row.currency);
  const method = json<{ type: string; last4?: string }>(row.payment_method);
  const detail = json<{ responseCode: string; responseCategory: string }>(row.status_detail);
  const amount = BigInt(row.amount);
  const fee = BigInt(row.fee);
  await recordEvent(tx, {
    clientId: row.client_id,
    userId: row.user_id,
    type: "TRANSACTION_STATUS",
    suppressDelivery: suppress,
    data: {
      requestId: row.request_id,
      userId: row.user_id,
      transactionType: row.type,
      status: row.status,
      amount: formatAmount(amount, scale),
      currency: row.currency,
      fee: formatAmount(fee, scale),
      total: formatAmount(totalOf(row.type, amount, fee), scale),
      paymentMethod: method ? { type: method.type, ...(method.last4 ? { last4: method.last4 } : {}) } : null,
      statusDetail: detail
        ? { responseCode: detail.responseCode, responseCategory: detail.responseCategory }
        : null,
      date: new Date().toISOString(),
    },
  });
}

export async function announceBalance(
  tx: Db,
  clientId: string,
  userId: string,
  walletId: string,
  suppress?: boolean,
) {
  const wallet = await ledger.getAccount(tx, walletId, clientId);
  const scale = await scaleOf(tx, clientId, wallet.currency);
  const f = walletFigures(wallet);
  await recordEvent(tx, {
    clientId,
    userId,
    type: "WALLET_BALANCE",
    suppressDelivery: suppress,
    data: {
      userId,
      walletId,
      currency: wallet.currency,
      availableBalance: formatAmount(f.availableBalance, scale),
      totalBalance: formatAmount(f.totalBalance, scale),
      date: new Date().toISOString(),
    },
  });
}
