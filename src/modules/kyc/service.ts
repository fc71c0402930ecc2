// Over 400 lines on purpose: assessments' whole life (gate, start, submit, poll, complete, staff
// decision); the provider calls are the KYC provider's (a step of the runner: steps.ts), the rules
// are rules.ts.
import type { Db } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import { type Actor, PLATFORM_ADMIN } from "../../lib/context.ts";
import { DomainError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { AmountError, parsePositiveAmount } from "../../lib/money.ts";
import type { KycCheckRequest, KycDecision, KycProvider } from "../../providers/kyc/interface.ts";
import { KNOWN_SCALES, toUsdCents } from "../../providers/rates/interface.ts";
import { writeAudit } from "../audit/service.ts";
import { getClient } from "../clients/service.ts";
import { findCurrency } from "../ledger/service.ts";
import type { UsdPrices } from "../rates/service.ts";
import type { StepRunner } from "../steps/runner.ts";
import type { UserInfo } from "../users/schemas.ts";
import { assertActive, type User, type UserReads, type Users } from "../users/service.ts";
import type { AssessmentEventSink } from "./events.ts";
import {
  type KycConfig,
  type KycRules,
  kycRules,
  supportedTier,
  type TransactionType,
  type ValidationOutcome,
  validateTransaction,
} from "./rules.ts";
import { KYC_CHECK, type KycCheckStep, registerKycSteps } from "./steps.ts";

export const ASSESSMENT_STATUSES = [
  "PENDING",
  "UNDER_REVIEW",
  "REQUESTED_MORE_INFORMATION",
  "ACCEPTED",
  "REFUSED",
  "ERROR",
] as const;
export type AssessmentStatus = (typeof ASSESSMENT_STATUSES)[number];

export interface Assessment {
  requestId: string;
  userId: string;
  status: AssessmentStatus;
  tier: number;
  refusalReason: string | null;
  date: Date;
  solicited: boolean;
}

const kinds = {
  ASSESSMENT_EXISTS: "CONFLICT",
  ASSESSMENT_NOT_FOUND: "NOT_FOUND",
  NOT_UNDER_REVIEW: "CONFLICT",
} as const;

export class KycError extends DomainError {
  constructor(code: keyof typeof kinds, message: string) {
    super(kinds[code], code, message);
  }
}

type AssessmentRow = {
  client_id: string;
  request_id: string;
  user_id: string;
  status: string;
  tier: number;
  refusal_reason: string | null;
  provider_reference: string | null;
  solicited: boolean;
  updated_at: Date;
};

function toAssessment(row: AssessmentRow): Assessment {
  return {
    requestId: row.request_id,
    userId: row.user_id,
    status: row.status as AssessmentStatus,
    tier: Number(row.tier),
    refusalReason: row.refusal_reason,
    date: new Date(row.updated_at),
    solicited: row.solicited,
  };
}

export { MAX_POLL_FAILURES } from "./steps.ts";

/**
 * KYC assessments: recorded and announced (PENDING) in one transaction with the step that checks
 * them (KYC_CHECK, steps.ts: submit, then ask for the result until there is one), the provider
 * called by the step runner outside any transaction, the decision recorded in the transaction that
 * closes the step (final status, the user's tier, the webhook). A crash anywhere is resumed by the
 * runner with the same reference; a provider that keeps failing for one assessment ends it ERROR
 * after its attempts without holding up any other.
 */
export class Kyc {
  constructor(
    private readonly db: Db,
    private readonly users: Users,
    readonly provider: KycProvider,
    /** USD prices per client (the provider's, or the client's own rates: modules/rates). */
    private readonly rates: UsdPrices,
    private readonly usage: UsageSource,
    /** Where assessment events go: the faces' webhooks. */
    private readonly events: AssessmentEventSink,
    private readonly steps: StepRunner,
  ) {
    registerKycSteps(this, steps);
  }

  /**
   * What the validations endpoint answers (`POST /v1/transactions/validations`): a user who is not
   * ACTIVE first — 403 `USER_NOT_ACTIVE`, the block answered (a BLOCKED user's transaction would be
   * refused by monitoring, an INACTIVE one's with this 403) — then `validate`.
   */
  async validateRequest(input: Parameters<Kyc["validate"]>[0]): Promise<ValidationOutcome> {
    const reads = input.reads ?? this.users.reads(input.clientId);
    assertActive(await reads.user(input.userId));
    return this.validate({ ...input, reads });
  }

  /**
   * What the validations endpoint answers and every transaction checks: whether the user's tier
   * covers the transaction under the scenario's brackets (the user's 30-day total of this type,
   * this transaction included, in USD), and if not, which information or assessment is missing.
   */
  async validate(input: {
    clientId: string;
    userId: string;
    type: TransactionType;
    amount: string | number;
    currency: string;
    scenarioId?: string | undefined;
    /** The request's reads of the user, when the caller has them (one read per request). */
    reads?: UserReads | undefined;
    /** The request's usage figures, when the caller has them. */
    usage?: UsageSource | undefined;
  }): Promise<ValidationOutcome> {
    const rules = await this.rulesFor(input.clientId);
    const scenario = rules.scenarios.get(input.scenarioId ?? rules.defaultScenarioId);
    if (!scenario)
      throw new DomainError(
        "INVALID",
        "UNKNOWN_SCENARIO",
        `no scenario ${input.scenarioId}`,
        "X-Scenario-Id",
      );
    const reads = input.reads ?? this.users.reads(input.clientId);
    const [user, info] = await Promise.all([reads.user(input.userId), reads.info(input.userId)]);
    const scale =
      (await findCurrency(this.db, input.clientId, input.currency))?.scale ?? KNOWN_SCALES[input.currency];
    if (scale === undefined)
      throw new DomainError(
        "INVALID",
        "UNKNOWN_CURRENCY",
        `currency ${input.currency} is not supported`,
        "currency",
      );
    let minor: bigint;
    try {
      minor = parsePositiveAmount(input.amount, scale);
    } catch (error) {
      if (error instanceof AmountError)
        throw new DomainError("INVALID", "INVALID_AMOUNT", `amount ${error.message}`, "amount");
      throw error;
    }
    const price = await this.rates.usdPrice(input.currency, input.clientId);
    if (price === undefined)
      throw new DomainError(
        "CONFLICT",
        "USD_RATE_NOT_SET",
        `${input.currency} has no USD rate yet: staff set it before money moves in it (monitoring and KYC limits value every amount in USD)`,
        "currency",
      );
    const since = new Date(Date.now() - 30 * 86_400_000);
    const prior = await (input.usage ?? this.usage).priorUsdCents(
      input.clientId,
      input.userId,
      input.type,
      since,
    );
    return validateTransaction(
      rules,
      scenario,
      { tier: user.tier, info },
      input.type,
      prior + toUsdCents(minor, scale, price),
    );
  }

  async rulesFor(clientId: string): Promise<KycRules> {
    const client = await getClient(this.db, clientId);
    return kycRules(client.settings.kyc as KycConfig | undefined);
  }

  /**
   * New information about a user, from whichever face: Ferry's own assessment in the background
   * (announced only if it changes the tier); it never holds up or changes what the caller does.
   */
  refreshAfterChange(clientId: string, userId: string): void {
    void this.start({ clientId, userId, solicited: false }).catch(() => {});
  }

  /** The user's own information merged (the Wallet API's profile), then the refresh when it changed. */
  async mergeInfo(
    context: { clientId: string; actor: Actor },
    userId: string,
    info: UserInfo,
  ): Promise<{ user: User; changed: boolean }> {
    const written = await this.users.update(context, userId, { info, mode: "merge" });
    if (written.changed) this.refreshAfterChange(context.clientId, userId);
    return written;
  }

  /**
   * Starts an assessment. `solicited: false` is Ferry's own refresh after a user's information
   * changed: it announces nothing unless it changes the user's tier.
   */
  async start(input: {
    clientId: string;
    userId: string;
    requestId?: string | undefined;
    info?: UserInfo | undefined;
    intendedUsdCents?: bigint | undefined;
    solicited?: boolean;
    suppressWebhook?: boolean;
  }): Promise<Assessment> {
    const solicited = input.solicited ?? true;
    const requestId = input.requestId ?? `kyc-refresh-${newId()}`;
    const assessment = await inTransaction(this.db, async (tx) => {
      await this.users.get(tx, input.clientId, input.userId, { forUpdate: true });
      if (input.info) await this.users.writeInfo(tx, input.clientId, input.userId, input.info, "merge");
      const row = await tx
        .insertInto("user_assessments")
        .values({
          client_id: input.clientId,
          request_id: requestId,
          user_id: input.userId,
          status: "PENDING",
          intended_usd_value: input.intendedUsdCents?.toString() ?? null,
          provider: this.provider.name,
          solicited,
        })
        .onConflict((oc) => oc.columns(["client_id", "request_id"]).doNothing())
        .returningAll()
        .executeTakeFirst();
      if (!row)
        throw new KycError("ASSESSMENT_EXISTS", `request id ${requestId} was already used for an assessment`);
      const created = toAssessment(row as AssessmentRow);
      if (solicited) {
        await this.events.record(
          tx,
          { type: "assessment.changed", clientId: input.clientId, assessment: created },
          { suppressDelivery: input.suppressWebhook },
        );
      }
      const check: KycCheckStep = { clientId: input.clientId, requestId };
      const { id } = await this.steps.schedule(tx, {
        clientId: input.clientId,
        kind: KYC_CHECK,
        processType: "assessment",
        processId: requestId,
        idempotencyKey: `kyc:${requestId}`,
        input: check,
      });
      return { created, stepId: id };
    });
    // Submitted now (the step's first attempt); a failure is the runner's to retry.
    await this.steps.run(assessment.stepId);
    return assessment.created;
  }

  private async checkRequest(clientId: string, userId: string, requestId: string): Promise<KycCheckRequest> {
    const [user, info, rules] = await Promise.all([
      this.users.get(this.db, clientId, userId),
      this.users.info(this.db, clientId, userId),
      this.rulesFor(clientId),
    ]);
    return {
      reference: `${clientId}/${requestId}`,
      userType: user.type,
      info,
      supportedTier: supportedTier(rules, info),
    };
  }

  /**
   * One call of the KYC_CHECK step (outside any transaction): hands the assessment to the provider
   * if it has no reference yet (and records the reference), else asks for the result. Undefined
   * while the provider is still working (`retryAt`: when to ask again); a decision once it has one.
   */
  async check(
    clientId: string,
    requestId: string,
  ): Promise<{ decision: KycDecision } | { retryAt: Date } | { over: true }> {
    const row = await this.db
      .selectFrom("user_assessments")
      .select(["user_id", "status", "provider_reference", "result_due_at"])
      .where("client_id", "=", clientId)
      .where("request_id", "=", requestId)
      .executeTakeFirstOrThrow();
    if (row.status !== "PENDING") return { over: true };
    const request = await this.checkRequest(clientId, row.user_id, requestId);
    if (row.provider_reference === null) {
      const { providerReference, resultDueAt } = await this.provider.submit(request);
      await this.db
        .updateTable("user_assessments")
        .set({ provider_reference: providerReference, result_due_at: resultDueAt, updated_at: new Date() })
        .where("client_id", "=", clientId)
        .where("request_id", "=", requestId)
        .where("provider_reference", "is", null)
        .execute();
      return { retryAt: resultDueAt };
    }
    const decision = await this.provider.result(row.provider_reference, request);
    return decision === null ? { retryAt: new Date(Date.now() + 1000) } : { decision };
  }

  /**
   * An identity proven elsewhere (a 1-Click identity provider: a bank-ID, an open-banking login)
   * recorded as an accepted assessment by that provider, in the caller's transaction (the user's
   * row locked): the user's tier rises to what the proof supports, never falls; a rise is announced
   * (USER_ASSESSMENT) as any unsolicited tier change is. The same request id again is a no-op.
   */
  async recordProven(
    tx: Db,
    input: { clientId: string; userId: string; requestId: string; provider: string; tier: number },
  ): Promise<void> {
    const user = await this.users.get(tx, input.clientId, input.userId, { forUpdate: true });
    const tier = Math.max(user.tier, input.tier);
    const row = await tx
      .insertInto("user_assessments")
      .values({
        client_id: input.clientId,
        request_id: input.requestId,
        user_id: input.userId,
        status: "ACCEPTED",
        tier,
        provider: input.provider,
        solicited: false,
        completed_at: new Date(),
      })
      .onConflict((oc) => oc.columns(["client_id", "request_id"]).doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!row || tier === user.tier) return;
    await this.users.setTier(tx, input.clientId, input.userId, tier);
    await this.events.record(
      tx,
      {
        type: "assessment.changed",
        clientId: input.clientId,
        assessment: toAssessment(row as AssessmentRow),
      },
      {},
    );
  }

  /** Records a decision: the assessment's status, the user's tier, and the webhook(s), in one transaction. */
  async complete(
    clientId: string,
    requestId: string,
    decision: KycDecision,
    /** A staff decision's actor: audited in the same transaction. */
    actor?: Actor,
  ): Promise<Assessment> {
    return inTransaction(this.db, (tx) => this.completeIn(tx, clientId, requestId, decision, actor));
  }

  /** `complete`, in the caller's transaction (the one that closes the KYC_CHECK step). */
  async completeIn(
    tx: Db,
    clientId: string,
    requestId: string,
    decision: KycDecision,
    actor?: Actor,
    options: { onlyPending?: boolean } = {},
  ): Promise<Assessment> {
    {
      const row = await tx
        .selectFrom("user_assessments")
        .selectAll()
        .where("client_id", "=", clientId)
        .where("request_id", "=", requestId)
        .forUpdate()
        .executeTakeFirst();
      if (!row) throw new KycError("ASSESSMENT_NOT_FOUND", `no assessment ${requestId}`);
      // The provider's answer for an assessment decided meanwhile changes nothing.
      if (options.onlyPending && row.status !== "PENDING") return toAssessment(row as AssessmentRow);
      const user: User = await this.users.get(tx, clientId, row.user_id, { forUpdate: true });
      const tier = decision.status === "ACCEPTED" ? decision.tier : user.tier;
      const updated = await tx
        .updateTable("user_assessments")
        .set({
          status: decision.status,
          tier,
          refusal_reason: decision.status === "REFUSED" ? decision.refusalReason : null,
          locked_until: null,
          updated_at: new Date(),
          completed_at: decision.status === "UNDER_REVIEW" ? null : new Date(),
        })
        .where("client_id", "=", clientId)
        .where("request_id", "=", requestId)
        .returningAll()
        .executeTakeFirstOrThrow();
      const assessment = toAssessment(updated as AssessmentRow);
      if (actor)
        await writeAudit(
          tx,
          { clientId, actor },
          {
            action: "assessment.decided",
            entityType: "assessment",
            entityId: requestId,
            before: { status: row.status, tier: user.tier },
            after: { status: assessment.status, tier },
          },
        );
      const tierChanged = tier !== user.tier;
      if (tierChanged) await this.users.setTier(tx, clientId, row.user_id, tier);
      if (row.solicited || tierChanged) {
        await this.events.record(tx, { type: "assessment.changed", clientId, assessment }, {});
      }
      return assessment;
    }
  }

  /** A staff decision on an assessment UNDER_REVIEW: accept (at the supported tier, or the one given) or refuse. */
  async decideReview(
    clientId: string,
    requestId: string,
    decision: {
      decision: "ACCEPT" | "REFUSE";
      tier?: number | undefined;
      refusalReason?: string | undefined;
    },
    actor: Actor = PLATFORM_ADMIN,
  ): Promise<Assessment> {
    const row = await this.db
      .selectFrom("user_assessments")
      .select(["status", "user_id"])
      .where("client_id", "=", clientId)
      .where("request_id", "=", requestId)
      .executeTakeFirst();
    if (!row) throw new KycError("ASSESSMENT_NOT_FOUND", `no assessment ${requestId}`);
    if (row.status !== "UNDER_REVIEW")
      throw new KycError("NOT_UNDER_REVIEW", `the assessment is ${row.status}, not UNDER_REVIEW`);
    if (decision.decision === "REFUSE") {
      return this.complete(
        clientId,
        requestId,
        { status: "REFUSED", refusalReason: decision.refusalReason ?? "STAFF_DECISION" },
        actor,
      );
    }
    const request = await this.checkRequest(clientId, row.user_id, requestId);
    return this.complete(
      clientId,
      requestId,
      { status: "ACCEPTED", tier: Math.min(decision.tier ?? request.supportedTier, 5) },
      actor,
    );
  }

  async latest(clientId: string, userId: string): Promise<Assessment | undefined> {
    await this.users.get(this.db, clientId, userId);
    const row = await this.db
      .selectFrom("user_assessments")
      .selectAll()
      .where("client_id", "=", clientId)
      .where("user_id", "=", userId)
      .orderBy("created_at", "desc")
      .orderBy("request_id", "desc")
      .executeTakeFirst();
    return row && toAssessment(row as AssessmentRow);
  }
}

/**
 * A user's cumulative USD total of a transaction type over a window: the brackets of a scenario
 * apply to it. The transactions module provides it (transactionsUsage).
 */
export interface UsageSource {
  priorUsdCents(clientId: string, userId: string, type: string, since: Date): Promise<bigint>;
}
