import type { FastifyReply, FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { createLocalJWKSet, jwtVerify } from "jose";
import { z } from "zod";
import { parseBasicAuth } from "../../http/basic-auth.ts";
import { toApiError } from "../../http/errors.ts";
import { otherTokenGrant } from "../../http/token-grants.ts";
import { FERRY_SIGNING_ALG, publishedJwks } from "../../modules/keys/service.ts";
import { oneClickOrigins, verifyOAuthClient } from "../../modules/oauth/clients.ts";
import { browserDone, OAuthError, type OneClickRow } from "../../modules/oneclick/service.ts";
import { stateOf, statusNameOf } from "../../modules/oneclick/statuses.ts";
import type { Services } from "../../services.ts";
import { authorizeRoute, SCOPES } from "./authorize.ts";
import { page, sendPage } from "./pages.ts";

/**
 * The 1-Click face (`/oauth`, oneclick-api.md): the OAuth2 authorization-code flow an operator
 * platform sends a browser through to sign a user up and take a deposit in one step. Its error
 * shape is RFC 6749's `{error, error_description}`; the authorize endpoint answers a 400 page for
 * an unknown client or an unregistered redirect_uri (never a redirect) and sends every other error
 * back to the redirect_uri.
 */

const oauthErrorSchema = z
  .object({ error: z.string().meta({ example: "invalid_grant" }), error_description: z.string().optional() })
  .meta({ id: "OAuthError" });

const tokenResponse = z
  .object({
    access_token: z.string().describe("A JWT signed with Ferry's key (RS512; /.well-known/jwks.json)"),
    token_type: z.literal("bearer"),
    expires_in: z.number().int(),
    scope: z
      .union([z.array(z.string()), z.string()])
      .describe(
        "PaymentIQ's array (`[\"default\"]`) when the parameters came in the query string as PaymentIQ's example sends them; RFC 6749's space-separated string for a form body (standard client libraries require it)",
      ),
    userId: z.string().nullable().meta({ example: "op-user-1" }),
    merchantId: z.string().describe("The Ferry client (PaymentIQ's merchant; a string here, a number there)"),
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
    ip: z.string().nullable().meta({ example: "203.0.113.7" }),
    identityProvider: z.string().meta({ example: "sandbox-bankid" }),
    exp: z.number().int().describe("The token's expiry, seconds since 1970"),
    jti: z.string(),
    aud: z.array(z.string()).meta({ example: ["acme", "identity_api"] }),
  })
  .meta({ id: "OneClickToken" });

const statusResponse = z
  .object({
    txId: z.string().meta({ example: "100001" }),
    txState: z.string().meta({ example: "SUCCESSFUL" }),
    statusCode: z.number().int().meta({ example: 0 }),
    statusName: z.string().meta({ example: "SUCCESS" }).describe("PaymentIQ's name of statusCode"),
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

  await app.register(authorizeRoute, { services });

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
      return continueFlow(services, reply, row, await oneClickOrigins(db, row.client_id), 1500);
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
      // Another face's grant on this endpoint (the Pay-in face's mobile_phone): its handler answers.
      const other = otherTokenGrant(services, request);
      if (other) return other(request, reply);
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
      // PaymentIQ's documented request puts the parameters in the query string and reads `scope` as
      // an array; RFC 6749 clients post a form body and require a string (oauth4webapi refuses
      // anything else). Everything else in the answer is the same for both.
      const paymentIqStyle = typeof query.grant_type === "string" && body.grant_type === undefined;
      const answer = paymentIqStyle ? token : { ...token, scope: token.scope.join(" ") };
      return reply.header("Cache-Control", "no-store").header("Pragma", "no-cache").send(answer);
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
      // PaymentIQ's check_token always carries Veriff's two results; Ferry has no Veriff: empty.
      return reply
        .header("Cache-Control", "no-store")
        .send({ ...payload, veriff_verification_false: "", veriff_verification_failed_reason: "" });
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
        statusName: statusNameOf(row.status_code),
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
