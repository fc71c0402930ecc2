import { sql } from "kysely";
import type { Db } from "../../db/database.ts";
import { DomainError } from "../../lib/errors.ts";
import { AmountError, formatAmount, parsePositiveAmount } from "../../lib/money.ts";
import {
  type Acquirer,
  AcquirerTimeoutError,
  type ChargeResult,
} from "../../providers/acquirer/interface.ts";
import type { Bank } from "../../providers/bank/sandbox.ts";
import { KNOWN_SCALES, type RatesProvider, toUsdCents } from "../../providers/rates/sandbox.ts";
import { getClient } from "../clients/service.ts";
import { ConfiguredFees, type FeeRule } from "../fees/service.ts";
import type { Kyc, UsageSource } from "../kyc/service.ts";
import * as ledger from "../ledger/service.ts";
import type { Account, Leg } from "../ledger/types.ts";
import {
  DEFAULT_MONITORING,
  evaluate,
  type MonitoringConfig,
  type MonitoringResult,
  type SanctionsList,
} from "../monitoring/rules.ts";
import type { NewPaymentMethod, PaymentMethods } from "../payment-methods/service.ts";
import type { UserInfo } from "../users/schemas.ts";
import type { Users } from "../users/service.ts";
import { type Wallets, walletFigures } from "../wallets/service.ts";
import { recordEvent } from "../webhooks/service.ts";

export const TRANSACTION_STATUSES = [
  "PENDING",
  "MANUAL_REVIEW",
  "REFUSED",
  "AWAITING_PAYMENT",
  "AUTHORIZED",
  "CAPTURED",
  "SETTLED",
  "CANCELED",
  "REFUNDED",
  "CHARGED_BACK",
  "ERROR",
] as const;
export type TransactionStatus = (typeof TRANSACTION_STATUSES)[number];
export type TransactionType = "DEPOSIT" | "WITHDRAWAL" | "TRANSFER" | "TRADE" | "PAYMENT";

export interface Transaction {
  clientId: string;
  requestId: string;
  type: TransactionType;
  userId: string;
  status: TransactionStatus;
  amount: bigint;
  currency: string;
  scale: number;
  fee: bigint;
  walletId: string | null;
  counterpartyUserId: string | null;
  /** Trades: what the user got, at which rate (source USD price / target USD price). */
  target: { currency: string; amount: bigint; scale: number; rate: string | null } | null;
  paymentMethod: { type: string; last4?: string | null; paymentInformationId?: string } | null;
  monitoring: MonitoringResult | null;
  statusDetail: { responseCode: string; responseCategory: string; message?: string } | null;
  redirectUrl: string | null;
  /** Bank deposits: where and with which reference to pay. */
  paymentInstructions: { iban: string; reference: string } | null;
  createdAt: Date;
  updatedAt: Date;
}

export class TransactionError extends DomainError {}

const notFound = (requestId: string) =>
  new TransactionError("NOT_FOUND", "TRANSACTION_NOT_FOUND", `no transaction ${requestId}`);

type Row = {
  client_id: string;
  request_id: string;
  type: string;
  user_id: string;
  counterparty_user_id: string | null;
  counterparty_wallet_id: string | null;
  target_currency: string | null;
  target_amount: string | null;
  rate: string | null;
  status: string;
  amount: string;
  currency: string;
  fee: string;
  wallet_id: string | null;
  payment_method: unknown;
  monitoring: unknown;
  status_detail: unknown;
  redirect_url: string | null;
  payment_instructions: unknown;
  provider_reference: string | null;
  provider_step: string | null;
  created_at: Date;
  updated_at: Date;
};

const json = <T>(v: unknown): T | null =>
  v === null || v === undefined ? null : ((typeof v === "string" ? JSON.parse(v) : v) as T);

export interface CardSource {
  paymentMethodType: "CREDIT_CARD";
  paymentInformationId?: string | undefined;
  cardNumber?: string | undefined;
  expirationMonth?: number | undefined;
  expirationYear?: number | undefined;
  cvv?: string | undefined;
  cardHolder?: string | undefined;
  billingAddress?:
    | { street: string; city: string; country: string; postalCode?: string | undefined }
    | undefined;
}

export interface DepositInput {
  clientId: string;
  userId: string;
  requestId: string;
  amount: string | number;
  currency: string;
  sourceMethod: CardSource;
  destinationWalletId?: string | undefined;
  /** Information the end user gave with the deposit: merged into the user where it changed. */
  pii?: UserInfo | undefined;
  scenarioId?: string | undefined;
  suppressWebhook?: boolean | undefined;
}

export interface TransactionDependencies {
  db: Db;
  users: Users;
  kyc: Kyc;
  wallets: Wallets;
  paymentMethods: PaymentMethods;
  acquirer: Acquirer;
  bank: Bank;
  rates: RatesProvider;
  sanctions: SanctionsList;
  /** Seconds a provider step is leased to the process running it. */
  leaseSeconds: number;
}

/**
 * Money movement of the Platform API. Each change of state is one database transaction with its
 * ledger legs and its outbox events; provider calls happen between transactions, recorded first as
 * a `provider_step` so that a crash between the call and the recording of its outcome is resumed
 * by `resumeProviderSteps` with the same idempotency key: the card is charged once, the wallet
 * credited once.
 */
export class Transactions {
  constructor(private readonly deps: TransactionDependencies) {}

  private get db() {
    return this.deps.db;
  }

  /**
   * Until when a provider step is this process's to run. After a crash, the recovery worker takes
   * the step over once the lease has run out; a second attempt while the first is slow is harmless
   * (same idempotency key, outcome recorded once), so the lease can be short.
   */
  private leaseEnd(): Date {
    return new Date(Date.now() + this.deps.leaseSeconds * 1000);
  }

  async get(clientId: string, requestId: string): Promise<Transaction> {
    const row = await this.db
      .selectFrom("transactions")
      .selectAll()
      .where("client_id", "=", clientId)
      .where("request_id", "=", requestId)
      .executeTakeFirst();
    if (!row) throw notFound(requestId);
    return this.view(row as Row);
  }

  /** Fiat in by card: KYC gate, monitoring, the charge, and on capture the credit net of fees. */
  async deposit(input: DepositInput): Promise<Transaction> {
    const { clientId, userId, requestId } = input;
    await this.assertUnused(clientId, requestId);
    await this.deps.users.get(this.db, clientId, userId);
    // Bad input is refused before anything changes; then the form's information joins the user
    // (it may be what the KYC gate needs).
    const scale = await this.scaleOf(this.db, clientId, input.currency);
    const amount = parseAmountOrThrow(input.amount, scale);
    const inlineCard = inlineCardOf(input.sourceMethod);
    if (inlineCard) this.deps.paymentMethods.check(inlineCard);
    if (input.pii) await this.mergePii(clientId, userId, input.pii);
    await this.kycGate(clientId, userId, "DEPOSIT", input.amount, input.currency, input.scenarioId);

    const card = await this.resolveCard(clientId, userId, input.sourceMethod);
    const wallet = await this.resolveWallet(clientId, userId, input.currency, input.destinationWalletId);
    const fee = await this.feeFor(clientId, "DEPOSIT", input.currency, amount, scale);
    const usdValue = await this.usdCents(amount, scale, input.currency);
    const monitoring = await this.monitor(
      clientId,
      userId,
      usdValue,
      [input.sourceMethod.cardHolder],
      [input.sourceMethod.billingAddress?.country],
    );

    const status = statusAfter(monitoring, "PENDING");
    await this.db.transaction().execute(async (tx) => {
      const inserted = await tx
        .insertInto("transactions")
        .values({
          client_id: clientId,
          request_id: requestId,
          type: "DEPOSIT",
          user_id: userId,
          status,
          amount: amount.toString(),
          currency: input.currency,
          fee: fee.toString(),
          usd_value: usdValue.toString(),
          wallet_id: wallet.id,
          payment_method: JSON.stringify({
            type: "CREDIT_CARD",
            last4: card.last4,
            paymentInformationId: card.id,
          }),
          monitoring: JSON.stringify(monitoring),
          provider: this.deps.acquirer.name,
          provider_step: status === "PENDING" ? "CHARGE" : null,
          locked_until: status === "PENDING" ? this.leaseEnd() : null,
        })
        .onConflict((oc) => oc.columns(["client_id", "request_id"]).doNothing())
        .returning("request_id")
        .executeTakeFirst();
      if (!inserted)
        throw new TransactionError(
          "CONFLICT",
          "REQUEST_ID_USED",
          `request id ${requestId} was already used`,
          "X-Request-Id",
        );
      const created = await this.rowFor(tx, clientId, requestId);
      await this.announceMonitoring(tx, created, monitoring, input.suppressWebhook);
      if (status !== "PENDING") await this.announceStatus(tx, created, input.suppressWebhook);
    });
    if (status === "PENDING")
      await this.runProviderStep(clientId, requestId, {
        inRequest: true,
        suppressWebhook: input.suppressWebhook,
      });
    return this.get(clientId, requestId);
  }

