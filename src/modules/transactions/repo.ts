import type { Insertable, Updateable } from "kysely";
import type { Db } from "../../db/database.ts";
import type { TransactionsTable } from "../../db/schema.ts";
import { notFound, type Row, requestIdUsed } from "./types.ts";

/** The transactions table's SQL, and nothing else. */

export type NewRow = Omit<Insertable<TransactionsTable>, "status">;
export type RowChanges = Omit<
  Updateable<TransactionsTable>,
  "client_id" | "request_id" | "status" | "created_at"
>;

export async function insert(tx: Db, values: Insertable<TransactionsTable>): Promise<Row> {
  const inserted = await tx
    .insertInto("transactions")
    .values(values)
    .onConflict((oc) => oc.columns(["client_id", "request_id"]).doNothing())
    .returningAll()
    .executeTakeFirst();
  if (!inserted) throw requestIdUsed(values.request_id);
  return inserted;
}

export function find(db: Db, clientId: string, requestId: string): Promise<Row | undefined> {
  return db
    .selectFrom("transactions")
    .selectAll()
    .where("client_id", "=", clientId)
    .where("request_id", "=", requestId)
    .executeTakeFirst();
}

export async function get(db: Db, clientId: string, requestId: string): Promise<Row> {
  const row = await find(db, clientId, requestId);
  if (!row) throw notFound(requestId);
  return row;
}

/** The row, locked for the rest of the transaction: every change of status starts here. */
export async function lock(tx: Db, clientId: string, requestId: string): Promise<Row> {
  const row = await tx
    .selectFrom("transactions")
    .selectAll()
    .where("client_id", "=", clientId)
    .where("request_id", "=", requestId)
    .forUpdate()
    .executeTakeFirst();
  if (!row) throw notFound(requestId);
  return row;
}

export function findByProviderReference(
  db: Db,
  provider: string,
  reference: string,
): Promise<Row | undefined> {
  return db
    .selectFrom("transactions")
    .selectAll()
    .where("provider", "=", provider)
    .where("provider_reference", "=", reference)
    .executeTakeFirst();
}

/** Used only by the process engine (process.ts), which owns `status`. */
export async function update(tx: Db, row: Row, changes: RowChanges & { status?: string }): Promise<Row> {
  return tx
    .updateTable("transactions")
    .set({ ...changes, updated_at: new Date() })
    .where("client_id", "=", row.client_id)
    .where("request_id", "=", row.request_id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Bank deposits by their payment references (FRY…): who they belong to. */
export async function findByPaymentReferences(db: Db, provider: string, references: string[]) {
  if (references.length === 0) return [];
  return db
    .selectFrom("transactions")
    .select(["client_id", "request_id", "provider_reference"])
    .where("provider", "=", provider)
    .where("provider_reference", "in", references)
    .execute();
}

export function findClientOfReference(db: Db, reference: string) {
  return db
    .selectFrom("transactions")
    .select(["client_id", "request_id"])
    .where("provider_reference", "=", reference)
    .executeTakeFirst();
}

/** By the number people read out (the Wallet API's requestIdentifier). */
export function findByNumber(db: Db, clientId: string, number: string): Promise<Row | undefined> {
  if (!/^[0-9]{1,18}$/.test(number)) return Promise.resolve(undefined);
  return db
    .selectFrom("transactions")
    .selectAll()
    .where("client_id", "=", clientId)
    .where("number", "=", number)
    .executeTakeFirst();
}

/** A page of the client's transactions (a user's: theirs and those they received), newest first. */
export async function list(
  db: Db,
  clientId: string,
  filter: { userId?: string | undefined; types?: string[] | undefined },
  page: { offset: number; limit: number },
): Promise<{ rows: Row[]; total: number }> {
  let query = db.selectFrom("transactions").where("client_id", "=", clientId);
  const { userId } = filter;
  if (userId !== undefined)
    query = query.where((eb) => eb.or([eb("user_id", "=", userId), eb("counterparty_user_id", "=", userId)]));
  if (filter.types && filter.types.length > 0) query = query.where("type", "in", filter.types);
  const [rows, count] = await Promise.all([
    query
      .selectAll()
      .orderBy("created_at", "desc")
      .orderBy("request_id", "desc")
      .offset(page.offset)
      .limit(page.limit)
      .execute(),
    query.select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow(),
  ]);
  return { rows, total: Number(count.n) };
}
