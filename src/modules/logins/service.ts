// Over 400 lines on purpose: a login's whole life (registration codes, passwords, access tokens, one-time
// codes, the lock after wrong passwords) in one place, so that its attempt counters read together.
import { createHash, randomBytes } from "node:crypto";
import { sql } from "kysely";
import { announceChange, cachedRead } from "../../db/cache.ts";
import type { Db } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import type { RequestContext } from "../../lib/context.ts";
import { newId } from "../../lib/ids.ts";
import type { Sealer } from "../../lib/sealer.ts";
import type { Notifier } from "../../providers/notifier/interface.ts";
import { generatePassword, hashPassword, verifyPassword } from "../admins/service.ts";
import { writeAudit } from "../audit/service.ts";
import { findClient } from "../clients/service.ts";
import { type Users, userStatus } from "../users/service.ts";
import { type CodePurpose, Codes } from "./codes.ts";
import { LoginError } from "./errors.ts";

export { LoginError } from "./errors.ts";

/**
 * Who may log in to a client's wallet, and how: logins (e-mail or phone) with a role in an
 * organization, scrypt password hashes, access tokens (only their SHA-256 kept, with an expiry),
 * one-time codes through the notifier, and a lock after repeated wrong passwords.
 *
 * A customer (`individual`, `merchant`) is a core user (users.ts) — the same person the Platform
 * API and the other faces see — with an organization of its own. Staff belong to the client's
 * `system` organization (or one an administrator made) and have no core user.
 */
export const STAFF_ROLES = ["administrator", "accountant", "compliance_officer", "support"] as const;
export const CUSTOMER_ROLES = ["individual", "merchant"] as const;
export const ROLES = [...STAFF_ROLES, ...CUSTOMER_ROLES] as const;
export type StaffRole = (typeof STAFF_ROLES)[number];
export type CustomerRole = (typeof CUSTOMER_ROLES)[number];
export type Role = (typeof ROLES)[number];
export const ORGANIZATION_TYPES = ["system", "merchant", "individual", "support", "cash_desk"] as const;
export type OrganizationType = (typeof ORGANIZATION_TYPES)[number];

export const isStaff = (role: string): role is StaffRole => (STAFF_ROLES as readonly string[]).includes(role);

export interface Organization {
  id: string;
  name: string;
  type: OrganizationType;
  createdAt: Date;
}

export interface Login {
  clientId: string;
  /** The user id: a customer's core user id, or a staff member's own. */
  id: string;
  login: string;
  role: Role;
  organization: Organization;
  legalType: "individual" | "corporation" | null;
  name: string | null;
  twoFactor: boolean;
  active: boolean;
  createdAt: Date;
}

/** What an access token stands for, checked on every call. */
export interface Session {
  clientId: string;
  userId: string;
  role: Role;
  organizationId: string;
  login: string;
  expiresAt: Date;
  tokenHash: string;
}

export interface IssuedToken {
  token: string;
  expiresAt: Date;
  login: Login;
}

export type AuthorizationOutcome = { action: "TOKEN_CREATED"; issued: IssuedToken } | { action: "OTP_SENT" };

export interface LoginsOptions {
  tokenTtlSeconds: number;
  /** Wrong passwords in a row before the login is locked. */
  maxFailures?: number;
  lockMinutes?: number;
  /** Wrong passwords in a row after which each answer is slowed down. */
  slowAfter?: number;
  /** Milliseconds added per wrong password past `slowAfter` (tests set 0). */
  slowStepMs?: number;
}

/** How long a guess being weighed holds its place as "in flight" (a killed process's lapses). */
const IN_FLIGHT_SECONDS = 60;
/** The guesses of a login in flight now (a lapsed mark counts none). */
const IN_FLIGHT = sql<number>`(CASE WHEN in_flight_until > now() THEN attempts_in_flight ELSE 0 END)`;

const CODE_TTL_SECONDS: Record<CodePurpose, number> = {
  REGISTRATION: 24 * 3600,
  LOGIN: 10 * 60,
  PASSWORD_RESET: 30 * 60,
};

/** A login: an e-mail (lower-cased) or a phone number as digits (a leading + and spaces dropped). */
export function normalizeLogin(raw: string): string {
  const value = raw.trim();
  if (value.includes("@")) {
    const email = value.toLowerCase();
    if (email.length > 254 || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email))
      throw new LoginError("INVALID_LOGIN", "login: an e-mail address or a phone number", "login");
    return email;
  }
  const digits = value.replace(/[\s()-]/g, "").replace(/^\+/, "");
  if (!/^[0-9]{7,15}$/.test(digits))
    throw new LoginError(
      "INVALID_LOGIN",
      "login: an e-mail address or a phone number (7–15 digits)",
      "login",
    );
  return digits;
}

const PASSWORD_SPECIALS = "#$!@*&%";

