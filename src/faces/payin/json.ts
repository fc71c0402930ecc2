import type { FastifyReply } from "fastify";
import { z } from "zod";
import { formatAmount, parseAmount } from "../../lib/money.ts";

/**
 * Vault's answers carry amounts, rates and limits as JSON numbers. Ferry's money is exact (bigint
 * minor units, decimal text): a `Decimal` holds the exact decimal text and `exactJson` writes that
 * text as the number, digit for digit — never through a float. (A reader that parses JSON numbers
 * as doubles rounds them on its side, as it would Vault's.)
 */
export class Decimal {
  constructor(readonly text: string) {
    if (!/^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/.test(text)) throw new Error(`not a decimal: ${text}`);
  }
}

export const decimal = (text: string) => new Decimal(text);

/** The OpenAPI side of a Decimal: a number. */
export const numberOut = z.number().meta({ example: 100 });

// A string no text in an answer can hold (the body parser and the database refuse NUL).
const MARK = "\u0000decimal:";
const MARKED = /"\\u0000decimal:(-?[0-9.]+)"/g;

/** JSON text of `value`, every Decimal written as a bare number of exactly its digits. */
export function exactJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v instanceof Decimal ? `${MARK}${v.text}` : v)).replace(
    MARKED,
    "$1",
  );
}

/**
 * Sends `value` as exact JSON text. A string payload skips the route's serializer, so the response
 * schema documents the answer (numbers) without re-checking it.
 */
export function sendExact(reply: FastifyReply, value: unknown) {
  return reply.type("application/json; charset=utf-8").send(exactJson(value));
}

/** A percent ("1.5") as the fraction Vault's `fees.rate` is (0.015), exactly. */
export function fraction(percent: string): Decimal {
  const scale = (percent.split(".")[1] ?? "").length;
  const text = formatAmount(parseAmount(percent, scale), scale + 2);
  return new Decimal(text.includes(".") ? text.replace(/\.?0+$/, "") : text);
}
