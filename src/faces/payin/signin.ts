import type { FastifyReply, FastifyRequest } from "fastify";
import { ApiError } from "../../http/errors.ts";
import { addTokenGrant } from "../../http/token-grants.ts";
import { findClient } from "../../modules/clients/service.ts";
import type { Services } from "../../services.ts";
import { vaultErrorReply } from "./errors.ts";

/**
 * Vault's sign-in: `POST /oauth/token`, form body `grant_type=mobile_phone&number=…&password=…`,
 * header `X-Merchant-ID` naming the client (without it: `X-Client-Id`, then the installation's
 * default client). The 1-Click face owns that endpoint; this grant is handed here by
 * src/http/token-grants.ts. The answer is a Wallet API access token (the same every Pay-in and
 * Wallet route takes): `{access_token, token_type: "bearer", expires_in, scope: "read write"}`.
 * Ferry issues no refresh token (a new sign-in gives a new token). Wrong number or password → 401,
 * with the same lockout as `POST /api/v1/authorization`; a login with two-factor on → 403
 * `FORBIDDEN` (its code was sent: confirm it at `POST /api/v1/authorization/confirm`). Errors in
 * Vault's body (src/faces/payin/errors.ts).
 */
export const MOBILE_PHONE_GRANT = "mobile_phone";

export function registerVaultSignIn(services: Services): void {
  addTokenGrant(services, MOBILE_PHONE_GRANT, async (request, reply) => {
    await signIn(services, request, reply).catch((error: unknown) => {
      const { status, headers, body } = vaultErrorReply(error, request);
      // Pre-serialized, as the answer: the route's own response schemas are the 1-Click grant's.
      return reply
        .code(status)
        .headers(headers)
        .header("Cache-Control", "no-store")
        .type("application/json; charset=utf-8")
        .send(JSON.stringify(body));
    });
  });
}

async function signIn(services: Services, request: FastifyRequest, reply: FastifyReply) {
  const form = /^application\/x-www-form-urlencoded\b/i.test(String(request.headers["content-type"] ?? ""));
  if (!form) throw ApiError.invalid("body", "send the parameters as application/x-www-form-urlencoded");
  const params = (request.body && typeof request.body === "object" ? request.body : {}) as Record<
    string,
    unknown
  >;
  const text = (name: string, max: number) => {
    const value = params[name];
    if (Array.isArray(value)) throw ApiError.invalid(name, "is given more than once");
    if (typeof value !== "string" || value === "") throw ApiError.invalid(name, "is required");
    if (value.length > max) throw ApiError.invalid(name, `must be at most ${max} characters`);
    return value;
  };
  const number = text("number", 32);
  const password = text("password", 256);
  const clientId = await merchant(services, request);
  const outcome = await services.logins.authorize(clientId, number, password);
  if (outcome.action === "OTP_SENT")
    throw new ApiError(
      "FORBIDDEN",
      "this login has two-factor authentication on: the code was sent; confirm it at POST /api/v1/authorization/confirm",
    );
  const { token, expiresAt } = outcome.issued;
  const answer = {
    access_token: token,
    token_type: "bearer",
    expires_in: Math.max(0, Math.floor((expiresAt.getTime() - Date.now()) / 1000)),
    scope: "read write",
  };
  // Pre-serialized: the route's own response schema is the 1-Click grant's.
  return reply
    .code(200)
    .header("Cache-Control", "no-store")
    .header("Pragma", "no-cache")
    .type("application/json; charset=utf-8")
    .send(JSON.stringify(answer));
}

/** The client `X-Merchant-ID` names (else `X-Client-Id`, else the default client); unknown → 401. */
async function merchant(services: Services, request: FastifyRequest): Promise<string> {
  const header = (name: string) => {
    const value = request.headers[name];
    return typeof value === "string" && value !== "" ? value : undefined;
  };
  const id = header("x-merchant-id") ?? header("x-client-id") ?? services.settings.defaultClient;
  if (!id)
    throw ApiError.invalid("X-Merchant-ID", "name the client (this installation has no default client)");
  if (!/^[A-Za-z0-9_-]{3,255}$/.test(id))
    throw ApiError.invalid("X-Merchant-ID", "must match ^[A-Za-z0-9_-]{3,255}$");
  const client = await findClient(services.database.db, id);
  if (client?.status !== "ACTIVE") throw new ApiError("UNAUTHORIZED", `no active client ${id}`);
  return client.id;
}
