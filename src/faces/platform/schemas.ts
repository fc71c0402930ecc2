import type { FastifyRequest } from "fastify";
import { z } from "zod";
import type { idempotency } from "../../http/idempotency.ts";
import type { platformAuthentication } from "../../http/platform-auth.ts";
import { CLIENT_CHOSEN_ID } from "../../lib/ids.ts";
import type { User } from "../../modules/users/service.ts";
import type { Services } from "../../services.ts";

export const userIdSchema = z
  .string()
  .regex(CLIENT_CHOSEN_ID, "must match ^[A-Za-z0-9_-]{3,255}$")
  .meta({ example: "u-1" });

export const userSchema = z
  .object({
    id: z.string(),
    type: z.enum(["PERSON", "BUSINESS"]),
    status: z.enum(["ACTIVE", "INACTIVE", "BLOCKED"]),
    statusReason: z.string().nullable(),
    tier: z.number().int().min(0).max(5),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: "User", description: "A user as Ferry shows it: no PII." });

export function showUser(user: User) {
  return {
    id: user.id,
    type: user.type,
    status: user.status,
    statusReason: user.statusReason,
    tier: user.tier,
    createdAt: user.createdAt.toISOString(),
    updatedAt: user.updatedAt.toISOString(),
  };
}

/** Headers of money-moving and assessment calls. */
export const requestIdHeaders = z.object({
  "x-request-id": z
    .string()
    .regex(CLIENT_CHOSEN_ID, "must match ^[A-Za-z0-9_-]{3,255}$")
    .describe(
      "The client's request id: the idempotency key, signed (the seventh line of the string to sign)",
    ),
  "x-scenario-id": z.string().max(64).optional().describe("One of the client's KYC scenarios"),
  "x-disable-webhook": z
    .enum(["true", "false"])
    .optional()
    .describe("true: record the events but do not send them"),
});

export const signedSecurity: Record<string, string[]>[] = [
  { clientId: [], signature: [] },
  { clientId: [], userToken: [] },
];

export const webhooksDisabled = (request: FastifyRequest) => request.headers["x-disable-webhook"] === "true";

/** What every Platform API route plugin receives. */
export interface PlatformRouteOptions {
  services: Services;
  authenticate: ReturnType<typeof platformAuthentication>;
  /** X-Request-Id idempotency, scoped per client (one key space for the whole face). */
  idempotent: ReturnType<typeof idempotency>;
}
