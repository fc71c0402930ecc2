import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as ledger from "../src/modules/ledger/service.ts";
import { ADMIN_PASSWORD, startTestApp, type TestApp } from "./harness.ts";
import { createTestClient } from "./platform.ts";
import { repoRoot } from "./process.ts";
import { invariantsHold } from "./wallet.ts";

/**
 * The Pay-in example page (`npm run example:payin`, examples/payin/) driven in Debian's Chromium
 * through the whole flow as an end user plays it: register with the code from the sandbox outbox,
 * profile (KYC_0), the sandbox's verification page (KYC_1), a 3-D Secure card, rates, an offer,
 * pay → the challenge page's "Complete" → back on the page's successUrl → SUCCESS, with the crypto
 * in the account. Skipped when no chromium binary is installed (CI installs Debian's `chromium`).
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
    "payin-browser.test.ts: skipped — no chromium binary on the PATH (Debian: apt-get install -y chromium; or set FERRY_CHROMIUM)\n",
  );

let ferry: TestApp;
let frontDoor: http.Server;
let example: ChildProcess | undefined;
let exampleUrl: string;
let browser: Browser | undefined;
let clientId: string;

/** Starts the example's server (as `npm run example:payin` does) and waits for its address. */
async function startExample(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "examples/payin/server.ts"], {
    cwd: repoRoot,
    env: { ...process.env, ...env, PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the example did not start:\n${output}`)), 30_000);
    const read = (chunk: Buffer) => {
      output += String(chunk);
      const match = /open (http:\/\/\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on("data", read);
    child.stderr?.on("data", read);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the example exited with ${code}:\n${output}`));
    });
  });
  return { child, url };
}

