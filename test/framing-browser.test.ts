import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SandboxKycVerifications } from "../src/providers/kyc/sandbox-verification.ts";
import { startTestApp, type TestApp } from "./harness.ts";
import { OPERATOR_AUTH, type Operator, startOperator } from "./oneclick.ts";
import { createTestClient, createUser, type TestClient } from "./platform.ts";

/**
 * Issue 23 item 5 in Debian's Chromium: a page of a foreign origin (another local server, another
 * port) cannot frame the sandbox 3-D Secure challenge page or the KYC page — Chromium reports the
 * frame-ancestors violation and the frame holds nothing of the page —, nor post the decision from
 * its own form (403, the charge still waits); the 1-Click identity page is still framed by the
 * client's registered origin. Ferry's own pages load without a single CSP violation, and /docs
 * (Swagger UI) still renders under its policy. Skipped when no chromium binary is installed.
 */

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
    "framing-browser.test.ts: skipped — no chromium binary on the PATH (or set FERRY_CHROMIUM)\n",
  );

const shot = (name: string) => path.join(os.tmpdir(), `ferry-framing-${name}.png`);
const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

let ferry: TestApp;
let frontDoor: http.Server;
let ferryUrl: string;
let stranger: http.Server;
let strangerUrl: string;
let site: http.Server;
let siteUrl: string;
let operator: Operator;
let browser: Browser | undefined;
let counter = 0;

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: http.Server | undefined) {
  if (!server) return;
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** A plain site: `/frame?src=` frames a page; `/post?action=&decision=` posts a form to it at once. */
function framingSite(name: string) {
  return http.createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://x");
    const send = (html: string) =>
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
    const head = `<!doctype html><html><head><meta charset="utf-8"><title>${name}</title></head><body><h1>${name}</h1>`;
    if (url.pathname === "/frame")
      return send(
        `${head}<iframe id="victim" src="${escapeHtml(url.searchParams.get("src") ?? "")}" style="width:640px;height:420px;border:2px solid #c00"></iframe></body></html>`,
      );
    if (url.pathname === "/post")
      return send(
        `${head}<form id="forged" method="post" action="${escapeHtml(url.searchParams.get("action") ?? "")}"><input type="hidden" name="decision" value="${escapeHtml(url.searchParams.get("decision") ?? "")}"><button id="send">Win a prize</button></form></body></html>`,
      );
    response.writeHead(404).end();
  });
}

async function challengePage(client: TestClient): Promise<{ requestId: string; url: string }> {
  const userId = `fr-${++counter}`;
  await createUser(ferry, client, userId);
  const response = await client.request(
    "POST",
    "/v1/transactions/deposits",
    {
      userId,
      amount: "10.00",
      currency: "EUR",
      sourceMethod: {
        paymentMethodType: "CREDIT_CARD",
        cardNumber: "4000000000003220",
        expirationMonth: 12,
        expirationYear: 2031,
        cvv: "123",
      },
    },
    { "x-request-id": `fr-card-${counter}` },
  );
  expect(response.statusCode, response.body).toBe(202);
  const body = response.json() as { requestId: string; redirectUrl: string };
  expect(body.redirectUrl.startsWith(ferryUrl)).toBe(true);
  return { requestId: body.requestId, url: body.redirectUrl };
}

const statusOf = async (client: TestClient, requestId: string) =>
  (await client.request("GET", `/v1/transactions/${requestId}`)).json().status as string;

/** Console messages that name a Content-Security-Policy. */
function cspMessages(page: Page): string[] {
  const messages: string[] = [];
  page.on("console", (message) => {
    if (/Content Security Policy|frame-ancestors|X-Frame-Options/i.test(message.text()))
      messages.push(message.text());
  });
  return messages;
}

