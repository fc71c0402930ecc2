import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as ledger from "../src/modules/ledger/service.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { OPERATOR_AUTH, OPERATOR_USER, type Operator, startOperator } from "./oneclick.ts";
import { createTestClient } from "./platform.ts";
import { invariantsHold } from "./wallet.ts";

/**
 * 1-Click in Debian's Chromium, as a player meets it: the operator's page links to
 * /oauth/authorize (iframe=false) → the sandbox identity provider's page (Test Testsson, 100.00
 * EUR) → Approve → back on the operator's redirect_uri with code and state, where the operator's
 * server exchanges the code (/oauth/token) and greets the player by name. Then the iframe=true
 * mode: the operator's page fetches the authorize JSON and shows redirectOutput.url in an iframe,
 * which Ferry's Content-Security-Policy lets only the operator's registered origin do. Skipped
 * when no chromium binary is installed (CI installs Debian's `chromium`).
 */

/** The chromium binary: FERRY_CHROMIUM, else `chromium` (or `chromium-browser`) on the PATH. */
function findChromium(): string | undefined {
  const onPath = (process.env.PATH ?? "")
    .split(path.delimiter)
    .filter(Boolean)
    .flatMap((dir) => ["chromium", "chromium-browser"].map((name) => path.join(dir, name)));
  return [process.env.FERRY_CHROMIUM, ...onPath].find((file) => file && fs.existsSync(file));
}

const chromiumPath = findChromium();
if (!chromiumPath)
  process.stderr.write(
    "oneclick-browser.test.ts: skipped — no chromium binary on the PATH (Debian: apt-get install -y chromium; or set FERRY_CHROMIUM)\n",
  );

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const shot = (name: string) => path.join(os.tmpdir(), `ferry-oneclick-${name}.png`);

