import { z } from "zod";
import type { Db } from "../../db/database.ts";
import { type Actor, providerActor } from "../../lib/context.ts";
import { formatAmount } from "../../lib/money.ts";
import type { IdentityPaymentResult } from "../../providers/identity/interface.ts";
import { writeAudit } from "../audit/service.ts";
import type { ValidationOutcome } from "../kyc/rules.ts";
import * as ledger from "../ledger/service.ts";
import type { Step, StepResolution } from "../steps/runner.ts";
import { type CallbackAction, type CallbackAnswer, callOperator, failureOf } from "./callbacks.ts";
import type { OneClick, OneClickRow } from "./service.ts";
import { requestIdOf, txRefIdOf } from "./service.ts";
import { STATUS, type StatusName } from "./statuses.ts";

/**
 * The 1-Click flow's calls outside Ferry as durable steps (modules/steps/runner.ts): each operator
 * callback and the provider's payment is a row of `steps` with its own key, performed outside any
 * database transaction, its answer recorded in the transaction that moves the flow on and
 * schedules the next step. A crash anywhere resumes with the same key, so the operator sees the
 * same `txId` again and the provider the same payment.
 *
 *   approve → OC_SIGNIN (or, a returning person at a provider without required signin, straight
 *   to) → OC_VERIFYUSER → screening → OC_AUTHORIZE → OC_PAYMENT → OC_TRANSFER → SUCCESS
 *   payment refused (504) or authorize of unknown outcome → OC_CANCEL
 */

const input = z.object({ txId: z.string().regex(/^\d+$/) }).strict();
type Input = z.infer<typeof input>;

const operatorActor = (row: OneClickRow): Actor => ({ kind: "client", id: row.client_id });

/** A callback's last failure → the FAILED code the user's flow ends with. */
function failedCodeOf(error: string): StatusName {
  const failure = failureOf(error);
  return failure === "NOT_JSON" || failure === "INVALID_ANSWER"
    ? "INVALID_RESPONSE"
    : "MERCHANT_OUT_OF_SERVICE";
}

const errFields = (answer: { errCode?: string | undefined; errMsg?: string | undefined }) => ({
  err_code: answer.errCode?.slice(0, 100) ?? null,
  err_msg: answer.errMsg?.slice(0, 500) ?? null,
});

