import { sql } from "kysely";
import type { Db } from "./database.ts";

/**
 * Process caches of what rarely changes and is read on every request (clients, their signing keys,
 * currencies, system accounts). One cache per database (two test databases in one process never
 * share entries), found from any `Db` or `Tx` of that database.
 *
 * Invalidation: a writer calls `announceChange(tx, topic, key)` in the transaction that changes the
 * row. It drops the entry here and sends `NOTIFY ferry_cache`, which PostgreSQL delivers on commit
 * to every Ferry process listening on that database (openDatabase starts the listener; PGlite
 * delivers it in-process). A load that overlaps an invalidation is not stored, and entries also
 * expire after `ttlMs` — the bound on staleness should a notification be lost while the listening
 * connection reconnects (the cache is cleared when it does).
 */
export const CACHE_CHANNEL = "ferry_cache";
const SEPARATOR = "\u0000";

interface Entry {
  value: unknown;
  expiresAt: number;
}

export class ProcessCache {
  readonly #entries = new Map<string, Entry>();
  readonly #loading = new Map<string, Promise<unknown>>();
  #generation = 0;

  constructor(private readonly ttlMs = 60_000) {}

  /**
   * The cached value, or `load()`'s (stored unless undefined or invalidated meanwhile). Only for
   * loads that read committed rows: call it with the pool, not inside a transaction that may have
   * written the row (`cachedRead` below picks).
   */
  async get<V>(topic: string, key: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    const id = topic + SEPARATOR + key;
    const entry = this.#entries.get(id);
    if (entry && entry.expiresAt > Date.now()) return entry.value as V;
    const pending = this.#loading.get(id);
    if (pending) return pending as Promise<V | undefined>;
    const generation = this.#generation;
    const loading = load().finally(() => this.#loading.delete(id));
    this.#loading.set(id, loading);
    const value = await loading;
    if (value !== undefined && generation === this.#generation) {
      if (this.#entries.size > 50_000) this.#entries.clear();
      this.#entries.set(id, { value, expiresAt: Date.now() + this.ttlMs });
    }
    return value;
  }

  /** The entry if cached and fresh (no load). */
  peek<V>(topic: string, key: string): V | undefined {
    const entry = this.#entries.get(topic + SEPARATOR + key);
    return entry && entry.expiresAt > Date.now() ? (entry.value as V) : undefined;
  }

  /** Stores a value the caller knows to be committed. */
  put(topic: string, key: string, value: unknown): void {
    if (this.#entries.size > 50_000) this.#entries.clear();
    this.#entries.set(topic + SEPARATOR + key, { value, expiresAt: Date.now() + this.ttlMs });
  }

  invalidate(topic: string, key: string): void {
    this.#generation++;
    const id = topic + SEPARATOR + key;
    this.#entries.delete(id);
    this.#loading.delete(id);
  }

  /** Applies a notification's payload (`["topic","key"]`); anything else clears the cache. */
  invalidatePayload(payload: string): void {
    try {
      const [topic, key] = JSON.parse(payload) as unknown[];
      if (typeof topic === "string" && typeof key === "string") {
        this.invalidate(topic, key);
        return;
      }
    } catch {
      // not ours: be safe
    }
    this.clear();
  }

  clear(): void {
    this.#generation++;
    this.#entries.clear();
    this.#loading.clear();
  }
}

const caches = new WeakMap<object, ProcessCache>();

/** The identity shared by a Kysely instance and its transactions: the dialect's adapter. */
function identityOf(db: Db): object {
  return db.getExecutor().adapter;
}

export function cacheOf(db: Db): ProcessCache {
  const identity = identityOf(db);
  let cache = caches.get(identity);
  if (!cache) {
    cache = new ProcessCache();
    caches.set(identity, cache);
  }
  return cache;
}

/** Drops `topic/key` here now and in every process on this database when `tx` commits. */
export async function announceChange(tx: Db, topic: string, key: string): Promise<void> {
  cacheOf(tx).invalidate(topic, key);
  await sql`SELECT pg_notify(${CACHE_CHANNEL}, ${JSON.stringify([topic, key])})`.execute(tx);
}

/**
 * A cached read: through the cache with the pool; inside a transaction the cached entry if there is
 * one, else a plain read that is not stored (the transaction may have written the row itself and
 * may yet roll back).
 */
export function cachedRead<V>(
  db: Db,
  topic: string,
  key: string,
  load: () => Promise<V | undefined>,
): Promise<V | undefined> {
  const cache = cacheOf(db);
  if (!db.isTransaction) return cache.get(topic, key, load);
  const hit = cache.peek<V>(topic, key);
  return hit === undefined ? load() : Promise.resolve(hit);
}
