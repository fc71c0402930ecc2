// Over 400 lines on purpose: one method per operation the faces call, each the request's whole
// path (checks → quote → record → steps) so that it reads top to bottom; the machinery lives in
// quote.ts, process.ts, process-table.ts, postings.ts, provider-steps.ts and provider-notices.ts.
import type { Db } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import type { Actor, RequestContext } from "../../lib/context.ts";
import type { Acquirer } from "../../providers/acquirer/interface.ts";
import type { Bank } from "../../providers/bank/interface.ts";
import type { Chain } from "../../providers/chain/interface.ts";
import { writeAudit } from "../audit/service.ts";
import { getClientMode } from "../clients/service.ts";
import type { Kyc, UsageSource } from "../kyc/service.ts";
import type { MonitoringResult, SanctionsList } from "../monitoring/rules.ts";
import type { PaymentMethods } from "../payment-methods/service.ts";
import type { UsdPrices } from "../rates/service.ts";
import type { StepRunner } from "../steps/runner.ts";
import type { UserInfo } from "../users/schemas.ts";
import type { Users } from "../users/service.ts";
import type { Wallets } from "../wallets/service.ts";
import type { TransactionEventSink } from "./events.ts";
import { ExternalProcesses } from "./external.ts";
import { GroupCommit, type GroupCommitOptions } from "./group-commit.ts";
import * as postings from "./postings.ts";
import { type Applied, type EventFacts, PROCESS_TYPE, ProcessEngine, type ProcessEvent } from "./process.ts";
import { ProviderNotices } from "./provider-notices.ts";
import { registerTransactionSteps } from "./provider-steps.ts";
import { convert, countriesOf, fullName, type Quote, type QuoteRequest, Quotes } from "./quote.ts";
import * as repo from "./repo.ts";
import { inlineBankOf, inlineCardOf, Resolver } from "./resolve.ts";
import {
  type BankDepositInput,
  type DepositInput,
  type Feedback,
  INCOMING_BANK,
  json,
  type Row,
  requestIdUsed,
  SANDBOX_TRANSIT_IBAN,
  type TradeInput,
  type Transaction,
  TransactionError,
  type TransactionType,
  type TransferInput,
  usdRateNotSet,
  type WithdrawalInput,
} from "./types.ts";
import { parseUsage, readUsage, readUsageAndRequestId, usageExpression } from "./usage.ts";
import { toTransaction } from "./view.ts";

export { type Assessment, ExternalProcesses } from "./external.ts";
export { convert } from "./quote.ts";
export * from "./types.ts";

export interface TransactionDependencies {
  db: Db;
  users: Users;
  kyc: Kyc;
  wallets: Wallets;
  paymentMethods: PaymentMethods;
  acquirer: Acquirer;
  bank: Bank;
  chain: Chain;
  /** USD prices per client (the provider's, or the client's own rates). */
  rates: UsdPrices;
  sanctions: SanctionsList;
  steps: StepRunner;
  /** Where the domain events go: the faces' mappings to their wire shapes. */
  events: TransactionEventSink;
  /** How new transactions share database transactions (group-commit.ts). */
  groupCommit?: GroupCommitOptions | undefined;
}

const clientActor = (clientId: string): Actor => ({ kind: "client", id: clientId });

/** What every new transaction's request carries (the inputs of deposit, withdraw, transfer …). */
type RecordInput = {
  clientId: string;
  userId: string;
  requestId: string;
  currency: string;
  suppressWebhook?: boolean | undefined;
  awaitApproval?: boolean | undefined;
  process?: Record<string, unknown> | undefined;
};

/** The columns of a new transaction that its operation decides (the rest come from the quote). */
type RecordValues = Omit<
  repo.NewRow,
  "client_id" | "request_id" | "user_id" | "amount" | "currency" | "fee" | "usd_value" | "monitoring"
>;

