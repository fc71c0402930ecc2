import type { Db } from "../../db/database.ts";
import type { Actor } from "../../lib/context.ts";
import { newId } from "../../lib/ids.ts";

export interface AuditEntry {
  action: string;
  entityType: string;
  entityId: string;
  before?: unknown;
  after?: unknown;
}

export interface AuditRecord extends AuditEntry {
  id: string;
  clientId: string | null;
  actor: Actor;
  requestId: string | null;
  createdAt: Date;
}

/**
 * Writes one audit row. Call it with the transaction that makes the change, so the trail never
 * disagrees with the data (a change without its row, or a row for a change rolled back).
 */
export async function writeAudit(
  tx: Db,
  context: { clientId: string | null; actor: Actor; requestId?: string | undefined },
  entry: AuditEntry,
): Promise<void> {
  await writeAudits(tx, [{ context, entry }]);
}

/** Writes several audit rows in one statement (the group commit's). */
export async function writeAudits(
  tx: Db,
  rows: {
    context: { clientId: string | null; actor: Actor; requestId?: string | undefined };
    entry: AuditEntry;
  }[],
): Promise<void> {
  if (rows.length === 0) return;
  await tx
    .insertInto("audit_log")
    .values(
      rows.map(({ context, entry }) => ({
        id: newId(),
        client_id: context.clientId,
        actor_kind: context.actor.kind,
        actor_id: context.actor.id,
        actor_role:
          context.actor.roles && context.actor.roles.length > 0 ? context.actor.roles.join(",") : null,
        action: entry.action,
        entity_type: entry.entityType,
        entity_id: entry.entityId,
        before: entry.before === undefined ? null : JSON.stringify(entry.before),
        after: entry.after === undefined ? null : JSON.stringify(entry.after),
        request_id: context.requestId ?? null,
      })),
    )
    .execute();
}

/** The trail of one entity, oldest first. */
export async function listAudit(
  db: Db,
  clientId: string,
  entityType: string,
  entityId: string,
): Promise<AuditRecord[]> {
  const rows = await db
    .selectFrom("audit_log")
    .selectAll()
    .where("client_id", "=", clientId)
    .where("entity_type", "=", entityType)
    .where("entity_id", "=", entityId)
    .orderBy("created_at")
    .orderBy("id")
    .execute();
  return rows.map((r) => ({
    id: r.id,
    clientId: r.client_id,
    actor: {
      kind: r.actor_kind as Actor["kind"],
      id: r.actor_id,
      ...(r.actor_role ? { roles: r.actor_role.split(",") } : {}),
    },
    action: r.action,
    entityType: r.entity_type,
    entityId: r.entity_id,
    before: parseJson(r.before),
    after: parseJson(r.after),
    requestId: r.request_id,
    createdAt: new Date(r.created_at),
  }));
}

const parseJson = (v: unknown) => (typeof v === "string" ? JSON.parse(v) : (v ?? undefined));
