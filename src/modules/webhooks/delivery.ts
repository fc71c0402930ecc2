// Over 400 lines on purpose: the delivery worker's whole path (claim user chains under short
// leases, send, record each outcome fenced by the lease, retry, drain) in one place, so that its
// invariants (per-user order, one recorder per attempt, nothing left locked) read together.
import { type Selectable, sql } from "kysely";
import type { Logger } from "pino";
import type { Db } from "../../db/database.ts";
import type { OutboxEventsTable } from "../../db/schema.ts";
import { inTransaction } from "../../db/transaction.ts";
import { type Client, findClient } from "../clients/service.ts";
import type { SigningKeys } from "../keys/service.ts";
import { drainInFlight, Lease, leaseEnd } from "../steps/lease.ts";
import {
  DestinationRefusedError,
  mustBePublic,
  postToReceiver,
  ReceiverTimeoutError,
} from "./destinations.ts";
import { sealEvent, type WebhookEvent } from "./envelope.ts";

/**
 * Webhook delivery, isolated per client (issue 23).
 *
 * A claim takes user chains: per user, the earliest undelivered deliveries — up to CHAIN of them,
 * only while each is due and not leased — sent one after another; events without a user are
 * chains of one. Each chain runs on its own: the dispatcher never waits for a batch. It fills
 * free slots (`concurrency` chains per process, at most `perClient` chains of one client in flight
 * across every process, counted from live leases) and claims again as each chain ends. Each
 * delivery's outcome is recorded in its own statement or transaction as soon as it is known. So a
 * receiver that never answers, drips, or answers megabytes holds its own client's slots for its
 * own deadline, and every other client's deliveries go out on their own schedule.
 *
 * Leases are short (`leaseSeconds`, a few seconds) and renewed while the chain runs; the claim's
 * `locked_until` is the fencing token, so a process whose lease ran out (it stalled, or the
 * database was unreachable) never records over the attempt of the process that took the chain
 * over. A killed process's chains are taken over one lease after its last renewal. A delivery in
 * flight at a crash, or whose lease was lost, may reach the receiver twice: at-least-once, with
 * duplicates bounded to the delivery in flight per chain; the receiver dedupes on `webhook-id`.
 *
 * Order: a chain stops at its first refused event (the rest are handed back untried), and the
 * refused head's retry time is given to its user's later deliveries, so a refused event holds up
 * that user's later events, and nobody else's. A delivery that ends FAILED no longer holds them up.
 */

export interface DeliverySettings {
  /** Seconds before each retry; after the last, the delivery is FAILED. */
  retrySchedule: number[];
  timeoutMs: number;
  /** Ferry's public base URL, for the `jku` header. */
  publicUrl: string;
  /** Name resolution for deliveries (tests replace it); the system resolver otherwise. */
  lookup?: Parameters<typeof postToReceiver>[0]["lookup"];
}

export interface DispatcherSettings extends DeliverySettings {
  /** Chains sent at once by this process. */
  concurrency: number;
  /** Chains of one client in flight at once, across every process. */
  perClient: number;
  /** How long a claim holds its chain; renewed every third of it while the chain runs. */
  leaseSeconds: number;
  logger?: Logger | undefined;
}

export const WEBHOOK_DISPATCH_DEFAULTS = { concurrency: 512, perClient: 32, leaseSeconds: 5 } as const;

type ClaimedDelivery = {
  id: string;
  event_id: string;
  client_id: string;
  user_id: string | null;
  sequence: string | null;
  attempts: number;
  locked_until: Date | string;
};

/** Any constant: the advisory lock every process's delivery claim takes. */
const WEBHOOK_CLAIM_LOCK = 7_424_613_085;

/** A user's deliveries claimed at once, sent one after another. */
const CHAIN = 10;

/** A delivery abandoned before its answer: Ferry is stopping, or another process took its chain over. */
export class DeliveryAbandonedError extends Error {
  constructor(why: string) {
    super(why);
    this.name = "DeliveryAbandonedError";
  }
}

/**
 * Claims up to `limit` chains, at most `perClient` of one client in flight counting every live
 * lease (this process's and the others'). Heads first — due, not leased, no earlier delivery of
 * their user still pending, their client under its cap — in due order through the partial
 * indexes; then each head's next CHAIN - 1 pending deliveries in sequence order, kept only up to
 * the first that is not ready. Claims run one at a time across processes (a transaction-scoped
 * advisory lock): a claim sees every earlier claim's leases, so two processes never split one
 * user's chain. Every row of a chain gets the same lease end: the chain's fencing token.
 */