/**
 * Money movement: the operations the faces call. Each one checks its input and quotes outside any
 * database transaction, records the transaction and its first transition (process.ts) in one, then
 * runs the provider steps that transition scheduled; their outcomes come back as events.
 */
export class Transactions {
  readonly engine: ProcessEngine;
  readonly quotes: Quotes;
  /** The core for a process whose states live in another module (the 1-Click flow). */
  readonly external: ExternalProcesses;
  private readonly resolve: Resolver;
  private readonly notices: ProviderNotices;
  private readonly creations: GroupCommit;

  constructor(private readonly deps: TransactionDependencies) {
    this.engine = new ProcessEngine(deps.steps, deps.events);
    this.creations = new GroupCommit(
      deps.db,
      this.engine,
      deps.steps,
      deps.events,
      deps.groupCommit ?? { maxBatchSize: 64, maxInFlight: 1 },
    );
    this.quotes = new Quotes(deps);
    this.external = new ExternalProcesses(deps.db, this.quotes, deps.events, deps.users);
    this.resolve = new Resolver(deps.wallets, deps.paymentMethods);
    registerTransactionSteps(deps.steps, { ...deps, engine: this.engine });
    this.notices = new ProviderNotices({
      ...deps,
      engine: this.engine,
      quotes: this.quotes,
      get: (clientId, requestId) => this.get(clientId, requestId),
      view: (row) => this.view(row),
      runSteps: (applied) => this.runSteps(applied),
    });
  }

  private get db() {
    return this.deps.db;
  }

  /** Resolves once every transaction being recorded has its answer (for shutdown). */
  drained(): Promise<void> {
    return this.creations.drained();
  }

  async get(clientId: string, requestId: string): Promise<Transaction> {
    return this.view(await repo.get(this.db, clientId, requestId));
  }

  /** By the number people read out (the Wallet API's requestIdentifier); undefined when none. */
  async findByNumber(clientId: string, number: string): Promise<Transaction | undefined> {
    const row = await repo.findByNumber(this.db, clientId, number);
    return row ? this.view(row) : undefined;
  }

  /** A page of the client's transactions (a user's: sent and received), newest first. */
  async list(
    clientId: string,
    filter: { userId?: string | undefined; types?: string[] | undefined },
    page: { offset: number; limit: number },
  ) {
    const { rows, total } = await repo.list(this.db, clientId, filter, page);
    return { transactions: await Promise.all(rows.map((r) => this.view(r))), total };
  }

  /** Fiat in by card: KYC gate, monitoring, the charge, and on capture the credit net of fees. */
  async deposit(input: DepositInput, actor = clientActor(input.clientId)): Promise<Transaction> {
    const { clientId, userId } = input;
    const { user, blocked, reads, quoteRequest } = await this.begin(input);
    await this.assertProviderServes(clientId, "card");
    // Bad input is refused before anything changes; then the form's information joins the user.
    const priced = await this.quotes.price(clientId, "DEPOSIT", input.amount, input.currency, input.fee);
    const inlineCard = inlineCardOf(input.sourceMethod);
    if (inlineCard) this.deps.paymentMethods.check(inlineCard);
    if (input.pii && !blocked) {
      await this.mergePii(clientId, userId, input.pii);
      reads.forget(userId);
    }
    const request = quoteRequest("DEPOSIT", {
      screen: {
        names: [input.sourceMethod.cardHolder],
        countries: [input.sourceMethod.billingAddress?.country],
      },
    });
    await this.quotes.gate(request);
    // A blocked user's deposit is refused by monitoring: no card is saved, no wallet opened for it.
    const card = await this.resolve.card(clientId, user, input.sourceMethod);
    const { purchase } = input;
    // The card's currency books through the client's ledger even when no wallet holds it.
    if (purchase) await this.deps.wallets.ensureCurrency(clientId, input.currency);
    // A purchase credits the user's account in the bought currency (opened on the first purchase).
    const wallet = await this.resolve.destinationWallet(
      clientId,
      user,
      purchase ? purchase.currency : input.currency,
      purchase ? undefined : input.destinationWalletId,
    );
    const quote = { ...priced, monitoring: await this.quotes.monitor(request, priced.usdValue) };
    return this.record(input, actor, quote, {
      type: "DEPOSIT",
      wallet_id: wallet.id,
      ...(purchase
        ? {
            target_currency: purchase.currency,
            target_amount: purchase.amount.toString(),
            rate: purchase.rate,
            destination_address: purchase.address ?? null,
          }
        : {}),
      payment_method: JSON.stringify({
        type: "CREDIT_CARD",
        last4: card.last4,
        paymentInformationId: card.id,
      }),
      provider: this.deps.acquirer.name,
    });
  }