  /**
   * Performs (or resumes) a transaction's provider step: the charge, with its idempotency key, then
   * the outcome recorded in one transaction guarded by the step still being open — so the request
   * and the recovery worker can both try and only one records.
   */
  async runProviderStep(
    clientId: string,
    requestId: string,
    options: { inRequest?: boolean; suppressWebhook?: boolean | undefined } = {},
  ) {
    const row = await this.rowFor(this.db, clientId, requestId);
    if (row.provider_step === "PAYOUT") return this.runPayout(row, options.suppressWebhook);
    if (row.provider_step !== "CHARGE") return;
    const card = json<{ paymentInformationId: string }>(row.payment_method);
    const { method, details } = await this.deps.paymentMethods.reveal(
      clientId,
      row.user_id,
      card?.paymentInformationId ?? "",
    );
    const request = {
      idempotencyKey: `${clientId}:${requestId}`,
      cardNumber: String(details.cardNumber),
      expirationMonth: method.expirationMonth ?? 12,
      expirationYear: method.expirationYear ?? 2099,
      amount: BigInt(row.amount),
      currency: row.currency,
    };
    let result: ChargeResult;
    try {
      result = await this.deps.acquirer.charge(request);
    } catch (error) {
      if (!(error instanceof AcquirerTimeoutError) || !options.inRequest) throw error;
      // One immediate retry with the same key: the acquirer answers it without charging twice.
      try {
        result = await this.deps.acquirer.charge(request);
      } catch (again) {
        if (again instanceof AcquirerTimeoutError) return; // left PENDING for the recovery worker
        throw again;
      }
    }
    await this.recordCharge(clientId, requestId, result, options.suppressWebhook);
  }

  /** The card holder finished the 3-D Secure challenge (the sandbox page's buttons call this). */
  async completeChallenge(providerReference: string, approved: boolean): Promise<Transaction> {
    const row = await this.db
      .selectFrom("transactions")
      .selectAll()
      .where("provider", "=", this.deps.acquirer.name)
      .where("provider_reference", "=", providerReference)
      .executeTakeFirst();
    if (!row)
      throw new TransactionError(
        "NOT_FOUND",
        "TRANSACTION_NOT_FOUND",
        "no transaction awaits this challenge",
      );
    // A transaction canceled meanwhile must not be charged: the challenge fails at the acquirer.
    const stillAwaited = row.status === "AWAITING_PAYMENT";
    const result = await this.deps.acquirer.completeChallenge(providerReference, approved && stillAwaited);
    const recorded = stillAwaited && (await this.recordCharge(row.client_id, row.request_id, result));
    if (!recorded && result.outcome === "APPROVED" && stillAwaited) {
      // Canceled between our read and the acquirer's answer: give the money back.
      const now = await this.get(row.client_id, row.request_id);
      if (now.status !== "CAPTURED") await this.deps.acquirer.refund(result.reference);
    }
    return this.get(row.client_id, row.request_id);
  }

