import type { FastifyReply } from "fastify";

/** The 1-Click face's HTML: small, no scripts, no external resources. */

export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function page(title: string, body: string, options: { refreshSeconds?: number } = {}) {
  const refresh =
    options.refreshSeconds !== undefined
      ? `<meta http-equiv="refresh" content="${options.refreshSeconds}">`
      : "";
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">${refresh}
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}button{font-size:1rem;padding:.6rem 1.2rem;margin:.5rem .5rem 0 0}form{display:inline}input{font-size:1rem;padding:.4rem}.box{border:1px solid #ccc;border-radius:6px;padding:1rem;margin:1rem 0}.error{color:#a00}</style>
</head><body>${body}</body></html>`;
}

/**
 * Sends a page. The address may be a capability (the session id): kept out of caches and other
 * sites' Referer headers. `frameAncestors`: the origins allowed to show it in an iframe (the
 * operator's, from its registered redirect URIs); none → not framed at all.
 */
export function sendPage(
  reply: FastifyReply,
  html: string,
  options: { status?: number; frameAncestors?: string[] } = {},
) {
  const ancestors = options.frameAncestors?.length ? options.frameAncestors.join(" ") : "'none'";
  return reply
    .code(options.status ?? 200)
    .type("text/html; charset=utf-8")
    .header("Cache-Control", "no-store")
    .header("Referrer-Policy", "no-referrer")
    .header(
      "Content-Security-Policy",
      `default-src 'none'; style-src 'unsafe-inline'; form-action 'self' *; frame-ancestors ${ancestors}`,
    )
    .send(html);
}

/** The origins of a client's registered redirect URIs: the sites that may frame its pages. */
export const originsOf = (redirectUris: string[]) => [...new Set(redirectUris.map((u) => new URL(u).origin))];
