import { sql } from "kysely";
import type { Db } from "../../db/database.ts";

/** The SQL of currencies' USD rates (table currency_usd_rates, migration 0015). */

export interface RateRow {
  id: string;
  client_id: string;
  currency: string;
  version: number;
  usd_rate: string;
  effective_from: Date;
  set_by_kind: string;
  set_by_id: string | null;
  set_by_role: string | null;
  request_id: string | null;
  created_at: Date;
}

const COLUMNS = [
  "id",
  "client_id",
  "currency",
  "version",
  sql<string>`usd_rate::text`.as("usd_rate"),
  "effective_from",
  "set_by_kind",
  "set_by_id",
  "set_by_role",
  "request_id",
  "created_at",
] as const;

const normalize = (row: RateRow): RateRow => ({
  ...row,
  version: Number(row.version),
  effective_from: new Date(row.effective_from),
  created_at: new Date(row.created_at),
});

/** Serializes the writers of one currency's rates until `tx` ends (versions are numbered max + 1). */
export async function lockRates(tx: Db, clientId: string, currency: string): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtext(${`usd-rate:${clientId}:${currency}`}))`.execute(tx);
}

export async function insertRate(
  tx: Db,
  row: {
    id: string;
    clientId: string;
    currency: string;
    usdRate: string;
    effectiveFrom: Date;
    setBy: { kind: string; id: string | null; role: string | null };
    requestId: string | null;
  },
): Promise<RateRow> {
  const inserted = await tx
    .insertInto("currency_usd_rates")
    .values({
      id: row.id,
      client_id: row.clientId,
      currency: row.currency,
      version: sql<number>`(SELECT coalesce(max(version), 0) + 1 FROM currency_usd_rates
        WHERE client_id = ${row.clientId} AND currency = ${row.currency})`,
      usd_rate: row.usdRate,
      effective_from: row.effectiveFrom,
      set_by_kind: row.setBy.kind,
      set_by_id: row.setBy.id,
      set_by_role: row.setBy.role,
      request_id: row.requestId,
    })
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
  return normalize(inserted as RateRow);
}

/**
 * The versions that matter from `now` on: the one in force (the newest whose effective_from has
 * come) and every one scheduled after it, in force order (oldest first).
 */
export async function ratesFrom(db: Db, clientId: string, currency: string, now: Date): Promise<RateRow[]> {
  const rows = await db
    .selectFrom("currency_usd_rates")
    .select(COLUMNS)
    .where("client_id", "=", clientId)
    .where("currency", "=", currency)
    .where((eb) =>
      eb.or([
        eb("effective_from", ">", now),
        eb(
          "version",
          "=",
          eb
            .selectFrom("currency_usd_rates as c")
            .select("c.version")
            .where("c.client_id", "=", clientId)
            .where("c.currency", "=", currency)
            .where("c.effective_from", "<=", now)
            .orderBy("c.effective_from", "desc")
            .orderBy("c.version", "desc")
            .limit(1),
        ),
      ]),
    )
    .orderBy("effective_from")
    .orderBy("version")
    .execute();
  return rows.map((r) => normalize(r as RateRow));
}

/** The rate in force at `now` for each of the client's currencies that has one. */
export async function ratesInForce(db: Db, clientId: string, now: Date): Promise<RateRow[]> {
  const rows = await db
    .selectFrom("currency_usd_rates")
    .distinctOn("currency")
    .select(COLUMNS)
    .where("client_id", "=", clientId)
    .where("effective_from", "<=", now)
    .orderBy("currency")
    .orderBy("effective_from", "desc")
    .orderBy("version", "desc")
    .execute();
  return rows.map((r) => normalize(r as RateRow));
}

/** A currency's versions, newest first, paged; and how many there are. */
export async function listRates(
  db: Db,
  clientId: string,
  currency: string,
  page: { offset: number; limit: number },
): Promise<{ rows: RateRow[]; total: number }> {
  const query = db
    .selectFrom("currency_usd_rates")
    .where("client_id", "=", clientId)
    .where("currency", "=", currency);
  const [rows, count] = await Promise.all([
    query.select(COLUMNS).orderBy("version", "desc").offset(page.offset).limit(page.limit).execute(),
    query.select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow(),
  ]);
  return { rows: rows.map((r) => normalize(r as RateRow)), total: Number(count.n) };
}
