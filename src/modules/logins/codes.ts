import { randomInt, timingSafeEqual } from "node:crypto";
import { sql } from "kysely";
import type { Db } from "../../db/database.ts";
import type { Sealer } from "../../lib/sealer.ts";
import { LoginError } from "./errors.ts";

/**
 * One-time codes (6 digits) for registration, two-factor login and password reset: one live code
 * per client, login and purpose; only a keyed hash is stored. A code is consumed by the
 * transaction that acts on it (single use even when two requests bring it at once). Every attempt
 * is counted before it is weighed (a failed request still counts, and a burst gets no more than
 * MAX_CODE_ATTEMPTS weighed); the fifth wrong one locks the code until it expires.
 */
export type CodePurpose = "REGISTRATION" | "LOGIN" | "PASSWORD_RESET";

export const MAX_CODE_ATTEMPTS = 5;
/** Codes sent for one purpose before a new one must wait for the code to expire. */
export const MAX_CODE_SENDS = 5;

export interface CodeKey {
  clientId: string;
  login: string;
  purpose: CodePurpose;
}

export class Codes {
  constructor(
    private readonly db: Db,
    private readonly sealer: Sealer,
    private readonly ttlSeconds: (purpose: CodePurpose) => number,
  ) {}

  private hash(key: CodeKey, code: string) {
    return this.sealer.fingerprint(
      `otp\u0000${key.clientId}\u0000${key.login}\u0000${key.purpose}\u0000${code}`,
    );
  }

  /**
   * A new code for `key`, replacing one that is expired or unlocked (a registration started again).
   * A locked code stands until it expires: starting over does not reset the count of wrong codes.
   */
  async issue(db: Db, key: CodeKey, details: Record<string, unknown> = {}): Promise<string> {
    const code = newCode();
    const ttl = this.ttlSeconds(key.purpose);
    // Starting again while a code is live counts as a send and keeps the count of wrong codes: a
    // restart neither unlocks a code nor sends more than MAX_CODE_SENDS of them.
    const { rows } = await sql<{ login: string }>`
      INSERT INTO login_codes (client_id, login, purpose, code_hash, details, expires_at)
      VALUES (${key.clientId}, ${key.login}, ${key.purpose}, ${this.hash(key, code)}, ${JSON.stringify(details)},
              now() + make_interval(secs => ${ttl}))
      ON CONFLICT (client_id, login, purpose) DO UPDATE
        SET code_hash = excluded.code_hash, details = excluded.details,
            attempts = CASE WHEN login_codes.expires_at < now() THEN 0 ELSE login_codes.attempts END,
            sends = CASE WHEN login_codes.expires_at < now() THEN 1 ELSE login_codes.sends + 1 END,
            locked = false, expires_at = excluded.expires_at, created_at = now(), updated_at = now()
        WHERE login_codes.expires_at < now() OR (NOT login_codes.locked AND login_codes.sends < ${MAX_CODE_SENDS})
      RETURNING login`.execute(db);
    if (rows.length > 0) return code;
    const row = await this.find(key);
    if (row?.locked) throw lockedError(key.purpose);
    throw tooManySends(row?.expires_at ?? new Date(Date.now() + ttl * 1000));
  }

  /** Another code for a live one (the first did not arrive); the count of wrong codes carries over. */
  async resend(key: CodeKey): Promise<string> {
    const code = newCode();
    const ttl = this.ttlSeconds(key.purpose);
    const { rows } = await sql<{ sends: number }>`
      UPDATE login_codes
         SET code_hash = ${this.hash(key, code)}, sends = sends + 1,
             expires_at = now() + make_interval(secs => ${ttl}), updated_at = now()
       WHERE client_id = ${key.clientId} AND login = ${key.login} AND purpose = ${key.purpose}
         AND expires_at > now() AND NOT locked AND sends < ${MAX_CODE_SENDS}
      RETURNING sends`.execute(this.db);
    if (rows.length > 0) return code;
    const row = await this.find(key);
    if (!row) throw noCode(key.purpose);
    if (row.locked) throw lockedError(key.purpose);
    throw tooManySends(row.expires_at);
  }

