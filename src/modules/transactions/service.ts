import { sql } from "kysely";
import type { Db } from "../../db/database.ts";
import { DomainError } from "../../lib/errors.ts";
import { AmountError, formatAmount, parsePositiveAmount } from "../../lib/money.ts";
import {
  type Acquirer,
  AcquirerTimeoutError,
  type ChargeResult,
} from "../../providers/acquirer/interface.ts";
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
  paymentMethod: { type: string; last4?: string | null; paymentInformationId?: string } | null;
  monitoring: MonitoringResult | null;
  statusDetail: { responseCode: string; responseCategory: string; message?: string } | null;
  redirectUrl: string | null;
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
  status: string;
  amount: string;
  currency: string;
  fee: string;
  wallet_id: string | null;
  payment_method: unknown;
  monitoring: unknown;
  status_detail: unknown;
  redirect_url: string | null;
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
  rates: RatesProvider;
  sanctions: SanctionsList;
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
    const existing = await this.findRow(this.db, clientId, requestId);
    if (existing)
      throw new TransactionError(
        "CONFLICT",
        "REQUEST_ID_USED",
        `request id ${requestId} was already used`,
        "X-Request-Id",
      );
    await this.deps.users.get(this.db, clientId, userId);
    if (input.pii) await this.mergePii(clientId, userId, input.pii);
    const scale = await this.scaleOf(this.db, clientId, input.currency);
    const amount = parseAmountOrThrow(input.amount, scale);
    await this.kycGate(clientId, userId, "DEPOSIT", input.amount, input.currency, input.scenarioId);

    const card = await this.resolveCard(clientId, userId, input.sourceMethod);
    const wallet = await this.resolveWallet(clientId, userId, input.currency, input.destinationWalletId);
    const client = await getClient(this.db, clientId);
    const fee = new ConfiguredFees((client.settings as { fees?: FeeRule[] }).fees ?? []).feeFor({
      transactionType: "DEPOSIT",
      currency: input.currency,
      amount,
      scale,
    });
    const usdValue = await this.usdCents(amount, scale, input.currency);
    const monitoring = await this.monitor(
      clientId,
      userId,
      usdValue,
      [input.sourceMethod.cardHolder],
      [input.sourceMethod.billingAddress?.country],
    );

    const status: TransactionStatus =
      monitoring.status === "DENY"
        ? "REFUSED"
        : monitoring.status === "MANUAL_REVIEW"
          ? "MANUAL_REVIEW"
          : "PENDING";
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
          locked_until: status === "PENDING" ? new Date(Date.now() + 60_000) : null,
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
    const result = await this.deps.acquirer.completeChallenge(providerReference, approved);
    await this.recordCharge(row.client_id, row.request_id, result);
    return this.get(row.client_id, row.request_id);
  }

  private async recordCharge(
    clientId: string,
    requestId: string,
    result: ChargeResult,
    suppressWebhook?: boolean,
  ) {
    await this.db.transaction().execute(async (tx) => {
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
      if (!open) return; // recorded already (by the request, the worker, or the challenge page)
      if (result.outcome === "CHALLENGE") {
        await this.update(tx, row as Row, {
          status: "AWAITING_PAYMENT",
          provider_reference: result.reference,
          provider_step: null,
          redirect_url: result.redirectUrl,
        });
        await this.announceStatus(tx, await this.rowFor(tx, clientId, requestId), suppressWebhook);
        return;
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
        return;
      }
      // Approved: the money moves. The acquirer owes the gross amount (card transit account); the
      // wallet gets it net of the fee, the fee goes to the fees account — all legs or none.
      const amount = BigInt(row.amount);
      const fee = BigInt(row.fee);
      const transit = await ledger.openAccount(tx, {
        clientId,
        currency: row.currency,
        kind: "TRANSIT",
        rail: "card",
      });
      const fees = await ledger.openAccount(tx, { clientId, currency: row.currency, kind: "FEES" });
      const legs: Leg[] = [];
      if (amount - fee > 0n) {
        legs.push({
          type: "SINGLE",
          id: `${requestId}:deposit`,
          debitAccountId: transit.id,
          creditAccountId: row.wallet_id ?? "",
          amount: amount - fee,
          currency: row.currency,
        });
      }
      if (fee > 0n)
        legs.push({
          type: "SINGLE",
          id: `${requestId}:fee`,
          debitAccountId: transit.id,
          creditAccountId: fees.id,
          amount: fee,
          currency: row.currency,
        });
      const posted = await ledger.applyInTransaction(tx, { clientId, operationId: `txn:${requestId}`, legs });
      if (!posted.ok) throw new Error(`ledger refused a capture: ${posted.code} ${posted.message}`);
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
    });
  }

  /**
   * Recovery: provider steps left open (a crash, a timeout) whose lease has run out are resumed
   * with the same idempotency key. Returns how many it claimed.
   */
  async resumeProviderSteps(limit = 20): Promise<number> {
    const { rows } = await sql<{ client_id: string; request_id: string }>`
      UPDATE transactions SET locked_until = now() + interval '60 seconds'
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
    const moved = await this.db.transaction().execute(async (tx) => {
      const row = await tx
        .selectFrom("transactions")
        .selectAll()
        .where("client_id", "=", clientId)
        .where("request_id", "=", requestId)
        .forUpdate()
        .executeTakeFirst();
      if (!row) throw notFound(requestId);
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
      await this.update(tx, row as Row, {
        status: decision === "APPROVE" ? "PENDING" : "REFUSED",
        monitoring: JSON.stringify(monitoring),
        provider_step: decision === "APPROVE" ? "CHARGE" : null,
        locked_until: decision === "APPROVE" ? new Date(Date.now() + 60_000) : null,
      });
      const updated = await this.rowFor(tx, clientId, requestId);
      await this.announceMonitoring(tx, updated, monitoring);
      if (decision === "DENY") await this.announceStatus(tx, updated);
      return decision === "APPROVE";
    });
    if (moved) await this.runProviderStep(clientId, requestId, { inRequest: true });
    return this.get(clientId, requestId);
  }

  // ——— helpers ———

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

  private async resolveCard(clientId: string, userId: string, source: CardSource) {
    if (source.paymentInformationId) {
      const { method } = await this.deps.paymentMethods.reveal(clientId, userId, source.paymentInformationId);
      if (method.type !== "CREDIT_CARD") {
        throw new TransactionError(
          "INVALID",
          "NOT_A_CARD",
          "the payment information is not a card",
          "sourceMethod.paymentInformationId",
        );
      }
      return method;
    }
    if (!source.cardNumber || source.expirationMonth === undefined || source.expirationYear === undefined) {
      throw new TransactionError(
        "INVALID",
        "CARD_DETAILS_MISSING",
        "a card needs paymentInformationId, or cardNumber with its expiry",
        "sourceMethod",
      );
    }
    const card: NewPaymentMethod = {
      type: "CREDIT_CARD",
      cardNumber: source.cardNumber,
      expirationMonth: source.expirationMonth,
      expirationYear: source.expirationYear,
      cardHolder: source.cardHolder,
      billingAddress: source.billingAddress,
    };
    return (await this.deps.paymentMethods.add(clientId, userId, card)).method;
  }

  private async resolveWallet(
    clientId: string,
    userId: string,
    currency: string,
    walletId?: string,
  ): Promise<Account> {
    if (walletId) {
      const wallet = await this.deps.wallets.get(clientId, userId, walletId);
      if (wallet.currency !== currency) {
        throw new TransactionError(
          "INVALID",
          "WALLET_CURRENCY",
          `the wallet holds ${wallet.currency}, not ${currency}`,
          "destinationWalletId",
        );
      }
      return wallet;
    }
    const existing = (await this.deps.wallets.list(clientId, userId)).find((w) => w.currency === currency);
    return existing ?? this.deps.wallets.open(clientId, userId, currency);
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
      paymentMethod: json(row.payment_method),
      monitoring: json(row.monitoring),
      statusDetail: json(row.status_detail),
      redirectUrl: row.redirect_url,
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
