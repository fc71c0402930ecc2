import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { requirePlatformAdmin } from "../../http/basic-auth.ts";
import { ApiError } from "../../http/errors.ts";
import { platformAuthentication } from "../../http/platform-auth.ts";
import { getClientMode } from "../../modules/clients/service.ts";
import type { Services } from "../../services.ts";

/**
 * Who may use the sandbox control routes, and for whose transactions. Only sandbox clients'
 * transactions are served; a live client's reference is answered as if unknown (404), so the
 * routes reveal nothing about live business.
 *
 * - The 3-D Secure challenge page is opened by the card holder's browser, with no credentials: its
 *   reference (a random UUIDv7 handed only to the client) is the capability.
 * - Simulating a bank transfer credits a wallet, so it needs the platform admin's HTTP Basic
 *   credentials or the owning client's signed request (the /v1 signature, same headers).
 */

const SANDBOX_BANK_SECURITY: Record<string, string[]>[] = [
  { adminBasic: [] },
  { clientId: [], signature: [] },
];

/** Adds to the sandbox bank's routes: authentication, then the reference's owner and mode. */
export function guardSandboxBank(app: FastifyInstance, services: Services): void {
  const db = services.database.db;
  const admin = requirePlatformAdmin(services.adminAuthenticator);
  const signed = platformAuthentication({ db, rateLimitPerMinute: services.settings.rateLimitPerMinute })();

  app.addHook("onRoute", (route) => {
    if (route.schema) route.schema.security = SANDBOX_BANK_SECURITY;
  });

  // Before validation, as on /v1: an unauthenticated caller learns nothing of the request's shape.
  app.addHook("preValidation", async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.headers.authorization !== undefined) return admin(request);
    if (request.headers["x-client-id"] !== undefined) return signed(request, reply);
    throw new ApiError(
      "UNAUTHORIZED",
      "the sandbox bank needs the platform admin's credentials (HTTP Basic) or the client's signed request",
      { headers: { "WWW-Authenticate": 'Basic realm="ferry-admin", charset="UTF-8"' } },
    );
  });

  app.addHook("preHandler", async (request: FastifyRequest) => {
    const reference = (request.body as { reference?: unknown } | undefined)?.reference;
    const owner = typeof reference === "string" ? await sandboxOwnerOf(services, reference) : undefined;
    // A signed request may only touch its own client's deposits; the admin any sandbox client's.
    if (!owner || (request.client && request.client.id !== owner)) {
      throw new ApiError("NOT_FOUND", `no deposit awaits reference ${String(reference)}`, {
        errors: [{ field: "reference", message: "no deposit awaits this reference" }],
      });
    }
  });
}

/** Adds to the sandbox acquirer's challenge routes: the charge must be a sandbox client's. */
export function guardSandboxChallenge(app: FastifyInstance, services: Services): void {
  app.addHook("preHandler", async (request: FastifyRequest) => {
    const reference = (request.params as { reference?: unknown } | undefined)?.reference;
    const owner = typeof reference === "string" ? await sandboxOwnerOf(services, reference) : undefined;
    if (!owner) throw ApiError.notFound("the challenge");
  });
}

/**
 * The client owning a provider reference (a sandbox charge `sbxch_…`, a bank deposit's `FRY…`
 * payment reference), if that client is in sandbox mode. References are unique per provider and
 * the two kinds cannot be mistaken for each other.
 */
async function sandboxOwnerOf(services: Services, reference: string): Promise<string | undefined> {
  const clientId = await services.transactions.ownerOfReference(reference);
  if (!clientId) return undefined;
  return (await getClientMode(services.database.db, clientId)) === "sandbox" ? clientId : undefined;
}