  /** Fiat in by bank transfer: AWAITING_PAYMENT with payment instructions, credited when the money arrives. */
  async bankDeposit(input: BankDepositInput, actor = clientActor(input.clientId)): Promise<Transaction> {
    const { quote, values } = await this.prepareBankDeposit(input);
    return this.record(input, actor, quote, values);
  }

  /**
   * Staff record a bank payment that has arrived (the Wallet API's staff top-up): the deposit and
   * its credit in one database transaction, so a failure leaves nothing (never a top-up request
   * waiting for money that came). Monitoring decides first, as for any deposit: DENY records it
   * REFUSED; MANUAL_REVIEW records it waiting for the compliance review, after which an
   * accountant's accept credits it. Then the bank's record of the transfer (`staff-<number>`), which
   * reconciliation compares with the ledger.
   */
  async recordBankPayment(
    input: BankDepositInput,
    staff: { actor: Actor; decision: Record<string, unknown> },
  ): Promise<Transaction> {
    const { quote, values, reference } = await this.prepareBankDeposit(input);
    if (quote.monitoring.status !== "ACCEPT") return this.record(input, staff.actor, quote, values);
    await postings.systemAccount.warm(this.db, input.clientId, input.currency);
    const ctx = { clientId: input.clientId, actor: staff.actor, requestId: input.requestId };
    const { applied, transferId } = await inTransaction(this.db, async (tx) => {
      const created = await this.engine.create(tx, ctx, this.newRow(input, quote, values), "ACCEPTED", {
        monitoring: quote.monitoring,
        suppressWebhook: input.suppressWebhook,
      });
      const transferId = `staff-${created.row.number}`;
      const credited = await this.engine.apply(tx, ctx, created.row, "FUNDS_RECEIVED", {
        transferId,
        receivedAmount: quote.amount,
        changes: {
          status_detail: JSON.stringify({ responseCode: "00", responseCategory: "RECEIVED" }),
          decision: JSON.stringify(staff.decision),
        },
      });
      return { applied: [created, credited], transferId };
    });
    await this.deps.bank.receive({
      transferId,
      paymentReference: reference,
      amount: quote.amount,
      currency: input.currency,
    });
    for (const a of applied) await this.runSteps(a);
    return this.get(input.clientId, input.requestId);
  }

  /** A bank deposit's checks and quote, and the row it records (with its payment reference). */
  private async prepareBankDeposit(input: BankDepositInput) {
    const { clientId, userId } = input;
    const { user, blocked, reads, quoteRequest } = await this.begin(input);
    await this.assertProviderServes(clientId, "bank");
    const priced = await this.quotes.price(clientId, "DEPOSIT", input.amount, input.currency, input.fee);
    if (input.pii && !blocked) {
      await this.mergePii(clientId, userId, input.pii);
      reads.forget(userId);
    }
    const request = quoteRequest("DEPOSIT");
    await this.quotes.gate(request);
    const wallet = await this.resolve.destinationWallet(
      clientId,
      user,
      input.currency,
      input.destinationWalletId,
    );
    const quote = { ...priced, monitoring: await this.quotes.monitor(request, priced.usdValue) };
    const reference = bankReference();
    const refused = quote.monitoring.status === "DENY";
    const values = {
      type: "DEPOSIT",
      wallet_id: wallet.id,
      payment_method: JSON.stringify({ type: input.paymentMethodType }),
      provider: INCOMING_BANK,
      provider_reference: refused ? null : reference,
      payment_instructions: refused
        ? null
        : JSON.stringify({ iban: SANDBOX_TRANSIT_IBAN, reference, amount: quote.amount.toString() }),
    } satisfies RecordValues;
    return { quote, values, reference };
  }

