import type { FastifyReply, FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { createLocalJWKSet, jwtVerify } from "jose";
import { z } from "zod";
import { parseBasicAuth } from "../../http/basic-auth.ts";
import { toApiError } from "../../http/errors.ts";
import { CLIENT_CHOSEN_ID } from "../../lib/ids.ts";
import { AmountError, parsePositiveAmount } from "../../lib/money.ts";
import { findClient } from "../../modules/clients/service.ts";
import { FERRY_SIGNING_ALG, publishedJwks } from "../../modules/keys/service.ts";
import * as ledger from "../../modules/ledger/service.ts";
import { hasOAuthSecret, oneClickOf, verifyOAuthClient } from "../../modules/oauth/clients.ts";
import { answerUrl, browserDone, OAuthError, type OneClickRow } from "../../modules/oneclick/service.ts";
import { stateOf } from "../../modules/oneclick/statuses.ts";
import { KNOWN_SCALES } from "../../providers/rates/interface.ts";
import type { Services } from "../../services.ts";
import { escapeHtml, originsOf, page, sendPage } from "./pages.ts";

/**
 * The 1-Click face (`/oauth`, oneclick-api.md): the OAuth2 authorization-code flow an operator
 * platform sends a browser through to sign a user up and take a deposit in one step. Its error
 * shape is RFC 6749's `{error, error_description}`; the authorize endpoint answers a 400 page for
 * an unknown client or an unregistered redirect_uri (never a redirect) and sends every other error
 * back to the redirect_uri.
 */

const SCOPES = new Set(["default"]);
const ONE = (description: string) => z.string().max(2000).optional().describe(description);

const authorizeQuery = z
  .object({
    client_id: ONE("The Ferry client id"),
    redirect_uri: ONE("Exactly one of the client's registered redirect URIs"),
    response_type: ONE("`code`"),
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

const oauthErrorSchema = z
  .object({ error: z.string().meta({ example: "invalid_grant" }), error_description: z.string().optional() })
  .meta({ id: "OAuthError" });

const tokenResponse = z
  .object({
    access_token: z.string().describe("A JWT signed with Ferry's key (RS512; /.well-known/jwks.json)"),
    token_type: z.literal("bearer"),
    expires_in: z.number().int(),
    scope: z.string().meta({ example: "default" }),
    userId: z.string().nullable().meta({ example: "op-user-1" }),
    clientId: z.string(),
    txRefId: z.string().meta({ example: "acmeA100001" }),
    name: z.string().nullable().meta({ example: "Test Testsson" }),
    firstName: z.string().nullable(),
    lastName: z.string().nullable(),
    personid: z.string().nullable().meta({ example: "199001011234" }),
    street: z.string().nullable(),
    city: z.string().nullable(),
    zip: z.string().nullable(),
    country: z.string().nullable().meta({ example: "SWE" }),
    dob: z.string().nullable().meta({ example: "1990-01-01" }),
    identityProvider: z.string().meta({ example: "sandbox-bankid" }),
  })
  .meta({ id: "OneClickToken" });

const statusResponse = z
  .object({
    txId: z.string().meta({ example: "100001" }),
    txState: z.string().meta({ example: "SUCCESSFUL" }),
    statusCode: z.number().int().meta({ example: 0 }),
    statusName: z.string().meta({ example: "SUCCESS" }),
    amount: z.string().nullable().meta({ example: "100.00" }),
    currency: z.string().nullable().meta({ example: "EUR" }),
    userId: z.string().nullable(),
  })
  .meta({ id: "OneClickTransactionStatus" });

/** A reply in the face's error shape. */
function oauthReply(reply: FastifyReply, error: OAuthError) {
  if (error.status === 401) reply.header("WWW-Authenticate", 'Basic realm="ferry-oauth", charset="UTF-8"');
  return reply
    .code(error.status)
    .header("Cache-Control", "no-store")
    .send({ error: error.error, error_description: error.description });
}

export const oneClickFace: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  const db = services.database.db;
  const flow = services.oneClick;
  const tags = ["1-click"];

  // The token endpoint takes application/x-www-form-urlencoded (RFC 6749 §4.1.3).
  app.addContentTypeParser(
    "application/x-www-form-urlencoded",
    { parseAs: "string", bodyLimit: 8192 },
    (_request, body, done) => {
      const params = new URLSearchParams(String(body));
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of params) {
        const prior = out[k];
        out[k] = prior === undefined ? v : Array.isArray(prior) ? [...prior, v] : [prior, v];
      }
      done(null, out);
    },
  );

  // Every error of this face in its own shape: validation and parsing errors are invalid_request.
  app.setErrorHandler((error: Error, request, reply) => {
    if (error instanceof OAuthError) return oauthReply(reply, error);
    const api = toApiError(error);
    const status = api?.status ?? (error as { statusCode?: number }).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      const name = status === 404 ? "not_found" : status === 409 ? "conflict" : "invalid_request";
      return reply
        .code(status === 404 || status === 409 ? status : 400)
        .header("Cache-Control", "no-store")
        .send({ error: name, error_description: api?.message ?? error.message });
    }
    request.log.error({ err: error }, "1-Click request failed");
    return reply
      .code(500)
      .send({ error: "server_error", error_description: "an unexpected error; it was logged" });
  });

  /** The operator's backend: HTTP Basic client_id:client_secret (or client_secret_post on the token endpoint). */
  async function authenticateClient(
    request: FastifyRequest,
    body?: Record<string, unknown>,
  ): Promise<string> {
    const header = request.headers.authorization;
    const basic = parseBasicAuth(header);
    const decode = (v: string) => {
      try {
        return decodeURIComponent(v.replace(/\+/g, " "));
      } catch {
        return v;
      }
    };
    let id: string | undefined;
    let secret: string | undefined;
    if (basic) {
      if (body && body.client_secret !== undefined)
        throw new OAuthError("invalid_request", "use one client authentication method, not two");
      id = decode(basic.username);
      secret = decode(basic.password);
      if (body && typeof body.client_id === "string" && body.client_id !== id)
        throw new OAuthError("invalid_client", "client_id does not match the authenticated client");
    } else if (
      header === undefined &&
      body &&
      typeof body.client_id === "string" &&
      typeof body.client_secret === "string"
    ) {
      id = body.client_id;
      secret = body.client_secret;
    }
    if (id === undefined || secret === undefined)
      throw new OAuthError(
        "invalid_client",
        "client authentication required (HTTP Basic client_id:client_secret)",
      );
    if (!(await verifyOAuthClient(db, id, secret)))
      throw new OAuthError("invalid_client", "unknown client or wrong client secret");
    return id;
  }

  const authenticated = new WeakMap<FastifyRequest, string>();
  const clientOf = (request: FastifyRequest) => {
    const id = authenticated.get(request);
    if (id === undefined) throw new Error("the client was not authenticated");
    return id;
  };

  /** The CORS answer of authorize (iframe=true is fetched by the operator's page): its registered origins only. */
  function corsFor(request: FastifyRequest, reply: FastifyReply, origins: string[]) {
    const origin = request.headers.origin;
    if (typeof origin === "string" && origins.includes(origin)) {
      reply.header("Access-Control-Allow-Origin", origin);
      reply.header("Vary", "Origin");
    }
  }

  app.get(
    "/oauth/authorize",
    {
      schema: {
        tags,
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
      const badPage = (message: string) =>
        sendPage(
          reply,
          page(
            "Sign-in cannot start",
            `<h1>Sign-in cannot start</h1><p class="error" id="error">${escapeHtml(message)}</p><p>Go back to the site you came from and try again.</p>`,
          ),
          { status: 400 },
        );
      // RFC 6749 §3.1: a parameter sent without a value is treated as if it were omitted.
      const one = (name: string): string | undefined => {
        const v = q[name];
        return typeof v === "string" && v !== "" ? v : undefined;
      };
      if (Array.isArray(q.client_id) || Array.isArray(q.redirect_uri))
        return badPage("client_id and redirect_uri may be given once only");
      const clientId = one("client_id");
      const client = clientId && CLIENT_CHOSEN_ID.test(clientId) ? await findClient(db, clientId) : undefined;
      const settings = client && client.status === "ACTIVE" ? await oneClickOf(db, client.id) : undefined;
      if (!client || !settings) return badPage("unknown client_id (or the client is not set up for 1-Click)");
      let redirectUri = one("redirect_uri");
      const redirectUriGiven = redirectUri !== undefined;
      if (redirectUri === undefined && settings.redirectUris.length === 1)
        redirectUri = settings.redirectUris[0];
      if (redirectUri === undefined || !settings.redirectUris.includes(redirectUri))
        return badPage("redirect_uri is not registered for this client");
      const origins = originsOf(settings.redirectUris);
      corsFor(request, reply, origins);

      const iframeText = one("iframe");
      const iframe = iframeText !== "false";
      const state = one("state");
      const sendBack = (url: string) =>
        iframe
          ? reply.header("Cache-Control", "no-store").send({
              success: false,
              redirectOutput: {
                url,
                method: "GET",
                container: "window",
                html: null,
                parameters: {},
                height: null,
                width: null,
              },
              messages: [],
            })
          : reply.header("Cache-Control", "no-store").redirect(url, 302);
      const fail = (error: string, description: string) =>
        sendBack(answerUrl(redirectUri, { error, error_description: description }, state, flow.issuer()));

      const repeated = Object.entries(q).find(([, v]) => Array.isArray(v));
      if (repeated) return fail("invalid_request", `${repeated[0]} is given more than once`);
      if (iframeText !== undefined && iframeText !== "true" && iframeText !== "false")
        return fail("invalid_request", "iframe must be true or false");
      if (state !== undefined && state.length > 500)
        return fail("invalid_request", "state is longer than 500 characters");
      const responseType = one("response_type");
      if (responseType === undefined) return fail("invalid_request", "response_type is required");
      if (responseType !== "code")
        return fail("unsupported_response_type", "only response_type=code is supported");
      const scope = one("scope") ?? "default";
      if (scope.split(" ").some((s) => !SCOPES.has(s)))
        return fail("invalid_scope", "the scope is `default`");
      const providerName = one("identity_provider");
      if (providerName === undefined) return fail("invalid_request", "identity_provider is required");
      const provider = flow.provider(providerName);
      if (!provider)
        return fail("invalid_request", `identity_provider must be one of ${flow.providerNames().join(", ")}`);
      if (client.mode !== "sandbox" && providerName.startsWith("sandbox-"))
        return fail("invalid_request", `${providerName} serves sandbox clients only`);
      const locale = one("locale");
      if (locale !== undefined && !/^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$/.test(locale))
        return fail("invalid_request", "locale must be a language tag such as sv_SE or en");
      const challenge = one("code_challenge");
      const method = one("code_challenge_method");
      if (method !== undefined && challenge === undefined)
        return fail("invalid_request", "code_challenge_method without code_challenge");
      if (challenge !== undefined) {
        if ((method ?? "plain") !== "S256")
          return fail("invalid_request", "code_challenge_method must be S256");
        if (!/^[A-Za-z0-9_-]{43}$/.test(challenge))
          return fail("invalid_request", "code_challenge must be a base64url SHA-256 (43 characters)");
      }
      const amountText = one("amount");
      const currencyCode = one("currency");
      let amount: bigint | undefined;
      let currency: string | undefined;
      if (amountText !== undefined || currencyCode !== undefined) {
        if (amountText === undefined || currencyCode === undefined)
          return fail("invalid_request", "a deposit needs both amount and currency");
        // A bank payment is in a fiat currency: one the client's ledger has, or joins with its usual
        // scale (once the request is valid: a refused one adds nothing to the ledger).
        const known = /^[A-Z]{3}$/.test(currencyCode) && (KNOWN_SCALES[currencyCode] ?? 0) <= 3;
        const found = known ? await ledger.findCurrency(db, client.id, currencyCode) : undefined;
        const scale = found?.scale ?? (known ? KNOWN_SCALES[currencyCode] : undefined);
        if (scale === undefined || scale > 3)
          return fail(
            "invalid_request",
            `currency ${currencyCode} is not a fiat currency Ferry takes bank payments in`,
          );
        if (!/^\d{1,30}(\.\d{1,18})?$/.test(amountText))
          return fail("invalid_request", "amount must be a decimal string such as 100.00");
        try {
          amount = parsePositiveAmount(amountText, scale);
        } catch (error) {
          if (!(error instanceof AmountError)) throw error;
          return fail("invalid_request", `amount: ${error.message}`);
        }
        currency = currencyCode;
      }
      if (!(await hasOAuthSecret(db, client.id)))
        return fail("unauthorized_client", "the client has no OAuth client secret yet");
      if (currency !== undefined)
        await services.wallets.ensureCurrency(client.id, currency).catch(() => undefined);

      const row = await flow.start({
        clientId: client.id,
        provider: providerName,
        redirectUri,
        redirectUriGiven,
        state,
        scope,
        locale,
        iframe,
        codeChallenge: challenge,
        amount,
        currency,
      });
      const url = `${services.settings.publicUrl}/sandbox/identity/${row.session_id}`;
      if (!iframe) return reply.header("Cache-Control", "no-store").redirect(url, 302);
      return reply.header("Cache-Control", "no-store").send({
        success: true,
        redirectOutput: {
          url,
          method: "GET",
          container: "iframe",
          html: null,
          parameters: {},
          height: 750,
          width: 600,
        },
        messages: [],
        links: { statusUrl: `${services.settings.publicUrl}/oauth/wait/${row.session_id}` },
        txId: row.tx_id,
      });
    },
  );

  app.get(
    "/oauth/wait/:sessionId",
    {
      schema: {
        tags,
        summary: "The waiting page: refreshes until the flow is done, then sends the browser to redirect_uri",
        params: z.object({ sessionId: z.string().max(100) }),
        produces: ["text/html"],
      },
    },
    async (request, reply) => {
      const row = await flow.bySession(request.params.sessionId);
      if (!row) return sendPage(reply, page("Not found", "<h1>Not found</h1>"), { status: 404 });
      const frameAncestors = originsOf((await oneClickOf(db, row.client_id))?.redirectUris ?? []);
      return continueFlow(services, reply, row, frameAncestors, 1500);
    },
  );

  app.post(
    "/oauth/token",
    {
      schema: {
        tags,
        summary: "Exchange the one-time code for an access token (RFC 6749 §4.1.3)",
        description:
          "HTTP Basic `client_id:client_secret`; `grant_type=authorization_code&code=…&redirect_uri=…` (and `code_verifier` with PKCE) in the form body or the query string. A code works once and for 60 s; a second exchange fails and revokes the first token.",
        security: [{ oauthClientBasic: [] }],
        response: { 200: tokenResponse, 400: oauthErrorSchema, 401: oauthErrorSchema },
      },
    },
    async (request, reply) => {
      // RFC 6749 §4.1.3: form-encoded parameters (or, as some operators send them, the query string).
      const form = /^application\/x-www-form-urlencoded\b/i.test(
        String(request.headers["content-type"] ?? ""),
      );
      if (!form && request.body !== undefined && request.body !== null && request.body !== "")
        throw new OAuthError(
          "invalid_request",
          "the parameters go in an application/x-www-form-urlencoded body (or the query string)",
        );
      const body = (request.body && typeof request.body === "object" ? request.body : {}) as Record<
        string,
        unknown
      >;
      const query = request.query as Record<string, unknown>;
      const params: Record<string, unknown> = { ...query, ...body };
      const clientId = await authenticateClient(request, params);
      const repeated = Object.entries(params).find(([, v]) => Array.isArray(v));
      if (repeated) throw new OAuthError("invalid_request", `${repeated[0]} is given more than once`);
      const text = (name: string) =>
        typeof params[name] === "string" && params[name] !== "" ? (params[name] as string) : undefined;
      const grantType = text("grant_type");
      if (grantType === undefined) throw new OAuthError("invalid_request", "grant_type is required");
      if (grantType !== "authorization_code")
        throw new OAuthError("unsupported_grant_type", "only grant_type=authorization_code is supported");
      const code = text("code");
      if (!code) throw new OAuthError("invalid_request", "code is required");
      if (code.length > 200) throw new OAuthError("invalid_grant", "the code is not valid");
      const token = await flow.exchange(clientId, {
        code,
        redirectUri: text("redirect_uri"),
        codeVerifier: text("code_verifier"),
      });
      return reply.header("Cache-Control", "no-store").header("Pragma", "no-cache").send(token);
    },
  );

  app.get(
    "/oauth/check_token",
    {
      // The client's credentials before its parameters: a caller without them learns nothing of their shape.
      preValidation: async (request) => {
        authenticated.set(request, await authenticateClient(request));
      },
      schema: {
        tags,
        summary: "The claims of an access token Ferry issued to this client, or 400",
        security: [{ oauthClientBasic: [] }],
        querystring: z.object({ token: z.string().max(8192).optional() }).catchall(z.unknown()),
        response: { 200: z.record(z.string(), z.unknown()), 400: oauthErrorSchema, 401: oauthErrorSchema },
      },
    },
    async (request, reply) => {
      const clientId = clientOf(request);
      const token = request.query.token;
      if (!token) throw new OAuthError("invalid_request", "token is required");
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(token, createLocalJWKSet(await publishedJwks(db)), {
          issuer: flow.issuer(),
          audience: clientId,
          algorithms: [FERRY_SIGNING_ALG],
        }));
      } catch (error) {
        const expired = (error as { code?: string }).code === "ERR_JWT_EXPIRED";
        throw new OAuthError(
          "invalid_token",
          expired ? "the token has expired" : "the token is not valid for this client",
        );
      }
      if (!(await flow.tokenLive(clientId, payload.txRefId, payload.jti)))
        throw new OAuthError("invalid_token", "the token was revoked");
      return reply.header("Cache-Control", "no-store").send(payload);
    },
  );

  app.get(
    "/oauth/transactions/:txId",
    {
      // The client's credentials before its parameters: a caller without them learns nothing of their shape.
      preValidation: async (request) => {
        authenticated.set(request, await authenticateClient(request));
      },
      schema: {
        tags,
        summary: "A 1-Click transaction's state and numeric status code",
        security: [{ oauthClientBasic: [] }],
        params: z.object({ txId: z.string().max(40) }),
        response: { 200: statusResponse, 401: oauthErrorSchema, 404: oauthErrorSchema },
      },
    },
    async (request) => {
      const clientId = clientOf(request);
      const row = await flow.ofClient(clientId, request.params.txId);
      const amount = (await flow.amountsOf(row))?.txAmount ?? null;
      return {
        txId: row.tx_id,
        txState: stateOf(row.status_code),
        statusCode: row.status_code,
        statusName: row.status_name,
        amount,
        currency: row.currency,
        userId: row.user_id,
      };
    },
  );

  app.get(
    "/.well-known/oauth-authorization-server",
    {
      schema: {
        tags,
        summary: "OAuth 2.0 authorization server metadata (RFC 8414), for standard client libraries",
      },
    },
    async (_request, reply) => {
      const base = services.settings.publicUrl;
      reply.header("Cache-Control", "public, max-age=300");
      return {
        issuer: flow.issuer(),
        authorization_endpoint: `${base}/oauth/authorize`,
        token_endpoint: `${base}/oauth/token`,
        jwks_uri: `${base}/.well-known/jwks.json`,
        response_types_supported: ["code"],
        grant_types_supported: ["authorization_code"],
        token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
        code_challenge_methods_supported: ["S256"],
        scopes_supported: [...SCOPES],
        authorization_response_iss_parameter_supported: true,
      };
    },
  );
};