  private async recordCharge(
    clientId: string,
    requestId: string,
    result: ChargeResult,
    suppressWebhook?: boolean,
  ): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const row = await tx
        .selectFrom("transactions")
        .selectAll()
        .where("client_id", "=", clientId)
        .where("request_id", "=", requestId)
        .forUpdate()
        .executeTakeFirstOrThrow();
      const open =
        row.provider_step === "CHARGE" ||
        (row.status === "AWAITING_PAYMENT" && row.provider_reference === result.reference);
      if (!open) return false; // recorded already (by the request, the worker, the challenge page) or canceled
      if (result.outcome === "CHALLENGE") {
        await this.update(tx, row as Row, {
          status: "AWAITING_PAYMENT",
          provider_reference: result.reference,
          provider_step: null,
          redirect_url: result.redirectUrl,
        });
        await this.announceStatus(tx, await this.rowFor(tx, clientId, requestId), suppressWebhook);
        return true;
      }
      if (result.outcome === "DECLINED") {
        await this.update(tx, row as Row, {
          status: "REFUSED",
          provider_reference: result.reference,
          provider_step: null,
          redirect_url: null,
          status_detail: JSON.stringify({
            responseCode: result.responseCode,
            responseCategory: result.category,
            message: result.message,
          }),
        });
        await this.announceStatus(tx, await this.rowFor(tx, clientId, requestId), suppressWebhook);
        return true;
      }
      // Approved: the money moves. The acquirer owes the gross amount (card transit account).
      await this.creditDeposit(tx, row as Row, "card");
      await this.update(tx, row as Row, {
        status: "CAPTURED",
        provider_reference: result.reference,
        provider_step: null,
        redirect_url: null,
        status_detail: JSON.stringify({ responseCode: "00", responseCategory: "APPROVED" }),
      });
      const updated = await this.rowFor(tx, clientId, requestId);
      await this.announceStatus(tx, updated, suppressWebhook);
      await this.announceBalance(tx, clientId, row.user_id, row.wallet_id ?? "", suppressWebhook);
      return true;
    });
  }

  /**
   * Recovery: provider steps left open (a crash, a timeout) whose lease has run out are resumed
   * with the same idempotency key. Returns how many it claimed.
   */
  async resumeProviderSteps(limit = 20): Promise<number> {
    const { rows } = await sql<{ client_id: string; request_id: string }>`
      UPDATE transactions SET locked_until = now() + make_interval(secs => ${this.deps.leaseSeconds})
      WHERE (client_id, request_id) IN (
        SELECT client_id, request_id FROM transactions
        WHERE provider_step IS NOT NULL AND (locked_until IS NULL OR locked_until < now())
        ORDER BY updated_at
        LIMIT ${limit}
        FOR UPDATE SKIP LOCKED)
      RETURNING client_id, request_id`.execute(this.db);
    for (const row of rows) await this.runProviderStep(row.client_id, row.request_id, { inRequest: false });
    return rows.length;
  }

  /** A staff decision on a transaction in MANUAL_REVIEW: approve → it executes; deny → REFUSED. */
  async decideReview(
    clientId: string,
    requestId: string,
    decision: "APPROVE" | "DENY",
  ): Promise<Transaction> {
    const runStep = await this.db.transaction().execute(async (tx) => {
      const row = await this.lockRow(tx, clientId, requestId);
      if (row.status !== "MANUAL_REVIEW") {
        throw new TransactionError(
          "CONFLICT",
          "NOT_IN_REVIEW",
          `the transaction is ${row.status}, not MANUAL_REVIEW`,
        );
      }
      const monitoring = {
        ...(json<MonitoringResult>(row.monitoring) ?? { risk: "MEDIUM", reasons: [] }),
        status: decision === "APPROVE" ? "ACCEPT" : "DENY",
      } as MonitoringResult;
      let next: Record<string, unknown>;
      if (decision === "DENY") {
        if (row.type === "WITHDRAWAL") await this.resolveHolds(tx, row, "VOID");
        next = { status: "REFUSED" };
      } else if (row.type === "WITHDRAWAL") {
        next = { status: "PENDING", provider_step: "PAYOUT", locked_until: this.leaseEnd() };
      } else if (row.type === "DEPOSIT") {
        const card = json<{ type: string }>(row.payment_method)?.type === "CREDIT_CARD";
        next = card
          ? { status: "PENDING", provider_step: "CHARGE", locked_until: this.leaseEnd() }
          : { status: "AWAITING_PAYMENT" };
      } else {
        // Transfers, payments, trades: the money moves now, with the decision.
        await this.executeStoredMove(tx, row);
        next = {
          status: "CAPTURED",
          status_detail: JSON.stringify({ responseCode: "00", responseCategory: "APPROVED" }),
        };
      }
      await this.update(tx, row, { ...next, monitoring: JSON.stringify(monitoring) });
      const updated = await this.rowFor(tx, clientId, requestId);
      await this.announceMonitoring(tx, updated, monitoring);
      if (updated.status !== "PENDING") await this.announceStatus(tx, updated);
      if (updated.status === "CAPTURED") await this.announceMovedBalances(tx, updated);
      if (decision === "DENY" && row.type === "WITHDRAWAL" && row.wallet_id)
        await this.announceBalance(tx, clientId, row.user_id, row.wallet_id);
      return updated.provider_step !== null;
    });
    if (runStep) await this.runProviderStep(clientId, requestId, { inRequest: true });
    return this.get(clientId, requestId);
  }

  // ——— bank deposits ———

  /**
   * Fiat in by bank transfer: recorded AWAITING_PAYMENT with payment instructions (the transit
   * IBAN and a reference); credited when the bank reports the money arrived with that reference.
   */
  async bankDeposit(input: BankDepositInput): Promise<Transaction> {
    const { clientId, userId, requestId } = input;
    await this.assertUnused(clientId, requestId);
    await this.deps.users.get(this.db, clientId, userId);
    const scale = await this.scaleOf(this.db, clientId, input.currency);
    const amount = parseAmountOrThrow(input.amount, scale);
    if (input.pii) await this.mergePii(clientId, userId, input.pii);
    await this.kycGate(clientId, userId, "DEPOSIT", input.amount, input.currency, input.scenarioId);
    const wallet = await this.resolveWallet(clientId, userId, input.currency, input.destinationWalletId);
    const fee = await this.feeFor(clientId, "DEPOSIT", input.currency, amount, scale);
    const usdValue = await this.usdCents(amount, scale, input.currency);
    const monitoring = await this.monitor(clientId, userId, usdValue, [], []);
    const status = statusAfter(monitoring, "AWAITING_PAYMENT");
    const reference = bankReference();
    await this.db.transaction().execute(async (tx) => {
      const row = await this.insertRow(tx, {
        client_id: clientId,
        request_id: requestId,
        type: "DEPOSIT",
        user_id: userId,
        status,
        amount: amount.toString(),
        currency: input.currency,
        fee: fee.toString(),
        usd_value: usdValue.toString(),
        wallet_id: wallet.id,
        payment_method: JSON.stringify({ type: input.paymentMethodType }),
        monitoring: JSON.stringify(monitoring),
        provider: INCOMING_BANK,
        provider_reference: status === "REFUSED" ? null : reference,
        payment_instructions:
          status === "REFUSED"
            ? null
            : JSON.stringify({ iban: SANDBOX_TRANSIT_IBAN, reference, amount: amount.toString() }),
      });
      await this.announceMonitoring(tx, row, monitoring, input.suppressWebhook);
      await this.announceStatus(tx, row, input.suppressWebhook);
    });
    return this.get(clientId, requestId);
  }

  /**
   * The bank reports money arriving with a reference (the sandbox's POST /sandbox/bank/incoming).
   * Matched to the deposit awaiting it; the amount must be the one asked for.
   */
  async incomingBankTransfer(
    reference: string,
    amount: string | number,
    currency: string,
  ): Promise<Transaction> {
    const row = await this.db
      .selectFrom("transactions")
      .selectAll()
      .where("provider", "=", INCOMING_BANK)
      .where("provider_reference", "=", reference)
      .executeTakeFirst();
    if (!row)
      throw new TransactionError(
        "NOT_FOUND",
        "REFERENCE_NOT_FOUND",
        `no deposit awaits reference ${reference}`,
        "reference",
      );
    const scale = await this.scaleOf(this.db, row.client_id, row.currency);
    if (currency !== row.currency || parseAmountOrThrow(amount, scale) !== BigInt(row.amount)) {
      throw new TransactionError(
        "CONFLICT",
        "AMOUNT_MISMATCH",
        `the deposit awaits ${formatAmount(BigInt(row.amount), scale)} ${row.currency}`,
        "amount",
      );
    }
    await this.db.transaction().execute(async (tx) => {
      const current = await this.lockRow(tx, row.client_id, row.request_id);
      if (current.status === "CAPTURED") return; // the bank told us twice
      if (current.status !== "AWAITING_PAYMENT") {
        throw new TransactionError("CONFLICT", "NOT_AWAITING_PAYMENT", `the deposit is ${current.status}`);
      }
      await this.creditDeposit(tx, current, "bank");
      await this.update(tx, current, {
        status: "CAPTURED",
        status_detail: JSON.stringify({ responseCode: "00", responseCategory: "RECEIVED" }),
      });
      await this.announceStatus(tx, await this.rowFor(tx, current.client_id, current.request_id));
      await this.announceBalance(tx, current.client_id, current.user_id, current.wallet_id ?? "");
    });
    return this.get(row.client_id, row.request_id);
  }

  /** A captured deposit on the ledger: the rail's transit account → the wallet (net), and → fees (the fee). */
  private async creditDeposit(tx: Db, row: Row, rail: "card" | "bank") {
    const amount = BigInt(row.amount);
    const fee = BigInt(row.fee);
    const transit = await ledger.openAccount(tx, {
      clientId: row.client_id,
      currency: row.currency,
      kind: "TRANSIT",
      rail,
    });
    const fees = await ledger.openAccount(tx, {
      clientId: row.client_id,
      currency: row.currency,
      kind: "FEES",
    });
    const legs: Leg[] = [];
    if (amount - fee > 0n) {
      legs.push({
        type: "SINGLE",
        id: `${row.request_id}:deposit`,
        debitAccountId: transit.id,
        creditAccountId: row.wallet_id ?? "",
        amount: amount - fee,
        currency: row.currency,
      });
    }
    if (fee > 0n)
      legs.push({
        type: "SINGLE",
        id: `${row.request_id}:fee`,
        debitAccountId: transit.id,
        creditAccountId: fees.id,
        amount: fee,
        currency: row.currency,
      });
    const posted = await ledger.applyInTransaction(tx, {
      clientId: row.client_id,
      operationId: `txn:${row.request_id}`,
      legs,
    });
    if (!posted.ok) throw new Error(`ledger refused a deposit: ${posted.code} ${posted.message}`);
  }

  // ——— withdrawals ———

  /**
   * Fiat out to a bank account: amount + fee held on the wallet at once (402 if it does not fit),
   * the payout sent to the bank, the hold posted when the payout settles, voided when the bank
   * returns it or the client cancels first.
   */
  async withdraw(input: WithdrawalInput): Promise<Transaction> {
    const { clientId, userId, requestId } = input;
    await this.assertUnused(clientId, requestId);
    await this.deps.users.get(this.db, clientId, userId);
    const scale = await this.scaleOf(this.db, clientId, input.currency);
    const amount = parseAmountOrThrow(input.amount, scale);
    const inlineAccount = inlineBankOf(input.destinationMethod);
    if (inlineAccount) this.deps.paymentMethods.check(inlineAccount);
    await this.kycGate(clientId, userId, "WITHDRAWAL", input.amount, input.currency, input.scenarioId);
    const account = await this.resolveBankAccount(clientId, userId, input.destinationMethod);
    const wallet = await this.sourceWallet(clientId, userId, input.currency, input.sourceWalletId);
    const fee = await this.feeFor(clientId, "WITHDRAWAL", input.currency, amount, scale);
    const usdValue = await this.usdCents(amount, scale, input.currency);
    const monitoring = await this.monitor(clientId, userId, usdValue, [], []);
    const status = statusAfter(monitoring, "PENDING");
    await this.db.transaction().execute(async (tx) => {
      const row = await this.insertRow(tx, {
        client_id: clientId,
        request_id: requestId,
        type: "WITHDRAWAL",
        user_id: userId,
        status,
        amount: amount.toString(),
        currency: input.currency,
        fee: fee.toString(),
        usd_value: usdValue.toString(),
        wallet_id: wallet.id,
        payment_method: JSON.stringify({
          type: input.destinationMethod.paymentMethodType,
          last4: account.last4,
          paymentInformationId: account.id,
        }),
        monitoring: JSON.stringify(monitoring),
        provider: this.deps.bank.name,
        provider_step: status === "PENDING" ? "PAYOUT" : null,
        locked_until: status === "PENDING" ? this.leaseEnd() : null,
      });
      if (status !== "REFUSED") {
        // The hold: amount to the bank transit account, fee to the fees account, both pending.
        const transit = await ledger.openAccount(tx, {
          clientId,
          currency: input.currency,
          kind: "TRANSIT",
          rail: "bank",
        });
        const fees = await ledger.openAccount(tx, { clientId, currency: input.currency, kind: "FEES" });
        const legs: Leg[] = [
          {
            type: "PENDING",
            id: `${requestId}:hold`,
            debitAccountId: wallet.id,
            creditAccountId: transit.id,
            amount,
            currency: input.currency,
          },
        ];
        if (fee > 0n)
          legs.push({
            type: "PENDING",
            id: `${requestId}:hold-fee`,
            debitAccountId: wallet.id,
            creditAccountId: fees.id,
            amount: fee,
            currency: input.currency,
          });
        const held = await ledger.applyInTransaction(tx, { clientId, operationId: `txn:${requestId}`, legs });
        if (!held.ok) {
          if (held.code === "EXCEEDS_LIMIT")
            throw new TransactionError(
              "PAYMENT_FAILED",
              "INSUFFICIENT_FUNDS",
              "the wallet's available balance is too low for amount + fee",
            );
          throw new Error(`ledger refused a hold: ${held.code}`);
        }
      }
      await this.announceMonitoring(tx, row, monitoring, input.suppressWebhook);
      if (status !== "PENDING") await this.announceStatus(tx, row, input.suppressWebhook);
      if (status !== "REFUSED")
        await this.announceBalance(tx, clientId, userId, wallet.id, input.suppressWebhook);
    });
    if (status === "PENDING")
      await this.runProviderStep(clientId, requestId, {
        inRequest: true,
        suppressWebhook: input.suppressWebhook,
      });
    return this.get(clientId, requestId);
  }

  /** PENDING: send the payout (same key on every try) → AUTHORIZED. AUTHORIZED: ask the bank → settle or return. */
  private async runPayout(row: Row, suppressWebhook?: boolean) {
    if (row.status === "PENDING") {
      const method = json<{ paymentInformationId: string }>(row.payment_method);
      const { details } = await this.deps.paymentMethods.reveal(
        row.client_id,
        row.user_id,
        method?.paymentInformationId ?? "",
      );
      const { reference, settlesAt } = await this.deps.bank.payout({
        idempotencyKey: `${row.client_id}:${row.request_id}`,
        account: String(details.account),
        amount: BigInt(row.amount),
        currency: row.currency,
      });
      await this.db.transaction().execute(async (tx) => {
        const current = await this.lockRow(tx, row.client_id, row.request_id);
        if (current.status !== "PENDING" || current.provider_step !== "PAYOUT") return; // canceled or recorded meanwhile
        await this.update(tx, current, {
          status: "AUTHORIZED",
          provider_reference: reference,
          locked_until: settlesAt,
        });
        await this.announceStatus(tx, await this.rowFor(tx, row.client_id, row.request_id), suppressWebhook);
      });
      return;
    }
    if (row.status !== "AUTHORIZED" || !row.provider_reference) return;
    const outcome = await this.deps.bank.status(row.provider_reference);
    if (outcome.state === "IN_FLIGHT") {
      await this.db
        .updateTable("transactions")
        .set({ locked_until: outcome.settlesAt })
        .where("client_id", "=", row.client_id)
        .where("request_id", "=", row.request_id)
        .execute();
      return;
    }
    await this.db.transaction().execute(async (tx) => {
      const current = await this.lockRow(tx, row.client_id, row.request_id);
      if (current.status !== "AUTHORIZED" || current.provider_step !== "PAYOUT") return;
      const settled = outcome.state === "SETTLED";
      await this.resolveHolds(tx, current, settled ? "POST" : "VOID");
      await this.update(tx, current, {
        status: settled ? "CAPTURED" : "ERROR",
        provider_step: null,
        locked_until: null,
        status_detail: JSON.stringify(
          settled
            ? { responseCode: "00", responseCategory: "SETTLED" }
            : { responseCode: "R01", responseCategory: "RETURNED", message: outcome.reason },
        ),
      });
      await this.announceStatus(
        tx,
        await this.rowFor(tx, current.client_id, current.request_id),
        suppressWebhook,
      );
      await this.announceBalance(
        tx,
        current.client_id,
        current.user_id,
        current.wallet_id ?? "",
        suppressWebhook,
      );
    });
  }

  /** Posts or voids a withdrawal's holds (amount and fee). Idempotent by leg id. */
  private async resolveHolds(tx: Db, row: Row, action: "POST" | "VOID") {
    const legs: Leg[] = [
      { type: action, id: `${row.request_id}:${action.toLowerCase()}`, pendingId: `${row.request_id}:hold` },
    ];
    if (BigInt(row.fee) > 0n)
      legs.push({
        type: action,
        id: `${row.request_id}:${action.toLowerCase()}-fee`,
        pendingId: `${row.request_id}:hold-fee`,
      });
    const result = await ledger.applyInTransaction(tx, {
      clientId: row.client_id,
      operationId: `txn:${row.request_id}:${action}`,
      legs,
    });
    if (!result.ok)
      throw new Error(`ledger refused to ${action} the holds of ${row.request_id}: ${result.code}`);
  }

  // ——— transfers, payments, trades: wallet to wallet, all legs in one transaction ———

  /** User to user of the same client (or, as a payment, to a merchant user). */
  async transfer(input: TransferInput): Promise<Transaction> {
    const { clientId, userId, requestId } = input;
    const type: TransactionType = input.kind === "PAYMENT" ? "PAYMENT" : "TRANSFER";
    await this.assertUnused(clientId, requestId);
    await this.deps.users.get(this.db, clientId, userId);
    const counterparty = await this.deps.users.get(this.db, clientId, input.destinationUserId).catch(() => {
      throw new TransactionError(
        "NOT_FOUND",
        "USER_NOT_FOUND",
        `no user ${input.destinationUserId}`,
        type === "PAYMENT" ? "merchantUserId" : "destinationUserId",
      );
    });
    if (counterparty.id === userId)
      throw new TransactionError("INVALID", "SAME_USER", "a user cannot pay themselves", "destinationUserId");
    if (type === "PAYMENT" && counterparty.type !== "BUSINESS") {
      throw new TransactionError(
        "INVALID",
        "NOT_A_MERCHANT",
        "payments go to a merchant (BUSINESS) user",
        "merchantUserId",
      );
    }
    const scale = await this.scaleOf(this.db, clientId, input.currency);
    const amount = parseAmountOrThrow(input.amount, scale);
    await this.kycGate(clientId, userId, type, input.amount, input.currency, input.scenarioId);
    const source = await this.sourceWallet(clientId, userId, input.currency, input.sourceWalletId);
    const destination = await this.resolveWallet(clientId, counterparty.id, input.currency);
    const fee = await this.feeFor(clientId, type, input.currency, amount, scale);
    const usdValue = await this.usdCents(amount, scale, input.currency);
    const counterpartyInfo = await this.deps.users.info(this.db, clientId, counterparty.id);
    const monitoring = await this.monitor(
      clientId,
      userId,
      usdValue,
      [fullName(counterpartyInfo)],
      countriesOf(counterpartyInfo),
    );
    return this.moveBetweenWallets({
      clientId,
      userId,
      requestId,
      type,
      amount,
      currency: input.currency,
      fee,
      usdValue,
      monitoring,
      counterpartyUserId: counterparty.id,
      sourceWalletId: source.id,
      counterpartyWalletId: destination.id,
      suppressWebhook: input.suppressWebhook,
    });
  }

  /** Exchange between the user's wallets at the rates provider's rate: both legs or neither. */
  async trade(input: TradeInput): Promise<Transaction> {
    const { clientId, userId, requestId } = input;
    await this.assertUnused(clientId, requestId);
    await this.deps.users.get(this.db, clientId, userId);
    if (input.currency === input.targetCurrency)
      throw new TransactionError(
        "INVALID",
        "SAME_CURRENCY",
        "a trade needs two currencies",
        "targetCurrency",
      );
    const scale = await this.scaleOf(this.db, clientId, input.currency);
    const targetScale = await this.scaleOf(this.db, clientId, input.targetCurrency);
    const amount = parseAmountOrThrow(input.amount, scale);
    await this.kycGate(clientId, userId, "TRADE", input.amount, input.currency, input.scenarioId);
    const [sourcePrice, targetPrice] = await Promise.all([
      this.deps.rates.usdPrice(input.currency),
      this.deps.rates.usdPrice(input.targetCurrency),
    ]);
    if (!sourcePrice || !targetPrice)
      throw new TransactionError(
        "INVALID",
        "NO_RATE",
        `no rate for ${input.currency}→${input.targetCurrency}`,
        "targetCurrency",
      );
    const source = await this.sourceWallet(clientId, userId, input.currency, input.sourceWalletId);
    const target = await this.resolveWallet(clientId, userId, input.targetCurrency);
    const fee = await this.feeFor(clientId, "TRADE", input.currency, amount, scale);
    const targetAmount = convert(amount - fee, scale, sourcePrice, targetScale, targetPrice);
    if (targetAmount <= 0n)
      throw new TransactionError(
        "INVALID",
        "AMOUNT_TOO_SMALL",
        "the amount buys nothing at this rate",
        "amount",
      );
    const usdValue = await this.usdCents(amount, scale, input.currency);
    const monitoring = await this.monitor(clientId, userId, usdValue, [], []);
    return this.moveBetweenWallets({
      clientId,
      userId,
      requestId,
      type: "TRADE",
      amount,
      currency: input.currency,
      fee,
      usdValue,
      monitoring,
      targetCurrency: input.targetCurrency,
      targetAmount,
      rate: `${sourcePrice}/${targetPrice}`,
      counterpartyUserId: null,
      sourceWalletId: source.id,
      counterpartyWalletId: target.id,
      suppressWebhook: input.suppressWebhook,
    });
  }

  /** Records a wallet-to-wallet transaction and, if monitoring accepts it, moves the money in the same database transaction. */
  private async moveBetweenWallets(m: WalletMove): Promise<Transaction> {
    const status = statusAfter(m.monitoring, "CAPTURED");
    await this.db.transaction().execute(async (tx) => {
      const row = await this.insertRow(tx, {
        client_id: m.clientId,
        request_id: m.requestId,
        type: m.type,
        user_id: m.userId,
        counterparty_user_id: m.counterpartyUserId,
        status,
        amount: m.amount.toString(),
        currency: m.currency,
        fee: m.fee.toString(),
        usd_value: m.usdValue.toString(),
        target_currency: m.targetCurrency ?? null,
        target_amount: m.targetAmount?.toString() ?? null,
        rate: m.rate ?? null,
        wallet_id: m.sourceWalletId,
        counterparty_wallet_id: m.counterpartyWalletId,
        payment_method: JSON.stringify({ type: "WALLET" }),
        monitoring: JSON.stringify(m.monitoring),
        status_detail:
          status === "CAPTURED" ? JSON.stringify({ responseCode: "00", responseCategory: "APPROVED" }) : null,
      });
      if (status === "CAPTURED") await this.executeStoredMove(tx, row);
      await this.announceMonitoring(tx, row, m.monitoring, m.suppressWebhook);
      await this.announceStatus(tx, row, m.suppressWebhook);
      if (status === "CAPTURED") await this.announceMovedBalances(tx, row, m.suppressWebhook);
    });
    return this.get(m.clientId, m.requestId);
  }

  /**
   * The ledger legs of a transfer, payment or trade, rebuilt from its row (so a reviewed one moves
   * exactly as it would have at once): source → destination (through the FX accounts for a trade),
   * and the fee from the source to the fees account. All legs or none.
   */
  private async executeStoredMove(tx: Db, row: Row) {
    const { client_id: clientId, request_id: requestId, currency } = row;
    const amount = BigInt(row.amount);
    const fee = BigInt(row.fee);
    const source = row.wallet_id ?? "";
    const destination = row.counterparty_wallet_id ?? "";
    const fees = await ledger.openAccount(tx, { clientId, currency, kind: "FEES" });
    const legs: Leg[] = [];
    if (row.type === "TRADE") {
      const target = row.target_currency ?? "";
      const fxSource = await ledger.openAccount(tx, { clientId, currency, kind: "FX" });
      const fxTarget = await ledger.openAccount(tx, { clientId, currency: target, kind: "FX" });
      legs.push(
        {
          type: "SINGLE",
          id: `${requestId}:sell`,
          debitAccountId: source,
          creditAccountId: fxSource.id,
          amount: amount - fee,
          currency,
        },
        {
          type: "SINGLE",
          id: `${requestId}:buy`,
          debitAccountId: fxTarget.id,
          creditAccountId: destination,
          amount: BigInt(row.target_amount ?? "0"),
          currency: target,
        },
      );
    } else {
      legs.push({
        type: "SINGLE",
        id: `${requestId}:move`,
        debitAccountId: source,
        creditAccountId: destination,
        amount,
        currency,
      });
    }
    if (fee > 0n)
      legs.push({
        type: "SINGLE",
        id: `${requestId}:fee`,
        debitAccountId: source,
        creditAccountId: fees.id,
        amount: fee,
        currency,
      });
    const result = await ledger.applyInTransaction(tx, { clientId, operationId: `txn:${requestId}`, legs });
    if (!result.ok) {
      if (result.code === "EXCEEDS_LIMIT") {
        throw new TransactionError(
          "PAYMENT_FAILED",
          "INSUFFICIENT_FUNDS",
          "the wallet's available balance is too low for amount + fee",
        );
      }
      throw new Error(`ledger refused ${requestId}: ${result.code} ${result.message}`);
    }
  }

  /** WALLET_BALANCE for the wallets a captured move changed. */
  private async announceMovedBalances(tx: Db, row: Row, suppress?: boolean) {
    if (row.wallet_id) await this.announceBalance(tx, row.client_id, row.user_id, row.wallet_id, suppress);
    if (row.counterparty_wallet_id) {
      await this.announceBalance(
        tx,
        row.client_id,
        row.counterparty_user_id ?? row.user_id,
        row.counterparty_wallet_id,
        suppress,
      );
    }
  }

  // ——— cancel and feedback ———

  /** Cancels a transaction not yet executed (recorded, in review, awaiting payment, payout not sent): holds voided. */
  async cancel(clientId: string, requestId: string): Promise<Transaction> {
    await this.db.transaction().execute(async (tx) => {
      const row = await this.lockRow(tx, clientId, requestId);
      const cancellable =
        row.status === "MANUAL_REVIEW" ||
        row.status === "AWAITING_PAYMENT" ||
        (row.status === "PENDING" && row.type === "WITHDRAWAL");
      if (!cancellable)
        throw new TransactionError(
          "CONFLICT",
          "NOT_CANCELLABLE",
          `a ${row.status} transaction cannot be canceled`,
        );
      if (row.type === "WITHDRAWAL") await this.resolveHolds(tx, row, "VOID");
      await this.update(tx, row, {
        status: "CANCELED",
        provider_step: null,
        locked_until: null,
        redirect_url: null,
      });
      await this.announceStatus(tx, await this.rowFor(tx, clientId, requestId));
      if (row.type === "WITHDRAWAL" && row.wallet_id)
        await this.announceBalance(tx, clientId, row.user_id, row.wallet_id);
    });
    return this.get(clientId, requestId);
  }

  /**
   * The client's word on a transaction. SETTLED/ACCEPTED close a captured one (SETTLED);
   * REFUNDED/CHARGED_BACK reverse what a captured deposit or move put on the ledger;
   * CANCELLED/REJECTED/ERROR end one not yet executed (as cancel does).
   */
  async feedback(clientId: string, requestId: string, feedback: Feedback): Promise<Transaction> {
    if (feedback === "CANCELLED" || feedback === "REJECTED") return this.cancel(clientId, requestId);
    let refundReference: string | undefined;
    await this.db.transaction().execute(async (tx) => {
      const row = await this.lockRow(tx, clientId, requestId);
      if (feedback === "ERROR") {
        if (row.status !== "PENDING" && row.status !== "AWAITING_PAYMENT" && row.status !== "MANUAL_REVIEW") {
          throw new TransactionError(
            "CONFLICT",
            "FEEDBACK_NOT_APPLICABLE",
            `ERROR does not apply to a ${row.status} transaction`,
          );
        }
        if (row.type === "WITHDRAWAL") await this.resolveHolds(tx, row, "VOID");
        await this.update(tx, row, { status: "ERROR", provider_step: null, feedback });
      } else if (feedback === "SETTLED" || feedback === "ACCEPTED") {
        if (row.status === "SETTLED") return;
        if (row.status !== "CAPTURED")
          throw new TransactionError(
            "CONFLICT",
            "FEEDBACK_NOT_APPLICABLE",
            `only a CAPTURED transaction settles (this one is ${row.status})`,
          );
        await this.update(tx, row, { status: "SETTLED", feedback });
      } else {
        const target = feedback === "REFUNDED" ? "REFUNDED" : "CHARGED_BACK";
        if (row.status === target) return;
        if (row.status !== "CAPTURED" && row.status !== "SETTLED") {
          throw new TransactionError(
            "CONFLICT",
            "FEEDBACK_NOT_APPLICABLE",
            `only a captured transaction can be ${target.toLowerCase()} (this one is ${row.status})`,
          );
        }
        await this.reverse(tx, row);
        await this.update(tx, row, { status: target, feedback });
        if (feedback === "REFUNDED" && row.type === "DEPOSIT" && row.provider_reference) {
          refundReference = row.provider_reference;
        }
      }
      const updated = await this.rowFor(tx, clientId, requestId);
      await this.announceStatus(tx, updated);
      if (updated.wallet_id && (feedback === "REFUNDED" || feedback === "CHARGED_BACK")) {
        await this.announceBalance(tx, clientId, updated.user_id, updated.wallet_id);
      }
    });
    // The card refund is the acquirer's business, after the ledger recorded it: outside the transaction.
    if (refundReference) await this.deps.acquirer.refund(refundReference);
    return this.get(clientId, requestId);
  }

  /** Undoes the ledger legs a captured transaction wrote: each leg sent back the other way. */
  private async reverse(tx: Db, row: Row) {
    const { transfers } = await ledger.listEntriesOfOperation(tx, row.client_id, `txn:${row.request_id}`);
    const legs: Leg[] = transfers
      .filter((t) => t.type === "SINGLE")
      .map((t) => ({
        type: "SINGLE",
        id: `${t.id}:reversal`,
        debitAccountId: t.creditAccountId,
        creditAccountId: t.debitAccountId,
        amount: t.amount,
        currency: t.currency,
      }));
    if (legs.length === 0) return;
    const result = await ledger.applyInTransaction(tx, {
      clientId: row.client_id,
      operationId: `txn:${row.request_id}:reversal`,
      legs,
    });
    if (!result.ok) {
      throw new TransactionError(
        "CONFLICT",
        "REVERSAL_REFUSED",
        `the reversal cannot be booked: ${result.message}`,
      );
    }
  }

  // ——— helpers ———

  private async assertUnused(clientId: string, requestId: string) {
    if (await this.findRow(this.db, clientId, requestId)) {
      throw new TransactionError(
        "CONFLICT",
        "REQUEST_ID_USED",
        `request id ${requestId} was already used`,
        "X-Request-Id",
      );
    }
  }

  private async insertRow(
    tx: Db,
    values: Parameters<ReturnType<Db["insertInto"]>["values"]>[0] & Record<string, unknown>,
  ): Promise<Row> {
    const inserted = await tx
      .insertInto("transactions")
      .values(values as never)
      .onConflict((oc) => oc.columns(["client_id", "request_id"]).doNothing())
      .returning("request_id")
      .executeTakeFirst();
    const { client_id: clientId, request_id: requestId } = values as {
      client_id: string;
      request_id: string;
    };
    if (!inserted)
      throw new TransactionError(
        "CONFLICT",
        "REQUEST_ID_USED",
        `request id ${requestId} was already used`,
        "X-Request-Id",
      );
    return this.rowFor(tx, clientId, requestId);
  }

  private async lockRow(tx: Db, clientId: string, requestId: string): Promise<Row> {
    const row = await tx
      .selectFrom("transactions")
      .selectAll()
      .where("client_id", "=", clientId)
      .where("request_id", "=", requestId)
      .forUpdate()
      .executeTakeFirst();
    if (!row) throw notFound(requestId);
    return row as Row;
  }

  private async feeFor(
    clientId: string,
    type: TransactionType,
    currency: string,
    amount: bigint,
    scale: number,
  ): Promise<bigint> {
    const client = await getClient(this.db, clientId);
    return new ConfiguredFees((client.settings as { fees?: FeeRule[] }).fees ?? []).feeFor({
      transactionType: type,
      currency,
      amount,
      scale,
    });
  }

  /** The user's wallet to pay from: the one named, or the user's wallet in that currency (402 if none). */
  private async sourceWallet(
    clientId: string,
    userId: string,
    currency: string,
    walletId?: string,
  ): Promise<Account> {
    const wallet = await this.findWallet(clientId, userId, currency, walletId, "sourceWalletId");
    if (!wallet)
      throw new TransactionError(
        "PAYMENT_FAILED",
        "INSUFFICIENT_FUNDS",
        `the user has no ${currency} wallet`,
      );
    return wallet;
  }

  private resolveBankAccount(clientId: string, userId: string, method: BankDestination) {
    return this.savedOrInline(
      clientId,
      userId,
      "BANK_ACCOUNT",
      method.paymentInformationId,
      inlineBankOf(method),
      "destinationMethod",
    );
  }

  private resolveCard(clientId: string, userId: string, source: CardSource) {
    return this.savedOrInline(
      clientId,
      userId,
      "CREDIT_CARD",
      source.paymentInformationId,
      inlineCardOf(source),
      "sourceMethod",
    );
  }

  /** A saved payment method of the right type, or the inline one saved now (as the user's). */
  private async savedOrInline(
    clientId: string,
    userId: string,
    type: "CREDIT_CARD" | "BANK_ACCOUNT",
    savedId: string | undefined,
    inline: NewPaymentMethod | undefined,
    field: string,
  ) {
    const what = type === "CREDIT_CARD" ? "card" : "bank account";
    if (savedId) {
      const { method } = await this.deps.paymentMethods.reveal(clientId, userId, savedId);
      if (method.type !== type) {
        throw new TransactionError(
          "INVALID",
          "WRONG_PAYMENT_METHOD",
          `the payment information is not a ${what}`,
          `${field}.paymentInformationId`,
        );
      }
      return method;
    }
    if (!inline) {
      throw new TransactionError(
        "INVALID",
        "PAYMENT_DETAILS_MISSING",
        `a ${what} needs paymentInformationId or its details`,
        field,
      );
    }
    return (await this.deps.paymentMethods.add(clientId, userId, inline)).method;
  }

  private findRow(db: Db, clientId: string, requestId: string) {
    return db
      .selectFrom("transactions")
      .selectAll()
      .where("client_id", "=", clientId)
      .where("request_id", "=", requestId)
      .executeTakeFirst();
  }

  private async rowFor(db: Db, clientId: string, requestId: string): Promise<Row> {
    const row = await this.findRow(db, clientId, requestId);
    if (!row) throw notFound(requestId);
    return row as Row;
  }

  private async update(tx: Db, row: Row, changes: Record<string, unknown>) {
    await tx
      .updateTable("transactions")
      .set({ ...changes, updated_at: new Date() })
      .where("client_id", "=", row.client_id)
      .where("request_id", "=", row.request_id)
      .execute();
  }

  /** `db`: the transaction in progress when there is one (PGlite has one connection: never mix the two). */
  private async scaleOf(db: Db, clientId: string, currency: string): Promise<number> {
    const scale = (await ledger.findCurrency(db, clientId, currency))?.scale ?? KNOWN_SCALES[currency];
    if (scale === undefined)
      throw new TransactionError(
        "INVALID",
        "UNKNOWN_CURRENCY",
        `currency ${currency} is not supported`,
        "currency",
      );
    return scale;
  }

  private async usdCents(amount: bigint, scale: number, currency: string): Promise<bigint> {
    const price = await this.deps.rates.usdPrice(currency);
    if (price === undefined)
      throw new TransactionError("INVALID", "UNKNOWN_CURRENCY", `no rate for ${currency}`, "currency");
    return toUsdCents(amount, scale, price);
  }

  /** The KYC gate: a 422 with the validations endpoint's body unless the user may do it. */
  private async kycGate(
    clientId: string,
    userId: string,
    type: TransactionType,
    amount: string | number,
    currency: string,
    scenarioId?: string,
  ) {
    const outcome = await this.deps.kyc.validate({ clientId, userId, type, amount, currency, scenarioId });
    if (outcome.type === "MIN_INFO_MISSING") {
      throw new TransactionError(
        "MORE_INFORMATION_NEEDED",
        "MIN_INFO_MISSING",
        "the user's information is not enough for this transaction",
        undefined,
        {
          fields: outcome.fields,
        },
      );
    }
    if (outcome.type === "MIN_ASSESSMENT_MISSING") {
      throw new TransactionError(
        "MORE_INFORMATION_NEEDED",
        "MIN_ASSESSMENT_MISSING",
        "this transaction needs a higher KYC tier",
        undefined,
        {
          assessment: outcome.assessment,
        },
      );
    }
  }

  private async mergePii(clientId: string, userId: string, pii: UserInfo) {
    const { changed } = await this.db
      .transaction()
      .execute((tx) => this.deps.users.writeInfo(tx, clientId, userId, pii, "merge"));
    // A KYC refresh in the background: it does not hold up or change the deposit.
    if (changed) void this.deps.kyc.start({ clientId, userId, solicited: false }).catch(() => {});
  }

  /** The user's wallet to credit: the one named, the user's wallet in that currency, or a new one. */
  private async resolveWallet(
    clientId: string,
    userId: string,
    currency: string,
    walletId?: string,
  ): Promise<Account> {
    return (
      (await this.findWallet(clientId, userId, currency, walletId, "destinationWalletId")) ??
      this.deps.wallets.open(clientId, userId, currency)
    );
  }

  private async findWallet(
    clientId: string,
    userId: string,
    currency: string,
    walletId: string | undefined,
    field: string,
  ) {
    if (!walletId)
      return (await this.deps.wallets.list(clientId, userId)).find((w) => w.currency === currency);
    const wallet = await this.deps.wallets.get(clientId, userId, walletId);
    if (wallet.currency !== currency) {
      throw new TransactionError(
        "INVALID",
        "WALLET_CURRENCY",
        `the wallet holds ${wallet.currency}, not ${currency}`,
        field,
      );
    }
    return wallet;
  }

  private async monitor(
    clientId: string,
    userId: string,
    amountUsdCents: bigint,
    extraNames: (string | undefined)[],
    extraCountries: (string | undefined)[],
  ): Promise<MonitoringResult> {
    const client = await getClient(this.db, clientId);
    const config = getMonitoringConfig(client);
    const windowMinutes = config.velocityWindowMinutes ?? DEFAULT_MONITORING.velocityWindowMinutes;
    const [user, info, usage] = await Promise.all([
      this.deps.users.get(this.db, clientId, userId),
      this.deps.users.info(this.db, clientId, userId),
      sql<{ last24h: string | null; recent: string; any: string }>`
        SELECT
          sum(usd_value) FILTER (WHERE created_at > now() - interval '24 hours') AS last24h,
          count(*) FILTER (WHERE created_at > now() - make_interval(mins => ${windowMinutes})) AS recent,
          count(*) AS any
        FROM transactions
        WHERE client_id = ${clientId} AND user_id = ${userId} AND status NOT IN ('REFUSED', 'CANCELED', 'ERROR')`.execute(
        this.db,
      ),
    ]);
    const figures = usage.rows[0];
    const names = [
      [info.name?.firstName, info.name?.middleName, info.name?.lastName].filter(Boolean).join(" "),
      info.businessName ?? "",
      ...extraNames.map((n) => n ?? ""),
    ].filter((n) => n.length > 0);
    const countries = [
      info.countryOfResidence,
      info.countryOfCitizenship,
      ...(info.addresses ?? []).map((a) => a.country),
      ...extraCountries,
    ].filter((c): c is string => typeof c === "string");
    return evaluate(
      {
        userStatus: user.status,
        userCreatedAt: user.createdAt,
        names,
        countries,
        amountUsdCents,
        last24hUsdCents: BigInt(figures?.last24h ?? "0"),
        recentCount: Number(figures?.recent ?? 0),
        hasHistory: Number(figures?.any ?? 0) > 0,
        now: new Date(),
      },
      config,
      this.deps.sanctions,
    );
  }

  private async view(row: Row): Promise<Transaction> {
    return {
      clientId: row.client_id,
      requestId: row.request_id,
      type: row.type as TransactionType,
      userId: row.user_id,
      status: row.status as TransactionStatus,
      amount: BigInt(row.amount),
      currency: row.currency,
      scale: await this.scaleOf(this.db, row.client_id, row.currency),
      fee: BigInt(row.fee),
      walletId: row.wallet_id,
      counterpartyUserId: row.counterparty_user_id,
      target:
        row.target_currency && row.target_amount
          ? {
              currency: row.target_currency,
              amount: BigInt(row.target_amount),
              scale: await this.scaleOf(this.db, row.client_id, row.target_currency),
              rate: row.rate,
            }
          : null,
      paymentMethod: json(row.payment_method),
      monitoring: json(row.monitoring),
      statusDetail: json(row.status_detail),
      redirectUrl: row.redirect_url,
      paymentInstructions: row.status === "AWAITING_PAYMENT" ? json(row.payment_instructions) : null,
      createdAt: new Date(row.created_at),
      updatedAt: new Date(row.updated_at),
    };
  }

  private async announceMonitoring(tx: Db, row: Row, monitoring: MonitoringResult, suppress?: boolean) {
    const scale = await this.scaleOf(tx, row.client_id, row.currency);
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

  private async announceStatus(tx: Db, row: Row, suppress?: boolean) {
    const scale = await this.scaleOf(tx, row.client_id, row.currency);
    const method = json<{ type: string; last4?: string }>(row.payment_method);
    const detail = json<{ responseCode: string; responseCategory: string }>(row.status_detail);
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
        amount: formatAmount(BigInt(row.amount), scale),
        currency: row.currency,
        fee: formatAmount(BigInt(row.fee), scale),
        total: formatAmount(BigInt(row.amount), scale),
        paymentMethod: method
          ? { type: method.type, ...(method.last4 ? { last4: method.last4 } : {}) }
          : null,
        statusDetail: detail
          ? { responseCode: detail.responseCode, responseCategory: detail.responseCategory }
          : null,
        date: new Date().toISOString(),
      },
    });
  }

  private async announceBalance(
    tx: Db,
    clientId: string,
    userId: string,
    walletId: string,
    suppress?: boolean,
  ) {
    const wallet = await ledger.getAccount(tx, walletId, clientId);
    const scale = (await ledger.getCurrency(tx, clientId, wallet.currency)).scale;
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
}