  /** Fiat out to a bank account: amount + fee held at once (402 if it does not fit), then the payout. */
  async withdraw(input: WithdrawalInput, actor = clientActor(input.clientId)): Promise<Transaction> {
    const { clientId, userId } = input;
    const destination = input.destinationMethod;
    const toCard = destination.paymentMethodType === "CREDIT_CARD";
    const { user, quoteRequest } = await this.begin(input);
    await this.assertProviderServes(clientId, toCard ? "card" : "bank");
    const priced = await this.quotes.price(clientId, "WITHDRAWAL", input.amount, input.currency, input.fee);
    const inline = toCard ? inlineCardOf({ ...destination, cvv: undefined }) : inlineBankOf(destination);
    if (inline) this.deps.paymentMethods.check(inline);
    const request = quoteRequest("WITHDRAWAL", toCard ? { screen: { names: [destination.cardHolder] } } : {});
    await this.quotes.gate(request);
    const method = toCard
      ? await this.resolve.card(clientId, user, { ...destination, cvv: undefined })
      : await this.resolve.bankAccount(clientId, user, destination);
    const wallet = await this.resolve.sourceWallet(clientId, userId, input.currency, input.sourceWalletId);
    const quote = { ...priced, monitoring: await this.quotes.monitor(request, priced.usdValue) };
    return this.record(input, actor, quote, {
      type: "WITHDRAWAL",
      wallet_id: wallet.id,
      payment_method: JSON.stringify({
        type: destination.paymentMethodType,
        last4: method.last4,
        paymentInformationId: method.id,
      }),
      provider: toCard ? this.deps.acquirer.name : this.deps.bank.name,
    });
  }

  /** User to user of the same client (or, as a payment, to a merchant user). */
  async transfer(input: TransferInput, actor = clientActor(input.clientId)): Promise<Transaction> {
    const { clientId, userId } = input;
    const type: TransactionType = input.kind === "PAYMENT" ? "PAYMENT" : "TRANSFER";
    const field = type === "PAYMENT" ? "merchantUserId" : "destinationUserId";
    const { reads, quoteRequest } = await this.begin(input, [input.destinationUserId]);
    const counterparty = await reads.user(input.destinationUserId).catch(() => {
      throw new TransactionError("NOT_FOUND", "USER_NOT_FOUND", `no user ${input.destinationUserId}`, field);
    });
    if (counterparty.id === userId)
      throw new TransactionError("INVALID", "SAME_USER", "a user cannot pay themselves", "destinationUserId");
    if (type === "PAYMENT" && counterparty.type !== "BUSINESS")
      throw new TransactionError(
        "INVALID",
        "NOT_A_MERCHANT",
        "payments go to a merchant (BUSINESS) user",
        field,
      );
    const priced = await this.quotes.price(clientId, type, input.amount, input.currency, input.fee);
    const counterpartyInfo = await reads.info(counterparty.id);
    const request = quoteRequest(type, {
      counterpartyStatus: counterparty.status,
      screen: { names: [fullName(counterpartyInfo)], countries: countriesOf(counterpartyInfo) },
    });
    await this.quotes.gate(request);
    const source = await this.resolve.sourceWallet(clientId, userId, input.currency, input.sourceWalletId);
    // A counterparty who is not ACTIVE is refused by monitoring: no wallet is opened for them.
    const destination = await this.resolve.destinationWallet(
      clientId,
      counterparty,
      input.currency,
      input.destinationWalletId,
    );
    const quote = { ...priced, monitoring: await this.quotes.monitor(request, priced.usdValue) };
    return this.record(input, actor, quote, {
      type,
      counterparty_user_id: counterparty.id,
      wallet_id: source.id,
      counterparty_wallet_id: destination.id,
      payment_method: JSON.stringify({ type: "WALLET" }),
    });
  }

