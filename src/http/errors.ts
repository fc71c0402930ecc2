import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { z } from "zod";
import { PgErrorCode, pgErrorCode, TransactionConflictError } from "../db/errors.ts";
import { DomainError, type DomainErrorKind } from "../lib/errors.ts";

/** Every error type Ferry answers with, its HTTP status and its numeric code (spec/README.md). */
export const errorTypes = {
  INVALID_REQUEST: { status: 400, code: 1000 },
  MIN_INFO_MISSING: { status: 422, code: 1001 },
  MIN_ASSESSMENT_MISSING: { status: 422, code: 1002 },
  UNAUTHORIZED: { status: 401, code: 2001 },
  TOKEN_USED: { status: 401, code: 2002 },
  TOKEN_EXPIRED: { status: 401, code: 2003 },
  PAYMENT_FAILED: { status: 402, code: 3001 },
  INSUFFICIENT_FUNDS: { status: 402, code: 3002 },
  FORBIDDEN: { status: 403, code: 4001 },
  NOT_FOUND: { status: 404, code: 4004 },
  CONFLICT: { status: 409, code: 4009 },
  IDEMPOTENCY_KEY_REUSED: { status: 409, code: 4010 },
  REQUEST_IN_PROGRESS: { status: 409, code: 4011 },
  RATE_LIMITED: { status: 429, code: 4029 },
  INTERNAL_ERROR: { status: 500, code: 5000 },
  SERVICE_UNAVAILABLE: { status: 503, code: 5003 },
} as const satisfies Record<string, { status: number; code: number }>;

export type ErrorType = keyof typeof errorTypes;

export interface FieldError {
  field: string;
  message: string;
}

export interface ErrorDetails {
  errors?: FieldError[];
  /** 409s that a retry may cure (a request still running, a transaction conflict). */
  retryable?: boolean;
  /** 422 MIN_INFO_MISSING: the information the user lacks. */
  fields?: string[];
  /** 422 MIN_ASSESSMENT_MISSING. */
  assessment?: { requiredTier: number; currentTier: number };
  /** Extra response headers (Retry-After, WWW-Authenticate). */
  headers?: Record<string, string>;
}

