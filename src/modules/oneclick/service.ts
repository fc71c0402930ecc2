// Over 400 lines on purpose: the 1-Click flow's whole life (start, the provider's decision, the
// operator callbacks as durable steps, the payment, the code, the token, staff resolution) in one
// place, so that its states and money movements read together.
import { createHash, randomBytes } from "node:crypto";
import { SignJWT } from "jose";
import { type Selectable, sql } from "kysely";
import type { Db } from "../../db/database.ts";
import type { OneClickTransactionsTable } from "../../db/schema.ts";
import { inTransaction } from "../../db/transaction.ts";
import { type Actor, providerActor } from "../../lib/context.ts";
import { toAlpha3 } from "../../lib/countries.ts";
import { DomainError } from "../../lib/errors.ts";
import { formatAmount } from "../../lib/money.ts";
import type { Sealer } from "../../lib/sealer.ts";
import type { IdentityProvider, ProvenIdentity } from "../../providers/identity/interface.ts";
import { toUsdCents } from "../../providers/rates/interface.ts";
import { writeAudit } from "../audit/service.ts";
import { getClient } from "../clients/service.ts";
import { ConfiguredFees, type FeeRule } from "../fees/service.ts";
import { FERRY_SIGNING_ALG, type SigningKeys } from "../keys/service.ts";
import type { ValidationOutcome } from "../kyc/rules.ts";
import type { Kyc, UsageSource } from "../kyc/service.ts";
import * as ledger from "../ledger/service.ts";
import { evaluate, type MonitoringConfig, type SanctionsList } from "../monitoring/rules.ts";
import { type OneClickSettings, oneClickOf } from "../oauth/clients.ts";
import type { UsdPrices } from "../rates/service.ts";
import type { StepRunner } from "../steps/runner.ts";
import { operationOf, systemAccount } from "../transactions/postings.ts";
import type { UserInfo } from "../users/schemas.ts";
import type { Users } from "../users/service.ts";
import { mustBePublic } from "../webhooks/destinations.ts";
import { type NewEvent, recordEvents } from "../webhooks/service.ts";
import { isFinal, STATUS, type StatusName, stateOf, type TxState } from "./statuses.ts";
import { registerOneClickSteps } from "./steps.ts";

export const PROCESS_TYPE = "oneclick";

export interface OneClickConfig {
  publicUrl: string;
  /** How long Ferry waits for an operator's answer (10 s). */
  callbackTimeoutMs: number;
  /** Attempts of signin, verifyuser and authorize (the user waits for them). */
  callbackAttempts: number;
  /** Attempts of transfer and cancel before the flow is INCONSISTENT (transfer) or the step FAILED (cancel). */
  transferAttempts: number;
  /** Base of the callbacks' exponential backoff. */
  retryBaseMs: number;
  tokenTtlSeconds: number;
  /** How long the user has to decide on the provider's page. */
  sessionTtlSeconds: number;
}

export interface OneClickDependencies {
  db: Db;
  sealer: Sealer;
  users: Users;
  kyc: Kyc;
  /** The core's per-user usage (30-day totals) the KYC gate adds 1-Click deposits to. */
  usage: UsageSource;
  steps: StepRunner;
  signingKeys: SigningKeys;
  sanctions: SanctionsList;
  /** USD prices per client (the provider's, or the client's own rates). */
  rates: UsdPrices;
  providers: IdentityProvider[];
  config: OneClickConfig;
}

/** A flow's row (txId a decimal string: INT8 is read as text on both databases, db/database.ts). */
export type OneClickRow = Selectable<OneClickTransactionsTable>;

export interface StartInput {
  clientId: string;
  provider: string;
  redirectUri: string;
  /** Whether the authorization request named it (else the client's only registered one is used). */
  redirectUriGiven: boolean;
  state?: string | undefined;
  scope: string;
  locale?: string | undefined;
  iframe: boolean;
  codeChallenge?: string | undefined;
  /** A deposit: minor units of `currency`. */
  amount?: bigint | undefined;
  currency?: string | undefined;
}

/**
 * The redirect_uri with an answer's parameters (RFC 6749 §4.1.2: a code, or an error), the
 * request's state (an over-long one is not echoed), and who answered (RFC 9207 `iss`, so that a
 * client talking to several servers cannot be mixed up).
 */
export function answerUrl(
  redirectUri: string,
  params: Record<string, string | null | undefined>,
  state: string | null | undefined,
  issuer: string,
): string {
  const url = new URL(redirectUri);
  for (const [name, value] of Object.entries(params)) if (value) url.searchParams.set(name, value);
  if (state && state.length <= 500) url.searchParams.set("state", state);
  url.searchParams.set("iss", issuer);
  return url.toString();
}

export const txRefIdOf = (clientId: string, txId: string) => `${clientId}A${txId}`;
export const requestIdOf = (txId: string) => `oc-${txId}`;
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const CODE_TTL_MS = 60_000;