  /** Exchange between the user's wallets at the currencies' USD rates: both legs or neither. */
  async trade(input: TradeInput, actor = clientActor(input.clientId)): Promise<Transaction> {
    const { clientId, userId } = input;
    const { user, quoteRequest } = await this.begin(input);
    if (input.currency === input.targetCurrency)
      throw new TransactionError(
        "INVALID",
        "SAME_CURRENCY",
        "a trade needs two currencies",
        "targetCurrency",
      );
    const priced = await this.quotes.price(clientId, "TRADE", input.amount, input.currency, input.fee);
    const targetScale = await this.quotes.scaleOf(clientId, input.targetCurrency);
    const request = quoteRequest("TRADE");
    await this.quotes.gate(request);
    const [sourcePrice, targetPrice] = await Promise.all([
      this.deps.rates.usdPrice(input.currency, clientId),
      this.deps.rates.usdPrice(input.targetCurrency, clientId),
    ]);
    if (!sourcePrice) throw usdRateNotSet(input.currency, "currency");
    if (!targetPrice) throw usdRateNotSet(input.targetCurrency, "targetCurrency");
    const source = await this.resolve.sourceWallet(clientId, userId, input.currency, input.sourceWalletId);
    const target = await this.resolve.destinationWallet(clientId, user, input.targetCurrency);
    const targetAmount = convert(
      priced.amount - priced.fee,
      priced.scale,
      sourcePrice,
      targetScale,
      targetPrice,
    );
    if (targetAmount <= 0n)
      throw new TransactionError(
        "INVALID",
        "AMOUNT_TOO_SMALL",
        "the amount buys nothing at this rate",
        "amount",
      );
    const quote = { ...priced, monitoring: await this.quotes.monitor(request, priced.usdValue) };
    return this.record(input, actor, quote, {
      type: "TRADE",
      target_currency: input.targetCurrency,
      target_amount: targetAmount.toString(),
      rate: `${sourcePrice}/${targetPrice}`,
      wallet_id: source.id,
      counterparty_wallet_id: target.id,
      payment_method: JSON.stringify({ type: "WALLET" }),
    });
  }

  /** A staff decision on a transaction in MANUAL_REVIEW: approve → it continues; deny → REFUSED. */
  async decideReview(
    clientId: string,
    requestId: string,
    decision: "APPROVE" | "DENY",
    actor: Actor,
    options: {
      /** Who decided what, kept with the transaction (transactions.decision). */
      record?: Record<string, unknown> | undefined;
      /** A face's own precondition, checked on the locked row (throws to refuse). */
      check?: ((row: Row) => void) | undefined;
    } = {},
  ) {
    return this.transition({ clientId, actor }, requestId, decision, (row) => {
      options.check?.(row);
      const before =
        json<MonitoringResult>(row.monitoring) ??
        ({ risk: "MEDIUM", reasons: [] } as unknown as MonitoringResult);
      const monitoring = {
        ...before,
        status: decision === "APPROVE" ? "ACCEPT" : "DENY",
      } as MonitoringResult;
      return {
        monitoring,
        changes: {
          monitoring: JSON.stringify(monitoring),
          ...(options.record
            ? { decision: JSON.stringify({ ...options.record, monitoring: before.status }) }
            : {}),
        },
      };
    });
  }

