// Over 400 lines on purpose: the outbox's whole path (record, claim by user chain, sign and encrypt,
// deliver, record the outcome, retry, redeliver) in one place, so that ordering per user reads together.
import { type Selectable, sql } from "kysely";
import type { Db } from "../../db/database.ts";
import type { OutboxEventsTable } from "../../db/schema.ts";
import { inTransaction } from "../../db/transaction.ts";
import { DomainError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { getClient } from "../clients/service.ts";
import type { SigningKeys } from "../keys/service.ts";
import {
  DestinationRefusedError,
  mustBePublic,
  postToReceiver,
  ReceiverTimeoutError,
} from "./destinations.ts";
import { sealEvent, type WebhookEvent } from "./envelope.ts";

export { allowPrivateWebhookDestinations, privateDestinationRefusal } from "./destinations.ts";

export const EVENT_TYPES = [
  "USER_ASSESSMENT",
  "USER",
  "TRANSACTION_MONITORING",
  "TRANSACTION_STATUS",
  "WALLET_BALANCE",
  "TEST",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface NewEvent {
  clientId: string;
  /** Events about a user carry the user's increasing `sequence`. */
  userId?: string | undefined;
  type: EventType;
  /** No PII, ever: ids, statuses, amounts. */
  data: Record<string, unknown>;
  /** `X-Disable-Webhook: true`: the event is recorded but not delivered. */
  suppressDelivery?: boolean | undefined;
}

/**
 * Records an event in the caller's transaction (the transactional outbox), with a delivery to the
 * client's webhook if it has one. A crash after the commit loses nothing: the worker delivers it.
 */
export async function recordEvent(tx: Db, event: NewEvent): Promise<string> {
  const [id] = await recordEvents(tx, [event]);
  return id ?? "";
}

/**
 * Records events in the caller's transaction in one statement: each user's events numbered in
 * the order given (their `sequence`: one upsert of the user's counter per statement, whose row
 * lock orders the transactions of one user), the events, and their deliveries. Returns the ids.
 */
export async function recordEvents(tx: Db, events: NewEvent[]): Promise<string[]> {
  if (events.length === 0) return [];
  const ids = events.map(() => `evt_${newId()}`);
  const webhookOf = new Map<string, boolean>();
  for (const event of events)
    if (!event.suppressDelivery && !webhookOf.has(event.clientId))
      webhookOf.set(event.clientId, Boolean((await getClient(tx, event.clientId)).webhookUrl));
  const deliveries = events.map((e) =>
    !e.suppressDelivery && webhookOf.get(e.clientId) ? `whd_${newId()}` : null,
  );
  const now = new Date();
  await sql`
    WITH input AS (
      SELECT * FROM unnest(
        ${ids}::text[], ${events.map((e) => e.clientId)}::text[], ${events.map((e) => e.userId ?? null)}::text[],
        ${events.map((e) => e.type)}::text[], ${events.map((e) => JSON.stringify(e.data))}::text[],
        ${deliveries}::text[]
      ) WITH ORDINALITY AS i(id, client_id, user_id, type, data, delivery_id, ord)
    ),
    counts AS (
      SELECT client_id, user_id, count(*) AS n FROM input WHERE user_id IS NOT NULL GROUP BY client_id, user_id
    ),
    numbers AS (
      INSERT INTO event_sequences AS s (client_id, user_id, last_sequence)
      SELECT client_id, user_id, n FROM counts ORDER BY client_id, user_id
      ON CONFLICT (client_id, user_id) DO UPDATE SET last_sequence = s.last_sequence + excluded.last_sequence
      RETURNING client_id, user_id, last_sequence
    ),
    numbered AS (
      SELECT i.*, CASE WHEN i.user_id IS NULL THEN NULL ELSE
        n.last_sequence - c.n + row_number() OVER (PARTITION BY i.client_id, i.user_id ORDER BY i.ord) END AS sequence
      FROM input i
      LEFT JOIN counts c ON c.client_id = i.client_id AND c.user_id = i.user_id
      LEFT JOIN numbers n ON n.client_id = i.client_id AND n.user_id = i.user_id
    ),
    recorded AS (
      INSERT INTO outbox_events (id, client_id, user_id, sequence, type, data, created_at)
      SELECT id, client_id, user_id, sequence, type, data::jsonb, ${now} FROM numbered ORDER BY ord
      RETURNING id
    )
    INSERT INTO webhook_deliveries (id, event_id, client_id, user_id, sequence, status)
    SELECT n.delivery_id, n.id, n.client_id, n.user_id, n.sequence, 'PENDING' FROM numbered n JOIN recorded r ON r.id = n.id
    WHERE n.delivery_id IS NOT NULL`.execute(tx);
  return ids;
}

export interface DeliverySettings {
  /** Seconds before each retry; after the last, the delivery is FAILED. */
  retrySchedule: number[];
  timeoutMs: number;
  /** Ferry's public base URL, for the `jku` header. */
  publicUrl: string;
  /** Name resolution for deliveries (tests replace it); the system resolver otherwise. */
  lookup?: Parameters<typeof postToReceiver>[0]["lookup"];
}

type ClaimedDelivery = {
  id: string;
  event_id: string;
  client_id: string;
  user_id: string | null;
  sequence: string | null;
  attempts: number;
};

/** Any constant: the advisory lock every process's delivery claim takes. */
const WEBHOOK_CLAIM_LOCK = 7_424_613_085;

/** A user's deliveries claimed in one round, sent one after another. */
const CHAIN = 10;

/**
 * One round of the delivery worker: claims due deliveries (with a lease longer than a delivery can
 * take, so two processes never send one attempt twice), sends them, and records the outcomes in
 * one transaction. `limit` bounds the chains (users) of a round. Returns how many deliveries it
 * claimed.
 *
 * A user's events reach the receiver in their order. Per user, the round takes the earliest
 * undelivered deliveries — up to CHAIN of them, and only while each is due and not being sent — and
 * sends them one after another; the users' chains go out side by side. A chain stops at its first
 * refused event (the rest are handed back untried), so a receiver that refuses an event holds up
 * that user's later events, and nobody else's. A delivery that ends FAILED no longer holds them up
 * (it can be sent again by hand, unordered). Events without a user are chains of one.
 */
export async function deliverDueWebhooks(
  db: Db,
  keys: SigningKeys,
  settings: DeliverySettings,
  limit = 20,
): Promise<number> {
  const leaseSeconds = Math.ceil(settings.timeoutMs / 1000) * CHAIN + 30;
  // Heads first — due, not being sent, and no earlier delivery of their user still pending — in
  // due order through the partial indexes (no scan of the whole backlog); then each head's next
  // CHAIN - 1 pending deliveries in sequence order, kept only up to the first that is not ready.
  // Claims run one at a time across processes (a transaction-scoped advisory lock): a claim sees
  // every earlier claim's leases, so two processes never split one user's chain.
  const rows = await inTransaction(db, async (tx) => {
    await sql`SELECT pg_advisory_xact_lock(${WEBHOOK_CLAIM_LOCK})`.execute(tx);
    return (
      await sql<ClaimedDelivery>`
    UPDATE webhook_deliveries SET locked_until = now() + make_interval(secs => ${leaseSeconds}), attempts = attempts + 1
    WHERE id IN (
      WITH heads AS (
        SELECT d.id, d.client_id, d.user_id, d.sequence, d.next_attempt_at FROM webhook_deliveries d
         WHERE d.status = 'PENDING' AND d.next_attempt_at <= now()
           AND (d.locked_until IS NULL OR d.locked_until < now())
           AND (d.user_id IS NULL OR NOT EXISTS (
             SELECT 1 FROM webhook_deliveries e
              WHERE e.status = 'PENDING' AND e.user_id IS NOT NULL AND e.client_id = d.client_id
                AND e.user_id = d.user_id AND e.sequence < d.sequence))
         ORDER BY d.next_attempt_at
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
      SELECT id FROM followers WHERE ready)
      -- Re-checked on the locked row: a concurrent round that claimed it first wins.
      AND status = 'PENDING' AND (locked_until IS NULL OR locked_until < now())
    RETURNING id, event_id, client_id, user_id, sequence, attempts`.execute(tx)
    ).rows;
  });
  if (rows.length === 0) return 0;
  const events = new Map(
    (
      await db
        .selectFrom("outbox_events")
        .selectAll()
        .where(
          "id",
          "in",
          rows.map((r) => r.event_id),
        )
        .execute()
    ).map((e) => [e.id, e]),
  );
  const chains = new Map<string, ClaimedDelivery[]>();
  for (const row of rows) {
    const key = row.user_id === null ? row.id : `${row.client_id}\u0000${row.user_id}`;
    chains.set(key, [...(chains.get(key) ?? []), row]);
  }
  const signingKey = await keys.current();
  const outcomes: Outcome[] = [];
  const untried: ClaimedDelivery[] = [];
  await Promise.all(
    [...chains.values()].map(async (chain) => {
      chain.sort((a, b) => Number(a.sequence ?? 0) - Number(b.sequence ?? 0));
      for (const [i, delivery] of chain.entries()) {
        const outcome = await attempt(db, signingKey, settings, delivery, events.get(delivery.event_id));
        outcomes.push(outcome);
        if (outcome.error !== null) {
          untried.push(...chain.slice(i + 1));
          break;
        }
      }
    }),
  );
  await recordOutcomes(db, settings, outcomes, untried);
  return rows.length;
}

interface Outcome {
  delivery: ClaimedDelivery;
  started: Date;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
}

async function attempt(
  db: Db,
  signingKey: Awaited<ReturnType<SigningKeys["current"]>>,
  settings: DeliverySettings,
  delivery: ClaimedDelivery,
  event: Selectable<OutboxEventsTable> | undefined,
): Promise<Outcome> {
  const started = new Date();
  let statusCode: number | null = null;
  let error: string | null = null;
  try {
    if (!event) throw new Error(`event ${delivery.event_id} not found`);
    const client = await getClient(db, delivery.client_id);
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
    const body = await sealEvent(
      payload,
      signingKey,
      `${settings.publicUrl}/.well-known/jwks.json`,
      encryptionKey,
    );
    const publicOnly = mustBePublic(client.mode === "live" ? "live" : "sandbox");
    statusCode = await postToReceiver({
      url: client.webhookUrl,
      headers: {
        "content-type": "application/json",
        "webhook-id": event.id,
        "webhook-timestamp": String(Math.floor(Date.now() / 1000)),
        "user-agent": "Ferry-Webhooks/1",
      },
      body,
      timeoutMs: settings.timeoutMs,
      publicOnly,
      lookup: settings.lookup,
      connections: `${client.id}\u0000${publicOnly}`,
    });
    if (statusCode < 200 || statusCode >= 300) error = `HTTP ${statusCode}`;
  } catch (caught) {
    error = describeFailure(caught);
  }
  return { delivery, started, durationMs: Date.now() - started.getTime(), statusCode, error };
}

/**
 * A round's outcomes in one transaction: its attempts and the deliveries' new states; the untried
 * rest of a stopped chain is handed back as it was.
 */
async function recordOutcomes(
  db: Db,
  settings: DeliverySettings,
  outcomes: Outcome[],
  untried: ClaimedDelivery[],
) {
  const now = Date.now();
  const states = outcomes.map(({ delivery, statusCode, error }) => {
    const retryIn = settings.retrySchedule[delivery.attempts - 1];
    const status = error === null ? "SUCCEEDED" : retryIn === undefined ? "FAILED" : "PENDING";
    return {
      id: delivery.id,
      status,
      deliveredAt: error === null ? new Date(now) : null,
      // Exponential schedule with ±20 % jitter, so a recovering receiver is not hit by a wave.
      nextAttemptAt:
        status === "PENDING" ? new Date(now + (retryIn ?? 0) * 1000 * (0.8 + Math.random() * 0.4)) : null,
      statusCode,
      error: error === null ? null : error,
    };
  });
  await inTransaction(db, async (tx) => {
    await tx
      .insertInto("webhook_attempts")
      .values(
        outcomes.map((o) => ({
          delivery_id: o.delivery.id,
          attempt: o.delivery.attempts,
          started_at: o.started,
          duration_ms: o.durationMs,
          status_code: o.statusCode,
          error: o.error?.slice(0, 500) ?? null,
        })),
      )
      .execute();
    await sql`
      UPDATE webhook_deliveries d
         SET status = v.status,
             delivered_at = COALESCE(v.delivered_at, d.delivered_at),
             next_attempt_at = COALESCE(v.next_attempt_at, d.next_attempt_at),
             locked_until = NULL,
             last_status_code = v.status_code,
             last_error = v.error
        FROM unnest(${states.map((s) => s.id)}::text[], ${states.map((s) => s.status)}::text[],
                    ${states.map((s) => s.deliveredAt)}::timestamptz[], ${states.map((s) => s.nextAttemptAt)}::timestamptz[],
                    ${states.map((s) => s.statusCode)}::int[], ${states.map((s) => s.error)}::text[])
             AS v(id, status, delivered_at, next_attempt_at, status_code, error)
       WHERE d.id = v.id`.execute(tx);
    // A refused head holds up its user's later deliveries until its retry: they wait for the same
    // time, so that rounds meanwhile do not walk through them (a receiver down for hours leaves a
    // long backlog behind each user's head).
    const retried = outcomes.flatMap((o, i) => {
      const next = states[i]?.nextAttemptAt;
      return o.delivery.user_id !== null && next ? [{ delivery: o.delivery, next }] : [];
    });
    if (retried.length > 0)
      await sql`
        UPDATE webhook_deliveries d SET next_attempt_at = v.next_attempt_at
          FROM unnest(${retried.map((r) => r.delivery.client_id)}::text[], ${retried.map((r) => r.delivery.user_id)}::text[],
                      ${retried.map((r) => r.delivery.sequence)}::bigint[], ${retried.map((r) => r.next)}::timestamptz[])
               AS v(client_id, user_id, sequence, next_attempt_at)
         WHERE d.status = 'PENDING' AND d.user_id IS NOT NULL AND d.client_id = v.client_id
           AND d.user_id = v.user_id AND d.sequence > v.sequence AND d.next_attempt_at < v.next_attempt_at`.execute(
        tx,
      );
    if (untried.length > 0)
      await tx
        .updateTable("webhook_deliveries")
        .set({ locked_until: null, attempts: sql`attempts - 1` })
        .where(
          "id",
          "in",
          untried.map((d) => d.id),
        )
        .execute();
  });
}

/**
 * What the client is shown of a failed attempt: a fixed wording per kind of failure, never the
 * receiver's answer nor a transport error's own text (which may name internal hosts and ports).
 */
function describeFailure(caught: unknown): string {
  if (
    caught instanceof DestinationRefusedError ||
    caught instanceof ReceiverTimeoutError ||
    caught instanceof NotConfiguredError
  )
    return caught.message;
  // Socket, DNS and TLS errors carry a code (ECONNREFUSED, ENOTFOUND, CERT_HAS_EXPIRED, …).
  if (typeof (caught as { code?: unknown } | null)?.code === "string")
    return "the connection to the webhook URL failed";
  return "the event could not be sent";
}

class NotConfiguredError extends Error {}

export interface DeliveryView {
  id: string;
  eventId: string;
  eventType: string;
  status: "PENDING" | "SUCCEEDED" | "FAILED";
  attempts: {
    attempt: number;
    startedAt: string;
    durationMs: number;
    statusCode: number | null;
    error: string | null;
  }[];
  nextAttemptAt: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

export async function listDeliveries(db: Db, clientId: string, page: { offset: number; limit: number }) {
  const base = db.selectFrom("webhook_deliveries as d").where("d.client_id", "=", clientId);
  const [rows, count] = await Promise.all([
    base
      .innerJoin("outbox_events as e", "e.id", "d.event_id")
      .select([
        "d.id",
        "d.event_id",
        "e.type",
        "d.status",
        "d.next_attempt_at",
        "d.created_at",
        "d.delivered_at",
      ])
      .orderBy("d.created_at", "desc")
      .orderBy("d.id", "desc")
      .offset(page.offset)
      .limit(page.limit)
      .execute(),
    base.select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow(),
  ]);
  const attempts =
    rows.length === 0
      ? []
      : await db
          .selectFrom("webhook_attempts")
          .selectAll()
          .where(
            "delivery_id",
            "in",
            rows.map((r) => r.id),
          )
          .orderBy("attempt")
          .execute();
  const records: DeliveryView[] = rows.map((r) => ({
    id: r.id,
    eventId: r.event_id,
    eventType: r.type,
    status: r.status as DeliveryView["status"],
    attempts: attempts
      .filter((a) => a.delivery_id === r.id)
      .map((a) => ({
        attempt: a.attempt,
        startedAt: new Date(a.started_at).toISOString(),
        durationMs: a.duration_ms,
        statusCode: a.status_code,
        error: a.error,
      })),
    nextAttemptAt: r.status === "PENDING" ? new Date(r.next_attempt_at).toISOString() : null,
    createdAt: new Date(r.created_at).toISOString(),
    deliveredAt: r.delivered_at ? new Date(r.delivered_at).toISOString() : null,
  }));
  return { records, total: Number(count.n) };
}

/** Sends a delivery's event again, as a new delivery (the old one keeps its history). */
export async function redeliver(
  db: Db,
  clientId: string,
  deliveryId: string,
): Promise<{ id: string; eventId: string }> {
  const existing = await db
    .selectFrom("webhook_deliveries")
    .select(["event_id"])
    .where("client_id", "=", clientId)
    .where("id", "=", deliveryId)
    .executeTakeFirst();
  if (!existing) throw new DomainError("NOT_FOUND", "DELIVERY_NOT_FOUND", `no delivery ${deliveryId}`);
  const client = await getClient(db, clientId);
  if (!client.webhookUrl) throw new DomainError("CONFLICT", "NO_WEBHOOK", "the client has no webhook URL");
  const id = `whd_${newId()}`;
  await db
    .insertInto("webhook_deliveries")
    .values({ id, event_id: existing.event_id, client_id: clientId, status: "PENDING" })
    .execute();
  return { id, eventId: existing.event_id };
}

/** Records a TEST event for the client's webhook (POST /v1/webhooks/test). */
export function sendTestEvent(db: Db, clientId: string): Promise<string> {
  return inTransaction(db, (tx) =>
    recordEvent(tx, {
      clientId,
      type: "TEST",
      data: { message: "Test event from Ferry", date: new Date().toISOString() },
    }),
  );
}
