/**
 * A webhook receiver for Ferry, runnable with one command:
 *
 *   npm run example:webhook-receiver
 *
 * On first run it makes an RSA key pair for webhook encryption (kept in ./.keys next to this file)
 * and prints the public JWK to register as the client's `webhookEncryptionKey`. Then it listens
 * (PORT, default 4000) and prints every event it receives, decrypted and verified with Ferry's
 * published keys (FERRY_URL, default http://127.0.0.1:3000).
 */
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import { createWebhookReceiver, WebhookVerificationError } from "../../src/sdk/index.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const keyDir = path.join(here, ".keys");
const ferryUrl = (process.env.FERRY_URL ?? "http://127.0.0.1:3000").replace(/\/$/, "");
const port = Number(process.env.PORT ?? 4000);

async function loadOrCreateKeys(): Promise<{ privateJwk: JWK; publicJwk: JWK }> {
  const privateFile = path.join(keyDir, "webhook-encryption.private.jwk.json");
  const publicFile = path.join(keyDir, "webhook-encryption.public.jwk.json");
  if (fs.existsSync(privateFile)) {
    return {
      privateJwk: JSON.parse(fs.readFileSync(privateFile, "utf8")),
      publicJwk: JSON.parse(fs.readFileSync(publicFile, "utf8")),
    };
  }
  const { publicKey, privateKey } = await generateKeyPair("RSA-OAEP-256", {
    modulusLength: 2048,
    extractable: true,
  });
  const keys = { privateJwk: await exportJWK(privateKey), publicJwk: await exportJWK(publicKey) };
  fs.mkdirSync(keyDir, { recursive: true });
  fs.writeFileSync(privateFile, JSON.stringify(keys.privateJwk, null, 2), { mode: 0o600 });
  fs.writeFileSync(publicFile, JSON.stringify(keys.publicJwk, null, 2));
  return keys;
}

const { privateJwk, publicJwk } = await loadOrCreateKeys();
const openWebhook = createWebhookReceiver({
  decryptionKey: privateJwk,
  ferryKeys: `${ferryUrl}/.well-known/jwks.json`,
  maxAgeSeconds: 24 * 3600 * 3,
});

const server = http.createServer((request, response) => {
  if (request.method !== "POST") {
    response.writeHead(405).end();
    return;
  }
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", async () => {
    try {
      const event = await openWebhook(Buffer.concat(chunks).toString("utf8"), request.headers);
      process.stdout.write(`${JSON.stringify(event)}\n`);
      response.writeHead(204).end();
    } catch (error) {
      const reason = error instanceof WebhookVerificationError ? error.message : "internal error";
      process.stderr.write(`refused a webhook: ${reason}\n`);
      response.writeHead(error instanceof WebhookVerificationError ? 400 : 500).end();
    }
  });
});

server.listen(port, "127.0.0.1", () => {
  process.stderr.write(
    [
      `Ferry webhook receiver listening on http://127.0.0.1:${port}/webhooks (verifying with ${ferryUrl}/.well-known/jwks.json)`,
      "Register it on your client:",
      `  webhookUrl:           http://127.0.0.1:${port}/webhooks`,
      `  webhookEncryptionKey: ${JSON.stringify(publicJwk)}`,
      `  (the same public key is in ${path.join(keyDir, "webhook-encryption.public.jwk.json")})`,
      "",
    ].join("\n"),
  );
});

const stop = () => server.close(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
