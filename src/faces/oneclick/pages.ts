import type { FastifyReply } from "fastify";
import { securePage } from "../../http/page-security.ts";

/** The 1-Click face's HTML: small, no scripts, no external resources. */

export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The pages' one inline style block (their Content-Security-Policy allows it by hash). */
const STYLE =
  "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}button{font-size:1rem;padding:.6rem 1.2rem;margin:.5rem .5rem 0 0}form{display:inline}input{font-size:1rem;padding:.4rem}.box{border:1px solid #ccc;border-radius:6px;padding:1rem;margin:1rem 0}.error{color:#a00}";

export function page(title: string, body: string, options: { refreshSeconds?: number } = {}) {
  const refresh =
    options.refreshSeconds !== undefined
      ? `<meta http-equiv="refresh" content="${options.refreshSeconds}">`
      : "";
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">${refresh}
<style>${STYLE}</style>
</head><body>${body}</body></html>`;
}

/**
 * Sends a page with its policy (http/page-security.ts): no script, the style by hash. The address
 * may be a capability (the session id): kept out of caches and other sites' Referer headers.
 * `frameAncestors`: the exact origins allowed to show it in an iframe (the operator's, from its
 * registered redirect URIs); none → not framed at all. `formTargets`: where its forms' answers may
 * send the browser besides Ferry (the redirect URIs' origins, Ferry's public URL).
 */
export function sendPage(
  reply: FastifyReply,
  html: string,
  options: { status?: number; frameAncestors?: string[]; formTargets?: string[] } = {},
) {
  return securePage(reply.code(options.status ?? 200), {
    styles: [STYLE],
    ...(options.frameAncestors ? { frameAncestors: options.frameAncestors } : {}),
    ...(options.formTargets ? { formTargets: options.formTargets } : {}),
  }).send(html);
}
