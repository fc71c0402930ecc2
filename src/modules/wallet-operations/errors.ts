import { DomainError, type DomainErrorKind } from "../../lib/errors.ts";

/** The Wallet API operations' errors: the envelope's type named by `code` where it has one. */
export class WalletOperationError extends DomainError {}

/** A 400 naming the field, as every face's schema errors do (`field: message`). */
export const invalid = (field: string, message: string) =>
  new WalletOperationError("INVALID", "INVALID_REQUEST", `${field}: ${message}`, field, {
    errors: [{ field, message }],
  });

export const walletError = (
  kind: DomainErrorKind,
  code: string,
  message: string,
  errors?: { field: string; message: string }[],
) => new WalletOperationError(kind, code, message, undefined, errors ? { errors } : undefined);
