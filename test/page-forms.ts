import { FORM_TOKEN, PageForms } from "../src/http/page-security.ts";
import type { Services } from "../src/services.ts";

/**
 * The hidden anti-CSRF token of Ferry's decision pages (src/http/page-security.ts), for tests that
 * post a decision as the page's form does.
 */

/** The token in a page's HTML (each decision form carries it). */
export function formTokenOf(html: string): string {
  const found = new RegExp(`name="${FORM_TOKEN}" value="([^"]+)"`).exec(html);
  if (!found?.[1]) throw new Error(`no ${FORM_TOKEN} field in the page:\n${html.slice(0, 500)}`);
  return found[1];
}

/** The token Ferry puts in the page `purpose`/`id` (3ds-challenge, kyc-verification, identity). */
export function pageToken(t: { services: Services }, purpose: string, id: string): string {
  return new PageForms(t.services.sealer, t.services.settings.publicUrl).token(purpose, id);
}

/** `path`'s last segment: the page's id (a charge reference, a verification id, a session id). */
export const idOf = (path: string) => new URL(path, "http://x").pathname.split("/").pop() ?? "";

/** The token of the page at `path` (/sandbox/acquirer/challenge/…, /sandbox/kyc/verification/…, /sandbox/identity/…). */
export function tokenFor(t: { services: Services }, path: string): string {
  const pathname = new URL(path, "http://x").pathname;
  const purpose = pathname.includes("/acquirer/challenge/")
    ? "3ds-challenge"
    : pathname.includes("/kyc/verification/")
      ? "kyc-verification"
      : "identity";
  return pageToken(t, purpose, idOf(pathname));
}