async function claimChains(
  db: Db,
  limit: number,
  perClient: number,
  leaseSeconds: number,
): Promise<ClaimedDelivery[][]> {
  const rows = await inTransaction(db, async (tx) => {
    await sql`SELECT pg_advisory_xact_lock(${WEBHOOK_CLAIM_LOCK})`.execute(tx);
    // A cheap statement whose estimates with a large backlog are not: JIT compiling it costs more
    // than running it (350 ms against 15 ms with 200,000 deliveries pending).
    await sql`SET LOCAL jit = off`.execute(tx);
    // Per client under its cap, its earliest due heads up to its free slots (through the
    // per-client due index: a client at its cap, or with a large due backlog, costs the others
    // one index probe); then the earliest of all of them, up to `limit`.
    const picked = (
      await sql<{ id: string }>`
      WITH running AS (
        SELECT client_id, count(DISTINCT coalesce(user_id, id)) AS n FROM webhook_deliveries
         WHERE status = 'PENDING' AND locked_until IS NOT NULL AND locked_until >= now()
         GROUP BY client_id),
      room AS (
        SELECT c.id AS client_id, ${perClient} - coalesce(r.n, 0) AS free
          FROM clients c LEFT JOIN running r ON r.client_id = c.id
         WHERE coalesce(r.n, 0) < ${perClient}),
      heads AS (
        SELECT h.id, h.client_id, h.user_id, h.sequence FROM room
        CROSS JOIN LATERAL (
          SELECT d.id, d.client_id, d.user_id, d.sequence, d.next_attempt_at FROM webhook_deliveries d
           WHERE d.client_id = room.client_id AND d.status = 'PENDING' AND d.next_attempt_at <= now()
             AND (d.locked_until IS NULL OR d.locked_until < now())
             AND (d.user_id IS NULL OR NOT EXISTS (
               SELECT 1 FROM webhook_deliveries e
                WHERE e.status = 'PENDING' AND e.user_id IS NOT NULL AND e.client_id = d.client_id
                  AND e.user_id = d.user_id AND e.sequence < d.sequence))
           -- In the per-client due index's order (client_id is fixed): never the global due index.
           ORDER BY d.client_id, d.next_attempt_at
           LIMIT room.free) h
         ORDER BY h.next_attempt_at
         LIMIT ${limit}),
      followers AS (
        SELECT f.id, bool_and(f.ready) OVER (PARTITION BY h.id ORDER BY f.sequence) AS ready
          FROM heads h
          CROSS JOIN LATERAL (
            SELECT e.id, e.sequence,
                   e.next_attempt_at <= now() AND (e.locked_until IS NULL OR e.locked_until < now()) AS ready
              FROM webhook_deliveries e
             WHERE e.status = 'PENDING' AND e.user_id IS NOT NULL AND e.client_id = h.client_id
               AND e.user_id = h.user_id AND e.sequence > h.sequence
             ORDER BY e.sequence
             LIMIT ${CHAIN - 1}) f
         WHERE h.user_id IS NOT NULL)
      SELECT id FROM heads
      UNION ALL
      SELECT id FROM followers WHERE ready`.execute(tx)
    ).rows;
    if (picked.length === 0) return [];
    const claimed = await sql<ClaimedDelivery>`
      UPDATE webhook_deliveries SET locked_until = ${leaseEnd(leaseSeconds)}, attempts = attempts + 1
       WHERE id = ANY(${picked.map((p) => p.id)}::text[])
         -- Re-checked on the locked row: an outcome recorded meanwhile (FAILED, SUCCEEDED, or a
         -- refusal that moved it and its user's later deliveries to their retry time) wins.
         AND status = 'PENDING' AND (locked_until IS NULL OR locked_until < now()) AND next_attempt_at <= now()
      RETURNING id, event_id, client_id, user_id, sequence, attempts, locked_until`.execute(tx);
    return claimed.rows;
  });
  const chains = new Map<string, ClaimedDelivery[]>();
  for (const row of rows) {
    const key = row.user_id === null ? row.id : `${row.client_id}\u0000${row.user_id}`;
    chains.set(key, [...(chains.get(key) ?? []), row]);
  }
  for (const chain of chains.values())
    chain.sort((a, b) => Number(a.sequence ?? 0) - Number(b.sequence ?? 0));
  return [...chains.values()];
}