/** The one error every route throws; the error handler turns it into the envelope. */
export class ApiError extends Error {
  constructor(
    readonly type: ErrorType,
    message: string,
    readonly details: ErrorDetails = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  get status(): number {
    return errorTypes[this.type].status;
  }

  static invalid(field: string, message: string): ApiError {
    return new ApiError("INVALID_REQUEST", `${field}: ${message}`, { errors: [{ field, message }] });
  }

  static notFound(what: string): ApiError {
    return new ApiError("NOT_FOUND", `${what} was not found`);
  }
}

export const errorEnvelopeSchema = z
  .object({
    type: z.string().meta({ example: "INVALID_REQUEST" }),
    code: z.number().int().meta({ example: 1000 }),
    message: z.string(),
    errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
    retryable: z.boolean().optional(),
    fields: z.array(z.string()).optional(),
    assessment: z.object({ requiredTier: z.number().int(), currentTier: z.number().int() }).optional(),
    traceId: z.string(),
  })
  .meta({ id: "Error", description: "The error envelope every face answers with." });

export type ErrorEnvelope = z.infer<typeof errorEnvelopeSchema>;

/** Error responses to spread into a route's `response` schema (for the OpenAPI document). */
export function errorResponses(...statuses: (400 | 401 | 402 | 403 | 404 | 409 | 422 | 429)[]) {
  return Object.fromEntries(statuses.map((s) => [s, errorEnvelopeSchema])) as Record<
    number,
    typeof errorEnvelopeSchema
  >;
}

export function envelope(error: ApiError, traceId: string): ErrorEnvelope {
  const { retryable, fields, assessment } = error.details;
  // Every 400 says what was wrong with which part, even when no single field is to blame.
  const errors =
    error.details.errors ??
    (error.type === "INVALID_REQUEST" ? [{ field: "request", message: error.message }] : undefined);
  return {
    type: error.type,
    code: errorTypes[error.type].code,
    message: error.message,
    ...(errors ? { errors } : {}),
    ...(retryable !== undefined ? { retryable } : {}),
    ...(fields ? { fields } : {}),
    ...(assessment ? { assessment } : {}),
    traceId,
  };
}

const domainErrorTypes: Record<DomainErrorKind, ErrorType> = {
  NOT_FOUND: "NOT_FOUND",
  CONFLICT: "CONFLICT",
  INVALID: "INVALID_REQUEST",
  UNAUTHENTICATED: "UNAUTHORIZED",
  FORBIDDEN: "FORBIDDEN",
  PAYMENT_FAILED: "PAYMENT_FAILED",
  MORE_INFORMATION_NEEDED: "MIN_INFO_MISSING",
};

/** Translates anything thrown into an ApiError; unknown errors become a 500 (and are logged). */
export function toApiError(error: unknown): ApiError | undefined {
  if (error instanceof ApiError) return error;
  if (hasZodFastifySchemaValidationErrors(error)) {
    const where = (error as { validationContext?: string }).validationContext;
    const errors = error.validation.map((issue) => {
      const path = issue.instancePath.replace(/^\//, "").replaceAll("/", ".");
      return { field: path || (where ?? "body"), message: issue.message ?? "is invalid" };
    });
    const summary = errors.map((e) => `${e.field}: ${e.message}`).join("; ");
    return new ApiError("INVALID_REQUEST", `invalid ${where ?? "request"}: ${summary}`, { errors });
  }
  if (error instanceof DomainError) {
    // A module may name one of the envelope's types itself (TOKEN_USED); otherwise its kind decides.
    const type = error.code in errorTypes ? (error.code as ErrorType) : domainErrorTypes[error.kind];
    return new ApiError(type, error.message, {
      ...(error.field ? { errors: [{ field: error.field, message: error.message }] } : {}),
      ...error.details,
    });
  }
  if (error instanceof TransactionConflictError) {
    return new ApiError("CONFLICT", "the request conflicted with a concurrent one; retry it", {
      retryable: true,
    });
  }
  const code = pgErrorCode(error);
  if (code === PgErrorCode.uniqueViolation) return new ApiError("CONFLICT", "the resource already exists");
  if (code === PgErrorCode.foreignKeyViolation)
    return new ApiError("NOT_FOUND", "a referenced resource was not found");
  if (code === PgErrorCode.characterNotInRepertoire || code === PgErrorCode.untranslatableCharacter) {
    // The body parser refuses NUL already; this catches text that reached the database another way.
    const message = "contains a character the database cannot store (NUL, \\u0000)";
    return new ApiError("INVALID_REQUEST", `the request ${message}`, {
      errors: [{ field: "body", message }],
    });
  }
  const fastifyError = error as Partial<FastifyError>;
  if (
    typeof fastifyError.statusCode === "number" &&
    fastifyError.statusCode >= 400 &&
    fastifyError.statusCode < 500
  ) {
    // Fastify's own client errors: malformed JSON, body too large, unsupported media type, …
    if (fastifyError.statusCode === 429)
      return new ApiError("RATE_LIMITED", fastifyError.message ?? "too many requests");
    return new ApiError("INVALID_REQUEST", describeFastifyClientError(fastifyError));
  }
  return undefined;
}

function describeFastifyClientError(error: Partial<FastifyError>): string {
  switch (error.code) {
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return "the body is not valid JSON";
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return "the body is too large";
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return "unsupported Content-Type; send application/json";
    default:
      return error.message ?? "the request is malformed";
  }
}

export function registerErrorHandling(app: FastifyInstance) {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const apiError = toApiError(error);
    if (!apiError) {
      request.log.error({ err: error }, "unhandled error");
      return reply
        .code(500)
        .send(
          envelope(
            new ApiError("INTERNAL_ERROR", "Ferry failed to handle this request; quote the traceId"),
            request.id,
          ),
        );
    }
    if (apiError.status >= 500) request.log.error({ err: error }, apiError.message);
    for (const [name, value] of Object.entries(apiError.details.headers ?? {})) reply.header(name, value);
    return reply.code(apiError.status).send(envelope(apiError, request.id));
  });
  app.setNotFoundHandler((request, reply) => {
    reply
      .code(404)
      .send(
        envelope(
          new ApiError("NOT_FOUND", `no route ${request.method} ${request.url.split("?")[0]}`),
          request.id,
        ),
      );
  });
}