/** The OAuth token endpoint's errors (RFC 6749 §5.2): the face answers them as they are. */
export class OAuthError extends Error {
  constructor(
    readonly error:
      | "invalid_request"
      | "invalid_client"
      | "invalid_grant"
      | "unsupported_grant_type"
      | "invalid_token",
    readonly description: string,
    readonly status = error === "invalid_client" ? 401 : 400,
  ) {
    super(description);
    this.name = "OAuthError";
  }
}

/** The 1-Click flow (oneclick-api.md) on the core: users, ledger, steps, audit, events. */
export class OneClick {
  readonly #providers: Map<string, IdentityProvider>;

  constructor(readonly deps: OneClickDependencies) {
    this.#providers = new Map(deps.providers.map((p) => [p.name, p]));
    registerOneClickSteps(this);
  }

  get db(): Db {
    return this.deps.db;
  }

  providerNames(): string[] {
    return [...this.#providers.keys()];
  }

  provider(name: string): IdentityProvider | undefined {
    return this.#providers.get(name);
  }

  // ——— start: GET /oauth/authorize ———

  /** Records a new flow waiting for the identity provider (301); its session id is the page's capability. */
  async start(input: StartInput): Promise<OneClickRow> {
    const fee =
      input.amount !== undefined && input.currency
        ? await this.feeOf(input.clientId, input.currency, input.amount)
        : 0n;
    return inTransaction(this.db, async (tx) => {
      const row = (await tx
        .insertInto("oneclick_transactions")
        .values({
          client_id: input.clientId,
          session_id: randomBytes(32).toString("base64url"),
          identity_provider: input.provider,
          redirect_uri: input.redirectUri,
          redirect_uri_given: input.redirectUriGiven,
          state: input.state ?? null,
          scope: input.scope,
          locale: input.locale ?? null,
          iframe: input.iframe,
          code_challenge: input.codeChallenge ?? null,
          amount: input.amount?.toString() ?? null,
          currency: input.currency ?? null,
          fee: fee.toString(),
          status_code: STATUS.WAITING_IDENTITY_PROVIDER,
          status_name: "WAITING_IDENTITY_PROVIDER",
          expires_at: new Date(Date.now() + this.deps.config.sessionTtlSeconds * 1000),
        })
        .returningAll()
        .executeTakeFirstOrThrow()) as OneClickRow;
      await this.record(tx, row, { from: null, actor: { kind: "client", id: input.clientId } });
      return row;
    });
  }

  private async feeOf(clientId: string, currency: string, amount: bigint): Promise<bigint> {
    const client = await getClient(this.db, clientId);
    const scale = (await ledger.getCurrency(this.db, clientId, currency)).scale;
    return new ConfiguredFees((client.settings as { fees?: FeeRule[] }).fees ?? []).feeFor({
      transactionType: "DEPOSIT",
      currency,
      amount,
      scale,
    });
  }

  // ——— the provider's page ———

  async bySession(sessionId: string): Promise<OneClickRow | undefined> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(sessionId)) return undefined;
    return await this.db
      .selectFrom("oneclick_transactions")
      .selectAll()
      .where("session_id", "=", sessionId)
      .executeTakeFirst();
  }

  /**
   * The user's decision on the provider's page. Approve: the proven identity is kept (sealed) and
   * the operator callbacks start; deny: cancelled by the user (600). A decision on a flow that has
   * moved on changes nothing (the page shows where it is).
   */
  async decide(
    session: string | OneClickRow,
    decision: "approve" | "deny",
    personid: string | undefined,
  ): Promise<OneClickRow> {
    // The row as the caller read it by its session id (it is locked and read again below).
    const found = typeof session === "string" ? await this.bySession(session) : session;
    if (!found) throw new DomainError("NOT_FOUND", "NOT_FOUND", "no such sign-in");
    const provider = this.#providers.get(found.identity_provider);
    if (!provider) throw new DomainError("NOT_FOUND", "NOT_FOUND", "no such sign-in");
    let identity: ProvenIdentity | undefined;
    if (decision === "approve") {
      identity = personid === undefined ? undefined : provider.identify(personid);
      if (!identity)
        throw new DomainError(
          "INVALID",
          "UNKNOWN_PERSON",
          `${provider.displayName} knows no person with this personal id`,
          "personid",
        );
    }
    return inTransaction(this.db, async (tx) => {
      const row = await this.lock(tx, found.tx_id);
      if (row.status_code !== STATUS.WAITING_IDENTITY_PROVIDER) return row;
      const actor = providerActor(provider.name);
      if (new Date(row.expires_at).getTime() <= Date.now())
        return this.change(tx, row, "CANCELLED_BY_PSP", { actor, set: { err_msg: "the sign-in expired" } });
      if (!identity) return this.change(tx, row, "CANCELLED_BY_USER", { actor });
      const fingerprint = this.deps.sealer.fingerprint(
        `oneclick-person:${row.client_id}:${identity.personid}`,
      );
      // A returning person at a provider that does not need signin: verified by the operator as the user it knows.
      const known = provider.signinRequired
        ? undefined
        : await tx
            .selectFrom("oneclick_transactions")
            .select(["user_id", "operator_session_id"])
            .where("client_id", "=", row.client_id)
            .where("person_fingerprint", "=", fingerprint)
            .where("user_id", "is not", null)
            .orderBy("tx_id", "desc")
            .executeTakeFirst();
      const sealed = {
        identity_sealed: this.deps.sealer.seal(JSON.stringify(identity), `oneclick:${row.tx_id}`),
        person_fingerprint: fingerprint,
      };
      // Screened before anything is sent on: a listed person's data never reaches the operator,
      // and they never become a user (their proven identity stays sealed here for staff).
      const screening = await this.screen(tx, { ...row, user_id: known?.user_id ?? null }, identity);
      if (screening.status === "DENY")
        return this.change(tx, row, "FRAUD", {
          actor: { kind: "system", id: "monitoring" },
          set: { ...sealed, err_msg: `refused by screening: ${screening.reasons.join(", ")}` },
        });
      const changed = await this.change(tx, row, "PROCESSING_USER_VERIFICATION", {
        actor,
        set: {
          ...sealed,
          ...(known?.user_id
            ? { user_id: known.user_id, operator_session_id: known.operator_session_id }
            : {}),
        },
      });
      if (known?.user_id) {
        await this.ensureUser(tx, changed, identity, provider);
        await this.schedule(tx, changed, "OC_VERIFYUSER");
      } else await this.schedule(tx, changed, "OC_SIGNIN");
      return changed;
    });
  }

  /** The identity the provider proved (for the callbacks and the token), or undefined before approval. */
  identityOf(row: OneClickRow): ProvenIdentity | undefined {
    return row.identity_sealed
      ? (JSON.parse(this.deps.sealer.open(row.identity_sealed, `oneclick:${row.tx_id}`)) as ProvenIdentity)
      : undefined;
  }

  /**
   * Runs the flow's due steps inline (the browser is waiting) until it is final, a step waits for
   * a later retry, or the deadline passes. The recovery worker runs whatever is left.
   */
  async advance(txId: string, deadlineMs: number): Promise<OneClickRow> {
    const end = Date.now() + deadlineMs;
    let last: { stepId: string; statusCode: number } | undefined;
    for (;;) {
      // The flow and its next due step, in one statement.
      const found = await this.db
        .selectFrom("oneclick_transactions as t")
        .selectAll("t")
        .select((eb) =>
          eb
            .selectFrom("steps as s")
            .select("s.id")
            .whereRef("s.client_id", "=", "t.client_id")
            .where("s.process_type", "=", PROCESS_TYPE)
            .where("s.process_id", "=", requestIdOf(txId))
            .where("s.status", "=", "PENDING")
            .where("s.next_attempt_at", "<=", sql<Date>`now()`)
            .orderBy("s.created_at")
            .limit(1)
            .as("due_step"),
        )
        .where("t.tx_id", "=", txId)
        .executeTakeFirst();
      const row = found;
      if (!row) throw new DomainError("NOT_FOUND", "NOT_FOUND", `no 1-Click transaction ${txId}`);
      const due = (found as { due_step: string | null }).due_step;
      if (isFinal(row.status_code) || Date.now() >= end || !due) return row;
      // The same step due again with the flow where it was: it failed and waits for its retry.
      if (last?.stepId === due && last.statusCode === row.status_code) return row;
      last = { stepId: due, statusCode: row.status_code };
      await this.deps.steps.run(due);
    }
  }

  async get(txId: string): Promise<OneClickRow> {
    const row = await this.db
      .selectFrom("oneclick_transactions")
      .selectAll()
      .where("tx_id", "=", txId)
      .executeTakeFirst();
    if (!row) throw new DomainError("NOT_FOUND", "NOT_FOUND", `no 1-Click transaction ${txId}`);
    return row;
  }

  /** A client's flow by its txId (another client's is not found). */
  async ofClient(clientId: string, txId: string): Promise<OneClickRow> {
    const row = /^\d{1,18}$/.test(txId)
      ? await this.db
          .selectFrom("oneclick_transactions")
          .selectAll()
          .where("client_id", "=", clientId)
          .where("tx_id", "=", txId)
          .executeTakeFirst()
      : undefined;
    if (!row) throw new DomainError("NOT_FOUND", "NOT_FOUND", `no 1-Click transaction ${txId}`);
    return row;
  }

  /**
   * Where the browser goes when the flow is over: `redirect_uri` with a one-time code (valid 60 s;
   * a new visit replaces an unused one) or with the RFC 6749 error. Undefined while the flow runs,
   * and once its code was exchanged (the operator has its token).
   */
  async finalRedirect(txIdOrRow: string | OneClickRow): Promise<string | undefined> {
    const row = typeof txIdOrRow === "string" ? await this.get(txIdOrRow) : txIdOrRow;
    if (!isFinal(row.status_code)) return undefined;
    if (stateOf(row.status_code) === "SUCCESSFUL") {
      const code = await this.codeFor(row);
      return code ? answerUrl(row.redirect_uri, { code }, row.state, this.issuer()) : undefined;
    }
    return answerUrl(
      row.redirect_uri,
      {
        error: oauthError(row.status_code),
        error_description: row.status_name.toLowerCase(),
        errCode: row.err_code,
        // The browser carries this URL: screening's reasons stay with staff and the operator's
        // TRANSACTION_MONITORING event (telling a listed person they matched is tipping them off).
        errMsg: row.status_code === STATUS.FRAUD ? null : row.err_msg,
      },
      row.state,
      this.issuer(),
    );
  }

  /**
   * The flow's one-time code: the one already issued while it is unused and valid (a second visit
   * of the page — a double submit, a refresh — lands with the same code), else a new one valid
   * 60 s. Kept sealed for that, and as its SHA-256 for the exchange. Undefined once exchanged.
   */
  private async codeFor(row: OneClickRow): Promise<string | undefined> {
    if (row.code_used_at) return undefined;
    const aad = `oneclick-code:${row.tx_id}`;
    if (row.code_sealed && row.code_expires_at && new Date(row.code_expires_at).getTime() > Date.now() + 5000)
      return this.deps.sealer.open(row.code_sealed, aad);
    const code = randomBytes(32).toString("base64url");
    const issued = await this.db
      .updateTable("oneclick_transactions")
      .set({
        code_hash: sha256(code),
        code_sealed: this.deps.sealer.seal(code, aad),
        code_expires_at: new Date(Date.now() + CODE_TTL_MS),
        updated_at: new Date(),
      })
      .where("tx_id", "=", row.tx_id)
      .where("code_used_at", "is", null)
      // Two visits at once: the one that finds the row as it read it issues; the other re-reads.
      .where((eb) =>
        row.code_hash === null ? eb("code_hash", "is", null) : eb("code_hash", "=", row.code_hash),
      )
      .returning("tx_id")
      .executeTakeFirst();
    if (issued) return code;
    const now = await this.get(row.tx_id);
    return now.code_used_at || !now.code_sealed ? undefined : this.deps.sealer.open(now.code_sealed, aad);
  }

  // ——— steps' outcomes (steps.ts calls these in the transaction that closes the step) ———

  async lock(tx: Db, txId: string): Promise<OneClickRow> {
    const row = await tx
      .selectFrom("oneclick_transactions")
      .selectAll()
      .where("tx_id", "=", txId)
      .forUpdate()
      .executeTakeFirst();
    if (!row) throw new Error(`no 1-Click transaction ${txId}`);
    return row;
  }

  async schedule(
    tx: Db,
    row: OneClickRow,
    kind:
      | "OC_SIGNIN"
      | "OC_KYC_CHECK"
      | "OC_VERIFYUSER"
      | "OC_AUTHORIZE"
      | "OC_PAYMENT"
      | "OC_TRANSFER"
      | "OC_CANCEL",
  ): Promise<void> {
    await this.deps.steps.schedule(tx, {
      clientId: row.client_id,
      kind,
      processType: PROCESS_TYPE,
      processId: requestIdOf(row.tx_id),
      idempotencyKey: `${requestIdOf(row.tx_id)}:${kind.slice(3).toLowerCase()}`,
      input: { txId: row.tx_id },
    });
  }

  /** A change of status with its audit row and its event, in the caller's transaction. */
  async change(
    tx: Db,
    row: OneClickRow,
    to: StatusName,
    options: { actor: Actor; set?: Partial<Record<keyof OneClickRow, unknown>> },
  ): Promise<OneClickRow> {
    const next = (await tx
      .updateTable("oneclick_transactions")
      .set({
        // A flow that ends well (a retried transfer, a staff resolution) carries no error any more.
        ...(to === "SUCCESS" ? { err_code: null, err_msg: null } : {}),
        ...(options.set ?? {}),
        status_code: STATUS[to],
        status_name: to,
        updated_at: new Date(),
      } as never)
      .where("tx_id", "=", row.tx_id)
      .returningAll()
      .executeTakeFirstOrThrow()) as OneClickRow;
    await this.record(tx, next, { from: row, actor: options.actor });
    return next;
  }

  private async record(tx: Db, row: OneClickRow, options: { from: OneClickRow | null; actor: Actor }) {
    await writeAudit(
      tx,
      { clientId: row.client_id, actor: options.actor, requestId: requestIdOf(row.tx_id) },
      {
        action: options.from ? "oneclick.status_changed" : "oneclick.started",
        entityType: "oneclick",
        entityId: row.tx_id,
        before: options.from
          ? { statusCode: options.from.status_code, statusName: options.from.status_name }
          : null,
        after: { statusCode: row.status_code, statusName: row.status_name },
      },
    );
    const event = await this.statusEvent(tx, row);
    if (event) await recordEvents(tx, [event]);
  }

  /** A deposit's TRANSACTION_STATUS webhook (no PII): the flow's status in the core's words, its code in statusDetail. */
  private async statusEvent(tx: Db, row: OneClickRow): Promise<NewEvent | undefined> {
    if (row.amount === null || row.currency === null) return undefined;
    const scale = (await ledger.getCurrency(tx, row.client_id, row.currency)).scale;
    const amount = BigInt(row.amount);
    return {
      clientId: row.client_id,
      userId: row.user_id ?? undefined,
      type: "TRANSACTION_STATUS",
      data: {
        requestId: requestIdOf(row.tx_id),
        userId: row.user_id,
        transactionType: "DEPOSIT",
        status: coreStatusOf(stateOf(row.status_code)),
        amount: formatAmount(amount, scale),
        currency: row.currency,
        fee: formatAmount(BigInt(row.fee), scale),
        total: formatAmount(amount, scale),
        paymentMethod: { type: "BANK_TRANSFER" },
        statusDetail: { responseCode: String(row.status_code), responseCategory: row.status_name },
        date: new Date().toISOString(),
      },
    };
  }

  /**
   * The person as a user of the client in the core: created with the proven identity as PII, or
   * completed (merged) if the operator's id is already a user; the tier the provider's proof
   * supports, never lowered.
   */
  async ensureUser(
    tx: Db,
    row: OneClickRow,
    identity: ProvenIdentity,
    provider: IdentityProvider,
  ): Promise<void> {
    if (!row.user_id) return;
    const info: UserInfo = {
      name: { firstName: identity.firstName, lastName: identity.lastName },
      dateOfBirth: identity.dob,
      addresses: [
        {
          type: "HOME",
          street: identity.street,
          city: identity.city,
          postalCode: identity.zip,
          country: identity.country,
        },
      ],
      countryOfResidence: identity.country,
      piis: [{ type: "NATIONAL_ID", value: identity.personid }],
    };
    const exists = await tx
      .selectFrom("users")
      .select(["id"])
      .where("client_id", "=", row.client_id)
      .where("id", "=", row.user_id)
      .executeTakeFirst();
    if (!exists)
      await this.deps.users.create(tx, { clientId: row.client_id, id: row.user_id, type: "PERSON", info });
    else await this.deps.users.writeInfo(tx, row.client_id, row.user_id, info, "merge");
    await this.deps.kyc.recordProven(tx, {
      clientId: row.client_id,
      userId: row.user_id,
      requestId: `${requestIdOf(row.tx_id)}-identity`,
      provider: provider.name,
      tier: provider.tier,
    });
  }

  /** Whether the client's user `userId` is a different person (another proven national id) than `personid`. */
  async userIsAnotherPerson(tx: Db, clientId: string, userId: string, personid: string): Promise<boolean> {
    const exists = await tx
      .selectFrom("users")
      .select("id")
      .where("client_id", "=", clientId)
      .where("id", "=", userId)
      .executeTakeFirst();
    if (!exists) return false;
    const info = await this.deps.users.info(tx, clientId, userId);
    const ids = (info.piis ?? []).filter((p) => p.type === "NATIONAL_ID").map((p) => p.value);
    return ids.length > 0 && !ids.includes(personid);
  }

  /**
   * The client's KYC scenario on a deposit (outside any transaction): the user's 30-day deposits —
   * the core's and earlier 1-Click ones whose money was taken — and this one, in USD, against the
   * user's tier. Undefined for a sign-in without a deposit.
   */
  async kycGate(row: OneClickRow): Promise<ValidationOutcome | undefined> {
    if (row.amount === null || row.currency === null || row.user_id === null) return undefined;
    const scale = (await ledger.getCurrency(this.db, row.client_id, row.currency)).scale;
    const usage = {
      priorUsdCents: async (clientId: string, userId: string, type: string, since: Date) =>
        (await this.deps.usage.priorUsdCents(clientId, userId, type, since)) +
        (await this.depositsUsdSince(clientId, userId, since, row.tx_id)),
    };
    return this.deps.kyc.validate({
      clientId: row.client_id,
      userId: row.user_id,
      type: "DEPOSIT",
      amount: formatAmount(BigInt(row.amount), scale),
      currency: row.currency,
      usage,
    });
  }

  /** The user's 1-Click deposits since `since` whose money was taken (success, transfer pending or inconsistent), in US cents. */
  private async depositsUsdSince(
    clientId: string,
    userId: string,
    since: Date,
    except: string,
  ): Promise<bigint> {
    const rows = await this.db
      .selectFrom("oneclick_transactions")
      .select(["currency", (eb) => eb.fn.sum<string>("amount").as("total")])
      .where("client_id", "=", clientId)
      .where("user_id", "=", userId)
      .where("created_at", ">=", since)
      .where("tx_id", "!=", except)
      .where("amount", "is not", null)
      .where((eb) =>
        eb.or([
          eb("status_code", "<", 100),
          eb("status_code", "in", [STATUS.PROCESSING_MERCHANT]),
          eb.and([eb("status_code", ">=", 400), eb("status_code", "<", 500)]),
        ]),
      )
      .groupBy("currency")
      .execute();
    let cents = 0n;
    for (const r of rows) {
      if (!r.currency || !r.total) continue;
      const price = await this.deps.rates.usdPrice(r.currency, clientId);
      const scale = (await ledger.getCurrency(this.db, clientId, r.currency)).scale;
      if (price) cents += toUsdCents(BigInt(r.total), scale, price);
    }
    return cents;
  }

  /** Sanctions and the client's monitoring rules on the proven person and the deposit. */
  async screen(tx: Db, row: OneClickRow, identity: ProvenIdentity) {
    const client = await getClient(tx, row.client_id);
    let usd = 0n;
    if (row.amount !== null && row.currency !== null) {
      const scale = (await ledger.getCurrency(tx, row.client_id, row.currency)).scale;
      const price = await this.deps.rates.usdPrice(row.currency, row.client_id);
      if (price) usd = toUsdCents(BigInt(row.amount), scale, price);
    }
    const result = evaluate(
      {
        userStatus: "ACTIVE",
        userCreatedAt: new Date(row.created_at),
        names: [`${identity.firstName} ${identity.lastName}`],
        countries: [identity.country],
        amountUsdCents: usd,
        last24hUsdCents: 0n,
        recentCount: 0,
        hasHistory: true,
        now: new Date(),
      },
      (client.settings as { monitoring?: MonitoringConfig }).monitoring,
      this.deps.sanctions,
    );
    if (row.amount !== null && row.currency !== null) {
      const scale = (await ledger.getCurrency(tx, row.client_id, row.currency)).scale;
      await recordEvents(tx, [
        {
          clientId: row.client_id,
          userId: row.user_id ?? undefined,
          type: "TRANSACTION_MONITORING",
          data: {
            requestId: requestIdOf(row.tx_id),
            userId: row.user_id,
            transactionType: "DEPOSIT",
            status: result.status,
            risk: result.risk,
            reasons: result.reasons,
            amount: formatAmount(BigInt(row.amount), scale),
            currency: row.currency,
            date: new Date().toISOString(),
          },
        },
      ]);
    }
    return result;
  }

  /** The system accounts a payment books to, opened with the pool (outside a transaction their ids are cached). */
  async warmAccounts(clientId: string, currency: string): Promise<void> {
    await Promise.all([
      systemAccount.transit(this.db, clientId, currency, "bank"),
      systemAccount.settlement(this.db, clientId, currency),
      systemAccount.fees(this.db, clientId, currency),
    ]);
  }

  /** The payment arrived: bank transit → the operator's settlement account (net of the fee), the fee to fees. */
  async bookPayment(tx: Db, row: OneClickRow): Promise<void> {
    if (row.amount === null || row.currency === null) return;
    const amount = BigInt(row.amount);
    const fee = BigInt(row.fee);
    const requestId = requestIdOf(row.tx_id);
    const transit = await systemAccount.transit(tx, row.client_id, row.currency, "bank");
    const legs = [
      {
        type: "SINGLE" as const,
        id: `${requestId}:deposit`,
        debitAccountId: transit,
        creditAccountId: await systemAccount.settlement(tx, row.client_id, row.currency),
        amount: amount - fee,
        currency: row.currency,
      },
    ];
    if (fee > 0n)
      legs.push({
        type: "SINGLE",
        id: `${requestId}:fee`,
        debitAccountId: transit,
        creditAccountId: await systemAccount.fees(tx, row.client_id, row.currency),
        amount: fee,
        currency: row.currency,
      });
    const result = await ledger.applyInTransaction(tx, {
      clientId: row.client_id,
      operationId: operationOf(requestId),
      legs: legs.filter((l) => l.amount > 0n),
    });
    if (!result.ok) throw new Error(`the ledger refused the 1-Click deposit ${requestId}`);
  }

  /** Where and how the operator is called for this client. */
  async callbackTarget(clientId: string) {
    const settings = await oneClickOf(this.db, clientId);
    if (!settings) throw new Error(`client ${clientId} has no 1-Click settings`);
    const mode = (await getClient(this.db, clientId)).mode;
    return {
      clientId,
      settings,
      publicOnly: mustBePublic(mode),
      timeoutMs: this.deps.config.callbackTimeoutMs,
    };
  }

  /** The amounts as the callbacks send them: decimal strings in major units. */
  async amountsOf(
    row: OneClickRow,
  ): Promise<{ txAmount: string; fee: string; currency: string } | undefined> {
    if (row.amount === null || row.currency === null) return undefined;
    const scale = (await ledger.getCurrency(this.db, row.client_id, row.currency)).scale;
    return {
      txAmount: formatAmount(BigInt(row.amount), scale),
      fee: formatAmount(BigInt(row.fee), scale),
      currency: row.currency,
    };
  }

  // ——— the operator's backend: token, check_token, status ———

  /**
   * Exchanges a one-time code (RFC 6749 §4.1.3): the client's, for the same redirect_uri, within
   * 60 s, once, with the PKCE verifier if the flow had a challenge. A second exchange fails and
   * revokes the token the first one got.
   */
  async exchange(
    clientId: string,
    input: { code: string; redirectUri: string | undefined; codeVerifier: string | undefined },
  ) {
    const outcome = await inTransaction(this.db, async (tx) => {
      const row = await tx
        .selectFrom("oneclick_transactions")
        .selectAll()
        .where("code_hash", "=", sha256(input.code))
        .forUpdate()
        .executeTakeFirst();
      if (!row || row.client_id !== clientId)
        return { error: new OAuthError("invalid_grant", "the code is not valid") };
      if (row.code_used_at) {
        await tx
          .updateTable("oneclick_transactions")
          .set({ token_revoked_at: new Date(), updated_at: new Date() })
          .where("tx_id", "=", row.tx_id)
          .where("token_revoked_at", "is", null)
          .execute();
        await writeAudit(
          tx,
          { clientId, actor: { kind: "client", id: clientId }, requestId: requestIdOf(row.tx_id) },
          {
            action: "oneclick.code_reused",
            entityType: "oneclick",
            entityId: row.tx_id,
            after: { tokenRevoked: true },
          },
        );
        return { error: new OAuthError("invalid_grant", "the code was already used; its token is revoked") };
      }
      if (!row.code_expires_at || new Date(row.code_expires_at).getTime() <= Date.now())
        return { error: new OAuthError("invalid_grant", "the code has expired") };
      // RFC 6749 §4.1.3: required and equal when the authorization request had it; equal if given.
      if (
        (row.redirect_uri_given || input.redirectUri !== undefined) &&
        input.redirectUri !== row.redirect_uri
      )
        return {
          error: new OAuthError("invalid_grant", "redirect_uri does not match the authorization request"),
        };
      if (row.code_challenge) {
        const verifier = input.codeVerifier ?? "";
        const computed = createHash("sha256").update(verifier).digest("base64url");
        if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier) || computed !== row.code_challenge)
          return {
            error: new OAuthError("invalid_grant", "code_verifier does not match the code_challenge"),
          };
      }
      const jti = randomBytes(16).toString("hex");
      const used = (await tx
        .updateTable("oneclick_transactions")
        .set({ code_used_at: new Date(), token_jti: jti, updated_at: new Date() })
        .where("tx_id", "=", row.tx_id)
        .returningAll()
        .executeTakeFirstOrThrow()) as OneClickRow;
      return { row: used, jti };
    });
    if ("error" in outcome) throw outcome.error;
    const { row, jti } = outcome;
    const claims = this.claimsOf(row);
    const key = await this.deps.signingKeys.current();
    const ttl = this.deps.config.tokenTtlSeconds;
    const accessToken = await new SignJWT({ ...claims, scope: row.scope })
      .setProtectedHeader({ alg: FERRY_SIGNING_ALG, kid: key.kid, typ: "JWT" })
      .setIssuer(this.issuer())
      .setAudience(clientId)
      .setSubject(claims.userId ?? `oc-${row.tx_id}`)
      .setJti(jti)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttl)
      .sign(key.privateKey);
    return {
      access_token: accessToken,
      token_type: "bearer" as const,
      expires_in: ttl,
      scope: row.scope,
      ...claims,
    };
  }

  issuer(): string {
    return this.deps.config.publicUrl;
  }

  /** The person's claims (token response and JWT): the proven identity, country in ISO-3. */
  claimsOf(row: OneClickRow) {
    const identity = this.identityOf(row);
    return {
      userId: row.user_id,
      clientId: row.client_id,
      txRefId: txRefIdOf(row.client_id, row.tx_id),
      name: identity ? `${identity.firstName} ${identity.lastName}` : null,
      firstName: identity?.firstName ?? null,
      lastName: identity?.lastName ?? null,
      personid: identity?.personid ?? null,
      street: identity?.street ?? null,
      city: identity?.city ?? null,
      zip: identity?.zip ?? null,
      country: identity ? (toAlpha3(identity.country) ?? identity.country) : null,
      dob: identity?.dob ?? null,
      identityProvider: row.identity_provider,
    };
  }

  /** Whether the token's flow still stands behind it (not revoked by a reused code). */
  async tokenLive(clientId: string, txRefId: unknown, jti: unknown): Promise<boolean> {
    if (typeof txRefId !== "string" || typeof jti !== "string") return false;
    const prefix = `${clientId}A`;
    if (!txRefId.startsWith(prefix)) return false;
    const txId = txRefId.slice(prefix.length);
    if (!/^\d{1,18}$/.test(txId)) return false;
    const row = await this.db
      .selectFrom("oneclick_transactions")
      .select(["token_jti", "token_revoked_at"])
      .where("client_id", "=", clientId)
      .where("tx_id", "=", txId)
      .executeTakeFirst();
    return row?.token_jti === jti && row.token_revoked_at === null;
  }

  // ——— staff: INCONSISTENT flows ———

  async list(
    clientId: string,
    filter: { state?: TxState | undefined },
    page: { offset: number; limit: number },
  ) {
    let query = this.db.selectFrom("oneclick_transactions").where("client_id", "=", clientId);
    if (filter.state) {
      const [lo, hi] = RANGES[filter.state];
      query = query.where("status_code", ">=", lo).where("status_code", "<=", hi);
    }
    const [rows, count] = await Promise.all([
      query.selectAll().orderBy("tx_id", "desc").offset(page.offset).limit(page.limit).execute(),
      query.select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow(),
    ]);
    return { rows, total: Number(count.n) };
  }

  /** The flow's failed step (the transfer, or a payment without an answer), if any. */
  async failedStep(row: OneClickRow) {
    const steps = await this.deps.steps.stepsOf(this.db, row.client_id, PROCESS_TYPE, requestIdOf(row.tx_id));
    return steps.find((s) => s.status === "FAILED");
  }

  async stepsOf(row: OneClickRow) {
    return this.deps.steps.stepsOf(this.db, row.client_id, PROCESS_TYPE, requestIdOf(row.tx_id));
  }

  /** Staff try the flow's failed step again (same key, same txId): the flow is processing again. */
  async retry(clientId: string, txId: string, actor: Actor): Promise<OneClickRow> {
    const row = await this.ofClient(clientId, txId);
    const step = stateOf(row.status_code) === "INCONSISTENT" ? await this.failedStep(row) : undefined;
    if (!step)
      throw new DomainError(
        "CONFLICT",
        "NOT_INCONSISTENT",
        `1-Click transaction ${txId} is not INCONSISTENT`,
      );
    const retried = await this.deps.steps.retry(clientId, step.id, actor, async (tx) => {
      const current = await this.lock(tx, txId);
      await this.change(
        tx,
        current,
        step.kind === "OC_PAYMENT" ? "PROCESSING_PROVIDER" : "PROCESSING_MERCHANT",
        {
          actor,
        },
      );
    });
    if (!retried)
      throw new DomainError("CONFLICT", "NOT_INCONSISTENT", `1-Click transaction ${txId} changed meanwhile`);
    return this.advance(txId, this.deps.config.callbackTimeoutMs + 2000);
  }

  /** Staff mark an INCONSISTENT transfer resolved with what the operator told them (credited by hand). */
  async resolve(clientId: string, txId: string, note: string, actor: Actor): Promise<OneClickRow> {
    const row = await this.ofClient(clientId, txId);
    const step = stateOf(row.status_code) === "INCONSISTENT" ? await this.failedStep(row) : undefined;
    if (step?.kind !== "OC_TRANSFER")
      throw new DomainError(
        "CONFLICT",
        "NOT_RESOLVABLE",
        step
          ? "the payment's outcome is unknown: retry it"
          : `1-Click transaction ${txId} is not INCONSISTENT`,
      );
    const resolved = await this.deps.steps.resolve(step.id, { outcome: "EXECUTED", note }, actor);
    if (!resolved)
      throw new DomainError("CONFLICT", "NOT_INCONSISTENT", `1-Click transaction ${txId} changed meanwhile`);
    return this.get(txId);
  }

  /** Flows nobody decided on in time: cancelled by the PSP (602). */
  async expireWaiting(limit = 100): Promise<number> {
    const rows = await this.db
      .selectFrom("oneclick_transactions")
      .select("tx_id")
      .where("status_code", "=", STATUS.WAITING_IDENTITY_PROVIDER)
      .where("expires_at", "<=", new Date())
      .limit(limit)
      .execute();
    for (const { tx_id } of rows)
      await inTransaction(this.db, async (tx) => {
        const row = await this.lock(tx, tx_id);
        if (row.status_code !== STATUS.WAITING_IDENTITY_PROVIDER) return;
        await this.change(tx, row, "CANCELLED_BY_PSP", {
          actor: { kind: "system", id: "oneclick-expiry" },
          set: { err_msg: "the sign-in expired" },
        });
      });
    return rows.length;
  }
}

const RANGES: Record<TxState, [number, number]> = {
  SUCCESSFUL: [0, 99],
  REGISTERED: [100, 199],
  PROCESSING: [200, 299],
  WAITING_INPUT: [300, 349],
  WAITING_APPROVAL: [350, 399],
  INCONSISTENT: [400, 499],
  FAILED: [500, 599],
  CANCELLED: [600, 699],
};

function oauthError(code: number): string {
  if (code === STATUS.MERCHANT_OUT_OF_SERVICE) return "temporarily_unavailable";
  // Paid, but the operator has not confirmed it (staff resolve it): not the user's refusal.
  if (stateOf(code) === "INCONSISTENT") return "server_error";
  if (code === STATUS.SYSTEM_ERROR || code === STATUS.INVALID_RESPONSE) return "server_error";
  return "access_denied";
}

function coreStatusOf(state: TxState): string {
  switch (state) {
    case "SUCCESSFUL":
      return "CAPTURED";
    case "FAILED":
      return "REFUSED";
    case "CANCELLED":
      return "CANCELED";
    default:
      return "PENDING";
  }
}

export type { OneClickSettings };
