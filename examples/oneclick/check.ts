/**
 * `npm run example:oneclick -- --check`: the example operator platform run end to end without a
 * browser. It makes a client of its own (so it can run again and again), sets it up for 1-Click,
 * and plays what a browser does — the operator's "Sign up and deposit" link → Ferry's authorize →
 * the sandbox identity provider's page → Approve → the redirect_uri → the code exchanged — for:
 *
 *   1. a new person depositing 100.00 EUR with sandbox-bankid (signin, verifyuser, authorize, transfer);
 *   2. the same person again, 504.00 EUR: a returning bank-ID person skips signin; the bank refuses
 *      (NO_FUNDS) after authorize, so Ferry sends cancel and the reservation is released;
 *   3. the same person signing in with sandbox-trustly, no deposit (signin is always sent);
 *   4. a person who presses Deny; 5. a forged state, and another issuer, at the redirect_uri.
 *
 * Every step prints what it did; any unexpected answer exits with status 1.
 */
import { type Action, balancesOf, OperatorPlatform, setUpClient } from "./operator.ts";

// biome-ignore lint/suspicious/noExplicitAny: answers are read loosely; each value relied on is checked
type Json = Record<string, any>;

let stepNumber = 0;

function fail(message: string): never {
  process.stderr.write(`\n✗ ${message}\n`);
  process.exit(1);
}

function step(title: string) {
  process.stdout.write(`\n${++stepNumber}. ${title}\n`);
}

function check(label: string, actual: unknown, expected: unknown) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) fail(`${label}: expected ${e}, got ${a}`);
  process.stdout.write(`   ${label}: ${a}\n`);
}

