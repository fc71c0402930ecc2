import type { FastifyReply, FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { CLIENT_CHOSEN_ID } from "../../lib/ids.ts";
import {
  redirectOrigins,
  redirectUriRefusal,
  usableRedirectUris,
} from "../../modules/oauth/redirect-uris.ts";
import { AuthorizeRefusal, answerUrl, type OneClickRow } from "../../modules/oneclick/service.ts";
import type { Services } from "../../services.ts";
import { escapeHtml, page, sendPage } from "./pages.ts";

/**
 * `GET /oauth/authorize`: the OAuth wire format of a 1-Click start. An unknown client or an
 * unregistered redirect_uri is a 400 page (never a redirect); every other problem goes back to the
 * redirect_uri as RFC 6749 `error` + `error_description` + `state` (+ `iss`) — as JSON
 * `redirectOutput` (iframe=true) or a 302 (iframe=false). The client's own rules (providers,
 * deposits, its secret) are the module's (modules/oneclick/authorization.ts).
 */

export const SCOPES = new Set(["default"]);
const ONE = (description: string) => z.string().max(2000).optional().describe(description);

const authorizeQuery = z
  .object({
    client_id: ONE("The Ferry client id"),
    redirect_uri: ONE("Exactly one of the client's registered redirect URIs"),
    response_type: ONE("`code` (the default: PaymentIQ's own requests leave it out)"),
    state: ONE("Returned as it is (CSRF protection; recommended)"),
    scope: ONE("`default`"),
    identity_provider: ONE("`sandbox-bankid` or `sandbox-trustly`"),
    amount: ONE("For a deposit: the amount, a decimal string in major units (`100.00`)"),
    currency: ONE("For a deposit: its currency (`EUR`)"),
    locale: ONE("The pages' language tag (`sv_SE`, `en`)"),
    iframe: ONE("`true` (default): answer JSON with redirectOutput; `false`: a 302 to the provider's page"),
    code_challenge: ONE("PKCE (RFC 7636), S256 only"),
    code_challenge_method: ONE("`S256`"),
  })
  .catchall(z.unknown());

type Parameters = (name: string) => string | undefined;

/** What the request asks for, in the OAuth wire format's terms, or the RFC 6749 error it earns. */
function parse(
  q: Record<string, unknown>,
  one: Parameters,
):
  | { error: string; description: string }
  | {
      scope: string;
      provider: string;
      locale?: string;
      challenge?: string;
      attributes?: Record<string, string>;
    } {
  const fail = (error: string, description: string) => ({ error, description });
  const repeated = Object.entries(q).find(([, v]) => Array.isArray(v));
  if (repeated) return fail("invalid_request", `${repeated[0]} is given more than once`);
  const iframe = one("iframe");
  if (iframe !== undefined && iframe !== "true" && iframe !== "false")
    return fail("invalid_request", "iframe must be true or false");
  if ((one("state")?.length ?? 0) > 500)
    return fail("invalid_request", "state is longer than 500 characters");
  // PaymentIQ's documented request has no response_type: its only flow is the code flow.
  const responseType = one("response_type") ?? "code";
  if (responseType !== "code")
    return fail("unsupported_response_type", "only response_type=code is supported");
  const scope = one("scope") ?? "default";
  if (scope.split(" ").some((s) => !SCOPES.has(s))) return fail("invalid_scope", "the scope is `default`");
  const provider = one("identity_provider");
  if (provider === undefined) return fail("invalid_request", "identity_provider is required");
  const locale = one("locale");
  if (locale !== undefined && !/^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$/.test(locale))
    return fail("invalid_request", "locale must be a language tag such as sv_SE or en");
  const challenge = one("code_challenge");
  const method = one("code_challenge_method");
  if (method !== undefined && challenge === undefined)
    return fail("invalid_request", "code_challenge_method without code_challenge");
  if (challenge !== undefined) {
    if ((method ?? "plain") !== "S256") return fail("invalid_request", "code_challenge_method must be S256");
    if (!/^[A-Za-z0-9_-]{43}$/.test(challenge))
      return fail("invalid_request", "code_challenge must be a base64url SHA-256 (43 characters)");
  }
  // PaymentIQ's `attributes[key]=value`: echoed to the operator in the signin callback.
  const attributes: Record<string, string> = {};
  for (const [key, value] of Object.entries(q)) {
    const name = /^attributes\[(.*)\]$/.exec(key)?.[1];
    if (name === undefined) continue;
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name))
      return fail("invalid_request", "an attributes[…] key is 1 to 64 letters, digits, _ . or -");
    if (typeof value !== "string" || value.length > 500)
      return fail("invalid_request", `attributes[${name}] is longer than 500 characters`);
    attributes[name] = value;
  }
  if (Object.keys(attributes).length > 20) return fail("invalid_request", "at most 20 attributes");
  return {
    scope,
    provider,
    ...(locale ? { locale } : {}),
    ...(challenge ? { challenge } : {}),
    ...(Object.keys(attributes).length > 0 ? { attributes } : {}),
  };
}

function badPage(reply: FastifyReply, message: string) {
  return sendPage(
    reply,
    page(
      "Sign-in cannot start",
      `<h1>Sign-in cannot start</h1><p class="error" id="error">${escapeHtml(message)}</p><p>Go back to the site you came from and try again.</p>`,
    ),
    { status: 400 },
  );
}