/**
 * Sends the browser on once the flow is over (redirect_uri with the code or the error), or shows
 * the waiting page, which refreshes until it is. Runs the flow's due steps for up to `deadlineMs`
 * first (the recovery worker runs whatever is left).
 */
export async function continueFlow(
  services: Services,
  reply: FastifyReply,
  row: OneClickRow,
  frameAncestors: string[],
  deadlineMs: number,
  /** `redirect`: send the browser to the waiting page (the provider page's POST) instead of showing it. */
  waiting: "render" | "redirect" = "render",
) {
  const flow = services.oneClick;
  const now = await flow.advance(row.tx_id, deadlineMs);
  const target = await flow.finalRedirect(now);
  if (target)
    return reply
      .header("Cache-Control", "no-store")
      .header("Referrer-Policy", "no-referrer")
      .redirect(target, 302);
  const done = browserDone(now.status_code);
  if (waiting === "redirect" && !done)
    return reply
      .header("Cache-Control", "no-store")
      .redirect(`${services.settings.publicUrl}/oauth/wait/${now.session_id}`, 302);
  if (done) {
    const review = stateOf(now.status_code) === "WAITING_APPROVAL";
    return sendPage(
      reply,
      page(
        "Done",
        review
          ? `<h1 id="outcome">Done</h1><p>You are signed in. Your deposit is being reviewed; you will hear from us. You may close this page.</p>`
          : `<h1 id="outcome">Done</h1><p>You are signed in. You may close this page.</p>`,
      ),
      { frameAncestors },
    );
  }
  return sendPage(
    reply,
    page(
      "Processing",
      `<h1 id="outcome">Processing…</h1><p>Your ${now.amount === null ? "sign-in" : "deposit"} is being completed. This page refreshes by itself.</p>`,
      { refreshSeconds: 1 },
    ),
    { frameAncestors },
  );
}
