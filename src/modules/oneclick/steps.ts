// Over 400 lines on purpose: every durable step of the 1-Click flow (the five callbacks, the quote
// stage, the payment) with the event each answer becomes, so that the flow's calls read together.
import { z } from "zod";
import type { Db } from "../../db/database.ts";
import { type Actor, providerActor } from "../../lib/context.ts";
import { DomainError } from "../../lib/errors.ts";
import { formatAmount } from "../../lib/money.ts";
import type { IdentityPaymentResult } from "../../providers/identity/interface.ts";
import { writeAudit } from "../audit/service.ts";
import * as ledger from "../ledger/service.ts";
import type { Step, StepResolution } from "../steps/runner.ts";
import type { Assessment } from "../transactions/service.ts";
import { type CallbackAction, type CallbackAnswer, callOperator, failureOf } from "./callbacks.ts";
import { snapshotOf } from "./process.ts";
import type { OneClickEvent } from "./process-table.ts";
import { type OneClickRow, requestIdOf, txRefIdOf } from "./repo.ts";
import type { OneClick } from "./service.ts";
import { STATUS } from "./statuses.ts";

/**
 * The 1-Click flow's calls outside Ferry as durable steps (modules/steps/runner.ts): each operator
 * callback, the quote stage and the provider's payment is a row of `steps` with its own key,
 * performed outside any database transaction. Its answer becomes an event of the flow's table
 * (process-table.ts), applied by the engine in the transaction that closes the step; an answer the
 * table has no move for (the flow moved on) stays on its step. A crash anywhere resumes with the
 * same key, so the operator sees the same `txId` again and the provider the same payment.
 */

const input = z.object({ txId: z.string().regex(/^\d+$/) }).strict();
type Input = z.infer<typeof input>;

/**
 * The deposit's transaction type in PaymentIQ's terms. PaymentIQ numbers its types per payment
 * method (101 CreditcardDeposit, 108 …); its public pages list no code for a bank deposit through an
 * identity provider, so Ferry names its own in the deposit range (docs/compatibility.md).
 */
export const TX_TYPE_ID = "190";
export const TX_NAME = "BankDeposit";

const operatorActor = (row: OneClickRow): Actor => ({ kind: "client", id: row.client_id });

/** A callback's last failure → the event the flow takes (which FAILED code it ends with). */
function failedEventOf(error: string): OneClickEvent {
  const failure = failureOf(error);
  return failure === "NOT_JSON" || failure === "INVALID_ANSWER" ? "OPERATOR_GARBLED" : "OPERATOR_DOWN";
}

/** A step whose failure ended the flow (signin, verifyuser, the quote, authorize): a retry would act for a flow that is over. */
async function flowEnded(): Promise<void> {
  throw new DomainError(
    "CONFLICT",
    "NOT_RETRYABLE",
    "the 1-Click flow ended with this step's failure; a new authorization starts it again",
  );
}

const errFields = (answer: { errCode?: string | undefined; errMsg?: string | undefined }) => ({
  err_code: answer.errCode?.slice(0, 100) ?? null,
  err_msg: answer.errMsg?.slice(0, 500) ?? null,
});

// err_msg reaches the browser (redirect_uri's errMsg): the operator's failure, never Ferry's own
// error text (that stays on the step's last_error for staff).
const failureText = (error: string) =>
  failureOf(error)
    ? error.replace(/^CallbackError: /, "").slice(0, 500)
    : "the operator's answer could not be recorded";

