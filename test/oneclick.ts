import http from "node:http";
import type { AddressInfo } from "node:net";
import type { TestApp } from "./harness.ts";
import { tokenFor } from "./page-forms.ts";
import { createTestClient } from "./platform.ts";

/**
 * A real operator platform on loopback for the 1-Click tests: it receives Ferry's callbacks
 * (`/api/{action}`), checks their Basic credentials, records each one, and answers what the test
 * asks for (default: accepts everything as a well-behaved operator does).
 */

export interface Callback {
  action: string;
  body: Record<string, unknown>;
  authorization: string | undefined;
  at: number;
}

export interface OperatorAnswer {
  status?: number;
  /** A string is sent as it is (not JSON); an object as JSON. */
  body?: unknown;
  /** Answer after this long (a slow operator); Infinity: never answer. */
  delayMs?: number;
}

export type Behaviour = (
  action: string,
  body: Record<string, unknown>,
  nth: number,
) => OperatorAnswer | undefined;

export const OPERATOR_USER = "op-user-1";
export const OPERATOR_AUTH = { username: "ferry", password: "operator-secret-123" };

/** The answer a well-behaved operator gives. */
export function accept(action: string, body: Record<string, unknown>): OperatorAnswer {
  const userId = (body.userId as string | undefined) ?? OPERATOR_USER;
  switch (action) {
    case "signin":
      return {
        body: {
          userId: OPERATOR_USER,
          success: true,
          sessionId: "op-session-1",
          balance: "0.00",
          balanceCy: "EUR",
        },
      };
    case "verifyuser":
      return { body: { userId, success: true, balance: "0.00", balanceCy: "EUR" } };
    case "authorize":
      return {
        body: { userId, success: true, merchantTxId: `m-${body.txId}`, authCode: `auth-${body.txId}` },
      };
    case "transfer":
      return { body: { userId, success: true, txId: body.txId, merchantTxId: `m-${body.txId}` } };
    default:
      return { body: { userId, success: true } };
  }
}

export interface Operator {
  url: string;
  calls: Callback[];
  /** Replace the behaviour (undefined answers fall back to `accept`). */
  behave(behaviour: Behaviour | undefined): void;
  callsOf(action: string): Callback[];
  close(): Promise<void>;
}

export async function startOperator(behaviour?: Behaviour): Promise<Operator> {
  let current = behaviour;
  const calls: Callback[] = [];
  const counts = new Map<string, number>();
  const open = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const action = (req.url ?? "").replace(/^\/api\//, "");
      const expected = `Basic ${Buffer.from(`${OPERATOR_AUTH.username}:${OPERATOR_AUTH.password}`).toString("base64")}`;
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {}
      calls.push({ action, body, authorization: req.headers.authorization, at: Date.now() });
      if (req.headers.authorization !== expected) {
        res.writeHead(401).end();
        return;
      }
      const nth = (counts.get(action) ?? 0) + 1;
      counts.set(action, nth);
      const answer = current?.(action, body, nth) ?? accept(action, body);
      const send = () => {
        open.delete(res);
        if (res.writableEnded || res.destroyed) return;
        const payload = typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body ?? {});
        res.writeHead(answer.status ?? 200, { "content-type": "application/json" }).end(payload);
      };
      open.add(res);
      if (answer.delayMs === Number.POSITIVE_INFINITY) return;
      if (answer.delayMs) setTimeout(send, answer.delayMs).unref();
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    behave(next) {
      current = next;
    },
    callsOf: (action) => calls.filter((c) => c.action === action),
    async close() {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export const REDIRECT_URI = "https://operator.example/return";

/** A sandbox client set up for 1-Click against the operator: settings + OAuth secret. */
export async function setUpOneClick(
  t: TestApp,
  operator: Operator,
  options: { settings?: Record<string, unknown> } = {},
): Promise<{ clientId: string; clientSecret: string; basic: string }> {
  const { clientId } = await createTestClient(t, { settings: options.settings });
  const patched = await t.app.inject({
    method: "PATCH",
    url: `/admin/clients/${clientId}`,
    headers: t.adminAuth,
    payload: {
      oneClick: {
        redirectUris: [REDIRECT_URI, "http://127.0.0.1:9/return"],
        callbackUrl: `${operator.url}/api/{action}`,
        callbackAuth: { type: "basic", ...OPERATOR_AUTH },
      },
    },
  });
  if (patched.statusCode !== 200) throw new Error(patched.body);
  const made = await t.app.inject({
    method: "POST",
    url: `/admin/clients/${clientId}/oauth-secret`,
    headers: t.adminAuth,
  });
  const { clientSecret } = made.json();
  return {
    clientId,
    clientSecret,
    basic: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString("base64")}`,
  };
}

/** GET /oauth/authorize (iframe=true) → the JSON answer. */
export async function authorize(t: TestApp, clientId: string, params: Record<string, string> = {}) {
  const query = new URLSearchParams({
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    response_type: "code",
    state: "st-1",
    scope: "default",
    identity_provider: "sandbox-bankid",
    amount: "100.00",
    currency: "EUR",
    ...params,
  });
  return t.app.inject({ method: "GET", url: `/oauth/authorize?${query}` });
}

/** The provider page's path from an authorize answer. */
export const pagePath = (answer: { redirectOutput: { url: string } }) =>
  new URL(answer.redirectOutput.url).pathname;

/** POSTs the user's decision on the provider's page → the 302 (Location). */
export async function decide(
  t: TestApp,
  path: string,
  decision: "approve" | "deny",
  personid = "199001011234",
) {
  return t.app.inject({
    method: "POST",
    url: path,
    headers: { "content-type": "application/x-www-form-urlencoded" },
    payload: new URLSearchParams({ decision, personid, csrf: tokenFor(t, path) }).toString(),
  });
}

/** Follows the waiting page until the browser is sent to redirect_uri; the final Location. */
export async function finish(t: TestApp, location: string, timeoutMs = 20_000): Promise<URL> {
  const end = Date.now() + timeoutMs;
  let at = location;
  while (!at.startsWith(REDIRECT_URI)) {
    if (Date.now() > end) throw new Error(`the flow did not finish: still at ${at}`);
    const res = await t.app.inject({ method: "GET", url: new URL(at, "http://x").pathname });
    at = res.statusCode === 302 ? String(res.headers.location) : at;
    if (res.statusCode !== 302) await new Promise((r) => setTimeout(r, 100));
  }
  return new URL(at);
}

/** POST /oauth/token with Basic auth, parameters in the form body. */
export async function exchange(t: TestApp, basic: string, code: string, extra: Record<string, string> = {}) {
  return t.app.inject({
    method: "POST",
    url: "/oauth/token",
    headers: { authorization: basic, "content-type": "application/x-www-form-urlencoded" },
    payload: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT_URI,
      ...extra,
    }).toString(),
  });
}