let ferry: TestApp;
let frontDoor: http.Server;
let ferryUrl: string;
let operator: Operator;
let site: http.Server;
let siteUrl: string;
/** Another site, not registered for the client: Ferry's pages must refuse to be framed by it. */
let stranger: http.Server;
let strangerUrl: string;
let browser: Browser | undefined;
let clientId: string;
let clientSecret: string;

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: http.Server | undefined) {
  if (!server) return;
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

const pageOf = (title: string, body: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;background:#f6f7fb}
header{background:#1b3a5c;color:#fff;padding:1rem;border-radius:6px}a.cta,button{display:inline-block;background:#2a7a3b;color:#fff;padding:.7rem 1.4rem;border-radius:6px;text-decoration:none;border:0;font-size:1rem}
iframe{width:100%;height:560px;border:1px solid #aaa;border-radius:6px;background:#fff}.box{background:#fff;border:1px solid #ddd;border-radius:6px;padding:1rem;margin:1rem 0}</style>
</head><body><header><strong>Lucky Operator</strong> — a test operator platform</header>${body}</body></html>`;

/**
 * The operator's web server: its landing page (a plain link, or the iframe mode), its redirect_uri
 * (which checks state, exchanges the code with client_secret_basic and shows who signed up).
 */
function operatorSite() {
  const states = new Set<string>();
  const authorizeUrl = (iframe: boolean) => {
    const state = randomBytes(16).toString("base64url");
    states.add(state);
    const url = new URL(`${ferryUrl}/oauth/authorize`);
    url.search = new URLSearchParams({
      client_id: clientId,
      redirect_uri: `${siteUrl}/return`,
      response_type: "code",
      scope: "default",
      state,
      identity_provider: "sandbox-bankid",
      amount: "100.00",
      currency: "EUR",
      locale: "en",
      iframe: String(iframe),
    }).toString();
    return url.toString();
  };
  const basicAuth = () => `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString("base64")}`;

  async function returned(url: URL): Promise<string> {
    const state = url.searchParams.get("state") ?? "";
    if (!states.delete(state)) return pageOf("Refused", `<p id="error">unknown state</p>`);
    const error = url.searchParams.get("error");
    if (error) return pageOf("Not signed up", `<p id="error">${escapeHtml(error)}</p>`);
    const answer = await fetch(`${ferryUrl}/oauth/token`, {
      method: "POST",
      headers: { authorization: basicAuth(), "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code: url.searchParams.get("code") ?? "",
        redirect_uri: `${siteUrl}/return`,
      }),
    });
    const token = (await answer.json()) as Record<string, string>;
    if (answer.status !== 200)
      return pageOf("Not signed up", `<p id="error">${escapeHtml(token.error ?? "")}</p>`);
    const txId = String(token.txRefId).slice(`${clientId}A`.length);
    const status = (await (
      await fetch(`${ferryUrl}/oauth/transactions/${txId}`, { headers: { authorization: basicAuth() } })
    ).json()) as Record<string, string>;
    const name = token.name ?? "";
    return pageOf(
      "Welcome",
      `<h1 id="welcome">Welcome, ${escapeHtml(name)}!</h1>
<div class="box"><p>Player id: <code id="player">${escapeHtml(token.userId ?? "")}</code></p>
<p>Born ${escapeHtml(token.dob ?? "")}, ${escapeHtml(token.street ?? "")}, ${escapeHtml(token.zip ?? "")} ${escapeHtml(token.city ?? "")} (${escapeHtml(token.country ?? "")})</p>
<p id="deposit">Deposit of ${escapeHtml(status.amount ?? "")} ${escapeHtml(status.currency ?? "")}: ${escapeHtml(status.statusName ?? "")}</p></div>
<script>if (window.parent !== window) window.parent.postMessage(${JSON.stringify({ welcome: name, status: status.statusName }).replace(/</g, "\\u003c")}, ${JSON.stringify(siteUrl)});</script>`,
    );
  }

  return http.createServer((request, response) => {
    const url = new URL(request.url ?? "/", siteUrl);
    const send = (html: string, status = 200) =>
      response.writeHead(status, { "content-type": "text/html; charset=utf-8" }).end(html);
    if (url.pathname === "/")
      return send(
        pageOf(
          "Lucky Operator",
          `<h1>Play in one minute</h1><p>No forms: sign in with your bank ID and make your first deposit.</p>
<p><a class="cta" id="signup" href="${escapeHtml(authorizeUrl(false))}">Sign up and deposit 100.00 EUR</a></p>`,
        ),
      );
    if (url.pathname === "/iframe")
      return send(
        pageOf(
          "Lucky Operator",
          `<h1>Play in one minute</h1><p><button id="start">Sign up and deposit 100.00 EUR</button></p>
<p id="result"></p><iframe id="idp" title="Sign in with your bank" hidden></iframe>
<script>
const authorizeUrl = ${JSON.stringify(authorizeUrl(true))};
document.getElementById("start").addEventListener("click", async () => {
  const answer = await (await fetch(authorizeUrl)).json();
  const frame = document.getElementById("idp");
  frame.src = answer.redirectOutput.url;
  frame.hidden = false;
});
window.addEventListener("message", (event) => {
  if (event.origin !== location.origin) return;
  document.getElementById("idp").hidden = true;
  document.getElementById("result").textContent = "Signed up: " + event.data.welcome + " (" + event.data.status + ")";
});
</script>`,
        ),
      );
    if (url.pathname === "/frame")
      return send(
        pageOf(
          "Framing",
          `<iframe id="idp" title="framed" src="${escapeHtml(url.searchParams.get("src") ?? "")}"></iframe>`,
        ),
      );
    if (url.pathname === "/return")
      return void returned(url).then(
        (html) => send(html),
        (error: Error) => send(pageOf("Error", `<p id="error">${escapeHtml(error.message)}</p>`), 500),
      );
    send("not found", 404);
  });
}

describe.skipIf(!chromiumPath)(
  `1-Click in Chromium${chromiumPath ? "" : " (skipped: no chromium binary installed)"}`,
  () => {
    beforeAll(async () => {
      // Ferry's publicUrl (the provider page's address in redirectOutput.url and the 302s) must be
      // known before it starts: the browser reaches Ferry through this front door, whose address
      // is the publicUrl and which hands each request to Ferry's own server.
      frontDoor = http.createServer((request, response) =>
        ferry.app.server.emit("request", request, response),
      );
      ferryUrl = await listen(frontDoor);
      ferry = await startTestApp({ listen: true, workers: true, settings: { publicUrl: ferryUrl } });
      operator = await startOperator();
      site = operatorSite();
      siteUrl = await listen(site);
      stranger = operatorSite();
      strangerUrl = await listen(stranger);
      ({ clientId } = await createTestClient(ferry));
      const patched = await ferry.app.inject({
        method: "PATCH",
        url: `/admin/clients/${clientId}`,
        headers: ferry.adminAuth,
        payload: {
          name: "Lucky Operator",
          oneClick: {
            redirectUris: [`${siteUrl}/return`],
            callbackUrl: `${operator.url}/api/{action}`,
            callbackAuth: { type: "basic", ...OPERATOR_AUTH },
          },
        },
      });
      if (patched.statusCode !== 200) throw new Error(patched.body);
      const made = await ferry.app.inject({
        method: "POST",
        url: `/admin/clients/${clientId}/oauth-secret`,
        headers: ferry.adminAuth,
      });
      clientSecret = made.json().clientSecret;
      browser = await chromium.launch({
        executablePath: chromiumPath,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
      });
    });

    afterAll(async () => {
      await browser?.close();
      await operator?.close();
      await close(site);
      await close(stranger);
      await close(frontDoor);
      await ferry?.close();
    });

    it("the operator's link → the provider's page → Approve → the operator greets the player by name", async () => {
      const context = await (browser as Browser).newContext({ viewport: { width: 900, height: 760 } });
      context.setDefaultTimeout(20_000);
      const page = await context.newPage();
      const pageErrors: string[] = [];
      page.on("pageerror", (error) => pageErrors.push(error.message));
      await page.goto(siteUrl);
      const href = (await page.getAttribute("#signup", "href")) ?? "";
      expect(href).toContain(`${ferryUrl}/oauth/authorize?`);
      expect(new URL(href).searchParams.get("iframe")).toBe("false");

      // The link → Ferry's 302 → the sandbox provider's page.
      await page.click("#signup");
      await page.waitForURL(new RegExp(`^${ferryUrl}/sandbox/identity/[A-Za-z0-9_-]{43}$`));
      expect(await page.textContent("#name")).toBe("Test Testsson");
      expect(await page.textContent("#personid")).toBe("199001011234");
      const text = (await page.textContent("body")) ?? "";
      expect(text).toContain("Lucky Operator asks you to sign in and deposit 100.00 EUR");
      await page.screenshot({ path: shot("provider"), fullPage: true });

      // Approve → the callbacks and the payment → the operator's redirect_uri with code and state.
      await page.click("#approve");
      await page.waitForURL(new RegExp(`^${siteUrl}/return\\?`));
      const back = new URL(page.url());
      expect(back.searchParams.get("code")).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(back.searchParams.get("state")).toBeTruthy();
      expect(await page.textContent("#welcome")).toBe("Welcome, Test Testsson!");
      expect(await page.textContent("#player")).toBe(OPERATOR_USER);
      expect(await page.textContent("#deposit")).toBe("Deposit of 100.00 EUR: SUCCESS");
      const screenshot = shot("welcome");
      await page.screenshot({ path: screenshot, fullPage: true });
      process.stderr.write(`oneclick-browser.test.ts: screenshots at ${shot("provider")}, ${screenshot}\n`);
      expect(operator.calls.map((c) => c.action)).toEqual(["signin", "verifyuser", "authorize", "transfer"]);
      expect(pageErrors).toEqual([]);
      await context.close();
    }, 60_000);

    it("iframe=true: the operator's page frames the provider's page; another site may not", async () => {
      const context = await (browser as Browser).newContext({ viewport: { width: 900, height: 820 } });
      context.setDefaultTimeout(20_000);
      const page = await context.newPage();
      const pageErrors: string[] = [];
      page.on("pageerror", (error) => pageErrors.push(error.message));
      await page.goto(`${siteUrl}/iframe`);
      await page.click("#start");
      const frame = page.frameLocator("#idp");
      await expect
        .poll(() => frame.locator("#name").textContent(), { timeout: 20_000 })
        .toBe("Test Testsson");
      expect(await frame.locator("body").textContent()).toContain("deposit 100.00 EUR");
      await page.screenshot({ path: shot("iframe"), fullPage: true });

      // Approve inside the frame: the frame goes to the redirect_uri, which tells its parent page.
      await frame.locator("#approve").click();
      await expect
        .poll(() => page.textContent("#result"), { timeout: 20_000 })
        .toBe("Signed up: Test Testsson (SUCCESS)");
      await page.screenshot({ path: shot("iframe-done"), fullPage: true });
      expect(pageErrors).toEqual([]);

      // Two deposits, both to the operator's settlement account; the ledger agrees with the provider.
      const settlement = await ledger.systemAccountId(ferry.database.db, {
        clientId,
        currency: "EUR",
        kind: "SETTLEMENT",
      });
      const account = await ledger.getAccount(ferry.database.db, settlement, clientId);
      expect(account.creditsPosted - account.debitsPosted).toBe(20_000n);
      await invariantsHold(ferry, clientId);

      // A site whose origin is not registered for the client: Chromium refuses to show the page
      // in its frame (Content-Security-Policy frame-ancestors).
      const started = await ferry.app.inject({
        method: "GET",
        url: `/oauth/authorize?${new URLSearchParams({
          client_id: clientId,
          redirect_uri: `${siteUrl}/return`,
          response_type: "code",
          state: "s",
          scope: "default",
          identity_provider: "sandbox-bankid",
        })}`,
      });
      const providerUrl: string = started.json().redirectOutput.url;
      const framed = await ferry.app.inject({ method: "GET", url: new URL(providerUrl).pathname });
      expect(framed.headers["content-security-policy"]).toContain(`frame-ancestors ${siteUrl}`);
      const blocked: string[] = [];
      page.on("console", (message) => blocked.push(message.text()));
      await page.goto(`${strangerUrl}/frame?src=${encodeURIComponent(providerUrl)}`);
      await expect.poll(() => blocked.join("\n"), { timeout: 20_000 }).toContain("frame-ancestors");
      const child = page.frames().find((f) => f !== page.mainFrame());
      expect(await child?.content()).not.toContain("Test Testsson");
      await context.close();
    }, 60_000);
  },
);