describe.skipIf(!chromiumPath)(
  `the Pay-in example page in Chromium${chromiumPath ? "" : " (skipped: no chromium binary installed)"}`,
  () => {
    beforeAll(async () => {
      // The 3-D Secure authLink and the KYC verificationUrl are built on Ferry's publicUrl, which must
      // be known before Ferry starts, while the harness listens on a port of its own choosing: the
      // browser (and the example's server) reach Ferry through this front door, whose address is
      // Ferry's publicUrl and which hands each request to Ferry's own server.
      frontDoor = http.createServer((request, response) =>
        ferry.app.server.emit("request", request, response),
      );
      await new Promise<void>((resolve) => frontDoor.listen(0, "127.0.0.1", resolve));
      const ferryUrl = `http://127.0.0.1:${(frontDoor.address() as AddressInfo).port}`;
      ferry = await startTestApp({
        listen: true,
        workers: true,
        settings: { publicUrl: ferryUrl, sandboxKycDelayMs: 200 },
      });
      ({ clientId } = await createTestClient(ferry));
      const started = await startExample({
        FERRY_URL: ferryUrl,
        FERRY_CLIENT_ID: clientId,
        FERRY_ADMIN_PASSWORD: ADMIN_PASSWORD,
      });
      example = started.child;
      exampleUrl = started.url;
      browser = await chromium.launch({
        executablePath: chromiumPath,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
      });
    });

    afterAll(async () => {
      await browser?.close();
      if (example && example.exitCode === null) {
        const exited = new Promise((resolve) => example?.on("exit", resolve));
        example.kill("SIGTERM");
        await exited;
      }
      frontDoor?.closeAllConnections();
      await new Promise((resolve) => frontDoor?.close(resolve));
      await ferry?.close();
    });

    /** Waits until the page's step `id` is done (or failed: then fails with what the step shows). */
    async function stepDone(page: Page, id: string, timeout = 20_000) {
      await page.waitForSelector(`section#${id}.done, section#${id}.failed`, { timeout });
      expect(
        await page.getAttribute(`section#${id}`, "class"),
        (await page.textContent(`#${id}-answer`)) ?? undefined,
      ).toBe("done");
      return (await page.textContent(`#${id}-answer`)) ?? "";
    }

    /**
     * The whole page as an end user plays it, a new login each time, up to the crypto shown in the
     * account: register, profile, KYC_1, the 3-D Secure test card, rates, an offer, pay, "Complete".
     */
    async function playThePage(context: BrowserContext) {
      context.setDefaultTimeout(20_000);
      const page = await context.newPage();
      const pageErrors: string[] = [];
      page.on("pageerror", (error) => pageErrors.push(error.message));
      await page.goto(exampleUrl);

      // 1. Register: the code comes from the sandbox outbox (read by the example's server).
      const login = `marie-${Date.now().toString(36)}@example.com`;
      await page.fill("#login-name", login);
      await page.click("#register");
      await expect.poll(() => page.inputValue("#otp")).toMatch(/^[0-9]{6}$/);
      await page.click("#confirm");
      expect(await stepDone(page, "login")).toContain('"action": "TOKEN_CREATED"');

      // 2. The profile → KYC_0 once the sandbox KYC has decided.
      await page.click("#save-profile");
      const profile = await stepDone(page, "profile");
      expect(profile).toContain("PATCH /v2/customer/profile → 204");
      expect(profile).toContain('"kycLevel": "KYC_0"');

      // 3. KYC_1: the verification page opens in a new tab; "Submit documents" there.
      await page.click("#start-kyc");
      await page.waitForSelector("#kyc-link:not([hidden])");
      const [verification] = await Promise.all([context.waitForEvent("page"), page.click("#kyc-link")]);
      await verification.waitForLoadState();
      expect(verification.url()).toContain("/sandbox/kyc/verification/");
      await verification.click("#submit");
      await verification.waitForSelector("#outcome");
      expect(await verification.textContent("#outcome")).toBe("Documents submitted");
      await verification.close();
      expect(await stepDone(page, "kyc")).toContain('"kycLevel": "KYC_1"');

      // 4–5. The 3-D Secure test card (the page's default); the rates.
      expect(await page.inputValue("#card-number")).toBe("4000 0000 0000 3220");
      await page.click("#add-card");
      expect(await stepDone(page, "card")).toContain('"maskedPan": "400000******3220"');
      await page.click("#read-rates");
      expect(await stepDone(page, "rates")).toContain("1 USDC = 0.92592592 EUR");

      // 6. The offer, with its countdown.
      await page.click("#make-offer");
      const offer = await stepDone(page, "offer");
      expect(offer).toContain('"toAmount": 106.38');
      expect(await page.textContent("#countdown")).toMatch(/^holds for ([1-9]|1[0-9]|20) s$/);
      await page
        .locator("section#offer")
        .screenshot({ path: path.join(os.tmpdir(), "ferry-payin-offer.png") });

      // 7. Pay → the challenge page → "Complete" → back on the example's successUrl.
      await page.click("#pay-offer");
      await page.waitForURL(/\/sandbox\/acquirer\/challenge\/sbxch_/);
      await page.click("#complete");
      await page.waitForURL(`${exampleUrl}/?back=success`);

      // 8. The page follows the payment to SUCCESS and shows the account.
      const status = await stepDone(page, "status");
      expect(status).toContain('"status": "SUCCESS"');
      expect(status).toContain("GET /api/v1/coins → 200");
      const result = (await page.textContent("#result")) ?? "";
      expect(result).toContain("Paid 100 EUR: you bought 106.38 USDC");
      expect(result).toMatch(/Your USDC account \S+: 106\.380000/);
      expect(await page.getAttribute("section#pay", "class")).toBe("done");

      return { page, pageErrors };
    }

    it("registers, reaches KYC_1, pays with 3-D Secure and shows the crypto bought", async () => {
      const context = await (browser as Browser).newContext({ viewport: { width: 1000, height: 900 } });
      const { page, pageErrors } = await playThePage(context);
      const screenshot = path.join(os.tmpdir(), "ferry-payin-example.png");
      await page.screenshot({ path: screenshot, fullPage: true });
      process.stderr.write(`payin-browser.test.ts: screenshot at ${screenshot}\n`);
      expect(pageErrors).toEqual([]);

      // The same through the API, with the page's own token.
      const kept: string = await page.evaluate('sessionStorage.getItem("payin")');
      const { token, offerId } = JSON.parse(kept);
      const headers = { authorization: `Bearer ${token}` };
      const callback = await ferry.app.inject({
        method: "GET",
        url: `/v3/payin/pay-callback?offerId=${offerId}`,
        headers,
      });
      expect(callback.json()).toMatchObject({
        status: "SUCCESS",
        amount: 100,
        currency: "EUR",
        cryptoAmount: 106.38,
        cryptoCurrency: "USDC",
        maskedPan: "400000******3220",
        transactionStatus: "Approved",
      });
      const coins = await ferry.app.inject({ method: "GET", url: "/api/v1/coins", headers });
      expect(coins.json().coins).toMatchObject([{ currency: { code: "USDC" }, amount: "106.380000" }]);
      const charges = await ferry.database.db
        .selectFrom("sandbox_acquirer_charges")
        .select(["outcome", "amount"])
        .where("idempotency_key", "like", `${clientId}:%`)
        .execute();
      expect(charges).toEqual([{ outcome: "APPROVED", amount: "10000" }]);
      // The money path (docs/payin-api.md): card transit → FX position (net) and fees; FX → the account.
      const balance = async (kind: "TRANSIT" | "FX" | "FEES", currency: string, rail?: string) => {
        const id = await ledger.systemAccountId(ferry.database.db, {
          clientId,
          currency,
          kind,
          ...(rail ? { rail } : {}),
        });
        const account = await ledger.getAccount(ferry.database.db, id, clientId);
        return account.creditsPosted - account.debitsPosted;
      };
      expect(await balance("TRANSIT", "EUR", "card")).toBe(-10_000n);
      expect(await balance("FX", "EUR")).toBe(9_850n);
      expect(await balance("FEES", "EUR")).toBe(150n);
      expect(await balance("FX", "USDC")).toBe(-106_380_000n);
      await invariantsHold(ferry, clientId);
      await context.close();
    }, 120_000);

    it("plays again for another user of the same client: the test card is anyone's (issue 17.8)", async () => {
      // Before issue 17.8 the 3-D Secure test card was the first player's: the second got 409 at "Add card".
      const context = await (browser as Browser).newContext({ viewport: { width: 1000, height: 900 } });
      const { pageErrors } = await playThePage(context);
      expect(pageErrors).toEqual([]);
      await invariantsHold(ferry, clientId);
      await context.close();
    }, 120_000);
  },
);
