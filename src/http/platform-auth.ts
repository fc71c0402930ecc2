import { createHash } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { type CryptoKey, flattenedVerify, importJWK, type JWK } from "jose";
import { sql } from "kysely";
import type { Db } from "../db/database.ts";
import type { Actor } from "../lib/context.ts";
import { algorithmsFor, CLIENT_SIGNATURE_ALGORITHMS, type ClientSignatureAlgorithm } from "../lib/jwk.ts";
import { type Client, findActiveSigningKey, findClient } from "../modules/clients/service.ts";
import { type ConsumedToken, consumeUserToken } from "../modules/tokens/service.ts";
import { stringToSign } from "../sdk/signing.ts";
import { ApiError } from "./errors.ts";

/** How far a request's Date may be from Ferry's clock, and how long a signature is remembered. */
export const SIGNATURE_WINDOW_SECONDS = 300;

declare module "fastify" {
  interface FastifyRequest {
    /** The authenticated client (Platform API). */
    client?: Client;
    /** Set when the request was made with a user token instead of a signature. */
    userToken?: ConsumedToken;
  }
}

/** The 401 of a state-changing request whose signature was accepted before (platform-api.md). */
const replayRefusal = () =>
  unauthorized(
    "this signature was already accepted (replay); to send a state-changing request again safely, sign it with an X-Request-Id: the same request with the same id gets the first answer",
  );

/** Remembers a signature for its window; RETURNING a row when it is new. */
function rememberSignatureSql(clientId: string, hash: string) {
  return sql<{ client_id: string }>`
    INSERT INTO request_signatures (client_id, signature_hash, expires_at)
    VALUES (${clientId}, ${hash}, now() + make_interval(secs => ${SIGNATURE_WINDOW_SECONDS * 2}))
    ON CONFLICT DO NOTHING RETURNING client_id`;
}

export interface PlatformAuthOptions {
  db: Db;
  /** Per-client requests per minute unless the client's settings say otherwise. */
  rateLimitPerMinute: number;
  now?: () => number;
  /**
   * Every state-changing route behind this authentication claims X-Request-Id as its idempotency
   * key (faces/platform/index.ts wires it onto each route). A signed request carrying one is then
   * safe to receive again — its stored answer, or 409 while the first runs — and its signature is
   * good for that id only (signed), so the signature is not remembered. Without this, every
   * state-changing signature is remembered and refused the second time.
   */
  requestIdIsIdempotencyKey?: boolean;
}

/** Requests that change state: only these can be replays (platform-api.md, Authentication). */
const STATE_CHANGING_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** What identifies an accepted request: its signature (which covers X-Request-Id when one is sent). */
const replayKey = (signature: string) => createHash("sha256").update(signature).digest("hex");

