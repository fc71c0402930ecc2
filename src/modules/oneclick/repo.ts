import type { Insertable, Selectable, Updateable } from "kysely";
import type { Db } from "../../db/database.ts";
import type { OneClickTransactionsTable } from "../../db/schema.ts";
import { STATUS, type TxState } from "./statuses.ts";

/** The 1-Click flows' SQL (`oneclick_transactions`), nothing else. */

export const PROCESS_TYPE = "oneclick";

/** A flow's row (txId a decimal string: INT8 is read as text on both databases, db/database.ts). */
export type OneClickRow = Selectable<OneClickTransactionsTable>;
export type NewRow = Omit<Insertable<OneClickTransactionsTable>, "status_code" | "status_name">;
export type RowChanges = Omit<Updateable<OneClickTransactionsTable>, "tx_id" | "client_id">;

export const txRefIdOf = (clientId: string, txId: string) => `${clientId}A${txId}`;
export const requestIdOf = (txId: string) => `oc-${txId}`;

export async function insert(tx: Db, values: Insertable<OneClickTransactionsTable>): Promise<OneClickRow> {
  return (await tx
    .insertInto("oneclick_transactions")
    .values(values)
    .returningAll()
    .executeTakeFirstOrThrow()) as OneClickRow;
}

export async function update(tx: Db, txId: string, changes: RowChanges): Promise<OneClickRow> {
  return (await tx
    .updateTable("oneclick_transactions")
    .set({ ...changes, updated_at: new Date() })
    .where("tx_id", "=", txId)
    .returningAll()
    .executeTakeFirstOrThrow()) as OneClickRow;
}

export async function find(db: Db, txId: string): Promise<OneClickRow | undefined> {
  return db.selectFrom("oneclick_transactions").selectAll().where("tx_id", "=", txId).executeTakeFirst();
}

export async function findOfClient(db: Db, clientId: string, txId: string): Promise<OneClickRow | undefined> {
  return db
    .selectFrom("oneclick_transactions")
    .selectAll()
    .where("client_id", "=", clientId)
    .where("tx_id", "=", txId)
    .executeTakeFirst();
}

export async function lock(tx: Db, txId: string): Promise<OneClickRow> {
  const row = await tx
    .selectFrom("oneclick_transactions")
    .selectAll()
    .where("tx_id", "=", txId)
    .forUpdate()
    .executeTakeFirst();
  if (!row) throw new Error(`no 1-Click transaction ${txId}`);
  return row;
}

export async function bySession(db: Db, sessionId: string): Promise<OneClickRow | undefined> {
  return db
    .selectFrom("oneclick_transactions")
    .selectAll()
    .where("session_id", "=", sessionId)
    .executeTakeFirst();
}

/** The operator's user and session Ferry last knew for a person (by the fingerprint of their personal id). */
export async function knownPerson(tx: Db, clientId: string, fingerprint: string) {
  return tx
    .selectFrom("oneclick_transactions")
    .select(["user_id", "operator_session_id"])
    .where("client_id", "=", clientId)
    .where("person_fingerprint", "=", fingerprint)
    .where("user_id", "is not", null)
    .orderBy("tx_id", "desc")
    .executeTakeFirst();
}

/** Issues a code if the row still has the code the caller read (two visits at once: one issues). */
export async function issueCode(
  db: Db,
  row: OneClickRow,
  code: { hash: string; sealed: string; expiresAt: Date },
): Promise<boolean> {
  const issued = await db
    .updateTable("oneclick_transactions")
    .set({
      code_hash: code.hash,
      code_sealed: code.sealed,
      code_expires_at: code.expiresAt,
      updated_at: new Date(),
    })
    .where("tx_id", "=", row.tx_id)
    .where("code_used_at", "is", null)
    .where((eb) =>
      row.code_hash === null ? eb("code_hash", "is", null) : eb("code_hash", "=", row.code_hash),
    )
    .returning("tx_id")
    .executeTakeFirst();
  return issued !== undefined;
}

export async function lockByCode(tx: Db, codeHash: string): Promise<OneClickRow | undefined> {
  return tx
    .selectFrom("oneclick_transactions")
    .selectAll()
    .where("code_hash", "=", codeHash)
    .forUpdate()
    .executeTakeFirst();
}

export async function revokeToken(tx: Db, txId: string): Promise<void> {
  await tx
    .updateTable("oneclick_transactions")
    .set({ token_revoked_at: new Date(), updated_at: new Date() })
    .where("tx_id", "=", txId)
    .where("token_revoked_at", "is", null)
    .execute();
}

export async function tokenOf(db: Db, clientId: string, txId: string) {
  return db
    .selectFrom("oneclick_transactions")
    .select(["token_jti", "token_revoked_at"])
    .where("client_id", "=", clientId)
    .where("tx_id", "=", txId)
    .executeTakeFirst();
}

const RANGES: Record<TxState, [number, number]> = {
  SUCCESSFUL: [0, 99],
  REGISTERED: [100, 199],
  PROCESSING: [200, 299],
  WAITING_INPUT: [300, 349],
  WAITING_APPROVAL: [350, 399],
  INCONSISTENT: [400, 499],
  FAILED: [500, 599],
  CANCELLED: [600, 699],
};

export async function list(
  db: Db,
  clientId: string,
  filter: { state?: TxState | undefined },
  page: { offset: number; limit: number },
) {
  let query = db.selectFrom("oneclick_transactions").where("client_id", "=", clientId);
  if (filter.state) {
    const [lo, hi] = RANGES[filter.state];
    query = query.where("status_code", ">=", lo).where("status_code", "<=", hi);
  }
  const [rows, count] = await Promise.all([
    query.selectAll().orderBy("tx_id", "desc").offset(page.offset).limit(page.limit).execute(),
    query.select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow(),
  ]);
  return { rows, total: Number(count.n) };
}

/** Flows still waiting for the identity provider after their deadline. */
export async function expiredWaiting(db: Db, limit: number): Promise<string[]> {
  const rows = await db
    .selectFrom("oneclick_transactions")
    .select("tx_id")
    .where("status_code", "=", STATUS.WAITING_IDENTITY_PROVIDER)
    .where("expires_at", "<=", new Date())
    .limit(limit)
    .execute();
  return rows.map((r) => r.tx_id);
}