function show(label: string, value: unknown) {
  process.stdout.write(`   ${label}: ${typeof value === "string" ? value : JSON.stringify(value)}\n`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One browser request: no redirect followed (each hop is a step), the cookie sent if given. */
async function browse(
  url: string,
  options: { method?: string; form?: Record<string, string>; cookie?: string } = {},
) {
  let response: Response;
  try {
    response = await fetch(url, {
      method: options.method ?? (options.form ? "POST" : "GET"),
      redirect: "manual",
      headers: {
        accept: "text/html",
        ...(options.cookie ? { cookie: options.cookie } : {}),
        ...(options.form ? { "content-type": "application/x-www-form-urlencoded" } : {}),
      },
      ...(options.form ? { body: new URLSearchParams(options.form).toString() } : {}),
    });
  } catch (error) {
    fail(`cannot reach ${url}: ${(error as Error).message}`);
  }
  const location = response.headers.get("location");
  return {
    status: response.status,
    location: location ? new URL(location, url).toString() : undefined,
    setCookie: response.headers.get("set-cookie") ?? undefined,
    html: await response.text(),
  };
}

/** The text of the element with this id in a page (the example's and Ferry's pages mark what matters). */
function textOf(html: string, id: string): string | undefined {
  const m = new RegExp(`id="${id}"[^>]*>([\\s\\S]*?)</`).exec(html);
  return m?.[1]?.replace(/<[^>]+>/g, "").trim();
}

/** A sandbox test person nobody used yet: a random birth date and number (YYYYMMDDNNNN). */
function newPersonid(): string {
  const day = new Date(Date.UTC(1950, 0, 1) + Math.floor(Math.random() * 18_000) * 86_400_000);
  const digits = String(Math.floor(Math.random() * 10_000)).padStart(4, "0");
  return `${day.toISOString().slice(0, 10).replaceAll("-", "")}${digits}`;
}

export async function runCheck(input: { ferryUrl: string; adminPassword: string; port: number }) {
  const { ferryUrl, adminPassword } = input;
  const clientId = `oneclick-example-${Date.now().toString(36)}`;
  const platform = new OperatorPlatform({
    ferryUrl,
    clientId,
    clientSecret: "",
    callbackAuth: { username: "ferry", password: `cb-${Math.random().toString(36).slice(2)}` },
    publicUrl: "",
    log: false,
  });
  const port = await platform.listen(input.port);
  platform.options.publicUrl = `http://127.0.0.1:${port}`;
  const op = platform.options.publicUrl;

  step(`Set up client ${clientId} for 1-Click (POST /admin/clients, PATCH oneClick, POST oauth-secret)`);
  try {
    platform.options.clientSecret = await setUpClient({
      ferryUrl,
      adminPassword,
      clientId,
      redirectUri: platform.redirectUri,
      callbackUrl: platform.callbackUrl,
      callbackAuth: platform.options.callbackAuth,
      create: { name: "1-Click example operator" },
    });
  } catch (error) {
    fail(`set-up: ${(error as Error).message}`);
  }
  show("redirect_uri", platform.redirectUri);
  show("callbackUrl", platform.callbackUrl);
  check("client secret shown once", platform.options.clientSecret.startsWith("fcs_"), true);

  /** What one sign-in costs the browser, hop by hop; answers the final page at the redirect_uri. */
  async function signIn(options: {
    personid: string;
    provider: "sandbox-bankid" | "sandbox-trustly";
    amount?: string;
    decision?: "approve" | "deny";
    expectName?: string;
  }) {
    const start = new URL(`${op}/start`);
    if (options.amount) start.searchParams.set("amount", options.amount);
    start.searchParams.set("currency", "EUR");
    start.searchParams.set("provider", options.provider);
    const first = await browse(start.toString());
    check("the operator's link: status", first.status, 302);
    const cookie = first.setCookie?.split(";")[0];
    if (!first.location || !cookie) fail("the operator's /start set no cookie or location");
    const authorizeUrl = new URL(first.location);
    show(
      "→ Ferry",
      `${authorizeUrl.origin}${authorizeUrl.pathname}?…&iframe=${authorizeUrl.searchParams.get("iframe")}`,
    );
    check("state in the cookie = state sent", cookie.split("=")[1], authorizeUrl.searchParams.get("state"));

    const authorized = await browse(first.location);
    check("GET /oauth/authorize: status", authorized.status, 302);
    if (!authorized.location) fail("authorize answered no Location");
    const providerPage = new URL(authorized.location);
    show("→ the provider's page", providerPage.pathname.replace(/[^/]{20,}$/, "…"));

    const shown = await browse(`${authorized.location}?personid=${options.personid}`);
    check("the provider's page: status", shown.status, 200);
    if (options.expectName) check("the page shows", textOf(shown.html, "name"), options.expectName);

    // The page's form carries a hidden anti-CSRF token: sent back as the browser sends the form.
    const csrf = /name="csrf" value="([^"]+)"/.exec(shown.html)?.[1];
    if (!csrf) fail("the provider's page has no csrf field");
    let hop = await browse(authorized.location, {
      form: { decision: options.decision ?? "approve", personid: options.personid, csrf },
    });
    check(`POST decision=${options.decision ?? "approve"}: status`, hop.status, 302);
    const until = Date.now() + 30_000;
    while (hop.location && !hop.location.startsWith(platform.redirectUri)) {
      if (Date.now() > until) fail(`the flow did not finish: still at ${hop.location}`);
      show("→ the waiting page", new URL(hop.location).pathname.replace(/[^/]{20,}$/, "…"));
      const at: string = hop.location;
      hop = await browse(at);
      if (hop.status === 200) {
        await sleep(1000); // the waiting page refreshes itself
        hop = { ...hop, location: at };
      }
    }
    if (!hop.location) fail(`the flow ended without a redirect (HTTP ${hop.status})`);
    const back = new URL(hop.location);
    show(
      "→ redirect_uri",
      `${back.pathname}?${[...back.searchParams.keys()].map((k) => (k === "code" ? "code=…" : `${k}=${back.searchParams.get(k)}`)).join("&")}`,
    );
    const final = await browse(hop.location, { cookie });
    return { back, final, cookie };
  }

  const actionsSince = (from: number) => platform.callbacks.slice(from).map((c) => c.action as Action);

  // ——— 1. a new person, 100.00 EUR ———
  const personid = newPersonid();
  const name = `Test Person${personid.slice(8)}`;
  step(`A new person (${personid}) signs up and deposits 100.00 EUR with sandbox-bankid`);
  let mark = platform.callbacks.length;
  const one = await signIn({ personid, provider: "sandbox-bankid", amount: "100.00", expectName: name });
  check("the redirect carries a code", one.back.searchParams.has("code"), true);
  check("the operator's page: status", one.final.status, 200);
  check("welcome", textOf(one.final.html, "name"), name);
  check("balance", textOf(one.final.html, "balance"), "100.00 EUR");
  check("Ferry's transaction", textOf(one.final.html, "tx-state"), "SUCCESSFUL 0 SUCCESS");
  check("callbacks Ferry made", actionsSince(mark), ["signin", "verifyuser", "authorize", "transfer"]);
  const user = platform.userByPerson(personid);
  if (!user) fail("the operator does not know the person after signin");
  const transfer = platform.callbacks.find((c) => c.action === "transfer")?.body as Json;
  check("transfer: txAmount, fee", [transfer.txAmount, transfer.fee], ["100.00", "0.00"]);
  check("transfer: txRefId", transfer.txRefId, `${clientId}A${transfer.txId}`);

  // ——— 2. the same person, 504.00 EUR: refused by the bank ———
  step("The same person deposits 504.00 EUR: the bank refuses (NO_FUNDS) after the operator authorized it");
  mark = platform.callbacks.length;
  const two = await signIn({ personid, provider: "sandbox-bankid", amount: "504.00" });
  check("error", two.back.searchParams.get("error"), "access_denied");
  check("error_description", two.back.searchParams.get("error_description"), "err_declined_no_funds");
  check("the operator's page shows the error", textOf(two.final.html, "error-code"), "access_denied");
  // Ferry sends cancel after the redirect: it is a step of its own.
  const until = Date.now() + 15_000;
  while (!actionsSince(mark).includes("cancel") && Date.now() < until) await sleep(200);
  check("callbacks (a returning bank-ID person: no signin)", actionsSince(mark), [
    "verifyuser",
    "authorize",
    "cancel",
  ]);
  const cancel = platform.callbacks.slice(mark).find((c) => c.action === "cancel")?.body as Json;
  check("cancel: statusCode", cancel.statusCode, 504);
  check("the reservation", platform.deposits.get(String(cancel.txId))?.state, "RELEASED");
  check("balance unchanged", balancesOf(user), "100.00 EUR");

  // ——— 3. sandbox-trustly, no deposit ———
  step("The same person signs in with sandbox-trustly, no deposit (signin is always sent)");
  mark = platform.callbacks.length;
  const three = await signIn({ personid, provider: "sandbox-trustly" });
  check("welcome", textOf(three.final.html, "name"), name);
  check("the same user", textOf(three.final.html, "user-id"), user.userId);
  check("balance", textOf(three.final.html, "balance"), "100.00 EUR");
  check("callbacks", actionsSince(mark), ["signin", "verifyuser"]);

  // ——— 4. Deny ———
  step("Another person presses Deny");
  mark = platform.callbacks.length;
  const four = await signIn({
    personid: newPersonid(),
    provider: "sandbox-bankid",
    amount: "20.00",
    decision: "deny",
  });
  check("error", four.back.searchParams.get("error"), "access_denied");
  check("error_description", four.back.searchParams.get("error_description"), "err_cancelled_by_user");
  check("callbacks", actionsSince(mark), []);

  // ——— 5. a forged state ———
  step("A redirect_uri visit whose state is not this browser's");
  const forged = await browse(`${platform.redirectUri}?code=abc&state=forged`, { cookie: one.cookie });
  check("status", forged.status, 400);
  check("page", textOf(forged.html, "error"), "The state does not match the one this browser started with.");
  step("A redirect_uri visit with this browser's state but another issuer (RFC 9207 mix-up)");
  const started = await browse(`${op}/start?provider=sandbox-bankid`);
  const state = started.location ? new URL(started.location).searchParams.get("state") : null;
  const mixedUp = await browse(
    `${platform.redirectUri}?code=abc&state=${state}&iss=${encodeURIComponent("https://elsewhere.example")}`,
    { cookie: started.setCookie?.split(";")[0] ?? "" },
  );
  check("status", mixedUp.status, 400);
  check("page", textOf(mixedUp.html, "error"), "The answer's issuer is not Ferry's.");

  // ——— what staff see ———
  step("Ferry's admin view of the client's 1-Click transactions, and reconciliation");
  const admin = { authorization: `Basic ${Buffer.from(`admin:${adminPassword}`).toString("base64")}` };
  const listed = (await (
    await fetch(`${ferryUrl}/admin/clients/${clientId}/oneclick/transactions`, { headers: admin })
  ).json()) as Json;
  check(
    "transactions, newest first",
    (listed.records as Json[]).map((r) => `${r.statusCode} ${r.statusName}`),
    ["600 CANCELLED_BY_USER", "0 SUCCESS", "504 NO_FUNDS", "0 SUCCESS"],
  );
  const reconciliation = (await (
    await fetch(`${ferryUrl}/admin/reconciliation?clientId=${clientId}`, { headers: admin })
  ).json()) as Json;
  check("reconciliation ok", [reconciliation.ok, reconciliation.mismatches.length], [true, 0]);
  const invariants = (await (
    await fetch(`${ferryUrl}/admin/ledger/invariants?clientId=${clientId}`, { headers: admin })
  ).json()) as Json;
  check("ledger invariants ok", invariants.ok, true);

  await platform.close();
  process.stdout.write("\n✓ The 1-Click example passed end to end.\n");
}
