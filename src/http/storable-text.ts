import type { FieldError } from "./errors.ts";

/**
 * Text PostgreSQL cannot store: NUL (`\u0000`) is refused in `text` (invalid byte sequence, 22021)
 * and in `jsonb` (unsupported Unicode escape, 22P05); an unpaired UTF-16 surrogate is refused by
 * `jsonb` (22P02) and silently turned into U+FFFD in `text`. A JSON body carrying either is bad
 * input, so every face refuses it in the body parser, naming the field, before any route runs.
 */
export function findUnstorableText(value: unknown, path = ""): FieldError | undefined {
  if (typeof value === "string") return problemOf(value, path);
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = findUnstorableText(item, join(path, String(index)));
      if (found) return found;
    }
    return undefined;
  }
  if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      const field = join(path, key.replaceAll("\u0000", "\\u0000"));
      const inKey = problemOf(key, field);
      if (inKey) return inKey;
      const found = findUnstorableText(item, field);
      if (found) return found;
    }
  }
  return undefined;
}

function problemOf(text: string, path: string): FieldError | undefined {
  const field = path || "body";
  if (text.includes("\u0000")) return { field, message: "must not contain NUL characters (\\u0000)" };
  if (LONE_SURROGATE.test(text))
    return { field, message: "must not contain unpaired UTF-16 surrogates (such as \\ud800 alone)" };
  return undefined;
}

// With the u flag a well-formed pair is one code point, so only a lone surrogate matches Cs.
const LONE_SURROGATE = /\p{Cs}/u;
const join = (path: string, member: string) => (path ? `${path}.${member}` : member);
