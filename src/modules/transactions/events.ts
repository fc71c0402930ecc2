import type { Db } from "../../db/database.ts";
import type { Account } from "../ledger/types.ts";
import type { MonitoringResult } from "../monitoring/rules.ts";
import { json, type Row, type TransactionStatus, type TransactionType } from "./types.ts";

/**
 * The domain events of transactions. The module says what happened, in its own terms; each face
 * maps them to its wire shapes (the Platform face's webhook payloads, later the Wallet face's and
 * the 1-Click operator callbacks) through a sink given at start-up. A sink writes in the
 * transaction that made the change (the transactional outbox).
 */

export interface TransactionSnapshot {
  clientId: string;
  requestId: string;
  /** Null for a 1-Click deposit before the operator named its user. */
  userId: string | null;
  type: TransactionType;
  status: TransactionStatus;
  /** Minor units of `currency`. */
  amount: bigint;
  fee: bigint;
  currency: string;
  paymentMethod: { type: string; last4?: string | null } | null;
  statusDetail: { responseCode: string; responseCategory: string } | null;
}

export type TransactionEvent =
  | { type: "transaction.monitored"; transaction: TransactionSnapshot; monitoring: MonitoringResult }
  | { type: "transaction.status_changed"; transaction: TransactionSnapshot }
  | {
      type: "wallet.balance_changed";
      clientId: string;
      userId: string;
      walletId: string;
      /** The wallet's balances after the change, when the ledger just gave them. */
      wallet?: Account | undefined;
    };

export interface TransactionEventSink {
  /** Records one change's events, in order, in the transaction that made it (the outbox). */
  record(
    tx: Db,
    events: TransactionEvent[],
    options: { suppressDelivery?: boolean | undefined },
  ): Promise<void>;
}

export function snapshotOf(row: Row): TransactionSnapshot {
  return {
    clientId: row.client_id,
    requestId: row.request_id,
    userId: row.user_id,
    type: row.type as TransactionType,
    status: row.status as TransactionStatus,
    amount: BigInt(row.amount),
    fee: BigInt(row.fee),
    currency: row.currency,
    paymentMethod: json(row.payment_method),
    statusDetail: json(row.status_detail),
  };
}