const unauthorized = (message: string) => new ApiError("UNAUTHORIZED", message);
const header = (request: FastifyRequest, name: string) => {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/**
 * Authentication for the Platform API, run before validation (so an unauthenticated caller learns
 * nothing about the request's shape): a signed request (X-Client-Id, Date, X-Signature), or a
 * one-time user token (X-Client-Id, X-User-Token) for routes that accept one. Then the browser
 * origin check and the client's rate limit.
 */
export function platformAuthentication(options: PlatformAuthOptions) {
  const keyCache = new Map<string, CryptoKey | Uint8Array>();
  const limiter = new RateLimiter(options.now ?? Date.now);

  const verifySignature = async (request: FastifyRequest, client: Client) => {
    const date = header(request, "date");
    const signature = header(request, "x-signature");
    if (!date || !signature) throw unauthorized("a signed request needs Date and X-Signature headers");
    const parsedDate = Date.parse(date);
    const now = options.now?.() ?? Date.now();
    if (Number.isNaN(parsedDate)) throw unauthorized("the Date header is not a date");
    if (Math.abs(now - parsedDate) > SIGNATURE_WINDOW_SECONDS * 1000) {
      throw unauthorized(`the Date header is more than ${SIGNATURE_WINDOW_SECONDS} s from Ferry's clock`);
    }
    const match = /^([A-Za-z0-9_-]+)\.\.([A-Za-z0-9_-]+)$/.exec(signature);
    if (!match?.[1] || !match[2])
      throw unauthorized("X-Signature must be a JWS with a detached payload (header..signature)");
    let protectedHeader: { alg?: unknown; kid?: unknown; crit?: unknown; b64?: unknown };
    try {
      protectedHeader = JSON.parse(Buffer.from(match[1], "base64url").toString("utf8"));
    } catch {
      throw unauthorized("the signature's protected header is not JSON");
    }
    const { alg, kid } = protectedHeader;
    if (typeof alg !== "string" || !CLIENT_SIGNATURE_ALGORITHMS.includes(alg as ClientSignatureAlgorithm)) {
      throw unauthorized(`alg must be one of ${CLIENT_SIGNATURE_ALGORITHMS.join(", ")}`);
    }
    if (typeof kid !== "string" || kid.length > 100) throw unauthorized("the signature's kid is missing");
    if (protectedHeader.crit !== undefined || protectedHeader.b64 !== undefined)
      throw unauthorized("crit and b64 are not supported");
    const jwk = await findActiveSigningKey(options.db, client.id, kid);
    if (!jwk) throw unauthorized("unknown, revoked or expired signing key");
    if (!algorithmsFor(jwk).includes(alg as ClientSignatureAlgorithm))
      throw unauthorized(`the key ${kid} cannot sign ${alg}`);
    const requestId = header(request, "x-request-id");
    const payload = stringToSign({
      method: request.method,
      target: request.url,
      body: request.rawBody,
      contentType: header(request, "content-type"),
      date,
      clientId: client.id,
      requestId,
    });
    try {
      await flattenedVerify(
        {
          protected: match[1],
          payload: Buffer.from(payload, "utf8").toString("base64url"),
          signature: match[2],
        },
        await importKey(client.id, kid, jwk, alg),
        { algorithms: [alg] },
      );
    } catch {
      // A signature of six lines (made before X-Request-Id was signed) is not accepted with the
      // header: it would be good for any request id, the hole the seventh line closes.
      throw unauthorized(
        requestId === undefined
          ? "the signature does not match the request"
          : "the signature does not match the request (with X-Request-Id sent, the string to sign has seven lines: x-request-id:<the header as sent> before the request target)",
      );
    }
    if (!STATE_CHANGING_METHODS.has(request.method)) return; // reading twice is never a replay
    // With a request id the route's idempotency claim answers a request received again (the same
    // bytes or re-signed): nothing to remember, and no 401 for a client retrying after a timeout.
    if (options.requestIdIsIdempotencyKey && requestId) return;
    // Without one, the same signature again within the window is a replay. RS512 and Ed25519
    // signatures are deterministic: two identical requests signed in the same second are one.
    const stored = await rememberSignatureSql(client.id, replayKey(match[2])).execute(options.db);
    if (stored.rows.length === 0) throw replayRefusal();
  };

  const importKey = async (clientId: string, kid: string, jwk: JWK, alg: string) => {
    const cacheKey = `${clientId}\u0000${kid}\u0000${alg}`;
    let key = keyCache.get(cacheKey);
    if (!key) {
      key = await importJWK(jwk, alg);
      if (keyCache.size > 5000) keyCache.clear();
      keyCache.set(cacheKey, key);
    }
    return key;
  };

  /** preValidation hook. `allowUserToken`: the route may be called from a browser with a user token. */
  return (routeOptions: { allowUserToken?: boolean } = {}) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      const clientId = header(request, "x-client-id");
      if (!clientId) throw unauthorized("X-Client-Id is required");
      const client = await findClient(options.db, clientId);
      if (client?.status !== "ACTIVE") throw unauthorized("unknown client, or not active");
      const origin = header(request, "origin");
      if (origin !== undefined) {
        if (!client.allowedOrigins.includes(origin))
          throw new ApiError("FORBIDDEN", "this origin is not allowed for the client");
        // Set now, so that the browser can also read the errors that may follow (a spent token, a 422).
        reply.header("Access-Control-Allow-Origin", origin);
        reply.header("Vary", "Origin");
      }
      // The quota is the authenticated client's: a signed request is counted once its signature
      // verifies (so nobody can spend another client's quota); a token request before the token
      // is spent (so a 429 does not burn it).
      const enforceLimit = () => {
        const limit = client.settings.rateLimitPerMinute ?? options.rateLimitPerMinute;
        const retryAfter = limiter.take(client.id, limit);
        if (retryAfter > 0) {
          throw new ApiError("RATE_LIMITED", `more than ${limit} requests a minute`, {
            headers: { "Retry-After": String(retryAfter) },
          });
        }
      };
      const token = header(request, "x-user-token");
      if (token !== undefined && header(request, "x-signature") === undefined) {
        if (!routeOptions.allowUserToken) {
          throw new ApiError("FORBIDDEN", "this operation cannot be called with a user token");
        }
        enforceLimit();
        request.userToken = await consumeUserToken(options.db, token, {
          clientId: client.id,
          method: request.method,
          path: request.url.split("?")[0] ?? request.url,
          userId: requestedUser(request),
        });
      } else {
        await verifySignature(request, client);
        enforceLimit();
      }
      request.client = client;
    };
}