export function registerOneClickSteps(flow: OneClick): void {
  const { steps, config } = flow.deps;
  const engine = flow.engine;
  const backoff = (attempt: number) => Math.min(300_000, config.retryBaseMs * 2 ** (attempt - 1));

  /** A callback step: calls the operator with the body built from the row, turns its answer into an event. */
  function callback<A extends CallbackAction>(
    name: string,
    action: A,
    options: {
      maxAttempts: number;
      body(row: OneClickRow): Promise<Record<string, unknown>>;
      answered(tx: Db, row: OneClickRow, answer: CallbackAnswer<A>): Promise<void>;
      exhausted(tx: Db, row: OneClickRow, error: string): Promise<void>;
      resolve?(tx: Db, row: OneClickRow, resolution: StepResolution): Promise<void>;
      retrying?(tx: Db, row: OneClickRow, actor: Actor): Promise<void>;
    },
  ) {
    steps.register<Input, CallbackAnswer<A>>({
      name,
      input,
      maxAttempts: options.maxAttempts,
      backoffMs: backoff,
      async perform({ txId }, _step, signal) {
        const row = await flow.get(txId);
        const target = await flow.callbackTarget(row.client_id);
        // The runner's signal ends the exchange at its deadline or on shutdown.
        return { done: await callOperator(target, action, await options.body(row), signal) };
      },
      async record(tx, _step, { txId }, answer) {
        await options.answered(tx, await flow.lock(tx, txId), answer);
      },
      async exhausted(tx, _step, { txId }, error) {
        await options.exhausted(tx, await flow.lock(tx, txId), error);
      },
      ...(options.resolve
        ? {
            resolve: async (tx: Db, _step: Step, { txId }: Input, resolution: StepResolution) =>
              options.resolve?.(tx, await flow.lock(tx, txId), resolution),
          }
        : {}),
      retrying: options.retrying
        ? async (tx, _step, { txId }, actor) => options.retrying?.(tx, await flow.lock(tx, txId), actor)
        : flowEnded,
    });
  }

  /** A callback that never got a usable answer: the flow ends with the failure (signin, verifyuser, authorize). */
  const fail = async (tx: Db, row: OneClickRow, error: string) => {
    await engine.apply(tx, row, failedEventOf(error), {
      actor: operatorActor(row),
      set: { err_msg: failureText(error) },
    });
  };

  async function identityBody(row: OneClickRow) {
    const identity = flow.identityOf(row);
    if (!identity) throw new Error(`1-Click transaction ${row.tx_id} has no proven identity`);
    return identity;
  }

  async function txBody(row: OneClickRow) {
    const amounts = await flow.amountsOf(row);
    if (!amounts) throw new Error(`1-Click transaction ${row.tx_id} has no amount`);
    return {
      userId: row.user_id,
      txAmount: amounts.txAmount,
      txAmountCy: amounts.currency,
      txId: row.tx_id,
      txTypeId: TX_TYPE_ID,
      txName: TX_NAME,
      provider: row.identity_provider,
      fee: amounts.fee,
      feeCy: amounts.currency,
    };
  }

  callback("OC_SIGNIN", "signin", {
    maxAttempts: config.callbackAttempts,
    async body(row) {
      const identity = await identityBody(row);
      const claims = flow.claimsOf(row);
      return {
        txRefId: txRefIdOf(row.client_id, row.tx_id),
        // PaymentIQ's required timestamps, seconds as strings: issued now, requested at authorize.
        iat: String(Math.floor(Date.now() / 1000)),
        rat: String(Math.floor(new Date(row.created_at).getTime() / 1000)),
        name: claims.name,
        firstName: identity.firstName,
        lastName: identity.lastName,
        personid: identity.personid,
        street: identity.street,
        city: identity.city,
        zip: identity.zip,
        country: claims.country,
        dob: identity.dob,
        ...(claims.ip ? { ip: claims.ip } : {}),
        identityProvider: row.identity_provider,
        ...(row.attributes ? { attributes: row.attributes } : {}),
      };
    },
    async answered(tx, row, answer) {
      const actor = operatorActor(row);
      if (!answer.success) {
        await engine.apply(tx, row, "NOT_AUTHENTICATED", { actor, set: errFields(answer) });
        return;
      }
      const identity = await identityBody(row);
      // One user, one person: an operator id that already stands for someone else is not merged.
      if (await flow.userIsAnotherPerson(tx, row.client_id, answer.userId, identity.personid)) {
        await engine.apply(tx, row, "NOT_AUTHENTICATED", {
          actor,
          set: { err_msg: "the operator's userId belongs to another person" },
        });
        return;
      }
      await engine.apply(tx, row, "SIGNED_IN", {
        actor,
        set: { user_id: answer.userId, operator_session_id: answer.sessionId ?? null },
      });
    },
    exhausted: fail,
  });

  callback("OC_VERIFYUSER", "verifyuser", {
    maxAttempts: config.callbackAttempts,
    async body(row) {
      return { sessionId: row.operator_session_id, userId: row.user_id };
    },
    async answered(tx, row, answer) {
      const actor = operatorActor(row);
      if (!answer.success || answer.userId !== row.user_id) {
        await engine.apply(tx, row, "NOT_AUTHENTICATED", {
          actor,
          set: answer.success ? { err_msg: "verifyuser answered for another user" } : errFields(answer),
        });
        return;
      }
      await engine.apply(tx, row, row.amount === null ? "SIGNED_UP" : "VERIFIED", { actor });
    },
    exhausted: fail,
  });

  // The quote stage every deposit goes through (transactions/quote.ts), on the user's usage: the
  // USD value, the client's KYC scenario and monitoring, computed outside any transaction and
  // applied in the one that moves the flow on.
  steps.register<Input, { usdValue: string; kyc: Assessment["kyc"]; monitoring: Assessment["monitoring"] }>({
    name: "OC_KYC_CHECK",
    input,
    maxAttempts: 5,
    backoffMs: backoff,
    async perform({ txId }) {
      const row = await flow.get(txId);
      if (row.amount === null || row.currency === null || row.user_id === null)
        throw new Error(`1-Click transaction ${txId} is not a deposit of a user`);
      const assessed = await flow.deps.core.assess({
        clientId: row.client_id,
        userId: row.user_id,
        type: "DEPOSIT",
        amount: BigInt(row.amount),
        currency: row.currency,
      });
      // Kept on the step as JSON: the USD value as its decimal text.
      return { done: { ...assessed, usdValue: assessed.usdValue.toString() } };
    },
    async record(tx, _step, { txId }, { usdValue, kyc, monitoring }) {
      const row = await flow.lock(tx, txId);
      if (row.status_code !== STATUS.PROCESSING_KYC_VERIFICATION) return;
      const priced = { usd_value: usdValue, monitoring: JSON.stringify(monitoring) };
      const monitoringActor = { kind: "system" as const, id: "monitoring" };
      if (kyc.type !== "NO_ERROR") {
        await engine.apply(tx, row, "KYC_NEEDED", {
          actor: { kind: "system", id: "kyc" },
          set: {
            ...priced,
            err_code: String(kyc.code),
            err_msg:
              kyc.type === "MIN_ASSESSMENT_MISSING"
                ? `this deposit needs KYC tier ${kyc.assessment.requiredTier} (the user has ${kyc.assessment.currentTier})`
                : `this deposit needs more information about the user: ${kyc.fields.join(", ")}`,
          },
        });
        return;
      }
      await flow.deps.core.record(tx, [
        {
          type: "transaction.monitored",
          transaction: snapshotOf(row),
          monitoring,
        },
      ]);
      const event: OneClickEvent =
        monitoring.status === "DENY"
          ? "DENIED"
          : monitoring.status === "MANUAL_REVIEW"
            ? "HELD_FOR_REVIEW"
            : "ACCEPTED";
      await engine.apply(tx, row, event, {
        actor: monitoringActor,
        set: event === "DENIED" ? { ...priced, err_msg: "refused by monitoring" } : priced,
      });
    },
    async exhausted(tx, _step, { txId }) {
      await engine.apply(tx, await flow.lock(tx, txId), "QUOTE_FAILED", {
        actor: { kind: "system", id: "kyc" },
      });
    },
    retrying: flowEnded,
  });

  callback("OC_AUTHORIZE", "authorize", {
    maxAttempts: config.callbackAttempts,
    async body(row) {
      const { fee: _fee, feeCy: _feeCy, ...body } = await txBody(row);
      // PaymentIQ's authorize carries txTypeId as a number (transfer and cancel: a string).
      return { ...body, txTypeId: Number(TX_TYPE_ID) };
    },
    async answered(tx, row, answer) {
      const actor = operatorActor(row);
      if (!answer.success || answer.userId !== row.user_id) {
        await engine.apply(tx, row, "NOT_AUTHORIZED", {
          actor,
          set: answer.success ? { err_msg: "authorize answered for another user" } : errFields(answer),
        });
        return;
      }
      await engine.apply(tx, row, "AUTHORIZED", {
        actor,
        set: { merchant_tx_id: answer.merchantTxId ?? null, auth_code: answer.authCode ?? null },
      });
    },
    // The operator may have reserved the amount without Ferry hearing it: the table's move cancels it.
    exhausted: fail,
  });

  steps.register<Input, IdentityPaymentResult>({
    name: "OC_PAYMENT",
    input,
    maxAttempts: 5,
    backoffMs: backoff,
    async perform({ txId }) {
      const row = await flow.get(txId);
      const provider = flow.provider(row.identity_provider);
      const identity = flow.identityOf(row);
      if (!provider || !identity || row.amount === null || row.currency === null)
        throw new Error(`1-Click transaction ${txId} cannot be paid`);
      const scale = (await ledger.getCurrency(flow.db, row.client_id, row.currency)).scale;
      const amount = BigInt(row.amount);
      // Opened (and cached) with the pool, so that booking the payment only reads them.
      await flow.deps.core.warmSettlement(row.client_id, row.currency);
      return {
        done: await provider.pay({
          idempotencyKey: `${row.client_id}:${requestIdOf(row.tx_id)}`,
          personid: identity.personid,
          amount,
          amountText: formatAmount(amount, scale),
          currency: row.currency,
        }),
      };
    },
    async record(tx, _step, { txId }, result) {
      const row = await flow.lock(tx, txId);
      const actor = providerActor(row.identity_provider);
      if (result.status === "PAID") {
        await engine.apply(tx, row, "PAID", { actor });
        return;
      }
      await engine.apply(tx, row, result.statusCode === STATUS.NO_FUNDS ? "NO_FUNDS" : "PAYMENT_FAILED", {
        actor,
        set: { err_code: String(result.statusCode), err_msg: result.reason },
      });
    },
    async exhausted(tx, _step, { txId }) {
      // No answer from the provider: whether the bank paid is unknown until staff retry it.
      const row = await flow.lock(tx, txId);
      await engine.apply(tx, row, "PAYMENT_LOST", { actor: providerActor(row.identity_provider) });
    },
    async retrying(tx, _step, { txId }, actor) {
      await staffRetry(tx, await flow.lock(tx, txId), actor);
    },
  });

  /** A staff retry of the flow's failed step: the flow is processing again (the same move from either route). */
  async function staffRetry(tx: Db, row: OneClickRow, actor: Actor) {
    // A step left FAILED by a flow that has since moved on (none today) is retried without moving it.
    await engine.apply(tx, row, "RETRY", { actor });
  }

  callback("OC_TRANSFER", "transfer", {
    maxAttempts: config.transferAttempts,
    async body(row) {
      const body = await txBody(row);
      return {
        ...body,
        // What the bank paid (the user pays txAmount at the provider; Ferry's fee is deducted from
        // it: feeMode D), in the same currency: Ferry converts nothing.
        txPspAmount: body.txAmount,
        txPspAmountCy: body.txAmountCy,
        feeMode: "D",
        authCode: row.auth_code,
        txRefId: txRefIdOf(row.client_id, row.tx_id),
      };
    },
    async answered(tx, row, answer) {
      // The payment has happened: the operator must accept it. A refusal is a failed attempt, retried.
      if (!answer.success)
        throw new Error(
          `the operator refused transfer ${row.tx_id} (${answer.errCode ?? "no errCode"}: ${answer.errMsg ?? "no errMsg"}); it must accept it`,
        );
      await engine.apply(tx, row, "TRANSFERRED", {
        actor: operatorActor(row),
        set: answer.merchantTxId ? { merchant_tx_id: answer.merchantTxId } : {},
      });
    },
    async exhausted(tx, row, error) {
      await engine.apply(tx, row, failureOf(error) === "TIMEOUT" ? "TRANSFER_TIMED_OUT" : "TRANSFER_LOST", {
        actor: operatorActor(row),
        // The browser sees this; the step's last error keeps the detail for staff.
        set: { err_msg: "the operator did not confirm the deposit; it is being looked into" },
      });
    },
    async resolve(tx, row, resolution) {
      // The payment was made: the operator must accept the transfer. Staff say it did (credited by
      // hand); "not executed" means it still has to: retry the step instead.
      if (resolution.outcome !== "EXECUTED")
        throw new DomainError(
          "CONFLICT",
          "NOT_RESOLVABLE",
          "the deposit was paid: the operator must accept the transfer — retry it, or resolve it as executed",
        );
      const resolved = await engine.apply(tx, row, "RESOLVED", {
        actor: resolution.actor,
        set: {
          resolution: JSON.stringify({
            note: resolution.note,
            at: new Date().toISOString(),
            by: resolution.actor,
          }),
        },
      });
      if (!resolved) throw new Error(`1-Click transaction ${row.tx_id} is not waiting for its transfer`);
    },
    retrying: staffRetry,
  });

  // cancel's answer does not move the flow (it has ended): record it whatever the status, audited.
  steps.register<Input, CallbackAnswer<"cancel">>({
    name: "OC_CANCEL",
    input,
    maxAttempts: config.transferAttempts,
    backoffMs: backoff,
    async perform({ txId }, _step, signal) {
      const row = await flow.get(txId);
      const target = await flow.callbackTarget(row.client_id);
      const { fee: _fee, feeCy: _feeCy, ...body } = await txBody(row);
      return {
        done: await callOperator(
          target,
          "cancel",
          { ...body, authCode: row.auth_code, statusCode: row.status_code },
          signal,
        ),
      };
    },
    async record(tx, _step, { txId }, answer) {
      const row = await flow.lock(tx, txId);
      await writeAudit(
        tx,
        { clientId: row.client_id, actor: operatorActor(row), requestId: requestIdOf(row.tx_id) },
        {
          action: "oneclick.cancel_delivered",
          entityType: "oneclick",
          entityId: row.tx_id,
          after: { success: answer.success },
        },
      );
    },
    async exhausted(tx, _step, { txId }, error) {
      const row = await flow.lock(tx, txId);
      await writeAudit(
        tx,
        {
          clientId: row.client_id,
          actor: { kind: "system", id: "oneclick" },
          requestId: requestIdOf(row.tx_id),
        },
        {
          action: "oneclick.cancel_undelivered",
          entityType: "oneclick",
          entityId: row.tx_id,
          after: { error: error.slice(0, 500) },
        },
      );
    },
  });
}