/** The first password rule `password` breaks, in words (undefined: it keeps them all). */
export function passwordProblem(password: string): string | undefined {
  if (password.length < 8) return "must be at least 8 characters long";
  if (password.length > 128) return "must be at most 128 characters long";
  if (!/[A-Z]/.test(password)) return "must contain an upper-case letter";
  if (!/[a-z]/.test(password)) return "must contain a lower-case letter";
  if (!/[0-9]/.test(password)) return "must contain a digit";
  if (![...PASSWORD_SPECIALS].some((c) => password.includes(c)))
    return `must contain one of ${[...PASSWORD_SPECIALS].join(" ")}`;
  return undefined;
}

function assertPassword(password: string, field = "password") {
  const problem = passwordProblem(password);
  if (problem) throw new LoginError("WEAK_PASSWORD", `${field} ${problem}`, field);
}

/** A generated password that keeps the rules (printed or sent once). */
export function generateLoginPassword(): string {
  return `${generatePassword()}Aa1#`;
}

export const tokenHashOf = (token: string) => createHash("sha256").update(token).digest("hex");

type LoginRow = {
  client_id: string;
  id: string;
  login: string;
  role: string;
  organization_id: string;
  legal_type: string | null;
  name: string | null;
  two_factor: boolean;
  active: boolean;
  created_at: Date;
  organization_name: string;
  organization_type: string;
  organization_created_at: Date;
};

function toLogin(row: LoginRow): Login {
  return {
    clientId: row.client_id,
    id: row.id,
    login: row.login,
    role: row.role as Role,
    organization: {
      id: row.organization_id,
      name: row.organization_name,
      type: row.organization_type as OrganizationType,
      createdAt: new Date(row.organization_created_at),
    },
    legalType: row.legal_type as Login["legalType"],
    name: row.name,
    twoFactor: row.two_factor,
    active: row.active,
    createdAt: new Date(row.created_at),
  };
}

export interface LoginFilter {
  ids?: string[] | undefined;
  email?: string | undefined;
  phone?: string | undefined;
  text?: string | undefined;
  roles?: string[] | undefined;
  active?: boolean | undefined;
  organizationIds?: string[] | undefined;
}

export class Logins {
  readonly codes: Codes;
  private readonly maxFailures: number;
  private readonly lockMinutes: number;
  private readonly slowAfter: number;
  private readonly slowStepMs: number;
  private readonly dummyHash: Promise<string>;

  constructor(
    private readonly db: Db,
    private readonly users: Users,
    private readonly notifier: Notifier,
    sealer: Sealer,
    private readonly options: LoginsOptions,
  ) {
    this.codes = new Codes(db, sealer, (purpose) => CODE_TTL_SECONDS[purpose]);
    this.maxFailures = options.maxFailures ?? 5;
    this.lockMinutes = options.lockMinutes ?? 15;
    this.slowAfter = options.slowAfter ?? 3;
    this.slowStepMs = options.slowStepMs ?? 500;
    this.dummyHash = hashPassword(generatePassword());
  }

  // ——— organizations ———

  /** The client's `system` organization (its staff's), made with the client; made here if missing. */
  async systemOrganization(db: Db, clientId: string): Promise<Organization> {
    const found = await this.findOrganization(db, clientId, { type: "system" });
    if (found) return found;
    const client = await db
      .selectFrom("clients")
      .select("name")
      .where("id", "=", clientId)
      .executeTakeFirst();
    if (!client) throw new LoginError("ORGANIZATION_NOT_FOUND", `no client ${clientId}`);
    await db
      .insertInto("organizations")
      .values({ client_id: clientId, id: newId(), name: client.name, type: "system" })
      .onConflict((oc) => oc.column("client_id").where("type", "=", "system").doNothing())
      .execute();
    const made = await this.findOrganization(db, clientId, { type: "system" });
    if (!made) throw new Error("the system organization could not be made");
    return made;
  }

  async organization(clientId: string, id: string): Promise<Organization> {
    const found = await this.findOrganization(this.db, clientId, { id });
    if (!found) throw new LoginError("ORGANIZATION_NOT_FOUND", `no organization ${id}`, "organizationId");
    return found;
  }

  async listOrganizations(clientId: string, page: { offset: number; limit: number }, types?: string[]) {
    await this.systemOrganization(this.db, clientId);
    let query = this.db.selectFrom("organizations").where("client_id", "=", clientId);
    if (types && types.length > 0) query = query.where("type", "in", types);
    const [rows, count] = await Promise.all([
      query.selectAll().orderBy("created_at").orderBy("id").offset(page.offset).limit(page.limit).execute(),
      query.select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow(),
    ]);
    return {
      organizations: rows.map((r) => ({
        id: r.id,
        name: r.name,
        type: r.type as OrganizationType,
        createdAt: new Date(r.created_at),
      })),
      total: Number(count.n),
    };
  }

