import { sql } from "kysely";
import type { Db } from "../../db/database.ts";

/**
 * The steps table's claims and leases (the SQL of modules/steps/runner.ts's claim loop).
 *
 * A claim sets `locked_until` to the end of the lease, truncated to the millisecond: that value
 * is the claim's fencing token. A later claim of the same row needs the lease to have run out and
 * sets a later value, so "locked_until is still what I set" is "nobody has claimed it since" —
 * checked by a renewal and before a failed attempt is recorded (a runner whose lease ran out never
 * overwrites the attempt of the runner that took over).
 */

/**
 * The lease's end as a claim sets it: the statement's time + `seconds`, to the millisecond (a
 * JavaScript Date holds it exactly). The statement's, not the transaction's: a claim that waited
 * for the claim lock does not lose the wait from its lease.
 */
export const leaseEnd = (seconds: number) =>
  sql<Date>`date_trunc('milliseconds', statement_timestamp() + make_interval(secs => ${seconds}))`;

const due = sql`status = 'PENDING' AND next_attempt_at <= now() AND (locked_until IS NULL OR locked_until < now())`;

/** Claims due, unleased rows matching `where`, oldest due first (FOR UPDATE SKIP LOCKED: two processes never claim one row). */
export async function claimDue(
  db: Db,
  where: ReturnType<typeof sql>,
  limit: number,
  leaseSeconds: number,
): Promise<Record<string, unknown>[]> {
  const { rows } = await sql<Record<string, unknown>>`
    UPDATE steps SET locked_until = ${leaseEnd(leaseSeconds)}, attempts = attempts + 1, updated_at = now()
    WHERE id IN (
      SELECT id FROM steps
      WHERE ${due} AND ${where}
      ORDER BY next_attempt_at
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED)
    RETURNING *`.execute(db);
  return rows;
}

/**
 * Claims up to `limit` due rows, at most `perClient` in flight per client counting every step of
 * that client under a live lease (in this process, another one, or a request running its own
 * step): one client's slow or hung provider holds its own slots, never the others'. Among what the
 * caps allow, oldest due first.
 */
export async function claimFairly(
  db: Db,
  limit: number,
  perClient: number,
  leaseSeconds: number,
): Promise<Record<string, unknown>[]> {
  const { rows } = await sql<Record<string, unknown>>`
    UPDATE steps SET locked_until = ${leaseEnd(leaseSeconds)}, attempts = attempts + 1, updated_at = now()
    WHERE id IN (
      SELECT id FROM steps
      WHERE ${due} AND id IN (
        SELECT d.id FROM (
          SELECT id, client_id, next_attempt_at,
                 row_number() OVER (PARTITION BY client_id ORDER BY next_attempt_at, id) AS nth
            FROM steps WHERE ${due}) d
        LEFT JOIN (
          SELECT client_id, count(*) AS running FROM steps
           WHERE status = 'PENDING' AND locked_until >= now()
           GROUP BY client_id) r ON r.client_id = d.client_id
        WHERE d.nth <= ${perClient} - coalesce(r.running, 0)
        ORDER BY d.next_attempt_at
        LIMIT ${limit})
      -- Re-checked on the locked row: a concurrent claim that took it first wins.
      FOR UPDATE SKIP LOCKED)
    RETURNING *`.execute(db);
  return rows;
}

/** The type of each leased table's ids, as an array. */
const ID_ARRAY = { steps: "uuid[]", webhook_deliveries: "text[]" } as const;

/**
 * Tables whose claims read rows without locking them (webhook chains: the claim lock serializes
 * claims, not renewals). There a lease that has run out is lost even if nobody has claimed it yet:
 * a claim may have read it as free already, and renewing it then would let that claim take the
 * user's later rows alone (out of order). Steps are claimed FOR UPDATE in the claim's own
 * statement, so a renewal after that claim finds the token changed.
 */
const LOST_WHEN_EXPIRED = new Set<keyof typeof ID_ARRAY>(["webhook_deliveries"]);

/** Rows of a table with `status`/`locked_until` columns held under one lease (one token). */
export interface LeasedRows {
  table: keyof typeof ID_ARRAY;
  /** The rows still held, read at each renewal (a holder drops a row once it has recorded it). */
  ids: () => readonly string[];
}

