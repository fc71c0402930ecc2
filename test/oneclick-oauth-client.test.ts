import http from "node:http";
import type { AddressInfo } from "node:net";
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "./harness.ts";
import { OPERATOR_AUTH, OPERATOR_USER, type Operator, startOperator } from "./oneclick.ts";
import { formTokenOf } from "./page-forms.ts";
import { createTestClient } from "./platform.ts";

/**
 * The 1-Click flow driven by a maintained, standards-strict OAuth2 client library (oauth4webapi):
 * RFC 8414 discovery on Ferry's issuer, an authorization request with PKCE (S256) and state, the
 * user's approval on the sandbox provider's page, the authorization response validated by the
 * library, the code exchanged with client_secret_basic and the token response processed by it; the
 * access token, a JWT, verified with jose against Ferry's published JWKS (issuer, audience).
 */

let t: TestApp;
let frontDoor: http.Server;
let ferryUrl: string;
let operator: Operator;
let operatorSite: http.Server;
let redirectUri: string;
/** What arrived at the operator's redirect_uri (the browser's return). */
const returns: URL[] = [];

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: http.Server | undefined) {
  if (!server) return;
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

beforeAll(async () => {
  // Ferry's publicUrl (its issuer, its pages' addresses) must be known before it starts, while the
  // harness listens on a port of its own choosing: everything reaches Ferry through this front
  // door, whose address is the publicUrl and which hands each request to Ferry's own server.
  frontDoor = http.createServer((request, response) => t.app.server.emit("request", request, response));
  ferryUrl = await listen(frontDoor);
  t = await startTestApp({ listen: true, workers: true, settings: { publicUrl: ferryUrl } });
  operator = await startOperator();
  // The operator's site: its redirect_uri only records the browser's return.
  operatorSite = http.createServer((request, response) => {
    returns.push(new URL(request.url ?? "/", redirectUri));
    response.writeHead(200, { "content-type": "text/plain" }).end("signed in");
  });
  redirectUri = `${await listen(operatorSite)}/oauth/return`;
});

afterAll(async () => {
  await operator?.close();
  await close(operatorSite);
  await close(frontDoor);
  await t?.close();
});

/** The browser: follows 302s by hand (each hop checked) until it reaches the redirect_uri. */
async function follow(first: Response): Promise<URL> {
  let response = first;
  for (let hop = 0; hop < 30; hop++) {
    const status = response.status;
    const location = response.headers.get("location");
    const body = await response.text();
    expect([200, 302], body).toContain(status);
    let next: string;
    if (status === 302 && location) next = new URL(location, ferryUrl).toString();
    else {
      // The waiting page refreshes itself: the browser loads it again a moment later.
      expect(body).toContain('http-equiv="refresh"');
      await new Promise((r) => setTimeout(r, 200));
      next = response.url;
    }
    if (next.startsWith(redirectUri)) {
      await (await fetch(next)).text(); // the browser arrives at the operator's site
      return returns.at(-1) as URL;
    }
    expect(next.startsWith(ferryUrl), next).toBe(true);
    response = await fetch(next, { redirect: "manual" });
  }
  throw new Error("the browser never reached the redirect_uri");
}

describe("1-Click with a standard OAuth2 client library (oauth4webapi)", () => {
  it("discovery, authorization code with PKCE and state, client_secret_basic, the JWT verified with jose", async () => {
    // The operator's client, set up for 1-Click with its own redirect_uri.
    const { clientId } = await createTestClient(t);
    const patched = await t.app.inject({
      method: "PATCH",
      url: `/admin/clients/${clientId}`,
      headers: t.adminAuth,
      payload: {
        oneClick: {
          redirectUris: [redirectUri],
          callbackUrl: `${operator.url}/api/{action}`,
          callbackAuth: { type: "basic", ...OPERATOR_AUTH },
        },
      },
    });
    expect(patched.statusCode, patched.body).toBe(200);
    const made = await t.app.inject({
      method: "POST",
      url: `/admin/clients/${clientId}/oauth-secret`,
      headers: t.adminAuth,
    });
    expect(made.statusCode, made.body).toBe(201);
    const clientSecret: string = made.json().clientSecret;

    // 1. Discovery (RFC 8414) on the issuer: its metadata names the issuer the library expects.
    const issuer = new URL(ferryUrl);
    const insecure = { [oauth.allowInsecureRequests]: true } as const;
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }),
    );
    expect(as).toMatchObject({
      issuer: ferryUrl,
      authorization_endpoint: `${ferryUrl}/oauth/authorize`,
      token_endpoint: `${ferryUrl}/oauth/token`,
      jwks_uri: `${ferryUrl}/.well-known/jwks.json`,
      code_challenge_methods_supported: ["S256"],
    });
    expect(as.token_endpoint_auth_methods_supported).toContain("client_secret_basic");
    const client: oauth.Client = { client_id: clientId };

    // 2. The authorization request: PKCE S256 and state, plus the 1-Click parameters.
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const codeChallenge = await oauth.calculatePKCECodeChallenge(codeVerifier);
    const state = oauth.generateRandomState();
    const authorizationUrl = new URL(as.authorization_endpoint as string);
    for (const [name, value] of Object.entries({
      client_id: clientId,
      redirect_uri: redirectUri,
      response_type: "code",
      scope: "default",
      state,
      code_challenge: codeChallenge,
      code_challenge_method: "S256",
      identity_provider: "sandbox-bankid",
      amount: "100.00",
      currency: "EUR",
      iframe: "false",
    }))
      authorizationUrl.searchParams.set(name, value);

    // 3. The browser: authorize → 302 to the provider's page → Approve → … → the redirect_uri.
    const authorized = await fetch(authorizationUrl, { redirect: "manual" });
    expect(authorized.status, await authorized.clone().text()).toBe(302);
    const pageUrl = new URL(String(authorized.headers.get("location")));
    expect(pageUrl.origin).toBe(ferryUrl);
    expect(pageUrl.pathname).toMatch(/^\/sandbox\/identity\/[A-Za-z0-9_-]{43}$/);
    const providerPage = await (await fetch(pageUrl)).text();
    expect(providerPage).toContain("Test Testsson");
    expect(providerPage).toContain("100.00 EUR");
    const approved = await fetch(pageUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        decision: "approve",
        personid: "199001011234",
        csrf: formTokenOf(providerPage),
      }),
      redirect: "manual",
    });
    const callbackUrl = await follow(approved);
    expect(`${callbackUrl.origin}${callbackUrl.pathname}`).toBe(redirectUri);

    // 4. The library validates the authorization response (state, no error, issuer if given).
    const params = oauth.validateAuthResponse(as, client, callbackUrl, state);
    expect(params.get("code")).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // A wrong client secret: refused (401 invalid_client), and the code is not spent by it.
    const refused = await oauth
      .processAuthorizationCodeResponse(
        as,
        client,
        await oauth.authorizationCodeGrantRequest(
          as,
          client,
          oauth.ClientSecretBasic("not-the-secret"),
          params,
          redirectUri,
          codeVerifier,
          insecure,
        ),
      )
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(refused).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
    expect((refused as oauth.WWWAuthenticateChallengeError).response.status).toBe(401);
    expect((refused as oauth.WWWAuthenticateChallengeError).cause[0]?.scheme).toBe("basic");

    // 5. The code exchanged (client_secret_basic, the PKCE verifier), the response processed.
    const tokenResponse = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      oauth.ClientSecretBasic(clientSecret),
      params,
      redirectUri,
      codeVerifier,
      insecure,
    );
    const token = await oauth.processAuthorizationCodeResponse(as, client, tokenResponse);
    expect(token).toMatchObject({
      token_type: "bearer",
      expires_in: 3600,
      scope: "default",
      userId: OPERATOR_USER,
      clientId,
      name: "Test Testsson",
      firstName: "Test",
      lastName: "Testsson",
      personid: "199001011234",
      country: "SWE",
      dob: "1990-01-01",
      identityProvider: "sandbox-bankid",
    });
    expect(token.access_token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const transfer = operator.callsOf("transfer")[0]?.body ?? {};
    expect(token.txRefId).toBe(`${clientId}A${transfer.txId}`);
    expect(operator.calls.map((c) => c.action)).toEqual(["signin", "verifyuser", "authorize", "transfer"]);

    // 6. The access token is a JWT Ferry signed: verified against its JWKS, for this client.
    const jwks = createRemoteJWKSet(new URL(as.jwks_uri as string));
    const { payload, protectedHeader } = await jwtVerify(token.access_token, jwks, {
      issuer: as.issuer,
      audience: clientId,
    });
    expect(protectedHeader.kid).toBe(decodeProtectedHeader(token.access_token).kid);
    expect(payload).toMatchObject({
      iss: ferryUrl,
      // PaymentIQ's claims: aud and scope are arrays (the client and PaymentIQ's identity_api).
      aud: [clientId, "identity_api"],
      sub: OPERATOR_USER,
      txRefId: token.txRefId,
      personid: "199001011234",
      scope: ["default"],
    });
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(3600);
    // Another audience is not this token's.
    await expect(
      jwtVerify(token.access_token, jwks, { issuer: as.issuer, audience: "other" }),
    ).rejects.toThrow();

    // 7. The code a second time: the library reads Ferry's RFC 6749 error (invalid_grant).
    const again = await oauth
      .processAuthorizationCodeResponse(
        as,
        client,
        await oauth.authorizationCodeGrantRequest(
          as,
          client,
          oauth.ClientSecretBasic(clientSecret),
          params,
          redirectUri,
          codeVerifier,
          insecure,
        ),
      )
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(again).toBeInstanceOf(oauth.ResponseBodyError);
    expect((again as oauth.ResponseBodyError).error).toBe("invalid_grant");
    expect((again as oauth.ResponseBodyError).status).toBe(400);
  });

  it("a wrong PKCE verifier is refused with invalid_grant, as the library reads it", async () => {
    const { clientId } = await createTestClient(t);
    await t.app.inject({
      method: "PATCH",
      url: `/admin/clients/${clientId}`,
      headers: t.adminAuth,
      payload: {
        oneClick: {
          redirectUris: [redirectUri],
          callbackUrl: `${operator.url}/api/{action}`,
          callbackAuth: { type: "basic", ...OPERATOR_AUTH },
        },
      },
    });
    const { clientSecret } = (
      await t.app.inject({
        method: "POST",
        url: `/admin/clients/${clientId}/oauth-secret`,
        headers: t.adminAuth,
      })
    ).json();
    const issuer = new URL(ferryUrl);
    const insecure = { [oauth.allowInsecureRequests]: true } as const;
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }),
    );
    const client: oauth.Client = { client_id: clientId };
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const authorizationUrl = new URL(as.authorization_endpoint as string);
    authorizationUrl.search = new URLSearchParams({
      client_id: clientId,
      redirect_uri: redirectUri,
      response_type: "code",
      scope: "default",
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: "S256",
      identity_provider: "sandbox-bankid",
      iframe: "false",
    }).toString();
    const authorized = await fetch(authorizationUrl, { redirect: "manual" });
    expect(authorized.status).toBe(302);
    const pageUrl = String(authorized.headers.get("location"));
    const providerPage = await (await fetch(pageUrl)).text();
    const callbackUrl = await follow(
      await fetch(pageUrl, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          decision: "approve",
          personid: "199001011234",
          csrf: formTokenOf(providerPage),
        }),
        redirect: "manual",
      }),
    );
    const params = oauth.validateAuthResponse(as, client, callbackUrl, state);
    const refused = await oauth
      .processAuthorizationCodeResponse(
        as,
        client,
        await oauth.authorizationCodeGrantRequest(
          as,
          client,
          oauth.ClientSecretBasic(clientSecret),
          params,
          redirectUri,
          oauth.generateRandomCodeVerifier(),
          insecure,
        ),
      )
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(refused).toBeInstanceOf(oauth.ResponseBodyError);
    expect((refused as oauth.ResponseBodyError).error).toBe("invalid_grant");
    // The right verifier still works (a refused verifier does not spend the code).
    const token = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(
        as,
        client,
        oauth.ClientSecretBasic(clientSecret),
        params,
        redirectUri,
        codeVerifier,
        insecure,
      ),
    );
    expect(token).toMatchObject({ token_type: "bearer", name: "Test Testsson" });
  });
});
