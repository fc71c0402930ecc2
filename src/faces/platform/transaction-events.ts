import type { Db } from "../../db/database.ts";
import { formatAmount } from "../../lib/money.ts";
import * as ledger from "../../modules/ledger/service.ts";
import type { TransactionEvent, TransactionEventSink } from "../../modules/transactions/events.ts";
import { totalOf } from "../../modules/transactions/types.ts";
import { walletFigures } from "../../modules/wallets/service.ts";
import { type NewEvent, recordEvents } from "../../modules/webhooks/service.ts";

const scaleOf = async (tx: Db, clientId: string, currency: string) =>
  (await ledger.getCurrency(tx, clientId, currency)).scale;

/**
 * The Platform face's webhooks for transaction events (webhooks.md): TRANSACTION_MONITORING,
 * TRANSACTION_STATUS and WALLET_BALANCE, flat payloads with decimal amounts and no PII.
 */
export const platformTransactionEvents: TransactionEventSink = {
  async record(tx: Db, events: TransactionEvent[], { suppressDelivery }) {
    const rendered: NewEvent[] = [];
    for (const event of events) rendered.push(await render(tx, event, suppressDelivery));
    await recordEvents(tx, rendered);
  },
};

async function render(
  tx: Db,
  event: TransactionEvent,
  suppressDelivery: boolean | undefined,
): Promise<NewEvent> {
  const date = new Date().toISOString();
  if (event.type === "wallet.balance_changed") {
    const wallet = event.wallet ?? (await ledger.getAccount(tx, event.walletId, event.clientId));
    const scale = await scaleOf(tx, event.clientId, wallet.currency);
    const figures = walletFigures(wallet);
    return {
      clientId: event.clientId,
      userId: event.userId,
      type: "WALLET_BALANCE",
      suppressDelivery,
      data: {
        userId: event.userId,
        walletId: event.walletId,
        currency: wallet.currency,
        availableBalance: formatAmount(figures.availableBalance, scale),
        totalBalance: formatAmount(figures.totalBalance, scale),
        date,
      },
    };
  }
  const t = event.transaction;
  const scale = await scaleOf(tx, t.clientId, t.currency);
  const common = {
    requestId: t.requestId,
    userId: t.userId,
    transactionType: t.type,
    amount: formatAmount(t.amount, scale),
    currency: t.currency,
  };
  if (event.type === "transaction.monitored") {
    return {
      clientId: t.clientId,
      userId: t.userId ?? undefined,
      type: "TRANSACTION_MONITORING",
      suppressDelivery,
      data: {
        ...common,
        status: event.monitoring.status,
        risk: event.monitoring.risk,
        reasons: event.monitoring.reasons,
        date,
      },
    };
  }
  return {
    clientId: t.clientId,
    userId: t.userId ?? undefined,
    type: "TRANSACTION_STATUS",
    suppressDelivery,
    data: {
      ...common,
      status: t.status,
      fee: formatAmount(t.fee, scale),
      total: formatAmount(totalOf(t.type, t.amount, t.fee), scale),
      paymentMethod: t.paymentMethod
        ? { type: t.paymentMethod.type, ...(t.paymentMethod.last4 ? { last4: t.paymentMethod.last4 } : {}) }
        : null,
      statusDetail: t.statusDetail
        ? { responseCode: t.statusDetail.responseCode, responseCategory: t.statusDetail.responseCategory }
        : null,
      date,
    },
  };
}
