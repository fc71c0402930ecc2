/**
 * A small operator platform for Ferry's 1-Click flow (docs/oneclick-api.md): a site whose users keep
 * their balance here, not on Ferry, and sign up and deposit in one step through Ferry's `/oauth`.
 *
 * - `POST /api/{action}`: the callbacks Ferry makes (signin, verifyuser, authorize, transfer,
 *   cancel), with HTTP Basic. Users and balances are kept in memory. A deposit is reserved on
 *   `authorize`, credited on `transfer` (once per `txId`, however often Ferry repeats it) and
 *   released on `cancel`.
 * - `GET /`: a page with "Sign up and deposit"; `GET /start` sends the browser to Ferry's
 *   `/oauth/authorize` (iframe=false) with a `state` kept in a cookie and a PKCE challenge;
 *   `GET /return` (the redirect_uri) checks the state, exchanges the code at `/oauth/token` (HTTP
 *   Basic), verifies the token against Ferry's JWKS and shows the user's name and balance. The
 *   answer's `iss` (RFC 9207) must be Ferry's issuer.
 * - `POST /switches`: make a callback fail on purpose (refuse, HTTP 503, not JSON, too slow), to
 *   watch Ferry retry it, cancel, or leave the flow INCONSISTENT for staff.
 *
 * Plain node:http, no framework, no build step (tsx runs it). Sandbox clients only: the callbacks
 * are on a loopback address.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createRemoteJWKSet, jwtVerify } from "jose";

export const ACTIONS = ["signin", "verifyuser", "authorize", "transfer", "cancel"] as const;
export type Action = (typeof ACTIONS)[number];
/** What a callback does instead of its normal answer (the page's and POST /switches' choices). */
export const FAULTS = ["ok", "refuse", "http-503", "not-json", "slow"] as const;
export type Fault = (typeof FAULTS)[number];

// biome-ignore lint/suspicious/noExplicitAny: Ferry's JSON is read loosely; the fields used are checked
type Json = Record<string, any>;

export interface OperatorOptions {
  ferryUrl: string;
  clientId: string;
  /** The client's OAuth secret (POST /admin/clients/{id}/oauth-secret). */
  clientSecret: string;
  /** What Ferry sends on every callback (the client's oneClick.callbackAuth). */
  callbackAuth: { username: string; password: string };
  /** Where this server is reached (its redirect_uri is `${publicUrl}/return`). */
  publicUrl: string;
  /** Print every callback and its answer (default true). */
  log?: boolean;
}

export interface OperatorUser {
  userId: string;
  personid: string;
  firstName: string;
  lastName: string;
  country: string;
  /** Minor units (2 decimals) per currency; the first one is the account's main currency. */
  balances: Map<string, bigint>;
  /** The sessions this site opened for the user at `signin` (they do not expire in this example). */
  sessions: Set<string>;
}

/** The user's balance in their main currency, as the callbacks answer it. */
function mainBalance(user: OperatorUser): { balance: string; balanceCy: string } {
  const [currency, minor] = [...user.balances][0] ?? ["EUR", 0n];
  return { balance: fromMinor(minor), balanceCy: currency };
}

/** Every balance of the user: "100.00 EUR, 42.00 SEK". */
export function balancesOf(user: OperatorUser): string {
  const all = [...user.balances].map(([currency, minor]) => `${fromMinor(minor)} ${currency}`);
  return all.length ? all.join(", ") : "0.00";
}

export interface Deposit {
  txId: string;
  userId: string;
  amount: bigint;
  currency: string;
  authCode: string;
  merchantTxId: string;
  state: "RESERVED" | "CREDITED" | "RELEASED";
}

export interface CallbackRecord {
  action: string;
  body: unknown;
  status: number;
  answer: unknown;
  at: string;
}

/** "100.00" → 10000n (this example keeps two decimals: EUR, SEK). */
export function toMinor(amount: string): bigint {
  const m = /^(\d{1,15})(?:\.(\d{1,2}))?$/.exec(amount);
  if (!m) throw new Error(`not an amount with at most 2 decimals: ${amount}`);
  return BigInt(m[1] ?? "0") * 100n + BigInt((m[2] ?? "").padEnd(2, "0"));
}