describe.skipIf(!chromiumPath)(
  `framing and cross-site forms in Chromium${chromiumPath ? "" : " (skipped: no chromium binary installed)"}`,
  () => {
    let client: TestClient;

    beforeAll(async () => {
      frontDoor = http.createServer((request, response) =>
        ferry.app.server.emit("request", request, response),
      );
      ferryUrl = await listen(frontDoor);
      ferry = await startTestApp({ listen: true, workers: true, settings: { publicUrl: ferryUrl } });
      stranger = framingSite("Stranger");
      strangerUrl = await listen(stranger);
      site = framingSite("Lucky Operator");
      siteUrl = await listen(site);
      operator = await startOperator();
      client = await createTestClient(ferry);
      browser = await chromium.launch({
        executablePath: chromiumPath,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
      });
    });

    afterAll(async () => {
      await browser?.close();
      await operator?.close();
      await close(stranger);
      await close(site);
      await close(frontDoor);
      await ferry?.close();
    });

    it("a foreign origin cannot frame the 3-D Secure challenge page nor the KYC page", async () => {
      const { requestId, url } = await challengePage(client);
      const userId = `fr-${++counter}`;
      await createUser(ferry, client, userId);
      const verification = await new SandboxKycVerifications(ferry.database.db, ferryUrl).open(
        ferry.database.db,
        client.clientId,
        userId,
      );
      const context = await (browser as Browser).newContext({ viewport: { width: 800, height: 600 } });
      context.setDefaultTimeout(20_000);
      for (const [name, target] of [
        ["challenge", url],
        ["kyc", `${ferryUrl}/sandbox/kyc/verification/${verification.id}`],
      ] as const) {
        const page = await context.newPage();
        const reported = cspMessages(page);
        await page.goto(`${strangerUrl}/frame?src=${encodeURIComponent(target)}`);
        await expect.poll(() => reported.join("\n"), { timeout: 20_000 }).toContain("frame-ancestors");
        const frame = page.frames().find((f) => f !== page.mainFrame());
        const inside = (await frame?.content().catch(() => "")) ?? "";
        expect(inside, name).not.toContain("Sandbox");
        expect(inside, name).not.toMatch(/id="(complete|submit)"/);
        expect(await frame?.$("#complete, #submit"), name).toBeNull();
        await page.screenshot({ path: shot(name) });
        await page.close();
      }
      expect(await statusOf(client, requestId)).toBe("AWAITING_PAYMENT");
      process.stderr.write(`framing-browser.test.ts: screenshots at ${shot("challenge")}, ${shot("kyc")}\n`);
      await context.close();
    }, 60_000);

    it("a foreign origin's form cannot take the 3-D Secure decision; Ferry's own page can, with no CSP violation", async () => {
      const { requestId, url } = await challengePage(client);
      const context = await (browser as Browser).newContext({ viewport: { width: 800, height: 600 } });
      context.setDefaultTimeout(20_000);
      const page = await context.newPage();
      const action = encodeURIComponent(new URL(url).pathname);
      await page.goto(`${strangerUrl}/post?action=${encodeURIComponent(url)}&decision=complete&_=${action}`);
      const [answer] = await Promise.all([page.waitForResponse((r) => r.url() === url), page.click("#send")]);
      expect(answer.status()).toBe(403);
      expect(await statusOf(client, requestId)).toBe("AWAITING_PAYMENT");

      // The card holder on Ferry's own page: the page loads with its style, the form is allowed.
      const own = await context.newPage();
      const reported = cspMessages(own);
      await own.goto(url);
      expect(
        await own.$eval("body", (body) => body.ownerDocument.defaultView?.getComputedStyle(body).maxWidth),
      ).toBe("448px"); // 28rem: the hashed style applies
      await own.click("#complete");
      await own.waitForSelector("#outcome");
      expect(await own.textContent("#outcome")).toBe("Payment approved");
      await own.screenshot({ path: shot("own-page") });
      expect(await statusOf(client, requestId)).toBe("CAPTURED");
      expect(reported).toEqual([]);
      await context.close();
    }, 60_000);

    it("the 1-Click identity page is still framed by the client's registered origin (not by another)", async () => {
      const { clientId } = await createTestClient(ferry);
      const patched = await ferry.app.inject({
        method: "PATCH",
        url: `/admin/clients/${clientId}`,
        headers: ferry.adminAuth,
        payload: {
          oneClick: {
            redirectUris: [`${siteUrl}/return`],
            callbackUrl: `${operator.url}/api/{action}`,
            callbackAuth: { type: "basic", ...OPERATOR_AUTH },
          },
        },
      });
      expect(patched.statusCode, patched.body).toBe(200);
      await ferry.app.inject({
        method: "POST",
        url: `/admin/clients/${clientId}/oauth-secret`,
        headers: ferry.adminAuth,
      });
      const started = await ferry.app.inject({
        method: "GET",
        url: `/oauth/authorize?${new URLSearchParams({
          client_id: clientId,
          redirect_uri: `${siteUrl}/return`,
          response_type: "code",
          state: "s",
          identity_provider: "sandbox-bankid",
        })}`,
      });
      expect(started.statusCode, started.body).toBe(200);
      const providerUrl: string = started.json().redirectOutput.url;
      const context = await (browser as Browser).newContext({ viewport: { width: 800, height: 600 } });
      context.setDefaultTimeout(20_000);
      const page = await context.newPage();
      const reported = cspMessages(page);
      await page.goto(`${siteUrl}/frame?src=${encodeURIComponent(providerUrl)}`);
      const frame = page.frameLocator("#victim");
      await expect
        .poll(() => frame.locator("#name").textContent(), { timeout: 20_000 })
        .toBe("Test Testsson");
      await page.screenshot({ path: shot("identity-framed") });
      expect(reported).toEqual([]);

      const other = await context.newPage();
      const blocked = cspMessages(other);
      await other.goto(`${strangerUrl}/frame?src=${encodeURIComponent(providerUrl)}`);
      await expect.poll(() => blocked.join("\n"), { timeout: 20_000 }).toContain("frame-ancestors");
      const child = other.frames().find((f) => f !== other.mainFrame());
      expect((await child?.content().catch(() => "")) ?? "").not.toContain("Test Testsson");
      await context.close();
    }, 60_000);

    it("/docs (Swagger UI) renders under its policy, with no CSP violation", async () => {
      const context = await (browser as Browser).newContext({ viewport: { width: 1000, height: 700 } });
      const page = await context.newPage();
      const reported = cspMessages(page);
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(error.message));
      await page.goto(`${ferryUrl}/docs`);
      await page.waitForSelector(".swagger-ui .info .title", { timeout: 20_000 });
      expect(await page.textContent(".swagger-ui .info .title")).toContain("Ferry");
      await page.waitForSelector(".opblock", { timeout: 20_000 });
      await page.screenshot({ path: shot("docs") });
      expect(reported).toEqual([]);
      expect(errors).toEqual([]);
      await context.close();
    }, 60_000);
  },
);