function getMonitoringConfig(client: { settings: unknown }): MonitoringConfig {
  return ((client.settings as { monitoring?: MonitoringConfig }).monitoring ?? {}) as MonitoringConfig;
}

function parseAmountOrThrow(amount: string | number, scale: number): bigint {
  try {
    return parsePositiveAmount(amount, scale);
  } catch (error) {
    if (error instanceof AmountError)
      throw new TransactionError("INVALID", "INVALID_AMOUNT", `amount ${error.message}`, "amount");
    throw error;
  }
}

/** The KYC gate's rolling totals: a user's USD total of a type since a date (refused, canceled and failed ones excluded). */
export function transactionsUsage(db: Db): UsageSource {
  return {
    async priorUsdCents(clientId, userId, type, since) {
      const row = await db
        .selectFrom("transactions")
        .select((eb) => eb.fn.sum<string | null>("usd_value").as("total"))
        .where("client_id", "=", clientId)
        .where("user_id", "=", userId)
        .where("type", "=", type)
        .where("created_at", ">", since)
        .where("status", "not in", ["REFUSED", "CANCELED", "ERROR"])
        .executeTakeFirst();
      return BigInt(row?.total ?? "0");
    },
  };
}

export type Feedback =
  | "SETTLED"
  | "ACCEPTED"
  | "CANCELLED"
  | "REJECTED"
  | "REFUNDED"
  | "CHARGED_BACK"
  | "ERROR";

