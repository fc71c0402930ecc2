import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import type { Db } from "../../db/database.ts";

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

/**
 * Checks admin credentials. scrypt is deliberately slow, so a successful check is remembered for a
 * minute, keyed by a hash of the credentials and the stored hash (a password change invalidates it).
 */
export class AdminAuthenticator {
  readonly #verified = new Map<string, number>();

  constructor(private readonly db: Db) {}

  async verify(username: string, password: string): Promise<boolean> {
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
    if (row && until !== undefined && until > Date.now()) return true;
    const ok = (await verifyPassword(password, storedHash)) && row !== undefined;
    if (ok) {
      if (this.#verified.size > 1000) this.#verified.clear();
      this.#verified.set(cacheKey, Date.now() + 60_000);
    }
    return ok;
  }
}

const dummyHash = hashPassword(generatePassword());