  private async findOrganization(db: Db, clientId: string, where: { id?: string; type?: string }) {
    let query = db.selectFrom("organizations").selectAll().where("client_id", "=", clientId);
    if (where.id !== undefined) {
      if (!/^[0-9a-f-]{36}$/i.test(where.id)) return undefined;
      query = query.where("id", "=", where.id);
    }
    if (where.type !== undefined) query = query.where("type", "=", where.type);
    const row = await query.executeTakeFirst();
    return row
      ? {
          id: row.id,
          name: row.name,
          type: row.type as OrganizationType,
          createdAt: new Date(row.created_at),
        }
      : undefined;
  }

  // ——— logins ———

  private loginQuery(db: Db) {
    return db
      .selectFrom("logins as l")
      .innerJoin("organizations as o", (join) =>
        join.onRef("o.client_id", "=", "l.client_id").onRef("o.id", "=", "l.organization_id"),
      )
      .select([
        "l.client_id",
        "l.id",
        "l.login",
        "l.role",
        "l.organization_id",
        "l.legal_type",
        "l.name",
        "l.two_factor",
        "l.active",
        "l.created_at",
        "o.name as organization_name",
        "o.type as organization_type",
        "o.created_at as organization_created_at",
      ]);
  }

  async get(clientId: string, userId: string, db: Db = this.db): Promise<Login> {
    const row = await this.loginQuery(db)
      .where("l.client_id", "=", clientId)
      .where("l.id", "=", userId)
      .executeTakeFirst();
    if (!row) throw new LoginError("LOGIN_NOT_FOUND", `no user ${userId}`, "userId");
    return toLogin(row as LoginRow);
  }

  async findByLogin(clientId: string, login: string): Promise<Login | undefined> {
    const row = await this.loginQuery(this.db)
      .where("l.client_id", "=", clientId)
      .where("l.login", "=", login)
      .executeTakeFirst();
    return row ? toLogin(row as LoginRow) : undefined;
  }

  /**
   * Makes a staff member (in the system organization unless `organizationId` names another of the
   * client's) or a customer (a core user with an organization of its own). Without a password one
   * is generated: returned to the caller when `reveal` (the platform admin's first administrator),
   * otherwise sent to the login through the notifier.
   */
  async create(
    context: RequestContext,
    input: {
      login: string;
      role: Role;
      organizationId?: string | undefined;
      legalType?: "individual" | "corporation" | undefined;
      password?: string | undefined;
      name?: string | undefined;
      twoFactor?: boolean | undefined;
    },
    options: { reveal?: boolean } = {},
  ): Promise<{ login: Login; password?: string }> {
    const { clientId } = context;
    const login = normalizeLogin(input.login);
    if (input.password !== undefined) assertPassword(input.password);
    const password = input.password ?? generateLoginPassword();
    const passwordHash = await hashPassword(password);
    const created = await inTransaction(this.db, async (tx) => {
      const taken = await tx
        .selectFrom("logins")
        .select("id")
        .where("client_id", "=", clientId)
        .where("login", "=", login)
        .executeTakeFirst();
      if (taken) throw loginTaken();
      const userId = await this.insertLogin(tx, clientId, {
        login,
        role: input.role,
        organizationId: input.organizationId,
        legalType: input.legalType,
        name: input.name,
        passwordHash,
        twoFactor: input.twoFactor ?? false,
      });
      await writeAudit(tx, context, {
        action: "login.created",
        entityType: "login",
        entityId: userId,
        after: { role: input.role, twoFactor: input.twoFactor ?? false },
      });
      return this.get(clientId, userId, tx);
    });
    if (input.password !== undefined) return { login: created };
    if (options.reveal) return { login: created, password };
    await this.notifier.send({
      clientId,
      to: login,
      kind: "CREDENTIALS",
      text: `Your wallet login is ${login} and your password is ${password}. Change it after you first log in (POST /api/v1/password/change).`,
    });
    return { login: created };
  }

  /** The rows of a new login, in the caller's transaction: a customer's core user and organization first. */
  private async insertLogin(
    tx: Db,
    clientId: string,
    input: {
      login: string;
      role: Role;
      organizationId?: string | undefined;
      legalType?: string | undefined;
      name?: string | undefined;
      passwordHash: string;
      twoFactor: boolean;
    },
  ): Promise<string> {
    let userId: string;
    let organizationId: string;
    if (isStaff(input.role)) {
      userId = newId();
      organizationId = input.organizationId
        ? (await this.organizationIn(tx, clientId, input.organizationId)).id
        : (await this.systemOrganization(tx, clientId)).id;
    } else {
      userId = newId();
      organizationId = newId();
      const merchant = input.role === "merchant" || input.legalType === "corporation";
      await this.users.create(tx, {
        clientId,
        id: userId,
        type: merchant ? "BUSINESS" : "PERSON",
        info: input.login.includes("@") ? { emails: [input.login] } : { phones: [`+${input.login}`] },
      });
      await tx
        .insertInto("organizations")
        .values({
          client_id: clientId,
          id: organizationId,
          name: input.name ?? input.login,
          type: input.role === "merchant" ? "merchant" : "individual",
        })
        .execute();
    }
    await tx
      .insertInto("logins")
      .values({
        client_id: clientId,
        id: userId,
        login: input.login,
        role: input.role,
        organization_id: organizationId,
        legal_type:
          input.legalType ??
          (isStaff(input.role) ? null : input.role === "merchant" ? "corporation" : "individual"),
        name: input.name ?? null,
        password_hash: input.passwordHash,
        two_factor: input.twoFactor,
      })
      .execute();
    return userId;
  }