  /**
   * Screens a recorded transaction again with what is known now (the user's status and
   * information, the counterparty's, sanctions, countries, usage): the AML check a person's accept
   * runs first. Nothing is written.
   */
  async screen(clientId: string, requestId: string): Promise<MonitoringResult> {
    const row = await repo.get(this.db, clientId, requestId);
    const reads = this.deps.users.reads(clientId);
    const user = await reads.user(row.user_id);
    const counterparty = row.counterparty_user_id ? await reads.user(row.counterparty_user_id) : undefined;
    const counterpartyInfo = counterparty ? await reads.info(counterparty.id) : undefined;
    return this.quotes.monitor(
      {
        clientId,
        userId: row.user_id,
        type: row.type as TransactionType,
        amount: row.amount,
        currency: row.currency,
        reads,
        userBlocked: user.status === "BLOCKED",
        counterpartyStatus: counterparty?.status,
        screen: counterpartyInfo
          ? { names: [fullName(counterpartyInfo)], countries: countriesOf(counterpartyInfo) }
          : undefined,
      },
      BigInt(row.usd_value),
    );
  }

  /**
   * A compliance officer clears a transaction that monitoring held for review (MANUAL_REVIEW): it
   * still waits for its own decision (an accountant's accept), which no longer needs the review.
   * The change and its audit row in one database transaction.
   */
  async clearReview(clientId: string, requestId: string, actor: Actor): Promise<Transaction> {
    await inTransaction(this.db, async (tx) => {
      const row = await repo.lock(tx, clientId, requestId);
      const monitoring = json<MonitoringResult>(row.monitoring);
      if (row.status !== "MANUAL_REVIEW" || monitoring?.status !== "MANUAL_REVIEW")
        throw new TransactionError(
          "CONFLICT",
          "NOT_IN_REVIEW",
          "this transaction is not waiting for a compliance review",
        );
      const cleared = {
        ...monitoring,
        status: "ACCEPT",
        clearedBy: { id: actor.id, roles: actor.roles ?? [] },
      };
      await repo.update(tx, row, { monitoring: JSON.stringify(cleared) });
      await writeAudit(
        tx,
        { clientId, actor },
        {
          action: "transaction.review_cleared",
          entityType: PROCESS_TYPE,
          entityId: requestId,
          before: { monitoring: "MANUAL_REVIEW" },
          after: { monitoring: "ACCEPT" },
        },
      );
    });
    return this.get(clientId, requestId);
  }

  /** DELETE: ends a transaction not yet executed (409 while a provider call is under way). */
  cancel(clientId: string, requestId: string, actor = clientActor(clientId)) {
    return this.transition({ clientId, actor }, requestId, "CANCEL");
  }

  /** The client's word on a transaction (see the process tables for what each one does). */
  feedback(clientId: string, requestId: string, feedback: Feedback, actor = clientActor(clientId)) {
    const event: ProcessEvent =
      feedback === "CANCELLED" || feedback === "REJECTED"
        ? "CANCEL"
        : feedback === "ERROR"
          ? "FAIL"
          : feedback === "SETTLED" || feedback === "ACCEPTED"
            ? "SETTLE"
            : feedback === "REFUNDED"
              ? "REFUND"
              : "CHARGEBACK";
    const record = event === "SETTLE" || event === "REFUND" || event === "CHARGEBACK";
    return this.transition({ clientId, actor }, requestId, event, () => ({
      changes: record ? { feedback } : {},
    }));
  }

  /** The card holder finished (or failed) the 3-D Secure challenge (provider-notices.ts). */
  completeChallenge(providerReference: string, approved: boolean): Promise<Transaction> {
    return this.notices.completeChallenge(providerReference, approved);
  }

  /** The bank reports money arriving with a payment reference (provider-notices.ts). */
  incomingBankTransfer(
    reference: string,
    amount: string | number,
    currency: string,
    transferId?: string,
    staff?: { actor: Actor; decision: Record<string, unknown> },
  ) {
    return this.notices.incomingBankTransfer(reference, amount, currency, transferId, staff);
  }

