import { type RawBuilder, sql } from "kysely";
import type { Db } from "../../db/database.ts";
import type { UsageSource } from "../kyc/service.ts";
import type { Row } from "./types.ts";

/**
 * A user's usage, maintained with their transactions in `user_usage` (migration 0007) instead of
 * summed from them at each request: the KYC gate's 30-day total per type, and monitoring's 24-hour
 * total, velocity count and whether the user has any history. One statement reads it all.
 *
 * Windows are read from whole buckets (hours for the sums, minutes for the velocity count), so a
 * window reaches back to the start of its first bucket: a limit is checked against at most one
 * hour (one minute) more than its window, never less — strict, never lenient.
 */

/** Statuses whose transactions do not count (they moved nothing and never will). */
export const UNCOUNTED_STATUSES = ["REFUSED", "CANCELED", "ERROR"] as const;
const DAY = 86_400_000;

export interface UsageFigures {
  /** USD cents per transaction type over the last 30 days. */
  prior30dByType: Map<string, bigint>;
  last24hUsdCents: bigint;
  recentCount: number;
  hasHistory: boolean;
}

const floorTo = (time: number, unit: number) => new Date(Math.floor(time / unit) * unit);

export async function readUsage(
  db: Db,
  clientId: string,
  userId: string,
  windowMinutes: number,
  now = Date.now(),
): Promise<UsageFigures> {
  return (await readUsageAndRequestId(db, clientId, userId, windowMinutes, undefined, now)).figures;
}

/**
 * The figures, and — in the same statement — whether `requestId` is taken already (a new
 * transaction's first question).
 */
export async function readUsageAndRequestId(
  db: Db,
  clientId: string,
  userId: string,
  windowMinutes: number,
  requestId: string | undefined,
  now = Date.now(),
): Promise<UsageAndRequestId> {
  const { rows } = await sql<{ usage: unknown }>`
    SELECT ${usageExpression(clientId, userId, windowMinutes, requestId, now)} AS usage`.execute(db);
  return parseUsage(rows[0]?.usage);
}

export interface UsageAndRequestId {
  figures: UsageFigures;
  requestIdUsed: boolean;
}

/**
 * The usage figures and the request id's state as one SQL expression (a JSON value), so that it
 * can ride along another statement of the request (its users' read: `Users.withInfo`).
 */
export function usageExpression(
  clientId: string,
  userId: string,
  windowMinutes: number,
  requestId: string | undefined,
  now = Date.now(),
): RawBuilder<unknown> {
  const since30d = floorTo(now - 30 * DAY, 3_600_000);
  const since24h = floorTo(now - DAY, 3_600_000);
  const sinceWindow = floorTo(now - windowMinutes * 60_000, 60_000);
  const used =
    requestId === undefined
      ? sql`false`
      : sql`EXISTS (SELECT 1 FROM transactions WHERE client_id = ${clientId} AND request_id = ${requestId})`;
  return sql`(SELECT json_build_object('used', ${used}, 'usage',
           (SELECT coalesce(json_agg(u), '[]'::json) FROM (
              SELECT type,
                     (sum(usd_cents) FILTER (WHERE period = 'hour' AND bucket >= ${since30d}))::text AS d30,
                     (sum(usd_cents) FILTER (WHERE period = 'hour' AND bucket >= ${since24h}))::text AS h24,
                     (sum(count) FILTER (WHERE period = 'minute' AND bucket >= ${sinceWindow}))::text AS recent,
                     (sum(count) FILTER (WHERE period = 'all'))::text AS total
                FROM user_usage
               WHERE client_id = ${clientId} AND user_id = ${userId}
                 AND (period = 'all' OR (period = 'hour' AND bucket >= ${since30d})
                      OR (period = 'minute' AND bucket >= ${sinceWindow}))
               GROUP BY type) u)))`;
}

/** `usageExpression`'s value (JSON, as the driver returns it: parsed or text). */
export function parseUsage(value: unknown): UsageAndRequestId {
  const parsed = (typeof value === "string" ? JSON.parse(value) : value) as
    | {
        used?: boolean;
        usage?: {
          type: string;
          d30: string | null;
          h24: string | null;
          recent: string | null;
          total: string | null;
        }[];
      }
    | null
    | undefined;
  const figures: UsageFigures = {
    prior30dByType: new Map(),
    last24hUsdCents: 0n,
    recentCount: 0,
    hasHistory: false,
  };
  for (const r of parsed?.usage ?? []) {
    figures.prior30dByType.set(r.type, BigInt(r.d30 ?? "0"));
    figures.last24hUsdCents += BigInt(r.h24 ?? "0");
    figures.recentCount += Number(r.recent ?? 0);
    if (BigInt(r.total ?? "0") > 0n) figures.hasHistory = true;
  }
  return { figures, requestIdUsed: Boolean(parsed?.used) };
}

