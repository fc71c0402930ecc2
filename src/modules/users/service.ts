// Over 400 lines on purpose: users, their sealed PII and the rule that a blocked or inactive user is
// given nothing new, in one place; reads are batched per request (UserReads) beside the writes.
import { type RawBuilder, sql } from "kysely";
import type { Db } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import type { Actor } from "../../lib/context.ts";
import { DomainError } from "../../lib/errors.ts";
import type { Sealer } from "../../lib/sealer.ts";
import { writeAudit } from "../audit/service.ts";
import type { UserEventSink } from "./events.ts";
import type { UserInfo, UserStatus, UserType } from "./schemas.ts";

export interface User {
  clientId: string;
  id: string;
  type: UserType;
  status: UserStatus;
  statusReason: string | null;
  tier: number;
  createdAt: Date;
  updatedAt: Date;
}

const kinds = {
  USER_EXISTS: "CONFLICT",
  USER_NOT_FOUND: "NOT_FOUND",
  INVALID_USER: "INVALID",
  USER_NOT_ACTIVE: "FORBIDDEN",
} as const;

export class UserError extends DomainError {
  constructor(code: keyof typeof kinds, message: string, field?: string) {
    super(kinds[code], code, message, field);
  }
}

type UserRow = {
  client_id: string;
  id: string;
  type: string;
  status: string;
  status_reason: string | null;
  tier: number;
  created_at: Date;
  updated_at: Date;
};