export interface BankDestination {
  paymentMethodType: "ACH" | "WIRE";
  paymentInformationId?: string | undefined;
  iban?: string | undefined;
  bankAccountNumber?: string | undefined;
  accountHolderName?: string | undefined;
  bankSwiftCode?: string | undefined;
  bankRoutingNumber?: string | undefined;
}

export interface WithdrawalInput {
  clientId: string;
  userId: string;
  requestId: string;
  amount: string | number;
  currency: string;
  sourceWalletId?: string | undefined;
  destinationMethod: BankDestination;
  scenarioId?: string | undefined;
  suppressWebhook?: boolean | undefined;
}

export interface TransferInput {
  kind: "TRANSFER" | "PAYMENT";
  clientId: string;
  userId: string;
  requestId: string;
  destinationUserId: string;
  amount: string | number;
  currency: string;
  sourceWalletId?: string | undefined;
  scenarioId?: string | undefined;
  suppressWebhook?: boolean | undefined;
}

export interface TradeInput {
  clientId: string;
  userId: string;
  requestId: string;
  amount: string | number;
  currency: string;
  targetCurrency: string;
  sourceWalletId?: string | undefined;
  scenarioId?: string | undefined;
  suppressWebhook?: boolean | undefined;
}

interface WalletMove {
  clientId: string;
  userId: string;
  requestId: string;
  type: TransactionType;
  amount: bigint;
  currency: string;
  fee: bigint;
  usdValue: bigint;
  monitoring: MonitoringResult;
  /** The user whose wallet receives (transfers, payments); null for a trade (the user's own wallet). */
  counterpartyUserId: string | null;
  targetCurrency?: string;
  targetAmount?: bigint;
  rate?: string;
  sourceWalletId: string;
  counterpartyWalletId: string;
  suppressWebhook?: boolean | undefined;
}