export function fromMinor(minor: bigint): string {
  const sign = minor < 0n ? "-" : "";
  const abs = minor < 0n ? -minor : minor;
  return `${sign}${abs / 100n}.${(abs % 100n).toString().padStart(2, "0")}`;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const basic = (username: string, password: string) =>
  `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;

function sameText(a: string, b: string): boolean {
  const x = createHash("sha256").update(a).digest();
  const y = createHash("sha256").update(b).digest();
  return timingSafeEqual(x, y);
}

function readBody(request: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > 64 * 1024) request.destroy(new Error("body too large"));
      else chunks.push(chunk);
    });
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

function cookieOf(request: http.IncomingMessage, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return undefined;
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}
button{font-size:1rem;padding:.5rem 1rem}input,select{font-size:1rem;padding:.3rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}
.box{border:1px solid #ccc;border-radius:6px;padding:1rem;margin:1rem 0}.error{color:#a00}
pre{white-space:pre-wrap;word-break:break-all;font-size:.8rem;background:#f6f6f6;padding:.5rem}</style>
</head><body>${body}</body></html>`;
}

/** The operator platform: its callback endpoints, its pages, its in-memory users and deposits. */
export class OperatorPlatform {
  readonly users = new Map<string, OperatorUser>();
  readonly deposits = new Map<string, Deposit>();
  readonly callbacks: CallbackRecord[] = [];
  readonly switches = new Map<Action, Fault>();
  /** Sign-ins this site started: state → PKCE verifier. */
  readonly #pending = new Map<string, { verifier: string; at: number }>();
  readonly #byPerson = new Map<string, string>();
  /** This process's mark in the users' ids. */
  readonly #run = randomBytes(3).toString("hex");
  #server: http.Server | undefined;
  #metadata: Json | undefined;
  #jwks: ReturnType<typeof createRemoteJWKSet> | undefined;

  constructor(readonly options: OperatorOptions) {}

  get redirectUri(): string {
    return `${this.options.publicUrl}/return`;
  }

  get callbackUrl(): string {
    return `${this.options.publicUrl}/api/{action}`;
  }