  /** The client whose transaction carries this provider reference (a charge's, a payment reference). */
  async ownerOfReference(reference: string): Promise<string | undefined> {
    return (await repo.findClientOfReference(this.db, reference))?.client_id;
  }

  /** The transaction carrying this provider reference (the sandbox challenge page's return URLs). */
  async byReference(reference: string): Promise<Transaction | undefined> {
    const found = await repo.findClientOfReference(this.db, reference);
    return found ? this.get(found.client_id, found.request_id) : undefined;
  }

  /** Which transaction each bank payment reference belongs to (reconciliation). */
  bankDepositOwners(references: string[]) {
    return this.notices.bankDepositOwners(references);
  }

  /** The provider steps of a transaction (for staff). */
  async stepsOf(clientId: string, requestId: string) {
    await repo.get(this.db, clientId, requestId);
    return this.deps.steps.stepsOf(this.db, clientId, PROCESS_TYPE, requestId);
  }

  // ——— the shared path ———

  /**
   * The sandbox acquirer and bank serve sandbox clients only: a live client has no provider for
   * this rail until a real adapter is configured, and is refused before anything is recorded.
   */
  private async assertProviderServes(clientId: string, rail: "card" | "bank") {
    if ((await getClientMode(this.db, clientId)) === "live")
      throw new TransactionError(
        "CONFLICT",
        "PROVIDER_NOT_CONFIGURED",
        `no ${rail === "card" ? "card acquirer" : "bank"} is configured for live payments; the sandbox providers serve sandbox clients only`,
      );
  }

  /**
   * A request id not used yet, and a user who may move money: an INACTIVE user is refused (403)
   * before anything happens; a BLOCKED one is refused by monitoring, recorded as REFUSED (their
   * information is not merged and the KYC gate not asked first). One statement reads the users
   * (`others`: a counterparty) with their information and, riding along, whether the request id is
   * taken and the user's usage (usage.ts).
   */
  private async begin(
    input: {
      clientId: string;
      userId: string;
      requestId: string;
      amount: string | number;
      currency: string;
      scenarioId?: string | undefined;
    },
    others: string[] = [],
  ) {
    const reads = this.deps.users.reads(input.clientId);
    const usage = this.quotes.usageReads();
    const window = await usage.window(input.clientId);
    const also = reads
      .preload(
        [input.userId, ...others],
        usageExpression(input.clientId, input.userId, window, input.requestId),
      )
      .catch(() => undefined);
    const user = await reads.user(input.userId).catch((error: unknown) => error);
    const found = await also;
    // No user found, no usage read: ask on its own whether the request id is taken (it wins).
    const state =
      found === undefined
        ? await readUsageAndRequestId(this.db, input.clientId, input.userId, window, input.requestId)
        : parseUsage(found);
    if (state.requestIdUsed) throw requestIdUsed(input.requestId);
    if (user instanceof Error) throw user;
    usage.prime(input.clientId, input.userId, state.figures);
    const owner = user as Awaited<ReturnType<typeof reads.user>>;
    const { status } = owner;
    if (status === "INACTIVE")
      throw new TransactionError(
        "FORBIDDEN",
        "USER_NOT_ACTIVE",
        "the user is INACTIVE: reactivate them first",
        "userId",
      );
    const blocked = status === "BLOCKED";
    /** The quote stage's request (quote.ts) of this transaction, with the reads made here. */
    const quoteRequest = (type: TransactionType, more: Partial<QuoteRequest> = {}): QuoteRequest => ({
      clientId: input.clientId,
      userId: input.userId,
      type,
      amount: input.amount,
      currency: input.currency,
      scenarioId: input.scenarioId,
      userBlocked: blocked,
      reads,
      usage,
      ...more,
    });
    return { user: owner, blocked, reads, quoteRequest };
  }