/** The CORS answer (iframe=true is fetched by the operator's page): its registered origins only. */
function corsFor(request: FastifyRequest, reply: FastifyReply, origins: string[]) {
  const origin = request.headers.origin;
  if (typeof origin === "string" && origins.includes(origin)) {
    reply.header("Access-Control-Allow-Origin", origin);
    reply.header("Vary", "Origin");
  }
}

/** The answer that sends the browser on: JSON `redirectOutput` (iframe=true) or a 302. */
function sendTo(
  reply: FastifyReply,
  iframe: boolean,
  url: string,
  started?: { row: OneClickRow; statusUrl: string },
  /** A refusal's description: PaymentIQ's `errors` (its messages) beside `success: false`. */
  refusal?: string,
) {
  reply.header("Cache-Control", "no-store");
  if (!iframe) return reply.redirect(url, 302);
  const output = { url, method: "GET", html: null, parameters: {} };
  if (!started)
    return reply.send({
      success: false,
      redirectOutput: { ...output, container: "window", height: null, width: null },
      message: [],
      messages: [],
      errors: refusal === undefined ? [] : [refusal],
    });
  return reply.send({
    success: true,
    redirectOutput: { ...output, container: "iframe", height: 750, width: 600 },
    // PaymentIQ's authorize page names it `message`, its code-grant page `messages`: both are sent.
    message: [],
    messages: [],
    links: { statusUrl: started.statusUrl },
    txId: started.row.tx_id,
  });
}

export const authorizeRoute: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  const flow = services.oneClick;
  const base = services.settings.publicUrl;
  app.get(
    "/oauth/authorize",
    {
      schema: {
        tags: ["1-click"],
        summary: "Start a 1-Click sign-up (and deposit): the browser is sent to the identity provider",
        description:
          "An unknown client_id or a redirect_uri not registered for it → a 400 page (never a redirect). Every other problem is sent back to the redirect_uri with RFC 6749 `error`, `error_description`, `state` (iframe=true: as JSON `redirectOutput`; iframe=false: a 302).",
        querystring: authorizeQuery,
      },
      // The handler answers bad parameters itself: a 400 page (client_id, redirect_uri) or the
      // error sent back to the redirect_uri, never the face's JSON error.
      attachValidation: true,
    },
    async (request, reply) => {
      const q = request.query as Record<string, unknown>;
      // RFC 6749 §3.1: a parameter sent without a value is treated as if it were omitted.
      const one: Parameters = (name) => {
        const v = q[name];
        return typeof v === "string" && v !== "" ? v : undefined;
      };
      if (Array.isArray(q.client_id) || Array.isArray(q.redirect_uri))
        return badPage(reply, "client_id and redirect_uri may be given once only");
      const clientId = one("client_id");
      const target =
        clientId && CLIENT_CHOSEN_ID.test(clientId) ? await flow.authorizationTarget(clientId) : undefined;
      if (!target) return badPage(reply, "unknown client_id (or the client is not set up for 1-Click)");
      // Matched exactly (RFC 9700 §4.1.3), among the URIs the client's mode allows: one stored
      // before the set-up checks that no longer passes them matches nothing.
      const mode = target.client.mode;
      const registered = usableRedirectUris(target.settings.redirectUris, mode);
      const given = one("redirect_uri");
      const redirectUri = given ?? (target.settings.redirectUris.length === 1 ? registered[0] : undefined);
      if (redirectUri === undefined || !registered.includes(redirectUri)) {
        const unusable = given !== undefined && target.settings.redirectUris.includes(given);
        return badPage(
          reply,
          unusable
            ? `redirect_uri is registered but no longer accepted: it ${redirectUriRefusal(given, mode)}; the operator must register a valid one`
            : "redirect_uri is not registered for this client",
        );
      }
      corsFor(request, reply, redirectOrigins(registered, mode));
      const iframe = one("iframe") !== "false";
      const state = one("state");
      const fail = (error: string, description: string) =>
        sendTo(
          reply,
          iframe,
          answerUrl(redirectUri, { error, error_description: description }, state, flow.issuer()),
          undefined,
          description,
        );
      const parsed = parse(q, one);
      if ("error" in parsed) return fail(parsed.error, parsed.description);
      let row: OneClickRow;
      try {
        row = await flow.begin({
          clientId: target.client.id,
          provider: parsed.provider,
          redirectUri,
          redirectUriGiven: one("redirect_uri") !== undefined,
          state,
          scope: parsed.scope,
          locale: parsed.locale,
          iframe,
          codeChallenge: parsed.challenge,
          endUserIp: request.ip,
          attributes: parsed.attributes,
          amountText: one("amount"),
          currencyCode: one("currency"),
        });
      } catch (error) {
        // The face's error table: the client's rules' refusals go back to the redirect_uri.
        if (error instanceof AuthorizeRefusal) return fail(error.error, error.description);
        throw error;
      }
      return sendTo(reply, iframe, `${base}/sandbox/identity/${row.session_id}`, {
        row,
        statusUrl: `${base}/oauth/wait/${row.session_id}`,
      });
    },
  );
};
