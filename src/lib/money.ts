/**
 * Money on the wire is a decimal string in major units ("100.50"); inside Ferry it is a bigint in
 * minor units. Never a float: a JSON number is accepted only through its exact decimal text.
 */

/** NUMERIC(38,0): the largest amount Ferry stores. */
export const MAX_AMOUNT = 10n ** 38n - 1n;

export class AmountError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AmountError";
  }
}

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;

/**
 * Parses a decimal amount into minor units at `scale`. Rejects more decimals than the scale allows
 * (it never rounds), more than 38 digits, and malformed text.
 */
export function parseAmount(value: string | number, scale: number): bigint {
  const text = typeof value === "number" ? numberToDecimalText(value) : value.trim();
  const match = DECIMAL.exec(text);
  if (!match) throw new AmountError('must be a decimal number such as "100.50"');
  const [, sign, whole = "", fraction = ""] = match;
  const significantFraction = fraction.replace(/0+$/, "");
  if (significantFraction.length > scale) {
    throw new AmountError(`has more than ${scale} decimal place${scale === 1 ? "" : "s"}`);
  }
  const minor = BigInt(whole + significantFraction.padEnd(scale, "0"));
  if (minor > MAX_AMOUNT) throw new AmountError("has more than 38 digits");
  return sign ? -minor : minor;
}

/** Parses a strictly positive amount (what every transfer and payment needs). */
export function parsePositiveAmount(value: string | number, scale: number): bigint {
  const minor = parseAmount(value, scale);
  if (minor <= 0n) throw new AmountError("must be greater than zero");
  return minor;
}

/** Formats minor units as a decimal string with exactly `scale` decimals: 10050n, 2 → "100.50". */
export function formatAmount(minor: bigint, scale: number): string {
  const negative = minor < 0n;
  const digits = (negative ? -minor : minor).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const fraction = scale > 0 ? `.${digits.slice(digits.length - scale)}` : "";
  return `${negative ? "-" : ""}${whole}${fraction}`;
}

function numberToDecimalText(value: number): string {
  if (!Number.isFinite(value)) throw new AmountError("must be a finite number");
  // A JSON number beyond 2^53 has already lost digits in JSON.parse: ask for a string instead.
  if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
    throw new AmountError("is too large for a JSON number; send it as a decimal string");
  }
  const text = String(value);
  if (/e/i.test(text)) {
    throw new AmountError("must be written without an exponent; send it as a decimal string");
  }
  return text;
}