/** `amount` at `scale` priced `fromPrice` USD, in units of a currency priced `toPrice` at `toScale`, rounded down. */
export function convert(
  amount: bigint,
  scale: number,
  fromPrice: string,
  toScale: number,
  toPrice: string,
): bigint {
  const [fw = "0", ff = ""] = fromPrice.split(".");
  const [tw = "0", tf = ""] = toPrice.split(".");
  const numerator = amount * BigInt(fw + ff) * 10n ** BigInt(tf.length) * 10n ** BigInt(toScale);
  const denominator = BigInt(tw + tf) * 10n ** BigInt(ff.length) * 10n ** BigInt(scale);
  return numerator / denominator;
}

function fullName(info: UserInfo): string {
  return (
    [info.name?.firstName, info.name?.middleName, info.name?.lastName].filter(Boolean).join(" ") ||
    info.businessName ||
    ""
  );
}

function countriesOf(info: UserInfo): string[] {
  return [
    info.countryOfResidence,
    info.countryOfCitizenship,
    ...(info.addresses ?? []).map((a) => a.country),
  ].filter((c): c is string => typeof c === "string");
}

/** The inline card of a source method, if it carries one (else it names saved payment information). */
function inlineCardOf(source: CardSource): NewPaymentMethod | undefined {
  if (
    source.paymentInformationId ||
    !source.cardNumber ||
    source.expirationMonth === undefined ||
    source.expirationYear === undefined
  )
    return undefined;
  return {
    type: "CREDIT_CARD",
    cardNumber: source.cardNumber,
    expirationMonth: source.expirationMonth,
    expirationYear: source.expirationYear,
    cardHolder: source.cardHolder,
    billingAddress: source.billingAddress,
  };
}

