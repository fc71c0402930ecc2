import type { FastifyRequest, preHandlerAsyncHookHandler } from "fastify";
import type { Actor, RequestContext } from "../lib/context.ts";
import { findClient } from "../modules/clients/service.ts";
import { isStaff, type Role, type Session } from "../modules/logins/service.ts";
import type { Services } from "../services.ts";
import { ApiError } from "./errors.ts";

/**
 * The Wallet API's access-token sessions, shared by the faces that take those tokens (the Wallet
 * API, and the Pay-in API for its customers). Who may call what on the Wallet API. Every route names one permission; this table is the one
 * place that says which roles hold it (docs/wallet-api.md prints it). A role without the
 * permission gets a 403; no token, an expired or a revoked one, a 401.
 */
export const PERMISSIONS = {
  /** Currencies, issuers, bank catalog, commission profiles: create. */
  "setup.write": ["administrator"],
  /** The same: read (customers need currencies and banks to open accounts and top up). */
  "setup.read": ["administrator", "accountant", "compliance_officer", "support", "individual", "merchant"],
  /** Set a currency's USD rate (a new version, audited). */
  "rates.write": ["administrator"],
  /** A currency's rate history: who set which rate, when, from when. */
  "rates.read": ["administrator", "accountant", "compliance_officer", "support"],
  /** Organizations and users: create and change. */
  "users.write": ["administrator"],
  /** Organizations and users: read. */
  "users.read": ["administrator", "support"],
  /** Record a bank payment that arrived (credited at once). */
  "money.record": ["administrator", "accountant"],
  /** Accept or decline a top-up or withdrawal request. */
  "money.decide": ["administrator", "accountant"],
  /** Clear (or reject) a request that the AML check held for review. */
  "review.decide": ["administrator", "compliance_officer"],
  /** A customer's own accounts, cards, templates, top-ups, withdrawals and transfers. */
  own: ["individual", "merchant"],
  /** Business processes and accounts: staff see all of the client's, customers their own. */
  "processes.read": [
    "administrator",
    "accountant",
    "compliance_officer",
    "support",
    "individual",
    "merchant",
  ],
  /** Anyone logged in (log out, change one's password). */
  session: ["administrator", "accountant", "compliance_officer", "support", "individual", "merchant"],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof PERMISSIONS;

declare module "fastify" {
  interface FastifyRequest {
    walletSession?: Session;
  }
}

const TOKEN = /^(?:bearer|token)\s+(\S{10,200})$/i;

/** The session of a request that passed a guard. */
export function sessionOf(request: FastifyRequest): Session {
  if (!request.walletSession) throw new Error("a Wallet API route without a guard");
  return request.walletSession;
}

export function actorOf(session: Session): Actor {
  return { kind: isStaff(session.role) ? "staff" : "user", id: session.userId, roles: [session.role] };
}

export function contextOf(request: FastifyRequest): RequestContext {
  const session = sessionOf(request);
  const key = request.headers["idempotency-key"];
  return {
    clientId: session.clientId,
    actor: actorOf(session),
    requestId: typeof key === "string" ? key : undefined,
  };
}

export const isCustomer = (session: Session) => session.role === "individual" || session.role === "merchant";

/** A preHandler: a valid access token whose role holds `permission`. */
export function guard(services: Services, permission: Permission): preHandlerAsyncHookHandler {
  const roles = PERMISSIONS[permission] as readonly string[];
  return async (request) => {
    const header = request.headers.authorization;
    const match = typeof header === "string" ? TOKEN.exec(header.trim()) : null;
    if (!match?.[1])
      throw new ApiError("UNAUTHORIZED", "an access token is needed: Authorization: Bearer <token>", {
        headers: { "WWW-Authenticate": 'Bearer realm="ferry-wallet"' },
      });
    const session = await services.logins.session(match[1]);
    if (!session)
      throw new ApiError("UNAUTHORIZED", "the access token is unknown, expired or revoked: authorize again", {
        headers: { "WWW-Authenticate": 'Bearer realm="ferry-wallet", error="invalid_token"' },
      });
    request.walletSession = session;
    if (!roles.includes(session.role))
      throw new ApiError(
        "FORBIDDEN",
        `the role ${session.role} may not do this (needs one of: ${roles.join(", ")})`,
      );
  };
}

/**
 * The client of a call made before there is a token: `X-Client-Id`, or the installation's default
 * client. An unknown or suspended client is refused the same way as bad credentials would be.
 */
export async function clientBeforeToken(services: Services, request: FastifyRequest): Promise<string> {
  const header = request.headers["x-client-id"];
  const id = typeof header === "string" && header !== "" ? header : services.settings.defaultClient;
  if (!id) throw ApiError.invalid("X-Client-Id", "name the client (this installation has no default client)");
  if (!/^[A-Za-z0-9_-]{3,255}$/.test(id))
    throw ApiError.invalid("X-Client-Id", "must match ^[A-Za-z0-9_-]{3,255}$");
  const client = await findClient(services.database.db, id);
  if (client?.status !== "ACTIVE") throw new ApiError("NOT_FOUND", `no client ${id}`);
  return client.id;
}

export const walletSecurity: Record<string, string[]>[] = [{ walletToken: [] }];