  /** An organization staff may join: the client's own kinds, never a customer's. */
  private async organizationIn(tx: Db, clientId: string, id: string) {
    const found = await this.findOrganization(tx, clientId, { id });
    if (!found) throw new LoginError("ORGANIZATION_NOT_FOUND", `no organization ${id}`, "organizationId");
    if (found.type === "individual" || found.type === "merchant")
      throw new LoginError(
        "INVALID_ROLE",
        "staff join the system organization (or a support or cash desk one), not a customer's",
        "organizationId",
      );
    return found;
  }

  /** A logged-in user changes their password (the old one first): every other token ends. */
  async changePassword(
    context: RequestContext,
    userId: string,
    tokenHash: string,
    input: { oldPassword: string; newPassword: string },
  ) {
    assertPassword(input.newPassword, "newPassword");
    // Counted like a guess at login (a stolen token cannot guess the password freely): reserved
    // before it is weighed; locked by wrong passwords here or at login, no guess is weighed.
    const row = await this.reserveAttempt(context.clientId, { id: userId });
    if (!row?.password_hash || !(await verifyPassword(input.oldPassword, row.password_hash))) {
      if (row) await this.settleAttempt(context.clientId, userId, false);
      throw new LoginError("WRONG_PASSWORD", "the old password is wrong", "oldPassword");
    }
    await this.settleAttempt(context.clientId, userId, true);
    if (input.newPassword === input.oldPassword) return; // nothing changes, no token ends
    const passwordHash = await hashPassword(input.newPassword);
    await inTransaction(this.db, async (tx) => {
      // A lock set while the new password was hashed stands: nothing changes.
      const changed = await tx
        .updateTable("logins")
        .set({ password_hash: passwordHash, updated_at: new Date() })
        .where("client_id", "=", context.clientId)
        .where("id", "=", userId)
        .where((eb) => eb.or([eb("locked_until", "is", null), eb("locked_until", "<=", sql<Date>`now()`)]))
        .returning("id")
        .executeTakeFirst();
      if (!changed) {
        const lock = await tx
          .selectFrom("logins")
          .select("locked_until")
          .where("client_id", "=", context.clientId)
          .where("id", "=", userId)
          .executeTakeFirst();
        throw this.locked(lock?.locked_until ? new Date(lock.locked_until) : new Date(Date.now() + 1000));
      }
      await this.revokeAll(tx, context.clientId, userId, tokenHash);
      await writeAudit(tx, context, {
        action: "login.password_changed",
        entityType: "login",
        entityId: userId,
      });
    });
  }

  /** A Pay-in customer's preferred currency (the profile's `primaryCurrency`), or null. */
  async primaryCurrency(clientId: string, userId: string, db: Db = this.db): Promise<string | null> {
    const row = await db
      .selectFrom("logins")
      .select("primary_currency")
      .where("client_id", "=", clientId)
      .where("id", "=", userId)
      .executeTakeFirst();
    return row?.primary_currency ?? null;
  }

  /** Sets it, in the caller's transaction. */
  async setPrimaryCurrency(tx: Db, clientId: string, userId: string, currency: string): Promise<void> {
    await tx
      .updateTable("logins")
      .set({ primary_currency: currency, updated_at: new Date() })
      .where("client_id", "=", clientId)
      .where("id", "=", userId)
      .execute();
  }

  /** Changes a login's state (an administrator): active, two-factor. Ending `active` ends its tokens. */
  async update(
    context: RequestContext,
    userId: string,
    change: { active?: boolean | undefined; twoFactor?: boolean | undefined },
  ) {
    return inTransaction(this.db, async (tx) => {
      const before = await this.get(context.clientId, userId, tx);
      await tx
        .updateTable("logins")
        .set({
          ...(change.active === undefined ? {} : { active: change.active }),
          ...(change.twoFactor === undefined ? {} : { two_factor: change.twoFactor }),
          updated_at: new Date(),
        })
        .where("client_id", "=", context.clientId)
        .where("id", "=", userId)
        .execute();
      if (change.active === false) await this.revokeAll(tx, context.clientId, userId);
      await writeAudit(tx, context, {
        action: "login.updated",
        entityType: "login",
        entityId: userId,
        before: { active: before.active, twoFactor: before.twoFactor },
        after: { active: change.active ?? before.active, twoFactor: change.twoFactor ?? before.twoFactor },
      });
      return this.get(context.clientId, userId, tx);
    });
  }