export function registerOneClickSteps(flow: OneClick): void {
  const { steps, config } = flow.deps;
  const backoff = (attempt: number) => Math.min(300_000, config.retryBaseMs * 2 ** (attempt - 1));

  /** A callback step: calls the operator with the body built from the locked-in row, records its answer. */
  function callback<A extends CallbackAction>(
    name: string,
    action: A,
    options: {
      maxAttempts: number;
      /** The flow must be in this status for the answer to count (else it moved on and the answer is kept on the step only). */
      expect: number;
      body(row: OneClickRow): Promise<Record<string, unknown>>;
      answered(tx: Db, row: OneClickRow, answer: CallbackAnswer<A>, step: Step): Promise<void>;
      exhausted(tx: Db, row: OneClickRow, error: string): Promise<void>;
      resolve?(tx: Db, row: OneClickRow, resolution: StepResolution): Promise<void>;
    },
  ) {
    steps.register<Input, CallbackAnswer<A>>({
      name,
      input,
      maxAttempts: options.maxAttempts,
      backoffMs: backoff,
      async perform({ txId }) {
        const row = await flow.get(txId);
        const target = await flow.callbackTarget(row.client_id);
        return { done: await callOperator(target, action, await options.body(row)) };
      },
      async record(tx, step, { txId }, answer) {
        const row = await flow.lock(tx, txId);
        if (row.status_code !== options.expect) return;
        await options.answered(tx, row, answer, step);
      },
      async exhausted(tx, _step, { txId }, error) {
        const row = await flow.lock(tx, txId);
        if (row.status_code !== options.expect) return;
        await options.exhausted(tx, row, error);
      },
      ...(options.resolve
        ? {
            resolve: async (tx: Db, _step: Step, { txId }: Input, resolution: StepResolution) => {
              const row = await flow.lock(tx, txId);
              await options.resolve?.(tx, row, resolution);
            },
          }
        : {}),
    });
  }

  const fail = async (tx: Db, row: OneClickRow, error: string): Promise<void> => {
    await failWith(tx, row, error);
  };
  // err_msg reaches the browser (redirect_uri's errMsg): the operator's failure, never Ferry's own
  // error text (that stays on the step's last_error for staff).
  const failWith = (tx: Db, row: OneClickRow, error: string) =>
    flow.change(tx, row, failedCodeOf(error), {
      actor: operatorActor(row),
      set: {
        err_msg: failureOf(error)
          ? error.replace(/^CallbackError: /, "").slice(0, 500)
          : "the operator's answer could not be recorded",
      },
    });

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
      txTypeId: 1,
      txName: "Deposit",
      provider: row.identity_provider,
      fee: amounts.fee,
      feeCy: amounts.currency,
    };
  }

  callback("OC_SIGNIN", "signin", {
    maxAttempts: config.callbackAttempts,
    expect: STATUS.PROCESSING_USER_VERIFICATION,
    async body(row) {
      const identity = await identityBody(row);
      const claims = flow.claimsOf(row);
      return {
        txRefId: txRefIdOf(row.client_id, row.tx_id),
        name: claims.name,
        firstName: identity.firstName,
        lastName: identity.lastName,
        personid: identity.personid,
        street: identity.street,
        city: identity.city,
        zip: identity.zip,
        country: claims.country,
        dob: identity.dob,
        identityProvider: row.identity_provider,
      };
    },
    async answered(tx, row, answer) {
      if (!answer.success) {
        await flow.change(tx, row, "NOT_AUTHENTICATED", {
          actor: operatorActor(row),
          set: errFields(answer),
        });
        return;
      }
      const provider = flow.provider(row.identity_provider);
      const identity = flow.identityOf(row);
      if (!provider || !identity) throw new Error(`1-Click transaction ${row.tx_id} lost its provider`);
      // One user, one person: an operator id that already stands for someone else is not merged.
      if (await flow.userIsAnotherPerson(tx, row.client_id, answer.userId, identity.personid)) {
        await flow.change(tx, row, "NOT_AUTHENTICATED", {
          actor: operatorActor(row),
          set: { err_msg: "the operator's userId belongs to another person" },
        });
        return;
      }
      const next = await flow.change(tx, row, "PROCESSING_USER_VERIFICATION", {
        actor: operatorActor(row),
        set: { user_id: answer.userId, operator_session_id: answer.sessionId ?? null },
      });
      await flow.ensureUser(tx, next, identity, provider);
      await flow.schedule(tx, next, "OC_VERIFYUSER");
    },
    exhausted: fail,
  });

  callback("OC_VERIFYUSER", "verifyuser", {
    maxAttempts: config.callbackAttempts,
    expect: STATUS.PROCESSING_USER_VERIFICATION,
    async body(row) {
      return { sessionId: row.operator_session_id, userId: row.user_id };
    },
    async answered(tx, row, answer) {
      if (!answer.success || answer.userId !== row.user_id) {
        await flow.change(tx, row, "NOT_AUTHENTICATED", {
          actor: operatorActor(row),
          set: answer.success ? { err_msg: "verifyuser answered for another user" } : errFields(answer),
        });
        return;
      }
      if (row.amount === null) {
        await flow.change(tx, row, "SUCCESS", { actor: operatorActor(row) });
        return;
      }
      const next = await flow.change(tx, row, "PROCESSING_KYC_VERIFICATION", { actor: operatorActor(row) });
      await flow.schedule(tx, next, "OC_KYC_CHECK");
    },
    exhausted: fail,
  });

  // The client's KYC scenario on the deposit: what Ferry decides itself, computed outside any
  // transaction (the user's 30-day totals) and applied in the one that moves the flow on.
  steps.register<Input, ValidationOutcome | { type: "NO_DEPOSIT" }>({
    name: "OC_KYC_CHECK",
    input,
    maxAttempts: 5,
    backoffMs: backoff,
    async perform({ txId }) {
      return { done: (await flow.kycGate(await flow.get(txId))) ?? { type: "NO_DEPOSIT" } };
    },
    async record(tx, _step, { txId }, outcome) {
      const row = await flow.lock(tx, txId);
      if (row.status_code !== STATUS.PROCESSING_KYC_VERIFICATION) return;
      const actor = { kind: "system" as const, id: "kyc" };
      if (outcome.type === "NO_ERROR") {
        const next = await flow.change(tx, row, "PROCESSING_USER_AUTHORISATION", { actor });
        await flow.schedule(tx, next, "OC_AUTHORIZE");
        return;
      }
      await flow.change(tx, row, "KYC_REQUIRED", {
        actor,
        set: {
          err_code: String(outcome.type === "NO_DEPOSIT" ? 1000 : outcome.code),
          err_msg:
            outcome.type === "MIN_ASSESSMENT_MISSING"
              ? `this deposit needs KYC tier ${outcome.assessment.requiredTier} (the user has ${outcome.assessment.currentTier})`
              : outcome.type === "MIN_INFO_MISSING"
                ? `this deposit needs more information about the user: ${outcome.fields.join(", ")}`
                : "this deposit needs more information about the user",
        },
      });
    },
    async exhausted(tx, _step, { txId }) {
      const row = await flow.lock(tx, txId);
      if (row.status_code !== STATUS.PROCESSING_KYC_VERIFICATION) return;
      await flow.change(tx, row, "SYSTEM_ERROR", { actor: { kind: "system", id: "kyc" } });
    },
  });

  callback("OC_AUTHORIZE", "authorize", {
    maxAttempts: config.callbackAttempts,
    expect: STATUS.PROCESSING_USER_AUTHORISATION,
    async body(row) {
      const { fee: _fee, feeCy: _feeCy, ...body } = await txBody(row);
      return body;
    },
    async answered(tx, row, answer) {
      if (!answer.success || answer.userId !== row.user_id) {
        await flow.change(tx, row, "NOT_AUTHORIZED", {
          actor: operatorActor(row),
          set: answer.success ? { err_msg: "authorize answered for another user" } : errFields(answer),
        });
        return;
      }
      const next = await flow.change(tx, row, "PROCESSING_PROVIDER", {
        actor: operatorActor(row),
        set: { merchant_tx_id: answer.merchantTxId ?? null, auth_code: answer.authCode ?? null },
      });
      await flow.schedule(tx, next, "OC_PAYMENT");
    },
    async exhausted(tx, row, error) {
      // The operator may have reserved the amount without Ferry hearing it: cancel releases it.
      const failed = await failWith(tx, row, error);
      await flow.schedule(tx, failed, "OC_CANCEL");
    },
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
      await flow.warmAccounts(row.client_id, row.currency);
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
      if (row.status_code !== STATUS.PROCESSING_PROVIDER && row.status_code !== STATUS.UNKNOWN_RESPONSE)
        return;
      const actor = providerActor(row.identity_provider);
      if (result.status === "PAID") {
        await flow.bookPayment(tx, row);
        const next = await flow.change(tx, row, "PROCESSING_MERCHANT", { actor });
        await flow.schedule(tx, next, "OC_TRANSFER");
        return;
      }
      const failed = await flow.change(
        tx,
        row,
        result.statusCode === STATUS.NO_FUNDS ? "NO_FUNDS" : "SYSTEM_ERROR",
        {
          actor,
          set: { err_code: String(result.statusCode), err_msg: result.reason },
        },
      );
      await flow.schedule(tx, failed, "OC_CANCEL");
    },
    async exhausted(tx, _step, { txId }) {
      // No answer from the provider: whether the bank paid is unknown until staff retry it.
      const row = await flow.lock(tx, txId);
      if (row.status_code !== STATUS.PROCESSING_PROVIDER) return;
      await flow.change(tx, row, "UNKNOWN_RESPONSE", { actor: providerActor(row.identity_provider) });
    },
  });

  callback("OC_TRANSFER", "transfer", {
    maxAttempts: config.transferAttempts,
    expect: STATUS.PROCESSING_MERCHANT,
    async body(row) {
      return {
        ...(await txBody(row)),
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
      await flow.change(tx, row, "SUCCESS", {
        actor: operatorActor(row),
        set: answer.merchantTxId ? { merchant_tx_id: answer.merchantTxId } : {},
      });
    },
    async exhausted(tx, row, error) {
      await flow.change(
        tx,
        row,
        failureOf(error) === "TIMEOUT" ? "READ_TIMEOUT" : "INCONSISTENT_TRANSACTION",
        {
          actor: operatorActor(row),
          // The browser sees this; the step's last error keeps the detail for staff.
          set: { err_msg: "the operator did not confirm the deposit; it is being looked into" },
        },
      );
    },
    async resolve(tx, row, resolution) {
      await flow.change(tx, row, "SUCCESS", {
        actor: resolution.actor,
        set: {
          resolution: JSON.stringify({
            note: resolution.note,
            at: new Date().toISOString(),
            by: resolution.actor,
          }),
        },
      });
    },
  });

  // cancel's answer does not move the flow (it has ended): record it whatever the status, audited.
  steps.register<Input, CallbackAnswer<"cancel">>({
    name: "OC_CANCEL",
    input,
    maxAttempts: config.transferAttempts,
    backoffMs: backoff,
    async perform({ txId }) {
      const row = await flow.get(txId);
      const target = await flow.callbackTarget(row.client_id);
      const { fee: _fee, feeCy: _feeCy, ...body } = await txBody(row);
      return {
        done: await callOperator(target, "cancel", {
          ...body,
          authCode: row.auth_code,
          statusCode: row.status_code,
        }),
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
