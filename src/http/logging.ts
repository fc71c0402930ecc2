import type { FastifyRequest } from "fastify";
import type { LoggerOptions } from "pino";

/**
 * Field names whose values never reach a log line: credentials, card data, and the PII of end
 * users. Matched at any of the first three levels of a logged object.
 */
export const SENSITIVE_FIELDS = [
  "password",
  "newPassword",
  "adminPassword",
  "secret",
  "clientSecret",
  "client_secret",
  "token",
  "accessToken",
  "access_token",
  "refreshToken",
  "authorization",
  "cookie",
  "x-signature",
  "x-user-token",
  "privateKey",
  "cardNumber",
  "pan",
  "cvv",
  "cardCVV",
  "iban",
  "bankAccountNumber",
  "firstName",
  "lastName",
  "middleName",
  "name",
  "fullName",
  "cardHolder",
  "emails",
  "email",
  "phones",
  "phone",
  "addresses",
  "address",
  "dateOfBirth",
  "dob",
  "piis",
  "personid",
  "otp",
  "login",
  "databaseUrl",
  "DATABASE_URL",
];

function redactPaths(): string[] {
  const paths: string[] = [];
  for (const field of SENSITIVE_FIELDS) {
    const key = /^[A-Za-z_$][\w$]*$/.test(field) ? field : `["${field}"]`;
    const join = (prefix: string) => (key.startsWith("[") ? `${prefix}${key}` : `${prefix}.${key}`);
    paths.push(key.startsWith("[") ? key.slice(2, -2) : key, join("*"), join("*.*"));
  }
  return paths;
}

const SENSITIVE_QUERY =
  /^(token|access_token|code|client_secret|password|otp|personid|to|login|email|phone)$/i;

/** A URL as logged: the values of sensitive query parameters replaced. */
export function redactUrl(url: string): string {
  const q = url.indexOf("?");
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  for (const key of [...params.keys()]) if (SENSITIVE_QUERY.test(key)) params.set(key, "[REDACTED]");
  return `${url.slice(0, q)}?${params.toString()}`;
}

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: redactPaths(), censor: "[REDACTED]" },
    serializers: {
      req(request: FastifyRequest) {
        return {
          method: request.method,
          url: redactUrl(request.url),
          route: request.routeOptions?.url,
          remoteAddress: request.ip,
        };
      },
    },
  };
}
