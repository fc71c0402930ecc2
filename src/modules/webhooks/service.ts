// The outbox: events recorded with their deliveries in the caller's transaction (numbered per user),
// the client's view of its deliveries, redelivery. Sending them is delivery.ts's.
import { sql } from "kysely";
import type { Db } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import { DomainError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { getClient } from "../clients/service.ts";

export {
  type DeliverySettings,
  type DispatcherSettings,
  deliverDueWebhooks,
  WEBHOOK_DISPATCH_DEFAULTS,
  WebhookDispatcher,
} from "./delivery.ts";
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
    -- A user whose earliest pending delivery waits for its retry: the new one waits as long (it
    -- could not go before it anyway), so the claim does not walk a refused receiver's growing
    -- backlog as due rows (one probe of the user's pending index per delivery).
    INSERT INTO webhook_deliveries (id, event_id, client_id, user_id, sequence, status, next_attempt_at)
    SELECT n.delivery_id, n.id, n.client_id, n.user_id, n.sequence, 'PENDING',
           GREATEST(now(), COALESCE((
             SELECT e.next_attempt_at FROM webhook_deliveries e
              WHERE n.user_id IS NOT NULL AND e.status = 'PENDING' AND e.client_id = n.client_id
                AND e.user_id = n.user_id
              ORDER BY e.sequence LIMIT 1), now()))
      FROM numbered n JOIN recorded r ON r.id = n.id
    WHERE n.delivery_id IS NOT NULL`.execute(tx);
  return ids;
}

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
