import { createHash } from "node:crypto";
import type { FastifyReply, FastifyRequest, onSendHookHandler, preHandlerAsyncHookHandler } from "fastify";
import { sql } from "kysely";
import type { Db } from "../db/database.ts";
import { CLIENT_CHOSEN_ID } from "../lib/ids.ts";
import { ApiError } from "./errors.ts";

export interface IdempotencyOptions {
  /** The request header that carries the key: `x-request-id` (Platform API), `idempotency-key` (Wallet API). */
  header: string;
  required: boolean;
  /** Whose key space this is (a client, a user): the same key in two scopes is two requests. */
  scope: (request: FastifyRequest) => string;
}

export interface IdempotencySettings {
  /** How long a completed response is replayed. */
  ttlHours: number;
  /** How long a request may run before another may take its key over (its process presumably died). */
  lockSeconds?: number;
}

declare module "fastify" {
  interface FastifyRequest {
    rawBody?: Buffer;
    idempotency?: { scope: string; key: string; replayed: boolean };
  }
}

/** Response headers worth replaying with the stored body. */
const REPLAYED_HEADERS = ["content-type", "location", "x-request-id"];

/**
 * The same request id with the same request returns the first response again (with
 * `Idempotent-Replayed: true`) and runs nothing; with a different request it is a 409; while the
 * first is still running, a second is a 409 with `retryable: true`. Responses of 5xx, 429 and
 * retryable 409s are not stored: the key is released so that a retry runs for real.
 *
 * The stored response is a convenience for clients. The operation behind a route must still be
 * idempotent on its own (request id unique in its table): if the process dies after the operation
 * committed and before the response was stored, the key is taken over after `lockSeconds` and the
 * route runs again.
 */
export function idempotency(db: Db, options: IdempotencyOptions, settings: IdempotencySettings) {
  const lockSeconds = settings.lockSeconds ?? 60;

  const preHandler: preHandlerAsyncHookHandler = async (request, reply) => {
    const raw = request.headers[options.header];
    const key = Array.isArray(raw) ? raw[0] : raw;
    if (key === undefined || key === "") {
      if (options.required)
        throw ApiError.invalid(options.header, "this operation needs a request id header");
      return;
    }
    if (!CLIENT_CHOSEN_ID.test(key)) {
      throw ApiError.invalid(options.header, "must match ^[A-Za-z0-9_-]{3,255}$");
    }
    const scope = options.scope(request);
    const hash = requestHash(request);

    const reserved = await sql`
      INSERT INTO idempotency_keys (scope, key, request_hash, state, locked_until, expires_at)
      VALUES (${scope}, ${key}, ${hash}, 'IN_PROGRESS', now() + make_interval(secs => ${lockSeconds}),
              now() + make_interval(hours => ${settings.ttlHours}))
      ON CONFLICT (scope, key) DO UPDATE
        SET request_hash = excluded.request_hash, state = 'IN_PROGRESS', locked_until = excluded.locked_until,
            response_status = NULL, response_headers = NULL, response_body = NULL, expires_at = excluded.expires_at
        WHERE idempotency_keys.expires_at < now()
           OR (idempotency_keys.state = 'IN_PROGRESS' AND idempotency_keys.locked_until < now()
               AND idempotency_keys.request_hash = excluded.request_hash)
      RETURNING key`.execute(db);
    if (reserved.rows.length > 0) {
      request.idempotency = { scope, key, replayed: false };
      return;
    }

    const stored = await db
      .selectFrom("idempotency_keys")
      .selectAll()
      .where("scope", "=", scope)
      .where("key", "=", key)
      .executeTakeFirst();
    if (!stored) {
      // Released between our insert and our read: the first request failed; the client may retry.
      throw new ApiError("REQUEST_IN_PROGRESS", "a request with this id is being processed; retry shortly", {
        retryable: true,
      });
    }
    if (stored.request_hash !== hash) {
      throw new ApiError(
        "IDEMPOTENCY_KEY_REUSED",
        `request id ${key} was already used for a different request`,
        {
          errors: [{ field: options.header, message: "already used for a different request" }],
        },
      );
    }
    if (stored.state !== "COMPLETED" || stored.response_status === null) {
      throw new ApiError(
        "REQUEST_IN_PROGRESS",
        "a request with this id is still being processed; retry shortly",
        {
          retryable: true,
          headers: { "Retry-After": "1" },
        },
      );
    }
    request.idempotency = { scope, key, replayed: true };
    return replay(reply, stored.response_status, stored.response_headers, stored.response_body);
  };

  const onSend: onSendHookHandler = async (request, reply, payload) => {
    const held = request.idempotency;
    if (!held || held.replayed) return payload;
    const status = reply.statusCode;
    const retryable =
      status >= 500 ||
      status === 429 ||
      (status === 409 && typeof payload === "string" && payload.includes('"retryable":true'));
    if (retryable || typeof payload !== "string") {
      await db
        .deleteFrom("idempotency_keys")
        .where("scope", "=", held.scope)
        .where("key", "=", held.key)
        .execute();
      return payload;
    }
    const headers: Record<string, string> = {};
    for (const name of REPLAYED_HEADERS) {
      const value = reply.getHeader(name);
      if (value !== undefined) headers[name] = String(value);
    }
    await db
      .updateTable("idempotency_keys")
      .set({
        state: "COMPLETED",
        locked_until: null,
        response_status: status,
        response_headers: JSON.stringify(headers),
        response_body: payload,
      })
      .where("scope", "=", held.scope)
      .where("key", "=", held.key)
      .execute();
    return payload;
  };

  return { preHandler, onSend };
}

function replay(reply: FastifyReply, status: number, headers: unknown, body: string | null) {
  const stored = (typeof headers === "string" ? JSON.parse(headers) : headers) as Record<
    string,
    string
  > | null;
  for (const [name, value] of Object.entries(stored ?? {})) reply.header(name, value);
  reply.header("Idempotent-Replayed", "true");
  return reply.code(status).send(body ?? "");
}

/** What makes two requests "the same": method, path and query, and the exact body bytes. */
export function requestHash(request: FastifyRequest): string {
  return createHash("sha256")
    .update(request.method)
    .update("\n")
    .update(request.url)
    .update("\n")
    .update(request.rawBody ?? Buffer.alloc(0))
    .digest("hex");
}

/** Removes keys past their retention. */
export async function purgeExpiredIdempotencyKeys(db: Db): Promise<number> {
  const result = await db
    .deleteFrom("idempotency_keys")
    .where("expires_at", "<", new Date())
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