  /**
   * Checks `code` against the live code of `key` (without using it up). The attempt takes its place
   * in the code's count before the comparison, in one atomic statement, so that however many
   * arrive at once at most MAX_CODE_ATTEMPTS are weighed: one refused because the count is full
   * locks the code unweighed. A wrong code stays counted and the one that fills the count locks the
   * code; a right one keeps its place until the transaction acting on it uses the code up.
   */
  async check(key: CodeKey, code: string): Promise<{ hash: string; details: Record<string, unknown> }> {
    const { rows } = await sql<{ code_hash: string; details: unknown }>`
      UPDATE login_codes SET attempts = attempts + 1, updated_at = now()
       WHERE ${this.where(key)} AND expires_at > now() AND NOT locked AND attempts < ${MAX_CODE_ATTEMPTS}
      RETURNING code_hash, details`.execute(this.db);
    const row = rows[0];
    if (!row) {
      // No code, a locked one, or one whose count is full of attempts being weighed (locked now).
      const { rows: locked } = await sql`
        UPDATE login_codes SET locked = true, updated_at = now()
         WHERE ${this.where(key)} AND expires_at > now()
           AND (locked OR attempts >= ${MAX_CODE_ATTEMPTS})
        RETURNING login`.execute(this.db);
      if (locked.length > 0) throw lockedError(key.purpose);
      throw noCode(key.purpose);
    }
    const hash = this.hash(key, code);
    const given = Buffer.from(hash);
    const stored = Buffer.from(row.code_hash);
    if (given.length === stored.length && timingSafeEqual(given, stored))
      return {
        hash,
        details: (typeof row.details === "string" ? JSON.parse(row.details) : row.details) as Record<
          string,
          unknown
        >,
      };
    const { rows: settled } = await sql<{ attempts: number; locked: boolean }>`
      UPDATE login_codes SET locked = locked OR attempts >= ${MAX_CODE_ATTEMPTS}, updated_at = now()
       WHERE ${this.where(key)} AND expires_at > now()
      RETURNING attempts, locked`.execute(this.db);
    const after = settled[0];
    if (!after) throw noCode(key.purpose);
    if (after.locked) throw lockedError(key.purpose);
    const left = Math.max(0, MAX_CODE_ATTEMPTS - after.attempts);
    throw new LoginError(
      "INVALID_CODE",
      `wrong code: ${left} attempt${left === 1 ? "" : "s"} left before it is locked`,
      "otp",
    );
  }

  /**
   * Uses the checked code up, in the transaction that acts on it: a second use finds nothing (409);
   * a code locked since it was checked stays locked (403), whatever it was.
   */
  async consume(tx: Db, key: CodeKey, hash: string): Promise<void> {
    const { rows } = await sql`
      DELETE FROM login_codes
       WHERE ${this.where(key)} AND code_hash = ${hash} AND NOT locked AND expires_at > now()
      RETURNING login`.execute(tx);
    if (rows.length > 0) return;
    const { rows: locked } = await sql`
      SELECT login FROM login_codes WHERE ${this.where(key)} AND locked AND expires_at > now()`.execute(tx);
    if (locked.length > 0) throw lockedError(key.purpose);
    throw new LoginError("CODE_USED", "this code was used already", "otp");
  }

  private where(key: CodeKey) {
    return sql`client_id = ${key.clientId} AND login = ${key.login} AND purpose = ${key.purpose}`;
  }

  async purgeExpired(): Promise<number> {
    const result = await this.db
      .deleteFrom("login_codes")
      .where("expires_at", "<", new Date())
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  private async find(key: CodeKey) {
    return this.db
      .selectFrom("login_codes")
      .select(["code_hash", "details", "locked", "expires_at"])
      .where("client_id", "=", key.clientId)
      .where("login", "=", key.login)
      .where("purpose", "=", key.purpose)
      .where("expires_at", ">", new Date())
      .executeTakeFirst();
  }
}

function tooManySends(expiresAt: Date) {
  return new LoginError(
    "RATE_LIMITED",
    `${MAX_CODE_SENDS} codes were sent already; wait until the last one expires`,
    "login",
    { headers: { "Retry-After": String(Math.max(1, Math.ceil((expiresAt.getTime() - Date.now()) / 1000))) } },
  );
}

function newCode(): string {
  return String(randomInt(0, 1_000_000)).padStart(6, "0");
}

const what = (purpose: CodePurpose) =>
  purpose === "REGISTRATION" ? "registration" : purpose === "LOGIN" ? "login" : "password reset";

function noCode(purpose: CodePurpose) {
  return new LoginError(
    "NO_CODE",
    `no ${what(purpose)} is waiting for a code for this login (or its code expired)`,
    "login",
  );
}

function lockedError(purpose: CodePurpose) {
  return new LoginError(
    "CODE_LOCKED",
    `this ${what(purpose)} is locked after ${MAX_CODE_ATTEMPTS} wrong codes; start again once its code has expired`,
    "otp",
  );
}
