/**
 * The Pay-in flow in a browser, as an end user plays it, against a local Ferry:
 *
 *   FERRY_ADMIN_PASSWORD=choose-a-long-password npm start            # in one terminal
 *   FERRY_ADMIN_PASSWORD=choose-a-long-password npm run example:payin    # in another; open http://127.0.0.1:5174
 *
 * One page (index.html + app.js, plain JS, no build step): log in or register, the profile
 * (KYC_0), the ID + liveness check on the sandbox's verification page (KYC_1), a card, the rates,
 * an offer held for 20 s, the payment with its 3-D Secure page, and the crypto in the account.
 *
 * This server serves the page and passes `/api/*`, `/v2/*` and `/v3/*` on to Ferry, so the page
 * calls its own origin (the Wallet and Pay-in faces answer no CORS preflight; a page on another
 * origin would need one). It adds `X-Client-Id` (FERRY_CLIENT_ID) to the calls made before there is
 * a token; without it they go to the installation's default client (`demo` on a first start).
 *
 * Sandbox only: a real installation e-mails or texts the registration code. The sandbox keeps it in
 * an outbox that only the platform admin may read, so `GET /sandbox-otp` reads it there with
 * FERRY_ADMIN_PASSWORD and hands it to the page. Never expose anything like it outside the sandbox.
 *
 * Settings: FERRY_URL (default http://127.0.0.1:3000), FERRY_ADMIN_PASSWORD (for the sandbox
 * outbox), FERRY_CLIENT_ID (default: the installation's default client), PORT (default 5174).
 * The guide that explains each call: docs/payin-api.md.
 */
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ferryUrl = (process.env.FERRY_URL ?? "http://127.0.0.1:3000").replace(/\/$/, "");
const adminPassword = process.env.FERRY_ADMIN_PASSWORD;
const clientId = process.env.FERRY_CLIENT_ID;
const port = Number(process.env.PORT ?? 5174);
const here = path.dirname(fileURLToPath(import.meta.url));

const files: Record<string, [string, string]> = {
  "/": ["index.html", "text/html; charset=utf-8"],
  "/index.html": ["index.html", "text/html; charset=utf-8"],
  "/app.js": ["app.js", "text/javascript; charset=utf-8"],
};
/** The headers the page's calls may carry to Ferry. */
const passed = ["authorization", "content-type", "accept", "idempotency-key", "x-client-id"];

function readBody(request: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks)));
    request.on("error", reject);
  });
}

/** The page's call, passed on to Ferry as it is; Ferry's answer passed back as it is. */
async function proxy(request: http.IncomingMessage, response: http.ServerResponse, target: string) {
  const headers: Record<string, string> = {};
  for (const name of passed) {
    const value = request.headers[name];
    if (typeof value === "string") headers[name] = value;
  }
  if (clientId && !headers.authorization && !headers["x-client-id"]) headers["x-client-id"] = clientId;
  const body = request.method === "GET" || request.method === "HEAD" ? undefined : await readBody(request);
  const answer = await fetch(`${ferryUrl}${target}`, {
    method: request.method,
    headers,
    ...(body?.length ? { body } : {}),
  });
  const out: Record<string, string> = {};
  const type = answer.headers.get("content-type");
  if (type) out["content-type"] = type;
  response.writeHead(answer.status, out).end(Buffer.from(await answer.arrayBuffer()));
}

/** Sandbox only: the newest one-time code sent to `login`, read from the sandbox outbox. */
async function sandboxOtp(login: string) {
  if (!adminPassword)
    return {
      status: 501,
      body: {
        message:
          "set FERRY_ADMIN_PASSWORD for this example's server to read the code from the sandbox outbox (or read it yourself: GET /sandbox/outbox as the platform admin)",
      },
    };
  const query = new URLSearchParams({ to: login, limit: "1", ...(clientId ? { clientId } : {}) });
  const answer = await fetch(`${ferryUrl}/sandbox/outbox?${query}`, {
    headers: { authorization: `Basic ${Buffer.from(`admin:${adminPassword}`).toString("base64")}` },
  });
  const body = (await answer.json()) as { records?: { otp?: string; text: string }[] };
  const record = body.records?.[0];
  if (!answer.ok || !record?.otp)
    return { status: 502, body: { message: "no code in the outbox", ferry: body } };
  return { status: 200, body: { otp: record.otp, text: record.text } };
}

const server = http.createServer(async (request, response) => {
  const url = new URL(request.url ?? "/", "http://example.invalid");
  try {
    const file = request.method === "GET" ? files[url.pathname] : undefined;
    if (file) {
      response
        .writeHead(200, { "content-type": file[1], "cache-control": "no-store" })
        .end(fs.readFileSync(path.join(here, file[0])));
    } else if (/^\/(api|v2|v3)\//.test(url.pathname)) {
      await proxy(request, response, `${url.pathname}${url.search}`);
    } else if (request.method === "GET" && url.pathname === "/sandbox-otp") {
      const { status, body } = await sandboxOtp(url.searchParams.get("login") ?? "");
      response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    } else {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found");
    }
  } catch (error) {
    response
      .writeHead(502, { "content-type": "application/json" })
      .end(JSON.stringify({ message: `cannot reach Ferry at ${ferryUrl}: ${(error as Error).message}` }));
  }
});

server.listen(port, "127.0.0.1", () => {
  const address = server.address() as { port: number };
  process.stderr.write(
    `payin example: open http://127.0.0.1:${address.port} (Ferry at ${ferryUrl}, client ${clientId ?? "the default"})\n`,
  );
});
process.on("SIGINT", () => server.close(() => process.exit(0)));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