  /** Records a new transaction with its first transition, then runs the steps it scheduled. */
  private async record(
    input: RecordInput,
    actor: Actor,
    quote: Quote,
    values: RecordValues,
  ): Promise<Transaction> {
    const event =
      quote.monitoring.status === "DENY"
        ? "DENIED"
        : quote.monitoring.status === "MANUAL_REVIEW" || input.awaitApproval
          ? "HELD_FOR_REVIEW"
          : "ACCEPTED";
    await postings.systemAccount.warm(this.db, input.clientId, input.currency);
    const applied = await this.creations.create({
      ctx: { clientId: input.clientId, actor, requestId: input.requestId },
      values: this.newRow(input, quote, values, event),
      event,
      facts: { monitoring: quote.monitoring, suppressWebhook: input.suppressWebhook },
    });
    if (applied.stepIds.length === 0) return this.view(applied.row);
    await this.runSteps(applied);
    return this.get(input.clientId, input.requestId);
  }

  /** The row a new transaction is recorded with. */
  private newRow(input: RecordInput, quote: Quote, values: RecordValues, event = "ACCEPTED"): repo.NewRow {
    return {
      ...values,
      client_id: input.clientId,
      request_id: input.requestId,
      user_id: input.userId,
      amount: quote.amount.toString(),
      currency: input.currency,
      fee: quote.fee.toString(),
      usd_value: quote.usdValue.toString(),
      monitoring: JSON.stringify(quote.monitoring),
      ...(input.process ? { process: JSON.stringify(input.process) } : {}),
      ...(event === "ACCEPTED" && values.type !== "DEPOSIT" && values.type !== "WITHDRAWAL"
        ? { status_detail: JSON.stringify({ responseCode: "00", responseCategory: "APPROVED" }) }
        : {}),
    };
  }

  private async transition(
    ctx: RequestContext,
    requestId: string,
    event: ProcessEvent,
    factsOf: (row: Row) => EventFacts = () => ({}),
  ): Promise<Transaction> {
    const applied = await inTransaction(this.db, async (tx) => {
      const row = await repo.lock(tx, ctx.clientId, requestId);
      const facts = factsOf(row);
      if (event === "APPROVE" && row.type !== "DEPOSIT" && row.type !== "WITHDRAWAL")
        facts.changes = {
          ...facts.changes,
          status_detail: JSON.stringify({ responseCode: "00", responseCategory: "APPROVED" }),
        };
      if (event === "CANCEL") facts.changes = { ...facts.changes, redirect_url: null };
      return this.engine.apply(tx, ctx, row, event, facts);
    });
    await this.runSteps(applied);
    return this.get(ctx.clientId, requestId);
  }

  private async runSteps(applied: Applied) {
    for (const id of applied.stepIds) await this.deps.steps.run(id);
  }

  private view(row: Row): Promise<Transaction> {
    return toTransaction(row, (clientId, currency) => this.quotes.scaleOf(clientId, currency));
  }

  private async mergePii(clientId: string, userId: string, pii: UserInfo) {
    const { changed } = await inTransaction(this.db, (tx) =>
      this.deps.users.writeInfo(tx, clientId, userId, pii, "merge"),
    );
    if (changed) this.deps.kyc.refreshAfterChange(clientId, userId);
  }
}

/** The KYC gate's rolling totals: a user's USD total of a type over the last 30 days (usage.ts). */
export function transactionsUsage(db: Db): UsageSource {
  return {
    priorUsdCents: async (clientId, userId, type) =>
      (await readUsage(db, clientId, userId, 0)).prior30dByType.get(type) ?? 0n,
  };
}

/** A payment reference a person can type: FRY + 10 characters without look-alikes. */
function bankReference(): string {
  const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  const bytes = crypto.getRandomValues(new Uint8Array(10));
  return `FRY${[...bytes].map((b) => alphabet[b % alphabet.length]).join("")}`;
}