function inlineBankOf(method: BankDestination): NewPaymentMethod | undefined {
  if (method.paymentInformationId || (!method.iban && !method.bankAccountNumber)) return undefined;
  if (!method.accountHolderName) {
    throw new TransactionError(
      "INVALID",
      "BANK_DETAILS_MISSING",
      "accountHolderName is required",
      "destinationMethod.accountHolderName",
    );
  }
  return {
    type: "BANK_ACCOUNT",
    iban: method.iban,
    bankAccountNumber: method.bankAccountNumber,
    accountHolderName: method.accountHolderName,
    bankSwiftCode: method.bankSwiftCode,
    bankRoutingNumber: method.bankRoutingNumber,
  };
}

export interface BankDepositInput {
  clientId: string;
  userId: string;
  requestId: string;
  amount: string | number;
  currency: string;
  paymentMethodType: "ACH" | "WIRE";
  destinationWalletId?: string | undefined;
  pii?: UserInfo | undefined;
  scenarioId?: string | undefined;
  suppressWebhook?: boolean | undefined;
}

const INCOMING_BANK = "sandbox-bank-incoming";
/** The sandbox's transit account that bank deposits are paid to. */
export const SANDBOX_TRANSIT_IBAN = "DE02100100100006820101";

/** A payment reference a person can type: FRY + 10 characters without look-alikes. */
function bankReference(): string {
  const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  const bytes = crypto.getRandomValues(new Uint8Array(10));
  return `FRY${[...bytes].map((b) => alphabet[b % alphabet.length]).join("")}`;
}

/** Where monitoring leaves a new transaction: refused, held for review, or on to `accepted`. */
function statusAfter(monitoring: MonitoringResult, accepted: TransactionStatus): TransactionStatus {
  if (monitoring.status === "DENY") return "REFUSED";
  return monitoring.status === "MANUAL_REVIEW" ? "MANUAL_REVIEW" : accepted;
}
