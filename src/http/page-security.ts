import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ApiError } from "./errors.ts";

/**
 * Every HTML page Ferry serves says who may frame it and what it may load, and its decisions are
 * taken by POST with a CSRF defence.
 *
 * - `registerPageSecurity` (app.ts): an onSend hook gives every answer `X-Content-Type-Options:
 *   nosniff`, and every HTML (or SVG) answer a Content-Security-Policy — the strict default below
 *   when the route set none, `frame-ancestors 'none'` added to one that forgot it —, `X-Frame-Options:
 *   DENY` when nobody may frame it and `Referrer-Policy: no-referrer`. A new page cannot forget.
 * - `pagePolicy` / `securePage`: a page's own policy: no script at all, its inline `<style>` by hash,
 *   forms to itself and to the origins the answer may redirect to, framed by nobody or by exact
 *   origins (the 1-Click client's registered ones).
 * - `PageForms`: a decision form's hidden token (an HMAC of the page's purpose and id, under a key
 *   derived from the master key, so every process agrees) checked in constant time, with the
 *   browser's `Sec-Fetch-Site` (else `Origin`) where present: a form posted from another site is a
 *   403.
 */

const DOCUMENT = /^(text\/html|application\/xhtml\+xml|image\/svg\+xml)\b/i;
const FRAME_ANCESTORS = /(^|;)\s*frame-ancestors\s/i;

/** The policy of an HTML answer whose route set none: nothing loads, nobody frames it. */
export const DEFAULT_PAGE_POLICY =
  "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** A CSP hash source of an inline block's exact text. */
