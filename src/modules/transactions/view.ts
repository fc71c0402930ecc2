import { json, type Row, type Transaction, type TransactionStatus, type TransactionType } from "./types.ts";

/** A stored row as the faces see it (amounts in minor units with their currency's scale). */
export async function toTransaction(
  row: Row,
  scaleOf: (clientId: string, currency: string) => Promise<number>,
): Promise<Transaction> {
  const status = row.status as TransactionStatus;
  return {
    clientId: row.client_id,
    requestId: row.request_id,
    type: row.type as TransactionType,
    userId: row.user_id,
    status,
    amount: BigInt(row.amount),
    currency: row.currency,
    scale: await scaleOf(row.client_id, row.currency),
    fee: BigInt(row.fee),
    walletId: row.wallet_id,
    counterpartyUserId: row.counterparty_user_id,
    target:
      row.target_currency && row.target_amount
        ? {
            currency: row.target_currency,
            amount: BigInt(row.target_amount),
            scale: await scaleOf(row.client_id, row.target_currency),
            rate: row.rate,
          }
        : null,
    paymentMethod: json(row.payment_method),
    monitoring: json(row.monitoring),
    statusDetail: json(row.status_detail),
    redirectUrl: row.redirect_url,
    paymentInstructions: status === "AWAITING_PAYMENT" ? json(row.payment_instructions) : null,
    number: String(row.number),
    process: json(row.process),
    decision: json(row.decision),
    chainTxHash: row.chain_tx_hash,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}
