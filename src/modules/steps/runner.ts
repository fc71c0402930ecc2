// Over 400 lines on purpose: one step's whole life (schedule, claim, perform, record, fail,
// compensate, retry) in one place, so that its invariants (one recorder, nothing dropped) read together.
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "kysely";
import type { Logger } from "pino";
import type { z } from "zod";
import type { Db } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import type { Actor } from "../../lib/context.ts";
import { DomainError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { writeAudit } from "../audit/service.ts";
import { claimDue, claimFairly, drainInFlight, Lease } from "./lease.ts";

/**
 * The durable step runner: every call Ferry makes outside its database (card charge, refund,
 * payout, payout status, bank return, …) is a row of `steps`, written in the transaction that
 * decides the call is needed, then claimed with a lease and performed outside any transaction.
 * Its outcome is recorded by the step's kind in the transaction that closes the step, so a crash
 * anywhere between is resumed with the same idempotency key, and only one runner ever records.
 * Each claimed row runs on its own: a failing row is retried with backoff and, after its last
 * attempt, ends FAILED (visible to staff) without holding up any other row.
 *
 * Isolation: every call has a deadline (the kind's `timeoutMs`, else the runner's `callTimeoutMs`)
 * after which the attempt fails as a timeout, and its `signal` is aborted; the claim loop
 * (`dispatch`) never waits for a batch — it fills free slots (`concurrency` per process, at most
 * `perClient` in flight per client across all processes) and claims again as each call ends; a
 * lease is renewed while its call runs. So a hung, slow or huge answer from one client's provider
 * holds that client's slots only, and every other due step runs on its own schedule.
 */

export type StepStatus = "PENDING" | "SUCCEEDED" | "FAILED" | "RESOLVED" | "CANCELED";
export const STEP_STATUSES = ["PENDING", "SUCCEEDED", "FAILED", "RESOLVED", "CANCELED"] as const;

/**
 * What staff learned from the provider about a step that never got an answer: the call was
 * carried out (with the provider's reference, where the kind needs one) or it was not.
 */
export interface StepResolution {
  outcome: "EXECUTED" | "NOT_EXECUTED";
  note: string;
  reference?: string | undefined;
  /** Who resolved it (set by the runner). */
  actor: Actor;
}

export interface Step {
  id: string;
  clientId: string;
  kind: string;
  processType: string;
  processId: string;
  idempotencyKey: string;
  status: StepStatus;
  input: unknown;
  result: unknown;
  attempts: number;
  maxAttempts: number;
  nextAttemptAt: Date;
  lockedUntil: Date | null;
  lastError: string | null;
  createdAt: Date;
  finishedAt: Date | null;
}

/** What a step's call came back with: an outcome to record, or "ask again later" (polling). */
export type Performed<R> = { done: R } | { waitUntil: Date };

/** One kind of step, in the catalogue: how to call, how to record, what a final failure means. */
export interface StepKind<I, R> {
  readonly name: string;
  readonly input: z.ZodType<I>;
  readonly maxAttempts: number;
  /** Immediate extra tries when the step runs inside a request (a timeout answered on retry). */
  readonly immediateRetries?: number;
  /** Delay before retry number `attempt` (1-based), when the kind has its own pace; else the runner's. */
  readonly backoffMs?: (attempt: number) => number;
  /** The deadline of one call, when the kind has its own; else the runner's `callTimeoutMs`. */
  readonly timeoutMs?: number;
  /**
   * Calls the outside world; must be idempotent under the step's key. Never inside a transaction.
   * `signal` is aborted when the runner stops waiting (the deadline, a lost lease, shutdown): the
   * attempt has failed by then, and the call should stop (destroy its socket).
   */
  perform(input: I, step: Step, signal: AbortSignal): Promise<Performed<R>>;
  /** Records the outcome, in the transaction that marks the step SUCCEEDED. */
  record(tx: Db, step: Step, input: I, result: R): Promise<void>;
  /** The last attempt failed: the process's compensation for a step that never got an answer. */
  exhausted(tx: Db, step: Step, input: I, error: string): Promise<void>;
  /** Staff resolve a FAILED step: what the process does with their word. Absent: the kind can only be retried. */
  resolve?(tx: Db, step: Step, input: I, resolution: StepResolution): Promise<void>;
  /**
   * Staff try a FAILED step again: what the process does first (e.g. a flow left INCONSISTENT is
   * processing again), in the transaction that makes the step PENDING. Throwing refuses the retry.
   * Every retry route runs it: there is one retry path.
   */
  retrying?(tx: Db, step: Step, input: I, actor: Actor): Promise<void>;
}

interface ErasedKind {
  readonly name: string;
  readonly maxAttempts: number;
  readonly immediateRetries: number;
  readonly backoffMs: ((attempt: number) => number) | undefined;
  readonly timeoutMs: number | undefined;
  perform(step: Step, signal: AbortSignal): Promise<Performed<unknown>>;
  record(tx: Db, step: Step, result: unknown): Promise<void>;
  exhausted(tx: Db, step: Step, error: string): Promise<void>;
  resolve: ((tx: Db, step: Step, resolution: StepResolution) => Promise<void>) | undefined;
  retrying: ((tx: Db, step: Step, actor: Actor) => Promise<void>) | undefined;
}

export interface NewStep {
  clientId: string;
  kind: string;
  processType: string;
  processId: string;
  idempotencyKey: string;
  input: unknown;
  runAt?: Date | undefined;
}

export interface StepRunnerOptions {
  /** How long a claim holds a step; renewed while its call runs, so it bounds only a dead process's hold. */
  leaseSeconds: number;
  /** Delay before retry number `attempt` (1-based). */
  backoffMs?: (attempt: number) => number;
  /** The deadline of one call (a kind may set its own): then the attempt fails as a timeout. Default 60 s. */
  callTimeoutMs?: number | undefined;
  /** Calls the claim loop runs at once in this process. Default 32. */
  concurrency?: number | undefined;
  /** Steps of one client in flight at once, across every process. Default 4. */
  perClient?: number | undefined;
  logger?: Logger | undefined;
  onFinished?: ((kind: string, status: StepStatus) => void) | undefined;
}

/** How long a request waits for a step another runner is performing before answering as things stand. */
const MAX_REQUEST_WAIT_MS = 10_000;

const defaultBackoff = (attempt: number) => Math.min(300_000, 1000 * 2 ** (attempt - 1));

/** A call that did not finish within its deadline: a failed attempt, retried by backoff. */
export class StepTimeoutError extends Error {
  constructor(kind: string, timeoutMs: number) {
    super(`${kind} did not finish within ${timeoutMs} ms`);
    this.name = "StepTimeoutError";
  }
}

/** A call abandoned: the process is stopping, or another runner took the step over. */
export class StepAbandonedError extends Error {
  constructor(why: string) {
    super(why);
    this.name = "StepAbandonedError";
  }
}

/** A call the claim loop started and has not finished. */
interface InFlight {
  readonly done: Promise<void>;
  readonly abandon: AbortController;
}

export class StepRunner {
  readonly #kinds = new Map<string, ErasedKind>();
  readonly #backoff: (attempt: number) => number;
  readonly #inFlight = new Map<string, InFlight>();
  #stopping = false;
  #onSlotFree: (() => void) | undefined;

  constructor(
    private readonly db: Db,
    private readonly options: StepRunnerOptions,
  ) {
    this.#backoff = options.backoffMs ?? defaultBackoff;
  }

  /** Adds a kind to the catalogue. */
  register<I, R>(kind: StepKind<I, R>): void {
    const parse = (step: Step) => kind.input.parse(step.input);
    this.#kinds.set(kind.name, {
      name: kind.name,
      maxAttempts: kind.maxAttempts,
      immediateRetries: kind.immediateRetries ?? 0,
      backoffMs: kind.backoffMs,
      timeoutMs: kind.timeoutMs,
      perform: (step, signal) => kind.perform(parse(step), step, signal),
      record: (tx, step, result) => kind.record(tx, step, parse(step), result as R),
      exhausted: (tx, step, error) => kind.exhausted(tx, step, parse(step), error),
      resolve: kind.resolve
        ? (tx, step, resolution) => kind.resolve?.(tx, step, parse(step), resolution) ?? Promise.resolve()
        : undefined,
      retrying: kind.retrying
        ? (tx, step, actor) => kind.retrying?.(tx, step, parse(step), actor) ?? Promise.resolve()
        : undefined,
    });
  }

  /**
   * Records a step in the caller's transaction. The same idempotency key again is the same step
   * (returned as it is, `created: false`).
   */
  async schedule(tx: Db, step: NewStep): Promise<{ id: string; created: boolean }> {
    const inserted = await tx
      .insertInto("steps")
      .values(this.rowOf(step))
      .onConflict((oc) => oc.columns(["client_id", "idempotency_key"]).doNothing())
      .returning("id")
      .executeTakeFirst();
    if (inserted) return { id: inserted.id, created: true };
    const existing = await tx
      .selectFrom("steps")
      .select("id")
      .where("client_id", "=", step.clientId)
      .where("idempotency_key", "=", step.idempotencyKey)
      .executeTakeFirstOrThrow();
    return { id: existing.id, created: false };
  }

  private rowOf(step: NewStep) {
    return {
      id: newId(),
      client_id: step.clientId,
      kind: step.kind,
      process_type: step.processType,
      process_id: step.processId,
      idempotency_key: step.idempotencyKey,
      input: JSON.stringify(step.input),
      max_attempts: this.kindOf(step.kind).maxAttempts,
      // The database's clock, as every claim compares with it (a remote server's may differ).
      next_attempt_at: step.runAt ?? sql<Date>`now()`,
    };
  }

  /**
   * Schedules new processes' steps in one statement (the group commit's): their keys are new, so
   * each is inserted; a key that exists already keeps its step. Ids in the order given.
   */
  async scheduleMany(tx: Db, steps: NewStep[]): Promise<string[]> {
    if (steps.length === 0) return [];
    const inserted = await tx
      .insertInto("steps")
      .values(steps.map((step) => this.rowOf(step)))
      .onConflict((oc) => oc.columns(["client_id", "idempotency_key"]).doNothing())
      .returning(["id", "client_id", "idempotency_key"])
      .execute();
    const ids = new Map(inserted.map((r) => [`${r.client_id}\u0000${r.idempotency_key}`, r.id]));
    const result: string[] = [];
    for (const step of steps)
      result.push(
        ids.get(`${step.clientId}\u0000${step.idempotencyKey}`) ?? (await this.schedule(tx, step)).id,
      );
    return result;
  }

  /** The steps of one process, oldest first. */
  async stepsOf(db: Db, clientId: string, processType: string, processId: string): Promise<Step[]> {
    const rows = await db
      .selectFrom("steps")
      .selectAll()
      .where("client_id", "=", clientId)
      .where("process_type", "=", processType)
      .where("process_id", "=", processId)
      .orderBy("created_at")
      .orderBy("id")
      .execute();
    return rows.map(toStep);
  }

  /**
   * Cancels a process's open steps that have never been tried (no call was made, so there is no
   * outcome to wait for). Returns false, cancelling nothing, if any open step was already tried
   * or is being tried: its outcome must be known first.
   */
  async cancelUntried(tx: Db, clientId: string, processType: string, processId: string): Promise<boolean> {
    const unsettled = await tx
      .selectFrom("steps")
      .select(["id", "status", "attempts", "locked_until"])
      .where("client_id", "=", clientId)
      .where("process_type", "=", processType)
      .where("process_id", "=", processId)
      .where("status", "in", ["PENDING", "FAILED"])
      .forUpdate()
      .execute();
    // A FAILED step never got an answer: whether the provider acted is unknown until staff resolve it.
    if (unsettled.some((s) => s.status === "FAILED" || s.attempts > 0 || s.locked_until !== null))
      return false;
    const open = unsettled;
    if (open.length === 0) return true;
    await tx
      .updateTable("steps")
      .set({ status: "CANCELED", finished_at: new Date(), updated_at: new Date() })
      .where(
        "id",
        "in",
        open.map((s) => s.id),
      )
      .execute();
    return true;
  }

  /**
   * Runs one step now (the request path): claims it if nobody holds it, performs it, records the
   * outcome. Provider failures are recorded on the step (and retried later), never thrown.
   */
  async run(stepId: string): Promise<void> {
    // Another runner (the recovery worker) may take it first: then wait for its answer while it
    // holds the lease, briefly, so that the request still answers with the outcome. A step that is
    // due and not leased was being claimed by that runner at the same moment (SKIP LOCKED passed
    // it by): claim again.
    const deadline = Date.now() + Math.min(this.options.leaseSeconds * 1000, MAX_REQUEST_WAIT_MS);
    for (;;) {
      const [step] = await this.claim(sql`id = ${stepId}`, 1);
      if (step) {
        await this.execute(step, true);
        return;
      }
      const row = await this.db
        .selectFrom("steps")
        .select(["status", "locked_until", "next_attempt_at"])
        .where("id", "=", stepId)
        .executeTakeFirst();
      if (row?.status !== "PENDING") return;
      const now = Date.now();
      const leased = row.locked_until !== null && new Date(row.locked_until).getTime() > now;
      const due = new Date(row.next_attempt_at).getTime() <= now;
      if ((!leased && !due) || now >= deadline) return; // scheduled for later, or waited enough
      await sleep(20);
    }
  }

  /**
   * One round of the claim loop: claims due steps for the free slots (at most `perClient` of one
   * client in flight) and starts them without waiting for them; each call that ends frees its slot
   * and tells `onSlotFree`. True when every free slot was filled (more may be due at once).
   */
  async dispatch(): Promise<boolean> {
    const free = (this.options.concurrency ?? 32) - this.#inFlight.size;
    if (this.#stopping || free <= 0) return false;
    const rows = await claimFairly(this.db, free, this.options.perClient ?? 4, this.options.leaseSeconds);
    for (const row of rows) this.start(toStep(row as StepRowShape));
    return rows.length === free;
  }

  /** The claim loop's wake-up: called each time a call it started ends (a slot is free). */
  onSlotFree(listener: () => void): void {
    this.#onSlotFree = listener;
  }

  /** Calls the claim loop has started and not finished. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  private start(step: Step): void {
    const abandon = new AbortController();
    const done = this.execute(step, false, abandon.signal)
      .catch((error: unknown) => {
        this.options.logger?.error({ err: error, stepId: step.id }, "a step could not be recorded");
      })
      .finally(() => {
        this.#inFlight.delete(step.id);
        this.#onSlotFree?.();
      });
    this.#inFlight.set(step.id, { done, abandon });
  }

  /**
   * Shutdown: claims nothing more, waits up to `graceMs` for the calls in flight, then abandons
   * the rest — their calls are aborted and each attempt is recorded as failed (retried by backoff,
   * here or by another process, with the same key). Resolves when every call has been recorded.
   */
  async drain(graceMs: number): Promise<void> {
    this.#stopping = true;
    await drainInFlight(
      this.#inFlight,
      graceMs,
      () => new StepAbandonedError("Ferry is stopping"),
      (steps) => this.options.logger?.warn({ steps }, "abandoning provider calls still in flight"),
    );
  }

  /**
   * Every due step now, each on its own, awaited together (no per-client cap): for tests and
   * tools that drive the runner by hand. The background loop uses `dispatch`. Returns how many.
   */
  async runDue(limit: number): Promise<number> {
    const steps = await this.claim(sql`true`, limit);
    const outcomes = await Promise.allSettled(steps.map((step) => this.execute(step, false)));
    for (const outcome of outcomes) {
      if (outcome.status === "rejected")
        this.options.logger?.error({ err: outcome.reason }, "a step could not be recorded");
    }
    return steps.length;
  }

  /** The process's oldest step that is due now (PENDING, its next attempt reached), if any. */
  async nextDue(
    db: Db,
    clientId: string,
    processType: string,
    processId: string,
  ): Promise<string | undefined> {
    const row = await db
      .selectFrom("steps")
      .select("id")
      .where("client_id", "=", clientId)
      .where("process_type", "=", processType)
      .where("process_id", "=", processId)
      .where("status", "=", "PENDING")
      .where("next_attempt_at", "<=", sql<Date>`now()`)
      .orderBy("created_at")
      .limit(1)
      .executeTakeFirst();
    return row?.id;
  }

  /** The processes of a type with a step still open (a provider call not finished): `clientId/processId`. */
  async openProcesses(db: Db, processType: string, clientId?: string): Promise<Set<string>> {
    let query = db
      .selectFrom("steps")
      .select(["client_id", "process_id"])
      .distinct()
      .where("process_type", "=", processType)
      .where("status", "=", "PENDING");
    if (clientId) query = query.where("client_id", "=", clientId);
    const rows = await query.execute();
    return new Set(rows.map((r) => `${r.client_id}/${r.process_id}`));
  }

  /**
   * A FAILED step tried again from the start (a staff decision, audited with its actor), from
   * whichever route: the kind's `retrying` tells its process in the same transaction.
   */
  async retry(clientId: string | undefined, stepId: string, actor: Actor): Promise<Step | undefined> {
    return inTransaction(this.db, async (tx) => {
      const locked = await this.lock(tx, stepId);
      if (locked?.status !== "FAILED" || (clientId && locked.clientId !== clientId)) return undefined;
      await this.kindOf(locked.kind).retrying?.(tx, locked, actor);
      const row = await tx
        .updateTable("steps")
        .set({
          status: "PENDING",
          attempts: 0,
          next_attempt_at: new Date(),
          locked_until: null,
          finished_at: null,
          updated_at: new Date(),
        })
        .where("id", "=", stepId)
        .returningAll()
        .executeTakeFirstOrThrow();
      const step = toStep(row);
      await writeAudit(
        tx,
        { clientId: step.clientId, actor },
        {
          action: "step.retried",
          entityType: step.processType,
          entityId: step.processId,
          before: { step: step.id, kind: step.kind, status: "FAILED", lastError: step.lastError },
          after: { step: step.id, status: "PENDING" },
        },
      );
      return step;
    });
  }

  /**
   * Staff resolve a FAILED step with what the provider told them: the kind applies it to its
   * process (e.g. a payout the bank never received releases its hold), the step ends RESOLVED,
   * and the decision is audited. Undefined if no FAILED step has this id.
   */
  async resolve(
    stepId: string,
    decision: Omit<StepResolution, "actor">,
    actor: Actor,
  ): Promise<Step | undefined> {
    const resolution = { ...decision, actor };
    return inTransaction(this.db, async (tx) => {
      const step = await this.lock(tx, stepId);
      if (step?.status !== "FAILED") return undefined;
      const kind = this.kindOf(step.kind);
      if (!kind.resolve)
        throw new DomainError("CONFLICT", "NOT_RESOLVABLE", `a ${step.kind} step can only be retried`);
      await kind.resolve(tx, step, resolution);
      const row = await tx
        .updateTable("steps")
        .set({
          status: "RESOLVED",
          result: JSON.stringify(resolution),
          finished_at: new Date(),
          updated_at: new Date(),
        })
        .where("id", "=", stepId)
        .returningAll()
        .executeTakeFirstOrThrow();
      await writeAudit(
        tx,
        { clientId: step.clientId, actor },
        {
          action: "step.resolved",
          entityType: step.processType,
          entityId: step.processId,
          before: { step: step.id, kind: step.kind, status: "FAILED", lastError: step.lastError },
          after: { step: step.id, status: "RESOLVED", ...decision },
        },
      );
      return toStep(row);
    });
  }

  async list(
    filter: { clientId?: string | undefined; status?: StepStatus | undefined },
    page: { offset: number; limit: number },
  ): Promise<{ steps: Step[]; total: number }> {
    let query = this.db.selectFrom("steps");
    if (filter.clientId) query = query.where("client_id", "=", filter.clientId);
    if (filter.status) query = query.where("status", "=", filter.status);
    const [rows, count] = await Promise.all([
      query.selectAll().orderBy("created_at", "desc").offset(page.offset).limit(page.limit).execute(),
      query.select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow(),
    ]);
    return { steps: rows.map(toStep), total: Number(count.n) };
  }

  private kindOf(name: string): ErasedKind {
    const kind = this.#kinds.get(name);
    if (!kind) throw new Error(`no step kind ${name} in the catalogue`);
    return kind;
  }

  /** Claims due, unleased steps with a lease (FOR UPDATE SKIP LOCKED: two processes never claim one row). */
  private async claim(where: ReturnType<typeof sql>, limit: number): Promise<Step[]> {
    const rows = await claimDue(this.db, where, limit, this.options.leaseSeconds);
    return rows.map((r) => toStep(r as StepRowShape));
  }

  /**
   * One call within its deadline, under its lease: the attempt fails (and `signal` is aborted) at
   * the deadline, when the lease is lost to another runner, or when `abandon` fires (shutdown).
   */
  private async performWithin(
    kind: ErasedKind,
    step: Step,
    lease: Lease,
    giveUp: AbortController,
    abandon: AbortSignal | undefined,
  ): Promise<Performed<unknown>> {
    const timeoutMs = kind.timeoutMs ?? this.options.callTimeoutMs ?? 60_000;
    const call = new AbortController();
    const stop = (reason: unknown) => call.abort(reason);
    const onGiveUp = () => stop(giveUp.signal.reason);
    const onAbandon = () => stop(abandon?.reason);
    giveUp.signal.addEventListener("abort", onGiveUp, { once: true });
    abandon?.addEventListener("abort", onAbandon, { once: true });
    const timer = setTimeout(() => stop(new StepTimeoutError(kind.name, timeoutMs)), timeoutMs);
    const stopped = new Promise<never>((_, reject) => {
      call.signal.addEventListener("abort", () => reject(call.signal.reason), { once: true });
    });
    stopped.catch(() => {}); // settled by the race below, or after it (then nobody listens)
    try {
      if (giveUp.signal.aborted || abandon?.aborted || lease.lost)
        throw giveUp.signal.reason ?? abandon?.reason ?? new StepAbandonedError("the lease was lost");
      return await Promise.race([kind.perform(step, call.signal), stopped]);
    } finally {
      clearTimeout(timer);
      giveUp.signal.removeEventListener("abort", onGiveUp);
      abandon?.removeEventListener("abort", onAbandon);
    }
  }

  private async execute(step: Step, inRequest: boolean, abandon?: AbortSignal): Promise<void> {
    const kind = this.kindOf(step.kind);
    const giveUp = new AbortController();
    const lease = new Lease(
      this.db,
      step.id,
      step.lockedUntil ?? new Date(0),
      this.options.leaseSeconds,
      () => giveUp.abort(new StepAbandonedError("another runner took the step over (its lease ran out)")),
    );
    try {
      await this.performAndRecord(kind, step, lease, giveUp, inRequest, abandon);
    } finally {
      await lease.end();
    }
  }

  /** The call (with the kind's immediate retries in a request), then its outcome written under the lease's final token. */
  private async performAndRecord(
    kind: ErasedKind,
    step: Step,
    lease: Lease,
    giveUp: AbortController,
    inRequest: boolean,
    abandon: AbortSignal | undefined,
  ): Promise<void> {
    let tries = inRequest ? 1 + kind.immediateRetries : 1;
    for (;;) {
      tries--;
      let performed: Performed<unknown>;
      try {
        performed = await this.performWithin(kind, step, lease, giveUp, abandon);
      } catch (error) {
        if (tries > 0 && !lease.lost && !abandon?.aborted) continue;
        await lease.end(); // no renewal may change the token under the write below
        await this.fail(kind, step, lease.token, error);
        return;
      }
      await lease.end();
      if ("waitUntil" in performed) {
        await this.db
          .updateTable("steps")
          .set({
            next_attempt_at: performed.waitUntil,
            locked_until: null,
            attempts: sql`greatest(attempts - 1, 0)`,
            updated_at: new Date(),
          })
          .where("id", "=", step.id)
          .where("status", "=", "PENDING")
          .where("locked_until", "=", lease.token)
          .execute();
        return;
      }
      await this.recordAnswer(kind, step, lease.token, performed.done);
      return;
    }
  }

  /**
   * An answer, recorded in the transaction that closes the step — by whichever runner has it, even
   * one whose lease ran out (an answer is never dropped; a step already closed keeps its record).
   */
  private async recordAnswer(kind: ErasedKind, step: Step, token: Date, result: unknown): Promise<void> {
    try {
      await inTransaction(this.db, async (tx) => {
        const current = await this.lock(tx, step.id);
        if (current?.status !== "PENDING") return; // another runner recorded it, or it was cancelled
        await kind.record(tx, current, result);
        await tx
          .updateTable("steps")
          .set({
            status: "SUCCEEDED",
            result: JSON.stringify(result),
            locked_until: null,
            last_error: null,
            finished_at: new Date(),
            updated_at: new Date(),
          })
          .where("id", "=", step.id)
          .execute();
      });
      this.options.onFinished?.(step.kind, "SUCCEEDED");
    } catch (error) {
      // The provider answered but the answer could not be recorded: keep the answer on the step
      // (never dropped) and treat it as a failed attempt, retried, then compensated.
      await this.fail(kind, step, token, error, result);
    }
  }

  /**
   * A failed attempt, recorded by the runner that holds the step (`token`: its lease) — one whose
   * lease ran out and was taken over leaves the attempt to the new holder, keeping only an answer.
   */
  private async fail(
    kind: ErasedKind,
    step: Step,
    token: Date,
    error: unknown,
    result?: unknown,
  ): Promise<void> {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    const outcome = await inTransaction(this.db, async (tx): Promise<"final" | "retried" | "elsewhere"> => {
      const current = await this.lock(tx, step.id);
      if (current?.status !== "PENDING") return "elsewhere";
      if (current.lockedUntil?.getTime() !== token.getTime()) {
        if (result !== undefined)
          await tx
            .updateTable("steps")
            .set({ result: JSON.stringify(result), updated_at: new Date() })
            .where("id", "=", step.id)
            .execute();
        return "elsewhere";
      }
      const last = current.attempts >= current.maxAttempts;
      if (last) await kind.exhausted(tx, current, message);
      await tx
        .updateTable("steps")
        .set({
          status: last ? "FAILED" : "PENDING",
          last_error: message.slice(0, 2000),
          ...(result === undefined ? {} : { result: JSON.stringify(result) }),
          locked_until: null,
          next_attempt_at: new Date(Date.now() + (kind.backoffMs ?? this.#backoff)(current.attempts)),
          ...(last ? { finished_at: new Date() } : {}),
          updated_at: new Date(),
        })
        .where("id", "=", step.id)
        .execute();
      return last ? "final" : "retried";
    }).catch(async (compensationError: unknown) => {
      // The compensation itself failed: the step still ends FAILED for staff, with both errors.
      this.options.logger?.error({ err: compensationError, stepId: step.id }, "step compensation failed");
      await this.db
        .updateTable("steps")
        .set({
          status: "FAILED",
          last_error: `${message}; compensation failed: ${String(compensationError)}`.slice(0, 2000),
          locked_until: null,
          finished_at: new Date(),
          updated_at: new Date(),
        })
        .where("id", "=", step.id)
        .where("status", "=", "PENDING")
        .where("locked_until", "=", token)
        .execute();
      return "final" as const;
    });
    const final = outcome === "final";
    this.options.logger?.warn(
      { stepId: step.id, kind: step.kind, attempts: step.attempts, final, error: message },
      final
        ? "step failed for good"
        : outcome === "retried"
          ? "step failed; retried later"
          : "step failed after another runner took it over; its attempt counts",
    );
    if (final) this.options.onFinished?.(step.kind, "FAILED");
  }

  private async lock(tx: Db, id: string): Promise<Step | undefined> {
    const row = await tx.selectFrom("steps").selectAll().where("id", "=", id).forUpdate().executeTakeFirst();
    return row ? toStep(row) : undefined;
  }
}

type StepRowShape = {
  id: string;
  client_id: string;
  kind: string;
  process_type: string;
  process_id: string;
  idempotency_key: string;
  status: string;
  input: unknown;
  result: unknown;
  attempts: number;
  max_attempts: number;
  next_attempt_at: Date | string;
  locked_until: Date | string | null;
  last_error: string | null;
  created_at: Date | string;
  finished_at: Date | string | null;
};

const parseJson = (v: unknown) => (typeof v === "string" ? JSON.parse(v) : v);

function toStep(r: StepRowShape): Step {
  return {
    id: r.id,
    clientId: r.client_id,
    kind: r.kind,
    processType: r.process_type,
    processId: r.process_id,
    idempotencyKey: r.idempotency_key,
    status: r.status as StepStatus,
    input: parseJson(r.input),
    result: parseJson(r.result) ?? null,
    attempts: Number(r.attempts),
    maxAttempts: Number(r.max_attempts),
    nextAttemptAt: new Date(r.next_attempt_at),
    lockedUntil: r.locked_until ? new Date(r.locked_until) : null,
    lastError: r.last_error,
    createdAt: new Date(r.created_at),
    finishedAt: r.finished_at ? new Date(r.finished_at) : null,
  };
}
