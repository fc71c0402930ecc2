import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { ApiError, envelope, errorEnvelopeSchema, toApiError } from "../../http/errors.ts";

/**
 * The Pay-in face's error body: Vault's `{error, errorId, message, systemId}` (and `field` when one
 * field is to blame) over Ferry's envelope, whose members stay (`type`, `code`, `errors`, `traceId`,
 * …) so nothing that reads them breaks. `error` is the envelope's `type` (INVALID_REQUEST, …),
 * `errorId` its numeric `code` (1000, …), `systemId` is always "ferry".
 */
export const SYSTEM_ID = "ferry";

export const vaultErrorSchema = errorEnvelopeSchema
  .extend({
    error: z.string().meta({ example: "INVALID_REQUEST" }),
    errorId: z.number().int().meta({ example: 1000 }),
    systemId: z.literal(SYSTEM_ID),
    field: z.string().optional(),
  })
  .meta({ id: "PayinError", description: "Vault's error body over Ferry's envelope." });

export type VaultError = z.infer<typeof vaultErrorSchema>;

/** Error responses to spread into a Pay-in route's `response` schema. */
export function errorResponses(...statuses: (400 | 401 | 402 | 403 | 404 | 409 | 422 | 429)[]) {
  return Object.fromEntries(statuses.map((s) => [s, vaultErrorSchema])) as Record<
    number,
    typeof vaultErrorSchema
  >;
}

export function vaultError(error: ApiError, traceId: string): VaultError {
  const base = envelope(error, traceId);
  const field = base.errors?.length === 1 ? base.errors[0]?.field : undefined;
  return {
    error: base.type,
    errorId: base.code,
    ...(field ? { field } : {}),
    systemId: SYSTEM_ID,
    ...base,
  };
}

/** Anything thrown, as this face answers it: status, headers and body; unknown errors are logged (500). */
export function vaultErrorReply(error: unknown, request: FastifyRequest) {
  const apiError = toApiError(error);
  if (!apiError) request.log.error({ err: error }, "unhandled error");
  else if (apiError.status >= 500) request.log.error({ err: error }, apiError.message);
  const shown =
    apiError ?? new ApiError("INTERNAL_ERROR", "Ferry failed to handle this request; quote the traceId");
  return { status: shown.status, headers: shown.details.headers ?? {}, body: vaultError(shown, request.id) };
}

/** The face's error handler. */
export function replyWithVaultError(error: unknown, request: FastifyRequest, reply: FastifyReply) {
  const { status, headers, body } = vaultErrorReply(error, request);
  return reply.code(status).headers(headers).send(body);
}