/** The user a request acts on, from its path or its body, before validation (for token binding). */
function requestedUser(request: FastifyRequest): string | undefined {
  const fromPath = (request.params as { userId?: unknown } | undefined)?.userId;
  if (typeof fromPath === "string") return fromPath;
  const fromBody = (request.body as { userId?: unknown } | null | undefined)?.userId;
  return typeof fromBody === "string" ? fromBody : undefined;
}

/** The client of an authenticated Platform API request. */
export function clientOf(request: FastifyRequest): Client {
  if (!request.client) throw unauthorized("not authenticated");
  return request.client;
}

/** Who is asking, for the audit trail: the end user behind a user token, or the client's backend. */
export function actorOf(request: FastifyRequest): Actor {
  const client = clientOf(request);
  if (request.userToken) return { kind: "user", id: request.userToken.userId ?? null };
  return { kind: "client", id: client.id };
}

/** A user token bound to a user may only act on that user (403 otherwise). */
export function assertTokenUser(request: FastifyRequest, userId: string | undefined) {
  const bound = request.userToken?.userId;
  if (bound && userId !== undefined && bound !== userId) {
    throw new ApiError("FORBIDDEN", "the user token is bound to another user");
  }
}

/**
 * A fixed-window counter per client and minute, in this process. Several processes each apply
 * the limit (documented); a shared limiter can replace this class.
 */
export class RateLimiter {
  readonly #windows = new Map<string, { minute: number; count: number }>();

  constructor(private readonly now: () => number) {}

  /** Counts one request; returns 0 if allowed, else the seconds until the next window. */
  take(key: string, perMinute: number): number {
    const now = this.now();
    const minute = Math.floor(now / 60_000);
    const window = this.#windows.get(key);
    if (!window || window.minute !== minute) {
      if (this.#windows.size > 10_000) this.#windows.clear();
      this.#windows.set(key, { minute, count: 1 });
      return 0;
    }
    window.count++;
    if (window.count <= perMinute) return 0;
    return Math.max(1, Math.ceil(((minute + 1) * 60_000 - now) / 1000));
  }
}

/** Purges remembered signatures past their window. */
export async function purgeExpiredSignatures(db: Db): Promise<number> {
  const result = await db
    .deleteFrom("request_signatures")
    .where("expires_at", "<", new Date())
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