  async listen(port: number, host = "127.0.0.1"): Promise<number> {
    const server = http.createServer((request, response) => {
      this.#handle(request, response).catch((error: Error) => {
        process.stderr.write(`oneclick example: ${request.method} ${request.url}: ${error.stack}\n`);
        if (!response.headersSent)
          response
            .writeHead(500, { "content-type": "text/html; charset=utf-8" })
            .end(
              page("Error", `<p class="error">${escapeHtml(error.message)}</p><p><a href="/">Back</a></p>`),
            );
      });
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, resolve);
    });
    return (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Ferry's OAuth metadata (RFC 8414): the endpoints at Ferry's public address, and the token issuer. */
  async metadata(): Promise<Json> {
    if (!this.#metadata) {
      const answer = await fetch(`${this.options.ferryUrl}/.well-known/oauth-authorization-server`);
      if (!answer.ok) throw new Error(`Ferry's OAuth metadata: HTTP ${answer.status}`);
      this.#metadata = (await answer.json()) as Json;
    }
    return this.#metadata;
  }

  userByPerson(personid: string): OperatorUser | undefined {
    const userId = this.#byPerson.get(personid);
    return userId ? this.users.get(userId) : undefined;
  }

  async #handle(request: http.IncomingMessage, response: http.ServerResponse) {
    const url = new URL(request.url ?? "/", "http://example.invalid");
    const callback = /^\/api\/([a-z]+)$/.exec(url.pathname);
    if (callback && request.method === "POST") return this.#callback(callback[1] ?? "", request, response);
    if (request.method === "GET" && url.pathname === "/") return this.#home(response);
    if (request.method === "GET" && url.pathname === "/start") return this.#start(url, response);
    if (request.method === "GET" && url.pathname === "/return") return this.#return(url, request, response);
    if (request.method === "POST" && url.pathname === "/switches") return this.#switch(request, response);
    response.writeHead(404, { "content-type": "text/plain" }).end("not found");
  }

  // ——— Ferry's callbacks ———

  async #callback(action: string, request: http.IncomingMessage, response: http.ServerResponse) {
    const { username, password } = this.options.callbackAuth;
    const send = (status: number, answer: unknown, raw?: string) => {
      response
        .writeHead(status, { "content-type": raw === undefined ? "application/json" : "text/plain" })
        .end(raw ?? JSON.stringify(answer));
    };
    if (!sameText(request.headers.authorization ?? "", basic(username, password)))
      return send(401, { success: false, errCode: "UNAUTHORIZED", errMsg: "wrong credentials" });
    if (!(ACTIONS as readonly string[]).includes(action))
      return send(404, { success: false, errCode: "UNKNOWN_ACTION", errMsg: action });
    let body: Json;
    try {
      body = JSON.parse(await readBody(request)) as Json;
    } catch {
      return send(400, { success: false, errCode: "BAD_REQUEST", errMsg: "not JSON" });
    }
    const fault = this.switches.get(action as Action) ?? "ok";
    const log = (status: number, answer: unknown) => {
      this.callbacks.push({ action, body, status, answer, at: new Date().toISOString() });
      if (this.callbacks.length > 50) this.callbacks.shift();
      if (this.options.log !== false)
        process.stdout.write(
          `[callback] ← POST /api/${action} ${JSON.stringify(body)}\n[callback] → ${status} ${typeof answer === "string" ? answer : JSON.stringify(answer)}${fault === "ok" ? "" : ` (switch: ${fault})`}\n`,
        );
    };
    if (fault === "http-503") {
      log(503, { error: "maintenance" });
      return send(503, { error: "maintenance" });
    }
    if (fault === "refuse") {
      const answer = {
        userId: body.userId ?? undefined,
        success: false,
        errCode: "REFUSED_BY_SWITCH",
        errMsg: `this example refuses ${action} (its switch)`,
      };
      log(200, answer);
      return send(200, answer);
    }
    const answer = this.#decide(action as Action, body);
    if (fault === "not-json") {
      log(200, "OK");
      return send(200, undefined, "OK");
    }
    if (fault === "slow") {
      // Done here, but answered after Ferry stopped waiting (10 s): Ferry asks again with the same txId.
      log(200, answer);
      setTimeout(() => send(200, answer), 11_000).unref();
      return;
    }
    log(200, answer);
    return send(200, answer);
  }

  /** The operator's decision on one callback; every one is safe to receive twice. */
  #decide(action: Action, body: Json): Json {
    const refuse = (userId: unknown, errCode: string, errMsg: string) => ({
      ...(typeof userId === "string" ? { userId } : {}),
      success: false,
      errCode,
      errMsg,
    });
    switch (action) {
      case "signin": {
        // A new person gets an account here; a known one (same personal id) signs in to theirs.
        let user = this.userByPerson(String(body.personid));
        if (!user) {
          user = {
            // Never reused, not even after a restart: Ferry keeps its users under these ids.
            userId: `user-${this.#run}-${this.users.size + 1}`,
            personid: String(body.personid),
            firstName: String(body.firstName),
            lastName: String(body.lastName),
            country: String(body.country),
            balances: new Map(),
            sessions: new Set(),
          };
          this.users.set(user.userId, user);
          this.#byPerson.set(user.personid, user.userId);
        }
        const sessionId = `sess-${randomBytes(6).toString("hex")}`;
        user.sessions.add(sessionId);
        return {
          userId: user.userId,
          success: true,
          sessionId,
          ...mainBalance(user),
        };
      }
      case "verifyuser": {
        const user = this.users.get(String(body.userId));
        if (!user)
          return refuse(
            body.userId,
            "UNKNOWN_USER",
            "no such user here (this example keeps its users in memory: was it restarted?)",
          );
        // The session must be one this site opened for this very user.
        if (!user.sessions.has(String(body.sessionId)))
          return refuse(user.userId, "UNKNOWN_SESSION", "not a session of this user");
        return {
          userId: user.userId,
          success: true,
          ...mainBalance(user),
          firstName: user.firstName,
          lastName: user.lastName,
          country: user.country,
        };
      }
      case "authorize": {
        const known = this.deposits.get(String(body.txId));
        if (known)
          return {
            userId: known.userId,
            success: true,
            merchantTxId: known.merchantTxId,
            authCode: known.authCode,
          };
        const user = this.users.get(String(body.userId));
        if (!user) return refuse(body.userId, "UNKNOWN_USER", "no such user here");
        if (Number(body.txTypeId) !== 190) return refuse(user.userId, "NOT_SUPPORTED", "deposits only");
        const deposit: Deposit = {
          txId: String(body.txId),
          userId: user.userId,
          amount: toMinor(String(body.txAmount)),
          currency: String(body.txAmountCy),
          authCode: `auth-${randomBytes(6).toString("hex")}`,
          merchantTxId: `dep-${this.deposits.size + 1}`,
          state: "RESERVED",
        };
        this.deposits.set(deposit.txId, deposit);
        return {
          userId: user.userId,
          success: true,
          merchantTxId: deposit.merchantTxId,
          authCode: deposit.authCode,
        };
      }
      case "transfer": {
        // The payment has happened: always accepted, credited once per txId.
        const txId = String(body.txId);
        let deposit = this.deposits.get(txId);
        if (!deposit) {
          deposit = {
            txId,
            userId: String(body.userId),
            amount: toMinor(String(body.txAmount)),
            currency: String(body.txAmountCy),
            authCode: String(body.authCode ?? ""),
            merchantTxId: `dep-${this.deposits.size + 1}`,
            state: "RESERVED",
          };
          this.deposits.set(txId, deposit);
        }
        if (deposit.state !== "CREDITED") {
          let user = this.users.get(deposit.userId);
          if (!user) {
            // Not known here any more (a restart): the money is the user's all the same.
            user = {
              userId: deposit.userId,
              personid: "",
              firstName: "",
              lastName: "",
              country: "",
              balances: new Map(),
              sessions: new Set(),
            };
            this.users.set(user.userId, user);
          }
          user.balances.set(deposit.currency, (user.balances.get(deposit.currency) ?? 0n) + deposit.amount);
          deposit.state = "CREDITED";
        }
        return { userId: deposit.userId, success: true, txId, merchantTxId: deposit.merchantTxId };
      }
      case "cancel": {
        const deposit = this.deposits.get(String(body.txId));
        if (deposit?.state === "RESERVED") deposit.state = "RELEASED";
        return { userId: deposit?.userId ?? String(body.userId), success: true };
      }
    }
  }

  /** What the user's authorized deposits not yet transferred hold: "90.00 EUR". */
  #reservedOf(userId: string): string {
    const sums = new Map<string, bigint>();
    for (const d of this.deposits.values())
      if (d.userId === userId && d.state === "RESERVED")
        sums.set(d.currency, (sums.get(d.currency) ?? 0n) + d.amount);
    return [...sums].map(([currency, minor]) => `${fromMinor(minor)} ${currency}`).join(", ") || "0.00";
  }

  // ——— the pages ———

  #home(response: http.ServerResponse) {
    const users = [...this.users.values()]
      .map(
        (u) =>
          `<tr><td>${escapeHtml(u.userId)}</td><td>${escapeHtml(`${u.firstName} ${u.lastName}`)}</td><td>${escapeHtml(u.personid)}</td><td>${escapeHtml(balancesOf(u))}</td><td>${escapeHtml(this.#reservedOf(u.userId))}</td></tr>`,
      )
      .join("");
    const switches = ACTIONS.map(
      (a) =>
        `<label>${a} <select name="${a}">${FAULTS.map((f) => `<option${(this.switches.get(a) ?? "ok") === f ? " selected" : ""}>${f}</option>`).join("")}</select></label> `,
    ).join("");
    const calls = this.callbacks
      .slice(-10)
      .reverse()
      .map(
        (c) =>
          `<pre>${escapeHtml(`${c.at} ← ${c.action} ${JSON.stringify(c.body)}\n→ ${c.status} ${JSON.stringify(c.answer)}`)}</pre>`,
      )
      .join("");
    const html = page(
      "Operator example",
      `<h1>An operator platform</h1>
<p>New here? Sign up with your bank ID and make your first deposit in one step (Ferry's 1-Click, client <code>${escapeHtml(this.options.clientId)}</code>).</p>
<form class="box" method="get" action="/start">
<label>Amount <input name="amount" value="100.00" size="8"></label>
<select name="currency"><option>EUR</option><option>SEK</option></select>
<select name="provider"><option value="sandbox-bankid">Sandbox BankID</option><option value="sandbox-trustly">Sandbox Trustly</option></select>
<button id="deposit" type="submit">Sign up and deposit</button>
</form>
<p>On the provider's page, <code>199001011234</code> is Test Testsson; any valid 12-digit YYYYMMDDNNNN id is another test person; a deposit of 504.00 fails (no funds).</p>
<h2>Users (kept in memory)</h2>
${users ? `<table><tr><th>userId</th><th>name</th><th>personid</th><th>balance</th><th>reserved</th></tr>${users}</table>` : "<p>None yet.</p>"}
<h2>Callback switches</h2>
<form method="post" action="/switches">${switches}<button type="submit">Set</button></form>
<p>refuse: <code>success: false</code>; http-503: a 503; not-json: a 200 with the text OK; slow: the answer after 11 s (Ferry waits 10 s). A failed transfer is retried, then the flow is INCONSISTENT for staff.</p>
<h2>Last callbacks</h2>${calls || "<p>None yet.</p>"}`,
    );
    response
      .writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" })
      .end(html);
  }

  /** "Sign up and deposit": a state in a cookie, a PKCE verifier kept here, the browser sent to Ferry. */
  async #start(url: URL, response: http.ServerResponse) {
    const state = randomBytes(16).toString("base64url");
    const verifier = randomBytes(32).toString("base64url");
    this.#pending.set(state, { verifier, at: Date.now() });
    for (const [s, p] of this.#pending) if (Date.now() - p.at > 30 * 60_000) this.#pending.delete(s);
    const query = new URLSearchParams({
      client_id: this.options.clientId,
      redirect_uri: this.redirectUri,
      response_type: "code",
      state,
      scope: "default",
      identity_provider: url.searchParams.get("provider") ?? "sandbox-bankid",
      iframe: "false",
      locale: "en",
      code_challenge: createHash("sha256").update(verifier).digest("base64url"),
      code_challenge_method: "S256",
    });
    const amount = url.searchParams.get("amount")?.trim();
    if (amount) {
      query.set("amount", amount);
      query.set("currency", url.searchParams.get("currency") ?? "EUR");
    }
    const authorize = (await this.metadata()).authorization_endpoint as string;
    response
      .writeHead(302, {
        location: `${authorize}?${query}`,
        "set-cookie": `oc_state=${state}; Path=/; HttpOnly; SameSite=Lax; Max-Age=1800`,
        "cache-control": "no-store",
      })
      .end();
  }

  /** The redirect_uri: the state must be this browser's; the code is exchanged at once (it lasts 60 s). */
  async #return(url: URL, request: http.IncomingMessage, response: http.ServerResponse) {
    const show = (status: number, body: string) =>
      response
        .writeHead(status, {
          "content-type": "text/html; charset=utf-8",
          "cache-control": "no-store",
          "set-cookie": "oc_state=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
        })
        .end(page("Operator example", `${body}<p><a href="/">Back to the start</a></p>`));
    const state = url.searchParams.get("state");
    const cookie = cookieOf(request, "oc_state");
    const pending = state ? this.#pending.get(state) : undefined;
    if (!state || !cookie || !sameText(state, cookie) || !pending)
      return show(
        400,
        `<h1>Not your sign-in</h1><p class="error" id="error">The state does not match the one this browser started with.</p>`,
      );
    this.#pending.delete(state);
    const metadata = await this.metadata();
    // RFC 9207: the answer names who sent it; anything but Ferry's issuer is not Ferry's answer.
    if (url.searchParams.get("iss") !== metadata.issuer)
      return show(
        400,
        `<h1>Not from Ferry</h1><p class="error" id="error">The answer's issuer is not Ferry's.</p>`,
      );
    const error = url.searchParams.get("error");
    if (error) {
      const detail = ["error_description", "errCode", "errMsg"]
        .map((k) => url.searchParams.get(k))
        .filter(Boolean)
        .join(" — ");
      return show(
        200,
        `<h1>No deposit</h1><p class="error" id="error"><code id="error-code">${escapeHtml(error)}</code>: ${escapeHtml(detail)}</p>`,
      );
    }
    const code = url.searchParams.get("code") ?? "";
    const answer = await fetch(metadata.token_endpoint as string, {
      method: "POST",
      headers: {
        authorization: basic(this.options.clientId, this.options.clientSecret),
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code,
        redirect_uri: this.redirectUri,
        code_verifier: pending.verifier,
      }),
    });
    const token = (await answer.json()) as Json;
    if (!answer.ok)
      return show(
        502,
        `<h1>The code was not accepted</h1><pre id="error">${escapeHtml(JSON.stringify(token))}</pre>`,
      );
    // The access token is a JWT signed by Ferry: verified with its published keys.
    this.#jwks ??= createRemoteJWKSet(new URL(metadata.jwks_uri as string));
    const { payload } = await jwtVerify(token.access_token as string, this.#jwks, {
      issuer: metadata.issuer as string,
      audience: this.options.clientId,
    });
    const user = this.users.get(String(payload.userId));
    const txId = String(token.txRefId).slice(this.options.clientId.length + 1);
    const status = await fetch(`${this.options.ferryUrl}/oauth/transactions/${txId}`, {
      headers: { authorization: basic(this.options.clientId, this.options.clientSecret) },
    });
    const tx = (await status.json()) as Json;
    return show(
      200,
      `<h1>Welcome, <span id="name">${escapeHtml(String(token.name))}</span></h1>
<p>User <code id="user-id">${escapeHtml(String(token.userId))}</code>, balance <strong id="balance">${user ? escapeHtml(balancesOf(user)) : "unknown"}</strong>.</p>
<p>Ferry's transaction ${escapeHtml(txId)}: <code id="tx-state">${escapeHtml(`${tx.txState} ${tx.statusCode} ${tx.statusName}`)}</code>${tx.amount ? ` (${escapeHtml(`${tx.amount} ${tx.currency}`)})` : ""}.</p>
<p>What the identity provider proved (the token's claims, signature checked):</p>
<pre id="claims">${escapeHtml(JSON.stringify(payload, null, 2))}</pre>`,
    );
  }

  async #switch(request: http.IncomingMessage, response: http.ServerResponse) {
    const form = new URLSearchParams(await readBody(request));
    for (const action of ACTIONS) {
      const fault = form.get(action);
      if (fault && (FAULTS as readonly string[]).includes(fault)) {
        if (fault === "ok") this.switches.delete(action);
        else this.switches.set(action, fault as Fault);
      }
    }
    const now = Object.fromEntries(ACTIONS.map((a) => [a, this.switches.get(a) ?? "ok"]));
    if ((request.headers.accept ?? "").includes("application/json"))
      return response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(now));
    response.writeHead(303, { location: "/" }).end();
  }
}

