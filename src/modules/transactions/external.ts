import type { Db } from "../../db/database.ts";
import { formatAmount } from "../../lib/money.ts";
import type { ValidationOutcome } from "../kyc/rules.ts";
import * as ledger from "../ledger/service.ts";
import type { MonitoringResult } from "../monitoring/rules.ts";
import type { Users } from "../users/service.ts";
import type { TransactionEvent, TransactionEventSink } from "./events.ts";
import * as postings from "./postings.ts";
import type { Quotes } from "./quote.ts";
import type { TransactionType } from "./types.ts";
import { countUsage, type UsageRow } from "./usage.ts";

/**
 * The money core for a process whose states live in another module's table (the 1-Click flow,
 * modules/oneclick/process-table.ts): the same quote stage (fee, USD value, the KYC gate and
 * monitoring on the user's usage), the same posting recipes, the same usage buckets and the same
 * event sink as a transaction of this module. Nothing here is a second copy of a rule: each
 * function hands over to the piece every transaction uses.
 */

export interface ExternalDeposit {
  clientId: string;
  userId: string;
  requestId: string;
  currency: string;
  /** Minor units of `currency`. */
  amount: bigint;
  fee: bigint;
}

export interface Assessment {
  usdValue: bigint;
  kyc: ValidationOutcome;
  monitoring: MonitoringResult;
}

export class ExternalProcesses {
  constructor(
    private readonly db: Db,
    private readonly quotes: Quotes,
    private readonly sink: TransactionEventSink,
    private readonly users: Users,
  ) {}

  /** The client's fee for the movement (its fee rules, as for any transaction). */
  async fee(clientId: string, type: TransactionType, currency: string, amount: bigint): Promise<bigint> {
    const scale = await this.quotes.scaleOf(clientId, currency);
    return (await this.quotes.price(clientId, type, formatAmount(amount, scale), currency)).fee;
  }

  /** The quote stage: USD value, the client's KYC scenario and monitoring, on the user's usage (read once). */
  async assess(
    input: Omit<ExternalDeposit, "requestId" | "fee"> & { type: TransactionType },
  ): Promise<Assessment> {
    const scale = await this.quotes.scaleOf(input.clientId, input.currency);
    const amount = formatAmount(input.amount, scale);
    const { usdValue } = await this.quotes.price(input.clientId, input.type, amount, input.currency);
    // The user read once, the usage once: the KYC gate and monitoring share them.
    const request = {
      ...input,
      amount,
      usage: this.quotes.usageReads(),
      reads: this.users.reads(input.clientId),
    };
    const kyc = await this.quotes.kycOutcome(request);
    return { usdValue, kyc, monitoring: await this.quotes.monitor(request, usdValue) };
  }

  /** The deposit arrived on the bank rail for the client itself: transit → settlement (net of the fee), the fee to fees. */
  async creditSettlement(tx: Db, d: ExternalDeposit): Promise<void> {
    const legs = postings.depositCredit({
      requestId: d.requestId,
      currency: d.currency,
      amount: d.amount,
      fee: d.fee,
      transit: await postings.systemAccount.transit(tx, d.clientId, d.currency, "bank"),
      wallet: await postings.systemAccount.settlement(tx, d.clientId, d.currency),
      fees: await postings.systemAccount.fees(tx, d.clientId, d.currency),
    });
    const result = await ledger.applyInTransaction(tx, {
      clientId: d.clientId,
      operationId: postings.operationOf(d.requestId),
      legs,
    });
    if (!result.ok) throw new Error(`the ledger refused the deposit ${d.requestId}: ${result.code}`);
  }

  /** Opens (with the pool, ids cached) the accounts `creditSettlement` books to, before its transaction. */
  async warmSettlement(clientId: string, currency: string): Promise<void> {
    await Promise.all([
      postings.systemAccount.transit(this.db, clientId, currency, "bank"),
      postings.systemAccount.settlement(this.db, clientId, currency),
      postings.systemAccount.fees(this.db, clientId, currency),
    ]);
  }

  /** Counts the movement in the user's usage (+1) or takes it out again (-1), with the USD value it was counted with. */
  async count(tx: Db, row: UsageRow, sign: 1 | -1): Promise<void> {
    await countUsage(tx, row, sign);
  }

  /** The domain events, to the faces' sink (the Platform face's webhooks), in the caller's transaction. */
  async record(tx: Db, events: TransactionEvent[]): Promise<void> {
    await this.sink.record(tx, events, {});
  }
}
