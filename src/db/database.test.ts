import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { createTestDatabase, postgresUrl } from "../../test/database.ts";

describe.runIf(postgresUrl)("prepared statements (PostgreSQL)", () => {
  it("survive a schema change that alters a prepared statement's rows (a rolling upgrade's migration)", async () => {
    const database = await createTestDatabase({ poolSize: 1 });
    try {
      const { db } = database;
      await sql`CREATE TABLE prepared_probe (id int PRIMARY KEY)`.execute(db);
      await sql`INSERT INTO prepared_probe VALUES (1)`.execute(db);
      const read = () =>
        db
          .selectFrom("prepared_probe" as never)
          .selectAll()
          .where("id" as never, "=", 1 as never)
          .execute();
      expect(await read()).toEqual([{ id: 1 }]);
      await sql`ALTER TABLE prepared_probe ADD COLUMN note text`.execute(db);
      expect(await read()).toEqual([{ id: 1, note: null }]);
    } finally {
      await database.close();
    }
  });
});