function toUser(row: UserRow): User {
  return {
    clientId: row.client_id,
    id: row.id,
    type: row.type as UserType,
    status: row.status as UserStatus,
    statusReason: row.status_reason,
    tier: Number(row.tier),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/**
 * The rule every module that gives a user something keeps (issue 17.9): a user who is BLOCKED or
 * INACTIVE is given no user token, no wallet, no payment information, and is told so by the
 * validations endpoint — 403 `USER_NOT_ACTIVE` (spec/README.md: "403 … user not active"). The reason
 * of a block is not said: the end user may be the one who reads it.
 */
export function assertActive(user: Pick<User, "status">): void {
  if (user.status !== "ACTIVE")
    throw new UserError("USER_NOT_ACTIVE", `the user is ${user.status}`, "userId");
}

/** A user of the client (404 if none) who is ACTIVE (403 otherwise): see `assertActive`. */
export async function requireActiveUser(db: Db, clientId: string, userId: string): Promise<User> {
  const user = await findUser(db, clientId, userId);
  if (!user) throw new UserError("USER_NOT_FOUND", `no user ${userId}`);
  assertActive(user);
  return user;
}

/** The status of a core user of the client, or undefined if there is none (a staff login). */
export async function userStatus(db: Db, clientId: string, userId: string): Promise<UserStatus | undefined> {
  return (await findUser(db, clientId, userId))?.status;
}

async function findUser(db: Db, clientId: string, userId: string, forUpdate = false) {
  let query = db.selectFrom("users").selectAll().where("client_id", "=", clientId).where("id", "=", userId);
  if (forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row ? toUser(row as UserRow) : undefined;
}

/** PII is sealed with the user's identity as associated data: it cannot be moved to another user. */
const aad = (clientId: string, userId: string) => `user-pii:${clientId}:${userId}`;

/** One request's reads of users (Users.reads). */
export interface UserReads {
  /**
   * Reads these users in one statement (what the request will ask for); `also`, an SQL expression,
   * is evaluated in the same statement and its value returned (undefined if no user was found).
   */
  preload(userIds: string[], also?: RawBuilder<unknown>): Promise<unknown>;
  user(userId: string): Promise<User>;
  info(userId: string): Promise<UserInfo>;
  /** After the request changed the user's information. */
  forget(userId: string): void;
}

export class Users {
  constructor(
    private readonly db: Db,
    private readonly sealer: Sealer,
    /** Where user events go: the faces' webhooks. */
    private readonly events: UserEventSink,
  ) {}

  /** Creates a user in a transaction of its own (see `create`). */
  register(
    input: { clientId: string; id: string; type: UserType; info: UserInfo },
    options: { suppressWebhook?: boolean | undefined } = {},
  ): Promise<User> {
    return inTransaction(this.db, (tx) => this.create(tx, input, options));
  }

  /**
   * Writes a user's information (replaced or merged) and, if given, their status, in one
   * transaction; a change of status is audited with the actor.
   */
  update(
    context: { clientId: string; actor: Actor },
    userId: string,
    change: {
      info: UserInfo;
      mode: "replace" | "merge";
      type?: UserType | undefined;
      status?: UserStatus | undefined;
      statusReason?: string | null | undefined;
    },
    options: { suppressWebhook?: boolean | undefined } = {},
  ): Promise<{ user: User; changed: boolean }> {
    const { clientId } = context;
    return inTransaction(this.db, async (tx) => {
      const written = await this.writeInfo(tx, clientId, userId, change.info, change.mode, change.type);
      if (change.status === undefined) return { user: written.user, changed: written.changed };
      const before = written.user;
      const user = await this.setStatus(
        tx,
        clientId,
        userId,
        { status: change.status, statusReason: change.statusReason },
        options,
      );
      if (user.status !== before.status || user.statusReason !== before.statusReason)
        await writeAudit(tx, context, {
          action: "user.status_changed",
          entityType: "user",
          entityId: userId,
          before: { status: before.status, statusReason: before.statusReason },
          after: { status: user.status, statusReason: user.statusReason },
        });
      return { user, changed: written.changed };
    });
  }

  /** Creates the user and its `USER` event (status ACTIVE), in the caller's transaction. */
  async create(
    tx: Db,
    input: { clientId: string; id: string; type: UserType; info: UserInfo },
    options: { suppressWebhook?: boolean | undefined } = {},
  ): Promise<User> {
    const row = await tx
      .insertInto("users")
      .values({ client_id: input.clientId, id: input.id, type: input.type })
      .onConflict((oc) => oc.columns(["client_id", "id"]).doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!row) throw new UserError("USER_EXISTS", `user ${input.id} already exists`, "id");
    await tx
      .insertInto("user_pii")
      .values({
        client_id: input.clientId,
        user_id: input.id,
        ciphertext: this.seal(input.clientId, input.id, input.info),
      })
      .execute();
    const user = toUser(row as UserRow);
    await this.events.record(
      tx,
      { type: "user.created", user },
      { suppressDelivery: options.suppressWebhook },
    );
    return user;
  }

  /**
   * Blocks, deactivates or reactivates a user, with its `USER` event, in the caller's transaction.
   * The same status and reason again changes nothing and sends nothing.
   */
  async setStatus(
    tx: Db,
    clientId: string,
    userId: string,
    change: { status: UserStatus; statusReason?: string | null | undefined },
    options: { suppressWebhook?: boolean | undefined } = {},
  ): Promise<User> {
    const current = await this.get(tx, clientId, userId, { forUpdate: true });
    const statusReason = change.statusReason ?? null;
    if (current.status === change.status && current.statusReason === statusReason) return current;
    const row = await tx
      .updateTable("users")
      .set({ status: change.status, status_reason: statusReason, updated_at: new Date() })
      .where("client_id", "=", clientId)
      .where("id", "=", userId)
      .returningAll()
      .executeTakeFirstOrThrow();
    const user = toUser(row as UserRow);
    await this.events.record(
      tx,
      { type: "user.status_changed", user },
      { suppressDelivery: options.suppressWebhook },
    );
    return user;
  }

  /** The client's user, or undefined when there is none. */
  async find(db: Db, clientId: string, userId: string): Promise<User | undefined> {
    const row = await db
      .selectFrom("users")
      .selectAll()
      .where("client_id", "=", clientId)
      .where("id", "=", userId)
      .executeTakeFirst();
    return row ? toUser(row as UserRow) : undefined;
  }

  async get(db: Db, clientId: string, userId: string, options: { forUpdate?: boolean } = {}): Promise<User> {
    const user = await findUser(db, clientId, userId, options.forUpdate);
    if (!user) throw new UserError("USER_NOT_FOUND", `no user ${userId}`);
    return user;
  }

  async list(
    clientId: string,
    page: { offset: number; limit: number },
  ): Promise<{ users: User[]; total: number }> {
    const base = this.db.selectFrom("users").where("client_id", "=", clientId);
    const [rows, count] = await Promise.all([
      base.selectAll().orderBy("created_at").orderBy("id").offset(page.offset).limit(page.limit).execute(),
      base.select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow(),
    ]);
    return { users: rows.map((r) => toUser(r as UserRow)), total: Number(count.n) };
  }

  /** Users and their information (decrypted when asked for), in one statement; absent ids are left out. */
  async withInfo(
    db: Db,
    clientId: string,
    userIds: string[],
    also?: RawBuilder<unknown>,
  ): Promise<Map<string, { user: User; info: () => UserInfo }> & { also?: unknown }> {
    const rows = await db
      .selectFrom("users")
      .innerJoin("user_pii", (join) =>
        join.onRef("user_pii.client_id", "=", "users.client_id").onRef("user_pii.user_id", "=", "users.id"),
      )
      .selectAll("users")
      .select("user_pii.ciphertext")
      .select(also ? also.as("also") : sql<null>`NULL`.as("also"))
      .where("users.client_id", "=", clientId)
      .where((eb) =>
        userIds.length === 1 ? eb("users.id", "=", userIds[0] ?? "") : eb("users.id", "in", userIds),
      )
      .execute();
    const found: Map<string, { user: User; info: () => UserInfo }> & { also?: unknown } = new Map(
      rows.map(({ ciphertext, also: _also, ...row }) => {
        let info: UserInfo | undefined;
        return [
          row.id,
          {
            user: toUser(row as UserRow),
            info: () => {
              info ??= JSON.parse(this.sealer.open(ciphertext, aad(clientId, row.id))) as UserInfo;
              return info;
            },
          },
        ];
      }),
    );
    if (rows[0]) found.also = rows[0].also;
    return found;
  }

  /**
   * Reads for one request: each of a client's users (and their information) read and decrypted
   * once. `preload` reads several in one statement.
   */
  reads(clientId: string, db: Db = this.db): UserReads {
    const loaded = new Map<string, Promise<{ user: User; info: () => UserInfo }>>();
    const fetch = (userIds: string[], also?: RawBuilder<unknown>) => {
      const all = this.withInfo(db, clientId, userIds, also);
      for (const userId of userIds) {
        const pending = all.then((found) => {
          const entry = found.get(userId);
          if (!entry) throw new UserError("USER_NOT_FOUND", `no user ${userId}`);
          return entry;
        });
        pending.catch(() => loaded.delete(userId));
        loaded.set(userId, pending);
      }
      return all.then((found) => found.also);
    };
    const load = (userId: string) => {
      if (!loaded.has(userId)) void fetch([userId]).catch(() => {});
      return loaded.get(userId) as Promise<{ user: User; info: () => UserInfo }>;
    };
    return {
      preload: (userIds, also) => {
        const missing = [...new Set(userIds)].filter((id) => !loaded.has(id));
        return missing.length > 0 || also
          ? fetch(missing.length > 0 ? missing : userIds, also)
          : Promise.resolve(undefined);
      },
      user: async (userId) => (await load(userId)).user,
      info: async (userId) => (await load(userId)).info(),
      forget: (userId) => {
        loaded.delete(userId);
      },
    };
  }

  async info(db: Db, clientId: string, userId: string): Promise<UserInfo> {
    const row = await db
      .selectFrom("user_pii")
      .select("ciphertext")
      .where("client_id", "=", clientId)
      .where("user_id", "=", userId)
      .executeTakeFirst();
    if (!row) throw new UserError("USER_NOT_FOUND", `no user ${userId}`);
    return JSON.parse(this.sealer.open(row.ciphertext, aad(clientId, userId))) as UserInfo;
  }

  /**
   * Replaces (`mode: "replace"`) or merges into (`"merge"`) the user's information, in the caller's
   * transaction. Returns whether anything changed, so callers can start a KYC refresh.
   */
  async writeInfo(
    tx: Db,
    clientId: string,
    userId: string,
    info: UserInfo,
    mode: "replace" | "merge",
    type?: UserType,
  ): Promise<{ user: User; info: UserInfo; changed: boolean }> {
    const user = await this.get(tx, clientId, userId, { forUpdate: true });
    const before = await this.info(tx, clientId, userId);
    const after = mode === "replace" ? info : mergeInfo(before, info);
    const changed = JSON.stringify(normalize(before)) !== JSON.stringify(normalize(after));
    if (changed || (type && type !== user.type)) {
      await tx
        .updateTable("user_pii")
        .set({ ciphertext: this.seal(clientId, userId, after), updated_at: new Date() })
        .where("client_id", "=", clientId)
        .where("user_id", "=", userId)
        .execute();
      const row = await tx
        .updateTable("users")
        .set({ updated_at: new Date(), pii_version: sql`pii_version + 1`, ...(type ? { type } : {}) })
        .where("client_id", "=", clientId)
        .where("id", "=", userId)
        .returningAll()
        .executeTakeFirstOrThrow();
      return { user: toUser(row as UserRow), info: after, changed };
    }
    return { user, info: after, changed: false };
  }

  async setTier(tx: Db, clientId: string, userId: string, tier: number): Promise<void> {
    await tx
      .updateTable("users")
      .set({ tier, updated_at: new Date() })
      .where("client_id", "=", clientId)
      .where("id", "=", userId)
      .execute();
  }

  private seal(clientId: string, userId: string, info: UserInfo): string {
    return this.sealer.seal(JSON.stringify(info), aad(clientId, userId));
  }
}

/** Merge: objects merge member by member; arrays and scalars given replace what was there. */
export function mergeInfo(before: UserInfo, patch: UserInfo): UserInfo {
  const merged: Record<string, unknown> = { ...before };
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const existing = merged[key];
    merged[key] =
      value &&
      typeof value === "object" &&
      !Array.isArray(value) &&
      existing &&
      typeof existing === "object" &&
      !Array.isArray(existing)
        ? { ...existing, ...value }
        : value;
  }
  return merged as UserInfo;
}

function normalize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, normalize(v)]),
    );
  }
  return value;
}
