import { DomainError } from "../../lib/errors.ts";

/**
 * What a registered redirect URI may be (RFC 6749 §3.1.2, RFC 9700 §2.1 and §4.1, RFC 8252 §7.3):
 *
 * - absolute, `http` or `https` (no private-use scheme: the 1-Click flow is a browser's, and its
 *   redirect origins are also the sites that may frame the pages, which a custom scheme cannot be;
 *   a native app uses a claimed `https` URL or a loopback address);
 * - no fragment, no user information, no wildcard or pattern anywhere (`*`, `{…}`): matched as an
 *   exact string, so the registered text is what a browser is sent to;
 * - written as the URL parser writes it (`new URL(u).href === u`: a lower-case host in ASCII, no
 *   default port, a path at least `/`), so that what matches is what the browser reaches;
 * - a host name or an IPv4 address — not an IPv6 literal, `[::1]` included: a CSP source cannot
 *   name one, so the pages' `form-action` could not allow the redirect after a decision (Chromium
 *   blocks it) nor `frame-ancestors` the framing; a native app uses `127.0.0.1` or `localhost`;
 * - for a live client, `https`, except a loopback address (`127.0.0.1`, `localhost`;
 *   RFC 8252 §7.3), for a native app on the user's own machine.
 *
 * Loopback URIs are matched exactly, port included (RFC 8252 §7.3 lets the port vary; Ferry does
 * not: register each port in use).
 */

export type RedirectMode = "sandbox" | "live";

const LOOPBACK = new Set(["127.0.0.1", "localhost"]);
const HOST = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Why a URI cannot be a redirect URI of any client, or undefined when it can. */
export function redirectUriProblem(uri: string): string | undefined {
  if (uri.length > 2000) return "is longer than 2000 characters";
  if ([...uri].some((c) => c.charCodeAt(0) <= 0x20 || c.charCodeAt(0) === 0x7f || /\s/.test(c)))
    return "contains white space or a control character";
  if (uri.includes("#")) return "has a fragment (#…); RFC 6749 §3.1.2 forbids one";
  if (/[*{}]/.test(uri) || /%2a/i.test(uri))
    return "has a wildcard or pattern (*, {…}); redirect URIs are matched exactly";
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return "is not an absolute URL";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return "must be an http or https URL";
  if (url.username !== "" || url.password !== "" || /^[a-z]+:\/\/[^/?]*@/i.test(uri))
    return "must not carry user information (user@)";
  if (url.href !== uri) return `must be written as the URL it is: ${url.href}`;
  const host = url.hostname;
  if (host.startsWith("["))
    return "must not name an IPv6 address (a page's policy cannot name one, so the browser would block the redirect): use 127.0.0.1 or localhost";
  if (!HOST.test(host)) return "must name a host (a domain name or an IPv4 address)";
  return undefined;
}

/** Whether a (well-formed) redirect URI is a loopback one (RFC 8252 §7.3). */
export function isLoopback(uri: string): boolean {
  try {
    return LOOPBACK.has(new URL(uri).hostname);
  } catch {
    return false;
  }
}

/** Why a URI cannot be a redirect URI of a client in `mode`, or undefined when it can. */
export function redirectUriRefusal(uri: string, mode: RedirectMode): string | undefined {
  const problem = redirectUriProblem(uri);
  if (problem) return problem;
  if (mode === "live" && uri.startsWith("http:") && !isLoopback(uri))
    return "must be https for a live client (http only for a loopback address: 127.0.0.1, localhost)";
  return undefined;
}

/**
 * Refuses a set of redirect URIs unfit for a client in `mode`: a 400 naming the first one and why
 * (`field` `oneClick.redirectUris.N`). Called when the 1-Click set-up is created or changed and
 * when a client switches to live.
 */
export function checkRedirectUris(uris: readonly string[], mode: RedirectMode): void {
  uris.forEach((uri, i) => {
    const refusal = redirectUriRefusal(uri, mode);
    if (refusal)
      throw new DomainError(
        "INVALID",
        "INVALID_REDIRECT_URI",
        `redirect URI ${JSON.stringify(uri)} ${refusal}`,
        `oneClick.redirectUris.${i}`,
      );
  });
}

/**
 * The registered URIs a client in `mode` may use now: one registered before these rules (or a
 * sandbox client's http URI once the client went live by other means) no longer matches.
 */
export function usableRedirectUris(uris: readonly string[], mode: RedirectMode): string[] {
  return uris.filter((uri) => redirectUriRefusal(uri, mode) === undefined);
}

/**
 * The exact origins of a client's usable redirect URIs: the sites that may frame its 1-Click pages
 * (CSP frame-ancestors), read the authorize answer (CORS), and receive the browser after a form.
 */
export function redirectOrigins(uris: readonly string[], mode: RedirectMode): string[] {
  return [...new Set(usableRedirectUris(uris, mode).map((uri) => new URL(uri).origin))];
}
