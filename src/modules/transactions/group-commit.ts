import { sql } from "kysely";
import type { Db } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import type { RequestContext } from "../../lib/context.ts";
import { writeAudits } from "../audit/service.ts";
import { planOperations } from "../ledger/engine.ts";
import type { Account, Operation } from "../ledger/types.ts";
import type { StepRunner } from "../steps/runner.ts";
import type { TransactionEvent, TransactionEventSink } from "./events.ts";
import * as postings from "./postings.ts";
import {
  type Applied,
  auditEntryOf,
  type Booking,
  type EventFacts,
  eventsOf,
  findTransition,
  type PlannedStep,
  type ProcessEngine,
  processKindOf,
  stepOf,
  type Touched,
  touch,
  usageChange,
} from "./process.ts";
import type { Transition } from "./process-table.ts";
import type * as repo from "./repo.ts";
import { type Row, requestIdUsed } from "./types.ts";
import { countUsageOf } from "./usage.ts";

/**
 * Group commit of new transactions: the requests that record a transaction at the same moment
 * share one database transaction, with every row of each — the transaction, its ledger legs, its
 * steps, its usage, its audit row, its events — written in one statement per table for the whole
 * group. All or nothing per transaction: one refused by the ledger (insufficient funds) or whose
 * request id is taken is left out, the others commit. Should the group's database transaction fail
 * as a whole, each runs alone on the single path (ProcessEngine.create), with its own answer.
 *
 * Like the ledger's batcher there is no timer: a group starts as soon as a slot is free and takes
 * what is queued, so a lone request waits for one transaction and a crowd shares a few. A hot
 * account (a merchant receiving every payment, the fees account) is locked once per group instead
 * of once per request, for the few statements the group takes.
 */

export interface CreateJob {
  ctx: RequestContext;
  values: repo.NewRow;
  event: "ACCEPTED" | "HELD_FOR_REVIEW" | "DENIED";
  facts: EventFacts;
}

export interface GroupCommitOptions {
  maxBatchSize: number;
  maxInFlight: number;
  onBatch?: ((size: number, seconds: number) => void) | undefined;
}

interface Waiting {
  job: CreateJob;
  resolve: (applied: Applied) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; applied: Applied } | { ok: false; error: unknown };

export class GroupCommit {
  readonly #queue: Waiting[] = [];
  #inFlight = 0;
  #waitingSlots = 0;
  readonly #idle: (() => void)[] = [];

  constructor(
    private readonly db: Db,
    private readonly engine: ProcessEngine,
    private readonly steps: StepRunner,
    private readonly events: TransactionEventSink,
    private readonly options: GroupCommitOptions,
  ) {}