/**
 * Counts a transaction in (`+1`, when it is recorded in a counted status) or out (`-1`, when it ends
 * REFUSED, CANCELED or ERROR), in the caller's transaction: its minute, hour and lifetime rows.
 */
/** What the buckets need of a movement: whose, when, which type, its USD value in cents. */
export type UsageRow = Pick<Row, "client_id" | "user_id" | "created_at" | "type" | "usd_value">;

export async function countUsage(tx: Db, row: UsageRow, sign: 1 | -1): Promise<void> {
  await countUsageOf(tx, [{ row, sign }]);
}

/** `countUsage` for several transactions in one statement, their rows in key order. */
export async function countUsageOf(tx: Db, changes: { row: UsageRow; sign: 1 | -1 }[]): Promise<void> {
  const sums = new Map<
    string,
    {
      client_id: string;
      user_id: string;
      period: "minute" | "hour" | "all";
      bucket: Date;
      type: string;
      usd: bigint;
      count: number;
    }
  >();
  for (const { row, sign } of changes) {
    const at = new Date(row.created_at).getTime();
    const buckets: ["minute" | "hour" | "all", Date][] = [
      ["minute", floorTo(at, 60_000)],
      ["hour", floorTo(at, 3_600_000)],
      ["all", new Date(0)],
    ];
    for (const [period, bucket] of buckets) {
      const key = [row.client_id, row.user_id, period, bucket.getTime(), row.type].join("\u0000");
      const sum = sums.get(key) ?? {
        client_id: row.client_id,
        user_id: row.user_id,
        period,
        bucket,
        type: row.type,
        usd: 0n,
        count: 0,
      };
      sum.usd += BigInt(row.usd_value) * BigInt(sign);
      sum.count += sign;
      sums.set(key, sum);
    }
  }
  if (sums.size === 0) return;
  const values = [...sums.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, { usd, count, ...key }]) => ({ ...key, usd_cents: usd.toString(), count }));
  await tx
    .insertInto("user_usage")
    .values(values)
    .onConflict((oc) =>
      oc.columns(["client_id", "user_id", "period", "bucket", "type"]).doUpdateSet({
        usd_cents: sql`user_usage.usd_cents + excluded.usd_cents`,
        count: sql`user_usage.count + excluded.count`,
      }),
    )
    .execute();
}

/** Buckets no window reads any more: minutes after two days, hours after 32. */
export async function purgeOldUsage(db: Db, now = Date.now()): Promise<number> {
  const result = await db
    .deleteFrom("user_usage")
    .where((eb) =>
      eb.or([
        eb.and([eb("period", "=", "minute"), eb("bucket", "<", new Date(now - 2 * DAY))]),
        eb.and([eb("period", "=", "hour"), eb("bucket", "<", new Date(now - 32 * DAY))]),
      ]),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/**
 * One request's usage reads: the user's figures read once (the KYC gate and monitoring share
 * them). `windowOf` gives the client's velocity window in minutes.
 */
export class UsageReads {
  readonly #loaded = new Map<string, Promise<UsageFigures>>();

  constructor(
    private readonly db: Db,
    private readonly windowOf: (clientId: string) => Promise<number>,
  ) {}

  figures(clientId: string, userId: string): Promise<UsageFigures> {
    const key = `${clientId}\u0000${userId}`;
    let pending = this.#loaded.get(key);
    if (!pending) {
      pending = this.windowOf(clientId).then((window) => readUsage(this.db, clientId, userId, window));
      pending.catch(() => this.#loaded.delete(key));
      this.#loaded.set(key, pending);
    }
    return pending;
  }

  /** The client's velocity window (minutes): what `usageExpression` needs. */
  window(clientId: string): Promise<number> {
    return this.windowOf(clientId);
  }

  /** Figures read by another statement of the request (`usageExpression` riding along). */
  prime(clientId: string, userId: string, figures: UsageFigures): void {
    this.#loaded.set(`${clientId}\u0000${userId}`, Promise.resolve(figures));
  }

  /** For the KYC gate: the 30-day total of a type (its `since` is always 30 days back). */
  source(): UsageSource {
    return {
      priorUsdCents: async (clientId, userId, type) =>
        (await this.figures(clientId, userId)).prior30dByType.get(type) ?? 0n,
    };
  }
}
