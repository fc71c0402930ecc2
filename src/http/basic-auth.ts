import type { FastifyRequest } from "fastify";
import type { AdminAuthenticator } from "../modules/admins/service.ts";
import { ApiError } from "./errors.ts";

const challenge = { headers: { "WWW-Authenticate": 'Basic realm="ferry-admin", charset="UTF-8"' } };

/** Parses `Authorization: Basic …` into username and password, or undefined. */
export function parseBasicAuth(
  header: string | undefined,
): { username: string; password: string } | undefined {
  const match = header && /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** A preHandler for platform-admin routes: HTTP Basic, 401 with a challenge otherwise. */
export function requirePlatformAdmin(authenticator: AdminAuthenticator) {
  return async (request: FastifyRequest) => {
    const credentials = parseBasicAuth(request.headers.authorization);
    if (!credentials)
      throw new ApiError("UNAUTHORIZED", "platform admin credentials required (HTTP Basic)", challenge);
    if (!(await authenticator.verify(credentials.username, credentials.password, guessSource(request.ip)))) {
      throw new ApiError("UNAUTHORIZED", "wrong username or password", challenge);
    }
  };
}

/**
 * The source a guess is counted against: an IPv4 address (an IPv4-mapped IPv6 one as IPv4), or an
 * IPv6 address's /64 — one host usually holds a whole /64, and counting its addresses one by one
 * would give it unlimited guesses.
 */
export function guessSource(ip: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped?.[1]) return mapped[1];
  if (!ip.includes(":")) return ip;
  const [head = "", tail] = ip.toLowerCase().split("%")[0]?.split("::") ?? [""];
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}