async function eventsOf(db: Db, chains: ClaimedDelivery[][]) {
  const ids = chains.flat().map((d) => d.event_id);
  if (ids.length === 0) return new Map<string, Selectable<OutboxEventsTable>>();
  const rows = await db.selectFrom("outbox_events").selectAll().where("id", "in", ids).execute();
  return new Map(rows.map((e) => [e.id, e]));
}

interface Outcome {
  delivery: ClaimedDelivery;
  started: Date;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
}

type SigningKey = Awaited<ReturnType<SigningKeys["current"]>>;

/**
 * Successes of every chain in flight recorded together (a group commit): each chain's next
 * delivery is sent meanwhile, so a chain never waits on the database between two deliveries, and
 * one statement records what all the chains delivered since the last one. Each row is fenced by
 * its own chain's token.
 */
class SuccessRecorder {
  #queue: {
    outcome: Outcome;
    token: Date;
    done: (recorded: boolean) => void;
    failed: (e: unknown) => void;
  }[] = [];
  #flushing = false;

  constructor(private readonly db: Db) {}

  /** True once recorded; false when the token no longer holds the delivery (taken over). */
  record(outcome: Outcome, token: Date): Promise<boolean> {
    return new Promise((done, failed) => {
      this.#queue.push({ outcome, token, done, failed });
      if (!this.#flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.#flushing = true;
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      try {
        const { rows } = await sql<{ delivery_id: string }>`
          WITH v AS (
            SELECT * FROM unnest(${batch.map((b) => b.outcome.delivery.id)}::text[],
                                 ${batch.map((b) => b.token)}::timestamptz[],
                                 ${batch.map((b) => b.outcome.statusCode)}::int[],
                                 ${batch.map((b) => b.outcome.started)}::timestamptz[],
                                 ${batch.map((b) => b.outcome.durationMs)}::int[])
              AS v(id, token, status_code, started_at, duration_ms)),
          done AS (
            UPDATE webhook_deliveries d
               SET status = 'SUCCEEDED', delivered_at = now(), locked_until = NULL,
                   last_status_code = v.status_code, last_error = NULL
              FROM v
             WHERE d.id = v.id AND d.status = 'PENDING' AND d.locked_until = v.token
            RETURNING d.id, d.attempts, v.status_code, v.started_at, v.duration_ms)
          INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms, status_code, error)
          SELECT id, attempts, started_at, duration_ms, status_code, NULL FROM done
          RETURNING delivery_id`.execute(this.db);
        const recorded = new Set(rows.map((r) => r.delivery_id));
        for (const b of batch) b.done(recorded.has(b.outcome.delivery.id));
      } catch (error) {
        for (const b of batch) b.failed(error);
      }
    }
    this.#flushing = false;
  }
}

/**
 * Sends one chain in sequence order under its lease, each delivery once the one before was
 * answered, recording each outcome as it ends (a success while the next is sent; a refusal before
 * anything else). Stops at the first refused event (the rest handed back untried in the same
 * transaction), when the lease is lost (another process has the chain: nothing more is recorded
 * here), or when `abandon` fires (shutdown: the delivery in flight is aborted and recorded as a
 * failed attempt).
 */
async function sendChain(
  db: Db,
  recorder: SuccessRecorder,
  signingKey: SigningKey,
  settings: DeliverySettings & { leaseSeconds: number; logger?: Logger | undefined },
  chain: ClaimedDelivery[],
  events: Map<string, Selectable<OutboxEventsTable>>,
  abandon?: AbortSignal,
): Promise<void> {
  const first = chain[0];
  if (!first) return;
  const held = new Set(chain.map((d) => d.id));
  const lost = new AbortController();
  const loseChain = (why: string) => lost.abort(new DeliveryAbandonedError(why));
  const lease = new Lease(
    db,
    { table: "webhook_deliveries", ids: () => [...held] },
    new Date(first.locked_until),
    settings.leaseSeconds,
    () => loseChain("another process took the delivery over (its lease ran out)"),
  );
  // A success the database did not take: the chain stops (it would only pile up more unrecorded
  // successes, each sent again by whoever claims the chain next).
  const unrecorded = new AbortController();
  const stop = AbortSignal.any([lost.signal, unrecorded.signal, ...(abandon ? [abandon] : [])]);
  // A write under the lease's token; the rows it settles are no longer renewed.
  const settle = (ids: string[], write: (token: Date) => Promise<boolean>) =>
    lease.hold(async (token) => {
      const recorded = await write(token).catch((error: unknown) => {
        unrecorded.abort(error);
        throw error;
      });
      for (const id of ids) held.delete(id);
      if (!recorded) loseChain("another process took the delivery over; its attempt is recorded there");
      return recorded;
    });
  const recording: Promise<boolean>[] = [];
  try {
    // One read of the client per chain (its webhook URL and key). A client that no longer exists
    // fails the attempts; a database that did not answer sends the chain back untried (finally),
    // without spending a retry of its schedule.
    const client = await findClient(db, first.client_id);
    // Each next body is sealed while the delivery before it is on the wire (CPU beside I/O).
    const sealOf = (d: ClaimedDelivery) => {
      const body = seal(signingKey, settings, client, d, events.get(d.event_id));
      body.catch(() => {}); // awaited by its attempt, or dropped when the chain stops first
      return body;
    };
    let sealed = sealOf(first);
    for (const [i, delivery] of chain.entries()) {
      if (stop.aborted) break;
      const body = sealed;
      const following = chain[i + 1];
      if (following) sealed = sealOf(following);
      const outcome = await attempt(settings, client, delivery, body, stop);
      if (lost.signal.aborted) break; // the new holder records this attempt's delivery
      if (outcome.error === null) {
        recording.push(settle([delivery.id], (token) => recorder.record(outcome, token)));
        continue;
      }
      await Promise.all(recording); // the successes before it first: no write reorders
      const rest = chain.slice(i + 1).map((d) => d.id);
      await settle([delivery.id, ...rest], (token) => recordFailure(db, settings, outcome, rest, token));
      break;
    }
  } finally {
    await Promise.allSettled(recording);
    await lease.end();
    if (lost.signal.aborted)
      settings.logger?.warn({ deliveryId: first.id }, "webhook chain taken over by another process");
    // Stopped early (shutdown, lease lost): what was never tried goes back as it was, if still ours.
    if (held.size > 0) await handBack(db, [...held], lease.token);
  }
  await Promise.all(recording); // a success that could not be recorded: the caller logs it
}

/** A delivery's body: the event signed by Ferry, then encrypted for the client. */
async function seal(
  signingKey: SigningKey,
  settings: DeliverySettings,
  client: Client | undefined,
  delivery: ClaimedDelivery,
  event: Selectable<OutboxEventsTable> | undefined,
): Promise<string> {
  if (!event) throw new Error(`event ${delivery.event_id} not found`);
  if (!client) throw new Error(`client ${delivery.client_id} not found`);
  if (!client.webhookUrl) throw new NotConfiguredError("the client has no webhook URL");
  const encryptionKey = client.webhookEncryptionKey;
  if (!encryptionKey) throw new NotConfiguredError("the client has no webhook encryption key");
  const payload: WebhookEvent = {
    id: event.id,
    type: event.type,
    createdAt: new Date(event.created_at).toISOString(),
    clientId: event.client_id,
    ...(event.sequence !== null ? { sequence: Number(event.sequence) } : {}),
    data: (typeof event.data === "string" ? JSON.parse(event.data) : event.data) as Record<string, unknown>,
  };
  return sealEvent(payload, signingKey, `${settings.publicUrl}/.well-known/jwks.json`, encryptionKey);
}

/** One delivery: its sealed body POSTed under the deadline; the outcome, never thrown. */
async function attempt(
  settings: DeliverySettings,
  client: Client | undefined,
  delivery: ClaimedDelivery,
  sealed: Promise<string>,
  signal: AbortSignal,
): Promise<Outcome> {
  const started = new Date();
  let statusCode: number | null = null;
  let error: string | null = null;
  try {
    const body = await sealed;
    if (!client?.webhookUrl) throw new NotConfiguredError("the client has no webhook URL");
    const publicOnly = mustBePublic(client.mode === "live" ? "live" : "sandbox");
    statusCode = await postToReceiver({
      url: client.webhookUrl,
      headers: {
        "content-type": "application/json",
        "webhook-id": delivery.event_id,
        "webhook-timestamp": String(Math.floor(Date.now() / 1000)),
        "user-agent": "Ferry-Webhooks/1",
      },
      body,
      timeoutMs: settings.timeoutMs,
      publicOnly,
      lookup: settings.lookup,
      connections: `${client.id}\u0000${publicOnly}`,
      signal,
    });
    if (statusCode < 200 || statusCode >= 300) error = `HTTP ${statusCode}`;
  } catch (caught) {
    error = describeFailure(caught);
  }
  return { delivery, started, durationMs: Date.now() - started.getTime(), statusCode, error };
}

/**
 * A refused (or failed) delivery, in one transaction written only while `token` is still its
 * lease (else another process took it over and records its own attempt: false): the attempt, the
 * retry (or FAILED after the last), its user's later deliveries moved to the same time, and
 * `untried` (the rest of its chain) handed back.
 */
async function recordFailure(
  db: Db,
  settings: DeliverySettings,
  outcome: Outcome,
  untried: string[],
  token: Date,
): Promise<boolean> {
  const { delivery, started, durationMs, statusCode } = outcome;
  const error = outcome.error ?? "";
  const retryIn = settings.retrySchedule[delivery.attempts - 1];
  const status = retryIn === undefined ? "FAILED" : "PENDING";
  // Exponential schedule with ±20 % jitter, so a recovering receiver is not hit by a wave.
  const next =
    retryIn === undefined ? null : new Date(Date.now() + retryIn * 1000 * (0.8 + Math.random() * 0.4));
  return inTransaction(db, async (tx) => {
    const updated = await tx
      .updateTable("webhook_deliveries")
      .set({
        status,
        ...(next ? { next_attempt_at: next } : {}),
        locked_until: null,
        last_status_code: statusCode,
        last_error: error,
      })
      .where("id", "=", delivery.id)
      .where("status", "=", "PENDING")
      .where("locked_until", "=", token)
      .returning("attempts")
      .executeTakeFirst();
    if (!updated) return false;
    await tx
      .insertInto("webhook_attempts")
      .values({
        delivery_id: delivery.id,
        attempt: updated.attempts,
        started_at: started,
        duration_ms: durationMs,
        status_code: statusCode,
        error: error.slice(0, 500),
      })
      .execute();
    // A refused head holds up its user's later deliveries until its retry: they wait for the same
    // time, so that claims meanwhile do not walk through them (a receiver down for hours leaves a
    // long backlog behind each user's head).
    if (next && delivery.user_id !== null)
      await tx
        .updateTable("webhook_deliveries")
        .set({ next_attempt_at: next })
        .where("status", "=", "PENDING")
        .where("client_id", "=", delivery.client_id)
        .where("user_id", "=", delivery.user_id)
        .where("sequence", ">", delivery.sequence ?? "0")
        .where("next_attempt_at", "<", next)
        .execute();
    await handBack(tx, untried, token);
    return true;
  });
}

/** Claimed deliveries never tried, handed back as they were (only while `token` still holds them). */
async function handBack(db: Db, ids: string[], token: Date): Promise<void> {
  if (ids.length === 0) return;
  await db
    .updateTable("webhook_deliveries")
    .set({ locked_until: null, attempts: sql`attempts - 1` })
    .where("id", "in", ids)
    .where("status", "=", "PENDING")
    .where("locked_until", "=", token)
    .execute();
}

/**
 * What the client is shown of a failed attempt: a fixed wording per kind of failure, never the
 * receiver's answer nor a transport error's own text (which may name internal hosts and ports).
 */
function describeFailure(caught: unknown): string {
  if (
    caught instanceof DestinationRefusedError ||
    caught instanceof ReceiverTimeoutError ||
    caught instanceof NotConfiguredError ||
    caught instanceof DeliveryAbandonedError
  )
    return caught.message;
  // Socket, DNS and TLS errors carry a code (ECONNREFUSED, ENOTFOUND, CERT_HAS_EXPIRED, …).
  if (typeof (caught as { code?: unknown } | null)?.code === "string")
    return "the connection to the webhook URL failed";
  return "the event could not be sent";
}

class NotConfiguredError extends Error {}

/**
 * One claim of due chains, sent side by side and awaited together (no per-client cap beyond
 * `limit`): for tests and tools that drive delivery by hand. The background loop uses
 * `WebhookDispatcher`. `limit` bounds the chains (users). Returns how many deliveries it claimed.
 */
export async function deliverDueWebhooks(
  db: Db,
  keys: SigningKeys,
  settings: DeliverySettings,
  limit = 20,
): Promise<number> {
  const leaseSeconds = WEBHOOK_DISPATCH_DEFAULTS.leaseSeconds;
  const chains = await claimChains(db, limit, limit, leaseSeconds);
  if (chains.length === 0) return 0;
  const events = await eventsOf(db, chains);
  const signingKey = await keys.current();
  const recorder = new SuccessRecorder(db);
  await Promise.all(
    chains.map((chain) => sendChain(db, recorder, signingKey, { ...settings, leaseSeconds }, chain, events)),
  );
  return chains.reduce((n, chain) => n + chain.length, 0);
}

/** A chain the dispatcher started and has not finished. */
interface InFlight {
  readonly done: Promise<void>;
  readonly abandon: AbortController;
}

/**
 * The delivery worker's claim loop, as the step runner's: `dispatch` fills free slots and returns
 * at once; each chain that ends frees its slot and tells `onSlotFree`; `drain` on shutdown.
 */
export class WebhookDispatcher {
  readonly #inFlight = new Map<string, InFlight>();
  #stopping = false;
  #onSlotFree: (() => void) | undefined;
  readonly #recorder: SuccessRecorder;

  constructor(
    private readonly db: Db,
    private readonly keys: SigningKeys,
    private readonly settings: DispatcherSettings,
  ) {
    this.#recorder = new SuccessRecorder(db);
  }

  /**
   * One round: claims chains for the free slots (at most `perClient` of one client in flight) and
   * starts them without waiting. True when every free slot was filled (more may be due at once).
   */
  async dispatch(): Promise<boolean> {
    const free = this.settings.concurrency - this.#inFlight.size;
    if (this.#stopping || free <= 0) return false;
    const chains = await claimChains(this.db, free, this.settings.perClient, this.settings.leaseSeconds);
    if (chains.length === 0) return false;
    let events: Map<string, Selectable<OutboxEventsTable>>;
    let signingKey: SigningKey;
    try {
      [events, signingKey] = await Promise.all([eventsOf(this.db, chains), this.keys.current()]);
    } catch (error) {
      // Nothing was sent: the chains go back at once rather than waiting out their lease.
      await Promise.all(
        chains.map((c) =>
          handBack(
            this.db,
            c.map((d) => d.id),
            new Date(c[0]?.locked_until ?? 0),
          ),
        ),
      ).catch(() => {});
      throw error;
    }
    for (const chain of chains) this.start(chain, events, signingKey);
    return chains.length === free;
  }

  /** The claim loop's wake-up: called each time a chain it started ends (a slot is free). */
  onSlotFree(listener: () => void): void {
    this.#onSlotFree = listener;
  }

  /** Chains started and not finished. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  private start(
    chain: ClaimedDelivery[],
    events: Map<string, Selectable<OutboxEventsTable>>,
    signingKey: SigningKey,
  ): void {
    const key = chain[0]?.id ?? "";
    const abandon = new AbortController();
    const done = sendChain(this.db, this.#recorder, signingKey, this.settings, chain, events, abandon.signal)
      .catch((error: unknown) => {
        // Not recorded (the database did not answer): the lease runs out and the chain is claimed again.
        this.settings.logger?.error(
          { err: error, deliveryId: key },
          "a webhook outcome could not be recorded",
        );
      })
      .finally(() => {
        this.#inFlight.delete(key);
        this.#onSlotFree?.();
      });
    this.#inFlight.set(key, { done, abandon });
  }

  /**
   * Shutdown: claims nothing more, waits up to `graceMs` for the chains in flight, then abandons
   * the rest — the delivery in flight is aborted and recorded as a failed attempt (retried on its
   * schedule, here or by another process), the chain's untried deliveries handed back. Resolves
   * when every chain has been recorded.
   */
  async drain(graceMs: number): Promise<void> {
    this.#stopping = true;
    await drainInFlight(
      this.#inFlight,
      graceMs,
      () => new DeliveryAbandonedError("Ferry is stopping"),
      (chains) => this.settings.logger?.warn({ chains }, "abandoning webhook deliveries still in flight"),
    );
  }
}
