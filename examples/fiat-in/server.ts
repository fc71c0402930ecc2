/**
 * The client-side fiat-in flow against a local Ferry, with one command:
 *
 *   npm start                 # in one terminal (first start creates the demo client)
 *   npm run example:fiat-in   # in another; open http://localhost:5173
 *
 * This is the client's side of the flow: a tiny backend that holds the client's private key, creates
 * the user if needed and asks Ferry for one-time user tokens (steps 1–3), and a browser page that
 * sends the deposit straight to Ferry with the token (steps 4–5) and shows the outcome (step 10).
 * Settings: FERRY_URL (default http://127.0.0.1:3000), FERRY_CLIENT_ID (default demo),
 * FERRY_CLIENT_KEY (default ./data/demo-client.private.jwk.json), PORT (default 5173).
 */
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { signRequest } from "../../src/sdk/index.ts";

const ferryUrl = (process.env.FERRY_URL ?? "http://127.0.0.1:3000").replace(/\/$/, "");
const clientId = process.env.FERRY_CLIENT_ID ?? "demo";
const keyFile =
  process.env.FERRY_CLIENT_KEY ??
  path.resolve(process.env.FERRY_DATA_DIR ?? "data", "demo-client.private.jwk.json");
const port = Number(process.env.PORT ?? 5173);
const here = path.dirname(fileURLToPath(import.meta.url));

if (!fs.existsSync(keyFile)) {
  process.stderr.write(
    `fiat-in example: no client key at ${keyFile}. Start Ferry once with \`npm start\` (it creates the demo client and its key), or set FERRY_CLIENT_ID and FERRY_CLIENT_KEY.\n`,
  );
  process.exit(1);
}
const privateJwk = JSON.parse(fs.readFileSync(keyFile, "utf8"));

/**
 * A signed call from this backend to Ferry. With a `requestId` (signed, sent as X-Request-Id) the
 * call is safe to send again after a timeout: Ferry answers the first call's answer.
 */
async function ferry(method: string, target: string, body?: unknown, requestId?: string) {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers = await signRequest({ clientId, privateJwk, method, target, body: payload, requestId });
  const response = await fetch(`${ferryUrl}${target}`, { method, headers, body: payload });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function userToken(userId: string) {
  // The user exists in Ferry under this backend's own id: created once; the same request id answers
  // the first 201 again for a day, then the creation answers 409 (the user exists). Either is fine.
  await ferry(
    "POST",
    "/v1/users",
    { id: userId, type: "PERSON", name: { firstName: "Demo", lastName: "User" } },
    `create-${userId}`,
  );
  return ferry("POST", "/v1/auth/userToken", { url: "/v1/transactions/deposits", method: "POST", userId });
}

const server = http.createServer(async (request, response) => {
  try {
    if (request.method === "GET" && (request.url === "/" || request.url === "/index.html")) {
      const page = fs
        .readFileSync(path.join(here, "index.html"), "utf8")
        .replaceAll("{{FERRY_URL}}", ferryUrl)
        .replaceAll("{{CLIENT_ID}}", clientId);
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(page);
      return;
    }
    if (request.method === "POST" && request.url === "/token") {
      const token = await userToken("fiat-in-demo-user");
      response
        .writeHead(token.status === 201 ? 200 : 502, { "content-type": "application/json" })
        .end(JSON.stringify({ ...token.body, userId: "fiat-in-demo-user" }));
      return;
    }
    response.writeHead(404).end();
  } catch (error) {
    response
      .writeHead(502, { "content-type": "application/json" })
      .end(JSON.stringify({ message: `cannot reach Ferry at ${ferryUrl}: ${(error as Error).message}` }));
  }
});

server.listen(port, "localhost", () => {
  process.stderr.write(
    `fiat-in example: open http://localhost:${port} (Ferry at ${ferryUrl}, client ${clientId})\n`,
  );
});
process.on("SIGINT", () => server.close(() => process.exit(0)));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