  /** A page of the client's logins with the filters of `POST /users/view`. */
  async view(clientId: string, filter: LoginFilter, page: { offset: number; limit: number }) {
    let query = this.loginQuery(this.db).where("l.client_id", "=", clientId);
    if (filter.ids) query = query.where("l.id", "in", filter.ids.length > 0 ? filter.ids : [""]);
    if (filter.email !== undefined) query = query.where("l.login", "=", filter.email.trim().toLowerCase());
    if (filter.phone !== undefined)
      query = query.where("l.login", "=", filter.phone.replace(/[\s()+-]/g, ""));
    if (filter.text !== undefined && filter.text !== "") {
      const pattern = `%${filter.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      query = query.where((eb) => eb.or([eb("l.login", "ilike", pattern), eb("l.name", "ilike", pattern)]));
    }
    if (filter.roles) query = query.where("l.role", "in", filter.roles.length > 0 ? filter.roles : [""]);
    if (filter.active !== undefined) query = query.where("l.active", "=", filter.active);
    if (filter.organizationIds) {
      const ids = filter.organizationIds.filter((id) => /^[0-9a-f-]{36}$/i.test(id));
      query = query.where(
        "l.organization_id",
        "in",
        ids.length > 0 ? ids : ["00000000-0000-0000-0000-000000000000"],
      );
    }
    const [rows, count] = await Promise.all([
      query.orderBy("l.created_at").orderBy("l.id").offset(page.offset).limit(page.limit).execute(),
      query
        .clearSelect()
        .select((eb) => eb.fn.countAll<string>().as("n"))
        .executeTakeFirstOrThrow(),
    ]);
    return { logins: rows.map((r) => toLogin(r as LoginRow)), total: Number(count.n) };
  }

  // ——— access ———

  /**
   * Login with a password. Wrong passwords are counted per login; past `slowAfter` in a row each
   * answer waits longer; at `maxFailures` the login is locked for `lockMinutes` (429 with
   * Retry-After). An unknown login costs the same scrypt work as a known one.
   *
   * Every guess takes its place in the count before the comparison (`reserveAttempt`, one atomic
   * statement), so however many arrive at once, at most `maxFailures` of them are weighed; the others
   * answer 429 unweighed. A right password resets the count only if the login was not locked
   * meanwhile (then it answers 429 too) — see `settleAttempt`.
   */
  async authorize(clientId: string, rawLogin: string, password: string): Promise<AuthorizationOutcome> {
    const login = safeLogin(rawLogin);
    const row = login ? await this.reserveAttempt(clientId, { login }) : undefined;
    const stored = row?.password_hash ?? (await this.dummyHash);
    const ok = (await verifyPassword(password, stored)) && row?.password_hash != null;
    if (!row || !ok || !login) {
      if (row) await this.settleAttempt(clientId, row.id, false);
      throw wrongCredentials(this.maxFailures, this.lockMinutes);
    }
    await this.settleAttempt(clientId, row.id, true);
    if (!row.active || !(await this.customerActive(this.db, clientId, row.id))) throw notActive();
    if (row.two_factor) {
      const code = await this.codes.issue(this.db, { clientId, login, purpose: "LOGIN" });
      await this.sendCode(clientId, login, "LOGIN", code);
      return { action: "OTP_SENT" };
    }
    return {
      action: "TOKEN_CREATED",
      issued: await inTransaction(this.db, (tx) => this.issueToken(tx, clientId, row.id)),
    };
  }

  /** The second factor: the code sent at login. */
  async confirmLogin(clientId: string, rawLogin: string, otp: string): Promise<IssuedToken> {
    const login = normalizeLogin(rawLogin);
    const key = { clientId, login, purpose: "LOGIN" as const };
    const { hash } = await this.codes.check(key, otp);
    return inTransaction(this.db, async (tx) => {
      await this.codes.consume(tx, key, hash);
      const found = await tx
        .selectFrom("logins")
        .select(["id", "active"])
        .where("client_id", "=", clientId)
        .where("login", "=", login)
        .executeTakeFirst();
      if (!found) throw wrongCredentials(this.maxFailures, this.lockMinutes);
      if (!found.active || !(await this.customerActive(tx, clientId, found.id))) throw notActive();
      return this.issueToken(tx, clientId, found.id);
    });
  }

  async resendLoginCode(clientId: string, rawLogin: string): Promise<void> {
    const login = normalizeLogin(rawLogin);
    const code = await this.codes.resend({ clientId, login, purpose: "LOGIN" });
    await this.sendCode(clientId, login, "LOGIN", code);
  }

  /**
   * Takes a place in the login's count of wrong passwords for a guess about to be weighed, in one
   * atomic statement: refused while the login is locked or while wrong passwords and guesses in
   * flight already fill the count. Refused with the count full, the login is locked there and then
   * (a guess past the limit); either way the refusal is a 429 and the guess is never compared.
   * Undefined: no such login (the caller weighs the guess against a dummy hash all the same).
   */
  private async reserveAttempt(clientId: string, who: { login: string } | { id: string }) {
    const which = "login" in who ? sql`login = ${who.login}` : sql`id = ${who.id}`;
    for (let round = 0; round < 3; round++) {
      const { rows } = await sql<{
        id: string;
        password_hash: string | null;
        active: boolean;
        two_factor: boolean;
      }>`
        UPDATE logins
           SET failed_attempts = failed_attempts + 1,
               attempts_in_flight = ${IN_FLIGHT} + 1,
               in_flight_until = now() + make_interval(secs => ${IN_FLIGHT_SECONDS}),
               updated_at = now()
         WHERE client_id = ${clientId} AND ${which}
           AND (locked_until IS NULL OR locked_until <= now()) AND failed_attempts < ${this.maxFailures}
        RETURNING id, password_hash, active, two_factor`.execute(this.db);
      if (rows[0]) return rows[0];
      const { rows: refused } = await sql<{ id: string; locked_until: Date | null; locked: boolean }>`
        SELECT id, locked_until, COALESCE(locked_until > now(), false) AS locked
          FROM logins WHERE client_id = ${clientId} AND ${which}`.execute(this.db);
      const found = refused[0];
      if (!found) return undefined;
      if (found.locked && found.locked_until) throw this.locked(new Date(found.locked_until));
      // Not locked, yet no place: the count is full of guesses being weighed. This one is past the limit.
      const { rows: lockedNow } = await sql<{ locked_until: Date }>`
        UPDATE logins
           SET locked_until = now() + make_interval(mins => ${this.lockMinutes}),
               failed_attempts = ${this.maxFailures - 1}, updated_at = now()
         WHERE client_id = ${clientId} AND id = ${found.id}
           AND (locked_until IS NULL OR locked_until <= now()) AND failed_attempts >= ${this.maxFailures}
        RETURNING locked_until`.execute(this.db);
      if (lockedNow[0]) throw this.locked(new Date(lockedNow[0].locked_until));
      // The count changed in between (a guess settled, or another request locked it): look again.
    }
    throw this.locked(new Date(Date.now() + 1000));
  }

  /**
   * Settles a reserved guess, in one statement. Wrong: it stays counted; reaching `maxFailures` locks
   * the login (429), and the count starts over one short of the limit so that the first wrong
   * password after the lock ends locks it again. Right: the count is reset, but only if no lock
   * stands (a lock set while the guess was weighed stands, and the right password answers 429 too)
   * and no other guess is in flight (their places stay taken, so a burst gets no new ones).
   */
  private async settleAttempt(clientId: string, userId: string, right: boolean) {
    const open = sql`(locked_until IS NULL OR locked_until <= now())`;
    const { rows } = right
      ? await sql<{ failed_attempts: number; locked_until: Date | null; locked: boolean }>`
          UPDATE logins
             SET failed_attempts = CASE WHEN ${open} AND ${IN_FLIGHT} <= 1 THEN 0 ELSE failed_attempts END,
                 locked_until = CASE WHEN ${open} THEN NULL ELSE locked_until END,
                 attempts_in_flight = GREATEST(${IN_FLIGHT} - 1, 0)
           WHERE client_id = ${clientId} AND id = ${userId}
          RETURNING failed_attempts, locked_until, COALESCE(locked_until > now(), false) AS locked`.execute(
          this.db,
        )
      : await sql<{ failed_attempts: number; locked_until: Date | null; locked: boolean }>`
          UPDATE logins
             SET locked_until = CASE WHEN ${open} AND failed_attempts >= ${this.maxFailures}
                                     THEN now() + make_interval(mins => ${this.lockMinutes}) ELSE locked_until END,
                 failed_attempts = CASE WHEN ${open} AND failed_attempts >= ${this.maxFailures}
                                        THEN ${this.maxFailures - 1} ELSE failed_attempts END,
                 attempts_in_flight = GREATEST(${IN_FLIGHT} - 1, 0),
                 updated_at = now()
           WHERE client_id = ${clientId} AND id = ${userId}
          RETURNING failed_attempts, locked_until, COALESCE(locked_until > now(), false) AS locked`.execute(
          this.db,
        );
    const after = rows[0];
    if (!after) return;
    if (after.locked && after.locked_until) throw this.locked(new Date(after.locked_until));
    if (right) return;
    const over = after.failed_attempts - this.slowAfter + 1;
    if (over > 0 && this.slowStepMs > 0)
      await new Promise((r) => setTimeout(r, Math.min(over * this.slowStepMs, 3000)));
  }

  private locked(until: Date) {
    const seconds = Math.max(1, Math.ceil((until.getTime() - Date.now()) / 1000));
    return new LoginError(
      "RATE_LIMITED",
      `too many wrong passwords: this login is locked until ${until.toISOString()}`,
      "password",
      { headers: { "Retry-After": String(seconds) } },
    );
  }

  /**
   * A customer is a core user: one who is BLOCKED or INACTIVE is given no access token (issue 17.9),
   * answered as a login switched off. Staff are not core users.
   */
  private async customerActive(db: Db, clientId: string, userId: string): Promise<boolean> {
    const status = await userStatus(db, clientId, userId);
    return status === undefined || status === "ACTIVE";
  }

  private async issueToken(tx: Db, clientId: string, userId: string): Promise<IssuedToken> {
    const token = `fwa_${randomBytes(32).toString("base64url")}`;
    const expiresAt = new Date(Date.now() + this.options.tokenTtlSeconds * 1000);
    await tx
      .insertInto("login_sessions")
      .values({ token_hash: tokenHashOf(token), client_id: clientId, user_id: userId, expires_at: expiresAt })
      .execute();
    return { token, expiresAt, login: await this.get(clientId, userId, tx) };
  }

  /** The session behind a token: unknown, expired, revoked, or of a login no longer active → undefined. */
  /**
   * The session behind a token: unknown, expired, revoked, of a login no longer active or of a
   * suspended client → undefined. Sessions are kept in the process cache: whatever ends one
   * (logout, a login switched off, a password reset or change) announces it to every process in
   * the transaction that ends it; expiry and the client's status are checked on every call.
   */
  async session(token: string): Promise<Session | undefined> {
    if (token.length > 200) return undefined;
    const tokenHash = tokenHashOf(token);
    const found = await cachedRead(this.db, "session", tokenHash, async () => {
      const row = await this.db
        .selectFrom("login_sessions as s")
        .innerJoin("logins as l", (join) =>
          join.onRef("l.client_id", "=", "s.client_id").onRef("l.id", "=", "s.user_id"),
        )
        .select(["s.client_id", "s.user_id", "s.expires_at", "l.role", "l.organization_id", "l.login"])
        .where("s.token_hash", "=", tokenHash)
        .where("s.revoked_at", "is", null)
        .where("l.active", "=", true)
        .executeTakeFirst();
      return row
        ? {
            clientId: row.client_id,
            userId: row.user_id,
            role: row.role as Role,
            organizationId: row.organization_id,
            login: row.login,
            expiresAt: new Date(row.expires_at),
            tokenHash,
          }
        : undefined;
    });
    if (!found || found.expiresAt.getTime() <= Date.now()) return undefined;
    const client = await findClient(this.db, found.clientId);
    return client?.status === "ACTIVE" ? found : undefined;
  }

  async revoke(tokenHash: string): Promise<void> {
    await inTransaction(this.db, async (tx) => {
      await tx
        .updateTable("login_sessions")
        .set({ revoked_at: new Date() })
        .where("token_hash", "=", tokenHash)
        .where("revoked_at", "is", null)
        .execute();
      await announceChange(tx, "session", tokenHash);
    });
  }

  /** Ends the user's tokens (all, or all but `keep`), in the caller's transaction, announced to every process. */
  private async revokeAll(tx: Db, clientId: string, userId: string, keep?: string) {
    let query = tx
      .updateTable("login_sessions")
      .set({ revoked_at: new Date() })
      .where("client_id", "=", clientId)
      .where("user_id", "=", userId)
      .where("revoked_at", "is", null);
    if (keep !== undefined) query = query.where("token_hash", "<>", keep);
    const ended = await query.returning("token_hash").execute();
    for (const { token_hash } of ended) await announceChange(tx, "session", token_hash);
  }

  /** A one-time code to the login, through the notifier. */
  private sendCode(clientId: string, login: string, purpose: CodePurpose, code: string) {
    const text = {
      LOGIN: `Your login code is ${code}.`,
      REGISTRATION: `Your registration code is ${code}. It is valid for 24 hours.`,
      PASSWORD_RESET: `Your password reset code is ${code}. It is valid for 30 minutes.`,
    }[purpose];
    return this.notifier.send({ clientId, to: login, kind: purpose, otp: code, text });
  }

  // ——— registration ———

  /** Self-registration: a code to the login (valid 24 h); the account is made when it comes back. */
  async register(
    clientId: string,
    input: { login: string; role: CustomerRole; legalType?: "individual" | "corporation" | undefined },
  ): Promise<void> {
    const login = normalizeLogin(input.login);
    if (await this.findByLogin(clientId, login)) throw loginTaken();
    const code = await this.codes.issue(
      this.db,
      { clientId, login, purpose: "REGISTRATION" },
      { role: input.role, legalType: input.legalType ?? null },
    );
    await this.sendCode(clientId, login, "REGISTRATION", code);
  }

  async resendRegistration(clientId: string, rawLogin: string): Promise<void> {
    const login = normalizeLogin(rawLogin);
    const code = await this.codes.resend({ clientId, login, purpose: "REGISTRATION" });
    await this.sendCode(clientId, login, "REGISTRATION", code);
  }

  /** The code and a password: the customer is made (core user, organization, login) and logged in. */
  async confirmRegistration(
    context: RequestContext,
    input: { login: string; otp: string; password: string },
  ): Promise<IssuedToken> {
    const { clientId } = context;
    const login = normalizeLogin(input.login);
    assertPassword(input.password);
    const key = { clientId, login, purpose: "REGISTRATION" as const };
    const { hash, details } = await this.codes.check(key, input.otp);
    const passwordHash = await hashPassword(input.password);
    return inTransaction(this.db, async (tx) => {
      await this.codes.consume(tx, key, hash);
      const taken = await tx
        .selectFrom("logins")
        .select("id")
        .where("client_id", "=", clientId)
        .where("login", "=", login)
        .executeTakeFirst();
      if (taken) throw loginTaken();
      const role = details.role === "merchant" ? "merchant" : "individual";
      const legalType =
        details.legalType === "corporation" || details.legalType === "individual"
          ? details.legalType
          : undefined;
      const userId = await this.insertLogin(tx, clientId, {
        login,
        role,
        legalType,
        passwordHash,
        twoFactor: false,
      });
      await writeAudit(
        tx,
        { ...context, actor: { kind: "user", id: userId } },
        { action: "login.registered", entityType: "login", entityId: userId, after: { role } },
      );
      return this.issueToken(tx, clientId, userId);
    });
  }

  // ——— password recovery ———

  /** A reset code to the login, if there is such a login (the answer does not say). */
  async startRecovery(clientId: string, rawLogin: string): Promise<void> {
    const login = safeLogin(rawLogin);
    if (!login || !(await this.findByLogin(clientId, login))) return;
    const code = await this.codes
      .issue(this.db, { clientId, login, purpose: "PASSWORD_RESET" })
      .catch((error: unknown) => {
        if (error instanceof LoginError) return undefined;
        throw error;
      });
    if (code === undefined) return;
    await this.sendCode(clientId, login, "PASSWORD_RESET", code);
  }

  /** The reset code and a new password: the password changes, the lock ends, every token ends. */
  async confirmRecovery(
    context: RequestContext,
    input: { login: string; otp: string; password: string },
  ): Promise<void> {
    const { clientId } = context;
    const login = normalizeLogin(input.login);
    assertPassword(input.password);
    const key = { clientId, login, purpose: "PASSWORD_RESET" as const };
    const { hash } = await this.codes.check(key, input.otp);
    const passwordHash = await hashPassword(input.password);
    await inTransaction(this.db, async (tx) => {
      await this.codes.consume(tx, key, hash);
      const row = await tx
        .updateTable("logins")
        .set({ password_hash: passwordHash, failed_attempts: 0, locked_until: null, updated_at: new Date() })
        .where("client_id", "=", clientId)
        .where("login", "=", login)
        .returning("id")
        .executeTakeFirst();
      if (!row) throw new LoginError("LOGIN_NOT_FOUND", "no such login", "login");
      await this.revokeAll(tx, clientId, row.id);
      await writeAudit(
        tx,
        { ...context, actor: { kind: "user", id: row.id } },
        { action: "login.password_reset", entityType: "login", entityId: row.id },
      );
    });
  }

  /** Expired tokens and codes (the purge worker). */
  async purgeExpired(): Promise<number> {
    const sessions = await this.db
      .deleteFrom("login_sessions")
      .where("expires_at", "<", new Date(Date.now() - 24 * 3600 * 1000))
      .executeTakeFirst();
    return Number(sessions.numDeletedRows) + (await this.codes.purgeExpired());
  }
}

function safeLogin(raw: string): string | undefined {
  try {
    return normalizeLogin(raw);
  } catch {
    return undefined;
  }
}

function loginTaken() {
  return new LoginError("LOGIN_TAKEN", "this login is registered already", "login");
}

function notActive() {
  return new LoginError("LOGIN_NOT_ACTIVE", "this login is not active", "login");
}

function wrongCredentials(maxFailures: number, lockMinutes: number) {
  return new LoginError(
    "WRONG_CREDENTIALS",
    `wrong login or password (after ${maxFailures} wrong passwords in a row the login is locked for ${lockMinutes} minutes)`,
  );
}