export const cspHash = (text: string) =>
  `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;

// An exact http(s) origin a CSP source expression can name (CSP host sources have no IPv6 form).
const SOURCE = /^https?:\/\/[a-z0-9-]+(\.[a-z0-9-]+)*(:\d{1,5})?$/;

/** The exact origins of these URLs that a policy can name (others, and non-http ones, left out). */
export function cspOrigins(urls: readonly (string | null | undefined)[]): string[] {
  const origins = new Set<string>();
  for (const url of urls) {
    if (!url) continue;
    try {
      const origin = new URL(url).origin;
      if (SOURCE.test(origin)) origins.add(origin);
    } catch {
      // not a URL: nothing to allow
    }
  }
  return [...origins];
}

export interface PagePolicy {
  /** The origins that may show the page in a frame; none → nobody (and X-Frame-Options DENY). */
  frameAncestors?: readonly string[];
  /** Origins the page's forms may reach besides its own, redirects after a form included. */
  formTargets?: readonly string[];
  /** The text of the page's inline `<style>` blocks, allowed by hash. */
  styles?: readonly string[];
}

/** A strict policy for a page: no script, styles by hash, forms and framers limited. */
export function pagePolicy(policy: PagePolicy): string {
  const ancestors = cspOrigins(policy.frameAncestors ?? []);
  const targets = cspOrigins(policy.formTargets ?? []);
  const styles = [...new Set(policy.styles ?? [])].map(cspHash);
  return [
    "default-src 'none'",
    ...(styles.length ? [`style-src ${styles.join(" ")}`] : []),
    "base-uri 'none'",
    `form-action ${["'self'", ...targets].join(" ")}`,
    `frame-ancestors ${ancestors.length ? ancestors.join(" ") : "'none'"}`,
  ].join("; ");
}

/**
 * Prepares an HTML answer: its policy, and (its address being a capability) no caching and no
 * Referer to other sites. The page is then sent with `reply.send(html)`.
 */
export function securePage(reply: FastifyReply, policy: PagePolicy): FastifyReply {
  const framed = cspOrigins(policy.frameAncestors ?? []).length > 0;
  reply
    .type("text/html; charset=utf-8")
    .header("Content-Security-Policy", pagePolicy(policy))
    .header("Cache-Control", "no-store")
    .header("Referrer-Policy", "no-referrer")
    .header("X-Content-Type-Options", "nosniff");
  if (!framed) reply.header("X-Frame-Options", "DENY");
  return reply;
}

/** The onSend hook that gives every HTML answer a policy (see above). Register first in app.ts. */
export function registerPageSecurity(app: FastifyInstance): void {
  app.addHook("onSend", async (_request, reply, payload) => {
    reply.header("X-Content-Type-Options", "nosniff");
    if (!DOCUMENT.test(String(reply.getHeader("content-type") ?? ""))) return payload;
    let policy = reply.getHeader("content-security-policy");
    if (policy === undefined) {
      policy = DEFAULT_PAGE_POLICY;
      reply.header("Content-Security-Policy", policy);
    } else if (!FRAME_ANCESTORS.test(String(policy))) {
      policy = `${String(policy).replace(/[;\s]+$/, "")}; frame-ancestors 'none'`;
      reply.header("Content-Security-Policy", policy);
    }
    if (/(^|;)\s*frame-ancestors\s+'none'/i.test(String(policy)) && !reply.hasHeader("x-frame-options"))
      reply.header("X-Frame-Options", "DENY");
    if (!reply.hasHeader("referrer-policy")) reply.header("Referrer-Policy", "no-referrer");
    return payload;
  });
}

/** The name of a decision form's hidden token. */
export const FORM_TOKEN = "csrf";

/**
 * Decision forms' CSRF defence. The token binds the form to its page (purpose and id: a 3-D Secure
 * charge, a KYC verification, a 1-Click session); only a page Ferry rendered carries it, and
 * another site can neither read the page (same-origin policy) nor frame it.
 */
export class PageForms {
  readonly #origin: string;

  constructor(
    private readonly keyed: { fingerprint(value: string): string },
    publicUrl: string,
  ) {
    this.#origin = new URL(publicUrl).origin;
  }

  /** The hidden token of the page `purpose`/`id`. */
  token(purpose: string, id: string): string {
    return this.keyed.fingerprint(`ferry page form\u0000${purpose}\u0000${id}`);
  }

  /** The hidden field to put in each of the page's forms. */
  field(purpose: string, id: string): string {
    return `<input type="hidden" name="${FORM_TOKEN}" value="${this.token(purpose, id)}">`;
  }

  /**
   * Refuses (403) a decision posted from another site or without the page's token. Where the
   * browser says where the form came from (`Sec-Fetch-Site`, `Origin`), it must be Ferry itself.
   */
  check(request: FastifyRequest, purpose: string, id: string, given: unknown): void {
    // Sec-Fetch-Site, where the browser sends it, says whether the form was Ferry's own page.
    const site = request.headers["sec-fetch-site"];
    if (site !== undefined && site !== "same-origin")
      throw forbidden(
        `a decision is taken on Ferry's own page, not from another site (Sec-Fetch-Site: ${site})`,
      );
    // Otherwise Origin: Ferry's, or "null" — what a browser sends for a form of a page whose
    // Referrer-Policy is no-referrer, as Ferry's pages are (the token then decides).
    const origin = request.headers.origin;
    if (
      site === undefined &&
      origin !== undefined &&
      origin !== "null" &&
      origin !== this.#origin &&
      origin !== `${request.protocol}://${request.host}`
    )
      throw forbidden("a decision is taken on Ferry's own page, not from another site (Origin)");
    const expected = createHash("sha256").update(this.token(purpose, id)).digest();
    const received = createHash("sha256")
      .update(typeof given === "string" ? given : "")
      .digest();
    if (!(timingSafeEqual(expected, received) && typeof given === "string"))
      throw forbidden(`the form's ${FORM_TOKEN} token is missing or wrong: open the page again`);
  }
}

const forbidden = (message: string) =>
  new ApiError("FORBIDDEN", message, { errors: [{ field: FORM_TOKEN, message }] });
