/**
 * The base of every module's errors. `kind` says what went wrong in terms the faces share, so the
 * one HTTP error handler can answer it (404, 409, 400, …) without routes mapping errors by hand.
 */
export type DomainErrorKind =
  | "NOT_FOUND"
  | "CONFLICT"
  | "INVALID"
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "PAYMENT_FAILED"
  | "MORE_INFORMATION_NEEDED";

export class DomainError extends Error {
  constructor(
    readonly kind: DomainErrorKind,
    readonly code: string,
    message: string,
    readonly field?: string,
    /** Extra members for the error envelope (422: `fields`, `assessment`). */
    readonly details?: {
      /** The fields to blame, when they are not (only) `field`, each with its own message. */
      errors?: { field: string; message: string }[];
      fields?: string[];
      assessment?: { requiredTier: number; currentTier: number };
      /** A 409 that may succeed if tried again later (a provider call under way). */
      retryable?: boolean;
      /** Response headers (Retry-After). */
      headers?: Record<string, string>;
    },
  ) {
    super(message);
    this.name = new.target.name;
  }
}
