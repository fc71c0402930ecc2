import { sql } from "kysely";
import type { Db } from "../../db/database.ts";

/**
 * The integers the Pay-in face names cards and offers by (Vault's ids are integers; Ferry's are
 * `pm_…` and UUIDs). A number is given the first time a card or offer is shown and never changes;
 * numbers are unique across clients and always looked up within one client (another client's
 * number is not found). Giving one is idempotent and safe under concurrency (INSERT … ON CONFLICT
 * DO NOTHING, then read): not a business state change, so no audit row.
 */
export type NumberedKind = "CARD" | "OFFER";

/** The number of each ref (assigned now where there is none yet). */
export async function numbersOf(
  db: Db,
  clientId: string,
  kind: NumberedKind,
  refs: readonly string[],
): Promise<Map<string, number>> {
  const unique = [...new Set(refs)];
  const found = new Map<string, number>();
  if (unique.length === 0) return found;
  await sql`
    INSERT INTO payin_numbers (client_id, kind, ref)
    SELECT ${clientId}, ${kind}, r FROM unnest(${sql.val(unique)}::text[]) AS r
    ON CONFLICT (client_id, kind, ref) DO NOTHING`.execute(db);
  const { rows } = await sql<{ ref: string; number: string | number }>`
    SELECT ref, number FROM payin_numbers
     WHERE client_id = ${clientId} AND kind = ${kind} AND ref = ANY(${sql.val(unique)}::text[])`.execute(db);
  for (const row of rows) found.set(row.ref, Number(row.number));
  return found;
}

/** The ref a number stands for within the client, or undefined. */
export async function refOf(
  db: Db,
  clientId: string,
  kind: NumberedKind,
  number: number,
): Promise<string | undefined> {
  const { rows } = await sql<{ ref: string }>`
    SELECT ref FROM payin_numbers WHERE client_id = ${clientId} AND kind = ${kind} AND number = ${number}`.execute(
    db,
  );
  return rows[0]?.ref;
}
