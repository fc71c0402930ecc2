import { DomainError, type DomainErrorKind } from "../../lib/errors.ts";

const kinds = {
  INVALID_LOGIN: "INVALID",
  INVALID_ROLE: "INVALID",
  WEAK_PASSWORD: "INVALID",
  INVALID_CODE: "INVALID",
  WRONG_PASSWORD: "INVALID",
  LOGIN_TAKEN: "CONFLICT",
  CODE_USED: "CONFLICT",
  NO_CODE: "NOT_FOUND",
  LOGIN_NOT_FOUND: "NOT_FOUND",
  ORGANIZATION_NOT_FOUND: "NOT_FOUND",
  CODE_LOCKED: "FORBIDDEN",
  LOGIN_NOT_ACTIVE: "FORBIDDEN",
  WRONG_CREDENTIALS: "UNAUTHENTICATED",
  // answered 429 (the envelope's own type)
  RATE_LIMITED: "FORBIDDEN",
} as const satisfies Record<string, DomainErrorKind>;

export class LoginError extends DomainError {
  constructor(
    code: keyof typeof kinds,
    message: string,
    field?: string,
    details?: ConstructorParameters<typeof DomainError>[4],
  ) {
    super(kinds[code], code, message, field, details);
  }
}