  /** Records a new transaction and its first transition's effects; resolves once committed. */
  create(job: CreateJob): Promise<Applied> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ job, resolve, reject });
      this.#pump();
    });
  }

  /** Resolves once every submitted transaction has its answer (for shutdown). */
  drained(): Promise<void> {
    if (this.#queue.length === 0 && this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #pump() {
    // A slot takes its group when it holds a connection (not when it starts), so that requests
    // arriving while it waits for one join it: with one connection (PGlite) that wait is where the
    // crowd forms. A new slot starts only for what the slots already waiting will not take.
    while (
      this.#inFlight < this.options.maxInFlight &&
      this.#queue.length > this.#waitingSlots * this.options.maxBatchSize
    ) {
      this.#inFlight++;
      this.#waitingSlots++;
      void this.#run().finally(() => {
        this.#inFlight--;
        this.#pump();
        if (this.#queue.length === 0 && this.#inFlight === 0) for (const done of this.#idle.splice(0)) done();
      });
    }
  }

  async #run() {
    const started = performance.now();
    let batch: Waiting[] | undefined;
    const take = () => {
      if (!batch) {
        batch = this.#queue.splice(0, this.options.maxBatchSize);
        this.#waitingSlots--;
      }
      return batch;
    };
    try {
      const outcomes = await inTransaction(this.db, (tx) => {
        const jobs = take();
        return jobs.length === 0
          ? Promise.resolve([])
          : this.#commit(
              tx,
              jobs.map((w) => w.job),
            );
      });
      take().forEach((w, i) => {
        const outcome = outcomes[i];
        if (outcome?.ok) w.resolve(outcome.applied);
        else w.reject(outcome ? outcome.error : new Error("group commit returned no outcome"));
      });
    } catch {
      // The group's transaction failed as a whole: each alone, so that one cannot fail the others.
      await Promise.all(
        take().map(async (w) => {
          try {
            w.resolve(
              await inTransaction(this.db, (tx) =>
                this.engine.create(tx, w.job.ctx, w.job.values, w.job.event, w.job.facts),
              ),
            );
          } catch (error) {
            w.reject(error);
          }
        }),
      );
    } finally {
      const size = take().length;
      if (size > 0) this.options.onBatch?.(size, (performance.now() - started) / 1000);
    }
  }

  /** One group in one database transaction: a statement per table, whatever the group's size. */
  async #commit(tx: Db, jobs: CreateJob[]): Promise<Outcome[]> {
    const outcomes: (Outcome | undefined)[] = jobs.map(() => undefined);
    const fail = (i: number, error: unknown) => {
      outcomes[i] = { ok: false, error };
    };

    // 1. The rows, in their first status. A request id already taken is that request's 409.
    const transitions: Transition[] = jobs.map((job) => {
      const transition = findTransition(processKindOf(job.values), "NEW", job.event);
      if (!transition?.to) throw new Error(`no way to record a ${job.values.type} on ${job.event}`);
      return transition;
    });
    const inserted = await tx
      .insertInto("transactions")
      .values(jobs.map((job, i) => ({ ...job.values, status: transitions[i]?.to ?? "" })))
      .onConflict((oc) => oc.columns(["client_id", "request_id"]).doNothing())
      .returningAll()
      .execute();
    const rowOf = new Map(inserted.map((r) => [`${r.client_id}\u0000${r.request_id}`, r]));
    const rows: (Row | undefined)[] = jobs.map((job, i) => {
      const row = rowOf.get(`${job.values.client_id}\u0000${job.values.request_id}`);
      // The same request id twice in one group: the first is recorded, the second refused.
      rowOf.delete(`${job.values.client_id}\u0000${job.values.request_id}`);
      if (!row) fail(i, requestIdUsed(job.values.request_id));
      return row;
    });

    // 2. The effects, planned: ledger bookings (one operation per transaction) and steps.
    const bookings: (Booking | undefined)[] = jobs.map(() => undefined);
    const touchesOf: boolean[] = jobs.map(() => false);
    const stepsOf: PlannedStep[][] = jobs.map(() => []);
    for (const [i, job] of jobs.entries()) {
      const row = rows[i];
      if (!row) continue;
      for (const effect of transitions[i]?.effects ?? []) {
        const planned = await this.engine.plan(tx, row, effect, job.facts);
        if (planned.booking) {
          if (bookings[i]) throw new Error(`a new ${row.type} books more than one operation`);
          bookings[i] = planned.booking;
        }
        if (planned.touches) touchesOf[i] = true;
        if (planned.step) stepsOf[i]?.push(planned.step);
      }
    }

    // 3. The ledger: every operation of the group planned at once (accounts locked once, in id
    //    order); a refused one leaves its transaction out, the others are then planned again.
    let booked = jobs.map((): Account[] | undefined => undefined);
    for (;;) {
      const indexes = jobs.map((_, i) => i).filter((i) => rows[i] && !outcomes[i] && bookings[i]);
      const operations: Operation[] = indexes.map((i) => {
        const row = rows[i] as Row;
        const booking = bookings[i] as Booking;
        return {
          clientId: row.client_id,
          operationId: postings.operationOf(row.request_id, booking.what),
          legs: booking.legs,
        };
      });
      const plan = await planOperations(tx, operations, new Date());
      let refused = false;
      booked = jobs.map(() => undefined);
      for (const [k, i] of indexes.entries()) {
        const result = plan.results[k];
        if (!result) throw new Error("the ledger returned no result");
        if (!result.ok) {
          fail(i, (bookings[i] as Booking).refused(result));
          refused = true;
        } else if (result.replayed) {
          fail(i, requestIdUsed((rows[i] as Row).request_id));
          refused = true;
        } else booked[i] = result.accounts ?? [];
      }
      if (refused) continue;
      await plan.write();
      break;
    }
    const left = jobs.map((_, i) => i).filter((i) => rows[i] && outcomes[i]);
    if (left.length > 0) {
      // Recorded in step 1 but refused by the ledger: not recorded after all.
      const keys = left.map((i) => rows[i] as Row);
      await sql`
        DELETE FROM transactions t
        USING unnest(${keys.map((r) => r.client_id)}::text[], ${keys.map((r) => r.request_id)}::text[]) AS k(client_id, request_id)
        WHERE t.client_id = k.client_id AND t.request_id = k.request_id`.execute(tx);
    }
    const live = jobs.map((_, i) => i).filter((i) => rows[i] && !outcomes[i]);

    // 4. Steps, usage, audit rows and events of the recorded ones, a statement each.
    const scheduled = live.flatMap((i) => (stepsOf[i] ?? []).map((step) => ({ i, step })));
    const stepIds = await this.steps.scheduleMany(
      tx,
      scheduled.map(({ i, step }) => stepOf(rows[i] as Row, step)),
    );
    const usage = live.flatMap((i) => {
      const row = rows[i] as Row;
      const change = usageChange(row, row, transitions[i] as Transition);
      return change ? [change] : [];
    });
    await countUsageOf(tx, usage);
    await writeAudits(
      tx,
      live.map((i) => {
        const row = rows[i] as Row;
        const transition = transitions[i] as Transition;
        return {
          context: jobs[i]?.ctx as RequestContext,
          entry: auditEntryOf(row, row, transition, jobs[i]?.event ?? "ACCEPTED"),
        };
      }),
    );
    const bySuppression = new Map<boolean, TransactionEvent[]>([
      [false, []],
      [true, []],
    ]);
    for (const i of live) {
      const row = rows[i] as Row;
      const job = jobs[i] as CreateJob;
      const touched: Touched = new Map();
      if (touchesOf[i]) touch(touched, row, booked[i] ?? []);
      bySuppression
        .get(Boolean(job.facts.suppressWebhook))
        ?.push(...eventsOf(row, row, transitions[i] as Transition, job.facts, touched));
    }
    for (const [suppressDelivery, events] of bySuppression)
      await this.events.record(tx, events, { suppressDelivery });

    for (const i of live) {
      const ids = scheduled.flatMap((s, k) => (s.i === i ? [stepIds[k] as string] : []));
      outcomes[i] = { ok: true, applied: { row: rows[i] as Row, stepIds: ids, changed: true } };
    }
    return outcomes.map((o) => o ?? { ok: false, error: new Error("transaction left without an outcome") });
  }
}
