import { createLocalJWKSet, jwtVerify, SignJWT } from "jose";
import { sql } from "kysely";
import type { Db } from "../../db/database.ts";
import { DomainError } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { FERRY_SIGNING_ALG, publishedJwks, type SigningKeys } from "../keys/service.ts";
import { requireActiveUser } from "../users/service.ts";

/**
 * One-time user tokens: a client's backend asks for one for a single operation (method + path,
 * optionally bound to a user) and hands it to its front end, which calls that operation once.
 * The token is a JWT signed by Ferry; its single use is enforced by one atomic UPDATE.
 */
export interface UserTokenGrant {
  clientId: string;
  method: string;
  path: string;
  userId?: string | undefined;
  ttlSeconds: number;
}

export interface ConsumedToken {
  jti: string;
  clientId: string;
  userId: string | null;
  method: string;
  path: string;
}

export class TokenError extends DomainError {
  constructor(
    readonly reason: "TOKEN_INVALID" | "TOKEN_USED" | "TOKEN_EXPIRED" | "TOKEN_SCOPE",
    message: string,
  ) {
    super(reason === "TOKEN_SCOPE" ? "FORBIDDEN" : "UNAUTHENTICATED", reason, message);
  }
}

/** A token for one operation; one bound to a user needs the user to exist (404) and be ACTIVE (403). */
export async function issueUserToken(db: Db, keys: SigningKeys, grant: UserTokenGrant) {
  if (grant.userId !== undefined) await requireActiveUser(db, grant.clientId, grant.userId);
  const jti = newId();
  const expiresAt = new Date(Math.floor(Date.now() / 1000 + grant.ttlSeconds) * 1000);
  const key = await keys.current();
  await db
    .insertInto("user_tokens")
    .values({
      jti,
      client_id: grant.clientId,
      user_id: grant.userId ?? null,
      method: grant.method.toUpperCase(),
      path: grant.path,
      expires_at: expiresAt,
    })
    .execute();
  const accessToken = await new SignJWT({
    cid: grant.clientId,
    htm: grant.method.toUpperCase(),
    htu: grant.path,
    ...(grant.userId ? { uid: grant.userId } : {}),
  })
    .setProtectedHeader({ alg: FERRY_SIGNING_ALG, kid: key.kid, typ: "JWT" })
    .setIssuer("ferry")
    .setAudience(grant.clientId)
    .setJti(jti)
    .setIssuedAt()
    .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
    .sign(key.privateKey);
  return { accessToken, expiresAt: Math.floor(expiresAt.getTime() / 1000), tokenType: "JWT" as const };
}

/**
 * Verifies and consumes a token for this request. Checks, in order: signature and client, expiry,
 * method, path and bound user (403, the token is not spent), then spends it atomically: of two concurrent
 * uses exactly one succeeds, the other gets TOKEN_USED.
 */
export async function consumeUserToken(
  db: Db,
  token: string,
  request: { clientId: string; method: string; path: string; userId?: string | undefined },
): Promise<ConsumedToken> {
  let payload: { jti?: string; cid?: unknown; exp?: number };
  try {
    const jwks = createLocalJWKSet(await publishedJwks(db));
    ({ payload } = await jwtVerify(token, jwks, {
      issuer: "ferry",
      audience: request.clientId,
      algorithms: [FERRY_SIGNING_ALG],
      clockTolerance: 0,
    }));
  } catch (error) {
    if ((error as { code?: string }).code === "ERR_JWT_EXPIRED")
      throw new TokenError("TOKEN_EXPIRED", "the user token has expired");
    throw new TokenError("TOKEN_INVALID", "the user token is not valid for this client");
  }
  if (!payload.jti || payload.cid !== request.clientId)
    throw new TokenError("TOKEN_INVALID", "the user token is not valid for this client");
  const row = await db
    .selectFrom("user_tokens")
    .selectAll()
    .where("jti", "=", payload.jti)
    .where("client_id", "=", request.clientId)
    .executeTakeFirst();
  if (!row) throw new TokenError("TOKEN_INVALID", "unknown user token");
  if (row.used_at) throw new TokenError("TOKEN_USED", "the user token was already used");
  if (row.method !== request.method.toUpperCase() || row.path !== request.path) {
    throw new TokenError("TOKEN_SCOPE", `the user token is for ${row.method} ${row.path}`);
  }
  if (row.user_id && request.userId !== undefined && request.userId !== row.user_id) {
    throw new TokenError("TOKEN_SCOPE", "the user token is bound to another user");
  }
  const spent = await sql<{ jti: string }>`
    UPDATE user_tokens SET used_at = now()
    WHERE jti = ${payload.jti} AND used_at IS NULL AND expires_at > now()
    RETURNING jti`.execute(db);
  if (spent.rows.length === 0) {
    const again = await db
      .selectFrom("user_tokens")
      .select("used_at")
      .where("jti", "=", payload.jti)
      .executeTakeFirst();
    if (again?.used_at) throw new TokenError("TOKEN_USED", "the user token was already used");
    throw new TokenError("TOKEN_EXPIRED", "the user token has expired");
  }
  return { jti: row.jti, clientId: row.client_id, userId: row.user_id, method: row.method, path: row.path };
}

export async function purgeExpiredUserTokens(db: Db): Promise<number> {
  const result = await db
    .deleteFrom("user_tokens")
    .where("expires_at", "<", new Date(Date.now() - 24 * 3600_000))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
