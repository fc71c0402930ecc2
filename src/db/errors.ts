/** PostgreSQL error codes Ferry reacts to (pg and PGlite both expose `code`). */
export const PgErrorCode = {
  uniqueViolation: "23505",
  foreignKeyViolation: "23503",
  checkViolation: "23514",
  serializationFailure: "40001",
  deadlockDetected: "40P01",
  numericOutOfRange: "22003",
  invalidTextRepresentation: "22P02",
  /** NUL in text ("invalid byte sequence for encoding UTF8: 0x00"). */
  characterNotInRepertoire: "22021",
  /** \u0000 in jsonb ("unsupported Unicode escape sequence"). */
  untranslatableCharacter: "22P05",
} as const;

export function pgErrorCode(error: unknown): string | undefined {
  if (typeof error === "object" && error !== null && "code" in error) {
    const code = (error as { code: unknown }).code;
    return typeof code === "string" ? code : undefined;
  }
  return undefined;
}

export function isRetryableTransactionError(error: unknown): boolean {
  const code = pgErrorCode(error);
  return code === PgErrorCode.serializationFailure || code === PgErrorCode.deadlockDetected;
}

/** A transaction still failed with serialization or deadlock errors after its bounded retries. */
export class TransactionConflictError extends Error {
  constructor(
    readonly attempts: number,
    options?: { cause?: unknown },
  ) {
    super(`transaction conflicted ${attempts} times; try again`, options);
    this.name = "TransactionConflictError";
  }
}
