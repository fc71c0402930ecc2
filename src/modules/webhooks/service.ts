import { sql } from "kysely";
import type { Db } from "../../db/database.ts";
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
    INSERT INTO webhook_deliveries (id, event_id, client_id, status)
    SELECT n.delivery_id, n.id, n.client_id, 'PENDING' FROM numbered n JOIN recorded r ON r.id = n.id
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

type ClaimedDelivery = { id: string; event_id: string; client_id: string; attempts: number };

/**
 * One round of the delivery worker: claims due deliveries (FOR UPDATE SKIP LOCKED, with a lease
 * longer than a delivery can take, so two processes never send one attempt twice), sends each,
 * and records the outcome. Returns how many it claimed.
 */
export async function deliverDueWebhooks(
  db: Db,
  keys: SigningKeys,
  settings: DeliverySettings,
  limit = 20,
): Promise<number> {
  const leaseSeconds = Math.ceil(settings.timeoutMs / 1000) + 30;
  const { rows } = await sql<ClaimedDelivery>`
    UPDATE webhook_deliveries SET locked_until = now() + make_interval(secs => ${leaseSeconds}), attempts = attempts + 1
    WHERE id IN (
      SELECT id FROM webhook_deliveries
      WHERE status = 'PENDING' AND next_attempt_at <= now() AND (locked_until IS NULL OR locked_until < now())
      ORDER BY next_attempt_at
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED)
    RETURNING id, event_id, client_id, attempts`.execute(db);
  await Promise.all(rows.map((delivery) => attempt(db, keys, settings, delivery)));
  return rows.length;
}

async function attempt(db: Db, keys: SigningKeys, settings: DeliverySettings, delivery: ClaimedDelivery) {
  const started = new Date();
  let statusCode: number | null = null;
  let error: string | null = null;
  try {
    const [event, client] = await Promise.all([
      db
        .selectFrom("outbox_events")
        .selectAll()
        .where("id", "=", delivery.event_id)
        .executeTakeFirstOrThrow(),
      getClient(db, delivery.client_id),
    ]);
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
      await keys.current(),
      `${settings.publicUrl}/.well-known/jwks.json`,
      encryptionKey,
    );
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
      publicOnly: mustBePublic(client.mode === "live" ? "live" : "sandbox"),
      lookup: settings.lookup,
    });
    if (statusCode < 200 || statusCode >= 300) error = `HTTP ${statusCode}`;
  } catch (caught) {
    error = describeFailure(caught);
  }
  const durationMs = Date.now() - started.getTime();
  const succeeded = error === null;
  const retryIn = settings.retrySchedule[delivery.attempts - 1];
  await inTransaction(db, async (tx) => {
    await tx
      .insertInto("webhook_attempts")
      .values({
        delivery_id: delivery.id,
        attempt: delivery.attempts,
        started_at: started,
        duration_ms: durationMs,
        status_code: statusCode,
        error: error?.slice(0, 500) ?? null,
      })
      .execute();
    await tx
      .updateTable("webhook_deliveries")
      .set(
        succeeded
          ? {
              status: "SUCCEEDED",
              delivered_at: new Date(),
              locked_until: null,
              last_status_code: statusCode,
              last_error: null,
            }
          : retryIn === undefined
            ? { status: "FAILED", locked_until: null, last_status_code: statusCode, last_error: error }
            : {
                // Exponential schedule with ±20 % jitter, so a recovering receiver is not hit by a wave.
                next_attempt_at: new Date(Date.now() + retryIn * 1000 * (0.8 + Math.random() * 0.4)),
                locked_until: null,
                last_status_code: statusCode,
                last_error: error,
              },
      )
      .where("id", "=", delivery.id)
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
