import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { sql } from "kysely";
import type { Db } from "../../db/database.ts";
import { DomainError } from "../../lib/errors.ts";

export const ADMIN_USERNAME = "admin";

const SCRYPT = { N: 16384, r: 8, p: 1, keyLength: 32 };

function scryptAsync(
  password: string,
  salt: Buffer,
  keyLength: number,
  options: { N: number; r: number; p: number },
) {
  return new Promise<Buffer>((resolve, reject) =>
    scrypt(password, salt, keyLength, options, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

/** `scrypt$N$r$p$salt$hash`, base64url parts: the parameters travel with the hash so they can be raised later. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, SCRYPT.keyLength, SCRYPT);
  return ["scrypt", SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString("base64url"), key.toString("base64url")].join(
    "$",
  );
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split("$");
  if (scheme !== "scrypt" || !salt || !hash) return false;
  const expected = Buffer.from(hash, "base64url");
  const key = await scryptAsync(password, Buffer.from(salt, "base64url"), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return timingSafeEqual(key, expected);
}

/** A password to print once: 24 characters from a 64-symbol alphabet, 144 bits. */
export function generatePassword(): string {
  return randomBytes(18).toString("base64url");
}

/**
 * At start-up: with a configured password, make it the admin's; without one, create the admin with
 * a generated password the first time only. Returns the generated password (to print once), if any.
 */
export async function ensurePlatformAdmin(
  db: Db,
  configuredPassword: string | undefined,
): Promise<{ generatedPassword?: string }> {
  if (configuredPassword !== undefined) {
    const existing = await db
      .selectFrom("platform_admins")
      .select("password_hash")
      .where("username", "=", ADMIN_USERNAME)
      .executeTakeFirst();
    if (!existing || !(await verifyPassword(configuredPassword, existing.password_hash))) {
      await setAdminPassword(db, configuredPassword);
    }
    return {};
  }
  const password = generatePassword();
  const inserted = await db
    .insertInto("platform_admins")
    .values({ username: ADMIN_USERNAME, password_hash: await hashPassword(password) })
    .onConflict((oc) => oc.column("username").doNothing())
    .returning("username")
    .executeTakeFirst();
  // Another start (or another process) created the admin first: its password stands.
  return inserted ? { generatedPassword: password } : {};
}

export async function setAdminPassword(db: Db, password: string): Promise<void> {
  const passwordHash = await hashPassword(password);
  await db
    .insertInto("platform_admins")
    .values({ username: ADMIN_USERNAME, password_hash: passwordHash })
    .onConflict((oc) =>
      oc.column("username").doUpdateSet({ password_hash: passwordHash, password_changed_at: new Date() }),
    )
    .execute();
}

export interface AdminGuessLimits {
  /** Wrong passwords per source address within `lockMinutes` before that source is locked. */
  maxFailures: number;
  lockMinutes: number;
}

/**
 * Checks admin credentials. scrypt is deliberately slow, so a successful check is remembered for a
 * minute, keyed by a hash of the credentials and the stored hash (a password change invalidates it).
 *
 * Guesses are limited per source address (the connection's; behind a reverse proxy, the proxy's):
 * each takes its place in `admin_auth_failures` before the comparison, in one atomic statement, so
 * however many arrive at once at most `maxFailures` are weighed in a window; a wrong one keeps its
 * place, and the one that fills the count locks the source until the window ends (429 with
 * Retry-After, even for the right password). A right one gives its place back, unless a lock was
 * set meanwhile. The limit is per source, not per account: nobody can lock the one admin out from
 * elsewhere, and a burst costs the server at most `maxFailures` scrypt comparisons per source.
 */
export class AdminAuthenticator {
  readonly #verified = new Map<string, number>();

  constructor(
    private readonly db: Db,
    private readonly limits: AdminGuessLimits = { maxFailures: 10, lockMinutes: 15 },
  ) {}

  async verify(username: string, password: string, source = "unknown"): Promise<boolean> {
    const row = await this.db
      .selectFrom("platform_admins")
      .select("password_hash")
      .where("username", "=", username)
      .executeTakeFirst();
    // Same work whether or not the user exists, so timing does not tell which usernames exist.
    const storedHash = row?.password_hash ?? (await dummyHash);
    const cacheKey = createHash("sha256")
      .update(`${username}\u0000${password}\u0000${storedHash}`)
      .digest("base64");
    const until = this.#verified.get(cacheKey);
    // Credentials checked within the minute are not a guess: no comparison, nothing counted.
    if (row && until !== undefined && until > Date.now()) return true;
    await this.reserve(source);
    const ok = (await verifyPassword(password, storedHash)) && row !== undefined;
    await this.settle(source, ok);
    if (ok) {
      if (this.#verified.size > 1000) this.#verified.clear();
      this.#verified.set(cacheKey, Date.now() + 60_000);
    }
    return ok;
  }

  /** A place in the source's count for a guess about to be weighed; 429 when locked or full. */
  private async reserve(source: string): Promise<void> {
    const { rows } = await sql<{ failures: number }>`
      INSERT INTO admin_auth_failures AS f (source, failures, window_until)
      VALUES (${source}, 1, now() + make_interval(mins => ${this.limits.lockMinutes}))
      ON CONFLICT (source) DO UPDATE
         SET failures = CASE WHEN f.window_until <= now() THEN 1 ELSE f.failures + 1 END,
             window_until = CASE WHEN f.window_until <= now()
                                 THEN now() + make_interval(mins => ${this.limits.lockMinutes}) ELSE f.window_until END,
             locked_until = CASE WHEN f.locked_until <= now() THEN NULL ELSE f.locked_until END
       WHERE (f.locked_until IS NULL OR f.locked_until <= now())
         AND (f.window_until <= now() OR f.failures < ${this.limits.maxFailures})
      RETURNING failures`.execute(this.db);
    if (rows[0]) return;
    // Locked, or the count is full of guesses being weighed right now (they will settle it).
    const { rows: found } = await sql<{ until: Date }>`
      SELECT COALESCE(CASE WHEN locked_until > now() THEN locked_until END, window_until) AS until
        FROM admin_auth_failures WHERE source = ${source}`.execute(this.db);
    throw tooManyGuesses(found[0] ? new Date(found[0].until) : new Date(Date.now() + 1000));
  }

  /** Wrong: keeps its place, and filling the count locks the source. Right: gives it back, unless locked meanwhile. */
  private async settle(source: string, right: boolean): Promise<void> {
    const { rows } = right
      ? await sql<{ locked_until: Date | null }>`
          UPDATE admin_auth_failures SET failures = GREATEST(failures - 1, 0)
           WHERE source = ${source} AND (locked_until IS NULL OR locked_until <= now())
          RETURNING locked_until`.execute(this.db)
      : await sql<{ locked_until: Date | null }>`
          UPDATE admin_auth_failures
             SET locked_until = CASE WHEN failures >= ${this.limits.maxFailures} AND (locked_until IS NULL OR locked_until <= now())
                                     THEN window_until ELSE locked_until END
           WHERE source = ${source}
          RETURNING locked_until`.execute(this.db);
    if (right && rows.length === 0) {
      const { rows: lock } = await sql<{ locked_until: Date }>`
        SELECT locked_until FROM admin_auth_failures WHERE source = ${source}`.execute(this.db);
      throw tooManyGuesses(
        lock[0]?.locked_until ? new Date(lock[0].locked_until) : new Date(Date.now() + 1000),
      );
    }
    const lockedUntil = rows[0]?.locked_until;
    if (!right && lockedUntil && new Date(lockedUntil).getTime() > Date.now())
      throw tooManyGuesses(new Date(lockedUntil));
  }

  /** Sources whose window has ended (the purge worker). */
  async purgeExpired(): Promise<void> {
    await sql`DELETE FROM admin_auth_failures WHERE window_until < now() AND (locked_until IS NULL OR locked_until < now())`.execute(
      this.db,
    );
  }
}

function tooManyGuesses(until: Date) {
  const seconds = Math.max(1, Math.ceil((until.getTime() - Date.now()) / 1000));
  return new DomainError(
    "FORBIDDEN",
    "RATE_LIMITED",
    `too many wrong admin passwords from this address: try again after ${until.toISOString()}`,
    undefined,
    { headers: { "Retry-After": String(seconds) } },
  );
}

const dummyHash = hashPassword(generatePassword());