/**
 * Sets a client up for this operator through Ferry's admin API (HTTP Basic, the platform admin):
 * its 1-Click settings (redirect URI, callback URL, callback credentials) and a new OAuth client
 * secret, shown this once. Creates the client first when `create` is given.
 */
export async function setUpClient(input: {
  ferryUrl: string;
  adminPassword: string;
  clientId: string;
  redirectUri: string;
  callbackUrl: string;
  callbackAuth: { username: string; password: string };
  create?: { name: string };
}): Promise<string> {
  const send = async (method: string, path: string, body?: unknown) => {
    const answer = await fetch(`${input.ferryUrl}${path}`, {
      method,
      headers: {
        authorization: basic("admin", input.adminPassword),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await answer.text();
    if (!answer.ok) throw new Error(`${method} ${path} → ${answer.status}: ${text}`);
    return JSON.parse(text) as Json;
  };
  if (input.create)
    await send("POST", "/admin/clients", { clientId: input.clientId, name: input.create.name });
  await send("PATCH", `/admin/clients/${input.clientId}`, {
    oneClick: {
      redirectUris: [input.redirectUri],
      callbackUrl: input.callbackUrl,
      callbackAuth: { type: "basic", ...input.callbackAuth },
    },
  });
  const made = await send("POST", `/admin/clients/${input.clientId}/oauth-secret`);
  return made.clientSecret as string;
}
