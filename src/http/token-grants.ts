import type { FastifyReply, FastifyRequest } from "fastify";

/**
 * Other faces' grants on the one `POST /oauth/token` endpoint. The 1-Click face owns the route (its
 * `authorization_code` grant); a face with a grant of its own (the Pay-in face's `mobile_phone`,
 * Vault's sign-in) registers a handler here, and the 1-Click route hands a request whose
 * `grant_type` names that grant to it, untouched, before doing anything of its own. A face imports
 * no other face, so this is the meeting point (keyed by the app's services: one table per app).
 */
/** Sends its own answer (the route's response schemas are not its own: it sends JSON text). */
export type TokenGrantHandler = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

const tables = new WeakMap<object, Map<string, TokenGrantHandler>>();

export function addTokenGrant(owner: object, grantType: string, handler: TokenGrantHandler): void {
  const table = tables.get(owner) ?? new Map<string, TokenGrantHandler>();
  if (table.has(grantType)) throw new Error(`grant_type ${grantType} is registered already`);
  table.set(grantType, handler);
  tables.set(owner, table);
}

/** The handler of another face's grant this request names (form body or query string), if any. */
export function otherTokenGrant(owner: object, request: FastifyRequest): TokenGrantHandler | undefined {
  const table = tables.get(owner);
  if (!table) return undefined;
  const pick = (from: unknown) =>
    from && typeof from === "object" ? (from as Record<string, unknown>).grant_type : undefined;
  const body = pick(request.body);
  const grantType = body !== undefined ? body : pick(request.query);
  return typeof grantType === "string" ? table.get(grantType) : undefined;
}
