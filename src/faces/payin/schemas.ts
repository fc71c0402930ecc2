import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { DomainError } from "../../lib/errors.ts";
import type { Session } from "../../modules/logins/service.ts";
import { CRYPTOS, FIATS } from "../../modules/payin/offers.ts";
import type { Services } from "../../services.ts";

/** The Pay-in face's wire pieces, and its one error table (the core's field names → this face's). */

/** The app a Pay-in route file registers its routes on. */
export type PayinApp = Parameters<FastifyPluginAsyncZod<{ services: Services }>>[0];

export const tags = ["payin"];
export const money = z.string().meta({ example: "100.00" });
export const amountInput = z.union([z.string().max(60), z.number()]).meta({ example: "100.00" });
export const fiat = z.enum(FIATS);
export const crypto = z.enum(CRYPTOS);
export const addressText = z.string().trim().min(1).max(120);
export const text = (max: number, pattern: RegExp, what: string) =>
  z.string().trim().min(1).max(max).regex(pattern, what);

export const billingAddress = z
  .object({
    address: text(200, /^[\p{L}0-9\- /.,#']+$/u, "letters, digits and - / . , # '"),
    city: text(100, /^[\p{L}0-9\- /.,']+$/u, "letters, digits and - / . , '"),
    countryCode: z.string().regex(/^[A-Z]{2}$/, "an ISO 3166 alpha-2 country code"),
    zip: text(20, /^[A-Za-z0-9 -]+$/, "letters, digits, spaces and -"),
    state: text(100, /^[\p{L}0-9\- .']+$/u, "letters, digits and - . '")
      .nullable()
      .optional()
      .describe("null or absent: none"),
  })
  .strict()
  // Vault sends `state: null` where there is none: the same as leaving it out.
  .transform(({ state, ...rest }) => (state == null ? rest : { ...rest, state }))
  .meta({ example: { address: "12 Rue de Rivoli", city: "Paris", countryCode: "FR", zip: "75001" } });

/** Where the browser goes back after 3-D Secure: a web address only (never `javascript:` or the like). */
export const returnUrl = z
  .url()
  .max(2000)
  .refine((u) => /^https?:\/\//i.test(u), "an http or https address");

/**
 * A card number: a string of digits (spaces allowed), or a JSON number as Vault's documentation
 * sends it — only while it is exact (up to 2^53 − 1); a longer one must be sent as a string, since
 * JSON parsing has already rounded it.
 */
export const cardNumber = z
  .union([
    z.string().regex(/^[0-9 ]{12,23}$/, "12–19 digits"),
    z
      .number()
      .int()
      .refine(
        (n) => Number.isSafeInteger(n) && n >= 1e11,
        "12–19 digits; a number above 9007199254740991 is not exact in JSON: send it as a string",
      ),
  ])
  .transform((value) => String(value).replaceAll(" ", ""))
  .meta({ example: "4242424242424242" });

/**
 * Vault names cards and offers by integers: each card and offer is shown by its number on this face
 * (given the first time it is shown, src/modules/payin/numbers.ts), and either that number (a JSON
 * number or digits) or Ferry's own id (`pm_…`, a UUID) is taken back.
 */
const ferryCardId = z.string().regex(/^pm_[0-9a-f-]{36}$/, "a card id");
/** In a body: a JSON integer (or Ferry's own id). */
const idNumber = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
/** In a path or query: digits (or Ferry's own id). */
const idDigits = z.string().regex(/^[1-9][0-9]{0,14}$/, "an id");

export const cardId = z.union([ferryCardId, idNumber]).meta({ example: 127 });
export const cardIdParam = z.union([ferryCardId, idDigits]).meta({ example: "127" });
export const offerId = z.union([z.uuid(), idDigits]).meta({ example: "7402" });

/** The number a card or offer is shown by (given now if it has none yet). */
export async function numberOf(
  services: Services,
  session: Session,
  kind: "CARD" | "OFFER",
  ref: string,
): Promise<number> {
  const number = (await services.payin.numbers(session, kind, [ref])).get(ref);
  if (number === undefined) throw new Error(`no number for ${kind} ${ref}`);
  return number;
}

export const cardAnswer = z
  .object({
    cardId: z.number().int().describe("The card's number on this face (Vault's ids are integers)"),
    cardType: z.string().nullable(),
    maskedPan: z.string(),
    validationStatus: z.string(),
  })
  .meta({ id: "PayinCard" });

export const masked = (c: { bin: string | null; last4: string | null }) =>
  `${c.bin ?? "******"}******${c.last4 ?? "****"}`;

/** A card as this face shows it, by its number. */
export const showCard = (
  c: {
    brand: string | null;
    bin: string | null;
    last4: string | null;
  },
  number: number,
) => ({
  cardId: number,
  cardType: c.brand,
  maskedPan: masked(c),
  validationStatus: "VALIDATED",
});

/** The core's names of a card's fields, as this face's body names them. */
const CARD_FIELDS: Record<string, string> = {
  expirationYear: "cardExpirationYear",
  expirationMonth: "cardExpirationMonth",
  paymentInformation: "cardNumber",
  sourceMethod: "cardNumber",
};

/** A payment-method error with the field named as in this face's request. */
export function inThisFace(error: unknown): unknown {
  if (!(error instanceof DomainError) || !error.field || !CARD_FIELDS[error.field]) return error;
  const field = CARD_FIELDS[error.field] as string;
  return new DomainError(
    error.kind,
    error.code,
    error.message.replace(error.field, field),
    field,
    error.details,
  );
}
