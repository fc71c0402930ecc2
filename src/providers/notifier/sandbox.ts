import type { Db } from "../../db/database.ts";
import { newId } from "../../lib/ids.ts";
import type { Notification, NotificationKind, Notifier } from "./interface.ts";

export interface StoredNotification {
  to: string;
  kind: NotificationKind;
  otp?: string;
  text: string;
  createdAt: string;
}

/**
 * The sandbox notifier sends nothing: it keeps each message in `sandbox_notifier_messages`, read
 * by the platform admin at `GET /sandbox/outbox` (sandbox clients only). Messages older than a
 * week are purged.
 */
export class SandboxNotifier implements Notifier {
  readonly name = "sandbox-notifier";

  constructor(private readonly db: Db) {}

  async send(n: Notification): Promise<void> {
    await this.db
      .insertInto("sandbox_notifier_messages")
      .values({
        id: newId(),
        client_id: n.clientId,
        recipient: n.to,
        kind: n.kind,
        otp: n.otp ?? null,
        text: n.text,
      })
      .execute();
  }

  /** The messages sent to `to` (all of the client's when absent), newest first. */
  async outbox(clientId: string, to: string | undefined, limit = 50): Promise<StoredNotification[]> {
    let query = this.db
      .selectFrom("sandbox_notifier_messages")
      .select(["recipient", "kind", "otp", "text", "created_at"])
      .where("client_id", "=", clientId);
    if (to !== undefined) query = query.where("recipient", "=", to);
    const rows = await query.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit).execute();
    return rows.map((r) => ({
      to: r.recipient,
      kind: r.kind as NotificationKind,
      ...(r.otp ? { otp: r.otp } : {}),
      text: r.text,
      createdAt: new Date(r.created_at).toISOString(),
    }));
  }

  /**
   * What was sent to sandbox clients' logins, across clients (the platform admin's outbox view),
   * newest first. A live client's messages are never shown: they are real people's codes.
   */
  async sandboxOutbox(filter: {
    to?: string | undefined;
    clientId?: string | undefined;
    limit: number;
  }): Promise<(StoredNotification & { clientId: string })[]> {
    let query = this.db
      .selectFrom("sandbox_notifier_messages as m")
      .innerJoin("clients as c", "c.id", "m.client_id")
      .select(["m.client_id", "m.recipient", "m.kind", "m.otp", "m.text", "m.created_at"])
      .where("c.mode", "=", "sandbox");
    if (filter.to !== undefined)
      query = query.where("m.recipient", "=", filter.to.trim().toLowerCase().replace(/^\+/, ""));
    if (filter.clientId !== undefined) query = query.where("m.client_id", "=", filter.clientId);
    const rows = await query
      .orderBy("m.created_at", "desc")
      .orderBy("m.id", "desc")
      .limit(filter.limit)
      .execute();
    return rows.map((r) => ({
      clientId: r.client_id,
      to: r.recipient,
      kind: r.kind as NotificationKind,
      ...(r.otp ? { otp: r.otp } : {}),
      text: r.text,
      createdAt: new Date(r.created_at).toISOString(),
    }));
  }

  async purge(olderThan: Date): Promise<number> {
    const result = await this.db
      .deleteFrom("sandbox_notifier_messages")
      .where("created_at", "<", olderThan)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
