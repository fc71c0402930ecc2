import type { Db } from "../../db/database.ts";
import { DomainError } from "../../lib/errors.ts";
import { CLIENT_CHOSEN_ID } from "../../lib/ids.ts";

export interface Client {
  id: string;
  name: string;
  status: string;
  createdAt: Date;
}

const kinds = {
  CLIENT_EXISTS: "CONFLICT",
  INVALID_CLIENT: "INVALID",
  CLIENT_NOT_FOUND: "NOT_FOUND",
} as const;

export class ClientError extends DomainError {
  constructor(code: keyof typeof kinds, message: string) {
    super(kinds[code], code, message);
  }
}

/** Registers a tenant. Later issues add its keys, webhook and settings. */
export async function createClient(db: Db, input: { id: string; name: string }): Promise<Client> {
  if (!CLIENT_CHOSEN_ID.test(input.id))
    throw new ClientError("INVALID_CLIENT", "a client id is 3–255 of A–Z a–z 0–9 _ -");
  const row = await db
    .insertInto("clients")
    .values({ id: input.id, name: input.name })
    .onConflict((oc) => oc.column("id").doNothing())
    .returningAll()
    .executeTakeFirst();
  if (!row) throw new ClientError("CLIENT_EXISTS", `client ${input.id} already exists`);
  return { id: row.id, name: row.name, status: row.status, createdAt: new Date(row.created_at) };
}

export async function getClient(db: Db, id: string): Promise<Client | undefined> {
  const row = await db.selectFrom("clients").selectAll().where("id", "=", id).executeTakeFirst();
  return row && { id: row.id, name: row.name, status: row.status, createdAt: new Date(row.created_at) };
}