/**
 * A claimed step's lease while its call runs (or a webhook chain's, over the deliveries it still
 * holds): renewed every third of its length as long as this runner still holds it (the token
 * unchanged), so a call may take longer than one lease while a dead process's step is still taken
 * over one lease after its last renewal. A renewal that finds the step claimed by another runner
 * (this one stalled past its lease) reports the loss; for several rows, any one of them taken.
 */
export class Lease {
  #token: Date;
  #lost = false;
  #renewing: Promise<void> | undefined;
  /** Writes made under the token (`hold`) and renewals run one at a time, in order. */
  #queue: Promise<unknown> = Promise.resolve();
  readonly #timer: NodeJS.Timeout;
  readonly #rows: LeasedRows;

  constructor(
    private readonly db: Db,
    /** A step's id, or rows of a table. */
    rows: string | LeasedRows,
    token: Date,
    private readonly seconds: number,
    private readonly onLost: () => void,
  ) {
    this.#rows = typeof rows === "string" ? { table: "steps", ids: () => [rows] } : rows;
    this.#token = token;
    this.#timer = setInterval(
      () => {
        this.#renewing ??= this.exclusive(() => this.renew()).finally(() => {
          this.#renewing = undefined;
        });
      },
      (seconds * 1000) / 3,
    );
    this.#timer.unref();
  }

  /** The lease's current end: the fencing token a write on the step's behalf checks. */
  get token(): Date {
    return this.#token;
  }

  get lost(): boolean {
    return this.#lost;
  }

  /**
   * Runs a write fenced by the token while no renewal changes it (one under way is waited for,
   * the next waits for the write): the lease goes on for the rows the write leaves held.
   */
  hold<T>(write: (token: Date) => Promise<T>): Promise<T> {
    return this.exclusive(() => write(this.#token));
  }

  /** Stops renewing; resolves once a renewal under way has finished (so `token` is final). */
  async end(): Promise<void> {
    clearInterval(this.#timer);
    await this.#renewing;
  }

  private exclusive<T>(run: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => {});
    return next;
  }

  private async renew(): Promise<void> {
    if (this.#lost) return;
    const ids = this.#rows.ids();
    if (ids.length === 0) return;
    try {
      const { rows } = await sql<{ locked_until: Date | string }>`
        UPDATE ${sql.table(this.#rows.table)} SET locked_until = ${leaseEnd(this.seconds)}
        WHERE id = ANY(${[...ids]}::${sql.raw(ID_ARRAY[this.#rows.table])}) AND status = 'PENDING' AND locked_until = ${this.#token}
          ${LOST_WHEN_EXPIRED.has(this.#rows.table) ? sql`AND locked_until > statement_timestamp()` : sql``}
        RETURNING locked_until`.execute(this.db);
      const row = rows[0];
      if (row) this.#token = new Date(row.locked_until);
      if (row && rows.length === ids.length) return;
      this.#lost = true;
      clearInterval(this.#timer);
      this.onLost();
    } catch {
      // The database did not answer: tried again at the next tick (the lease may run out meanwhile,
      // and then the next renewal finds whether another runner took the step).
    }
  }
}

/** Work a claim loop has started: its promise, and how to abandon it. */
export interface InFlightWork {
  done: Promise<unknown>;
  abandon: AbortController;
}

/**
 * A claim loop's shutdown: waits up to `graceMs` for the work in flight; past it, tells `giveUp`
 * how many are left, aborts each with `reason` (each records its attempt as failed) and waits for
 * them to be recorded.
 */
export async function drainInFlight(
  inFlight: ReadonlyMap<string, InFlightWork>,
  graceMs: number,
  reason: () => Error,
  giveUp: (left: number) => void,
): Promise<void> {
  const all = () => Promise.all([...inFlight.values()].map((f) => f.done));
  let timer: NodeJS.Timeout | undefined;
  const finished = await Promise.race([
    all().then(() => true),
    new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), graceMs);
    }),
  ]);
  clearTimeout(timer);
  if (finished) return;
  giveUp(inFlight.size);
  for (const f of inFlight.values()) f.abandon.abort(reason());
  await all();
}
