import http from "node:http";
import type { AddressInfo } from "node:net";
import type { LightMyRequestResponse } from "fastify";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import { type ClientMode, createClient } from "../src/modules/clients/service.ts";
import { type SigningAlgorithm, signRequest } from "../src/sdk/signing.ts";
import { createWebhookReceiver, type FerryWebhookEvent } from "../src/sdk/webhook-receiver.ts";
import type { TestApp } from "./harness.ts";

let clientCounter = 0;

export interface TestClient {
  clientId: string;
  privateJwk: JWK;
  alg: SigningAlgorithm;
  /** A signed request through app.inject; an `x-request-id` among `headers` is signed with it. */
  request(
    method: string,
    url: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<LightMyRequestResponse>;
}

const keyAlgorithm: Record<SigningAlgorithm, [string, { crv?: string; modulusLength?: number }]> = {
  RS512: ["RS512", { modulusLength: 2048 }],
  PS256: ["PS256", { modulusLength: 2048 }],
  ES256: ["ES256", {}],
  EdDSA: ["EdDSA", { crv: "Ed25519" }],
};

export async function newKeyPair(alg: SigningAlgorithm = "ES256") {
  const [name, options] = keyAlgorithm[alg];
  const { publicKey, privateKey } = await generateKeyPair(name, { ...options, extractable: true });
  return { publicJwk: await exportJWK(publicKey), privateJwk: await exportJWK(privateKey) };
}

/** A client with a signing key, and a helper that signs requests the way an integrator does. */
export async function createTestClient(
  t: TestApp,
  options: {
    alg?: SigningAlgorithm;
    webhookUrl?: string;
    webhookEncryptionKey?: JWK;
    allowedOrigins?: string[];
    settings?: Record<string, unknown>;
    /** Default sandbox. */
    mode?: ClientMode;
  } = {},
): Promise<TestClient> {
  const alg = options.alg ?? "ES256";
  const { publicJwk, privateJwk } = await newKeyPair(alg);
  const clientId = `client-${++clientCounter}-${Date.now().toString(36)}`;
  await createClient(t.database.db, {
    id: clientId,
    name: clientId,
    mode: options.mode,
    signingKeys: [publicJwk],
    webhookUrl: options.webhookUrl,
    webhookEncryptionKey: options.webhookEncryptionKey,
    allowedOrigins: options.allowedOrigins,
    settings: options.settings,
  });
  return {
    clientId,
    privateJwk,
    alg,
    async request(method, url, body, headers = {}) {
      const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
      // X-Request-Id is signed (the seventh line) when sent: the signer sends the one it signed.
      const idHeader = Object.keys(headers).find((name) => name.toLowerCase() === "x-request-id");
      const { [idHeader ?? ""]: requestId, ...others } = headers;
      const signed = await signRequest({
        clientId,
        privateJwk,
        alg,
        method,
        target: url,
        body: payload,
        requestId,
      });
      return t.app.inject({ method: method as "GET", url, headers: { ...signed, ...others }, payload });
    },
  };
}

/** Creates a user through the API. */
export async function createUser(
  t: TestApp,
  clientIdOrClient: string | TestClient,
  userId: string,
  lastName = "Doe",
  extra: Record<string, unknown> = {},
) {
  const info = {
    name: { firstName: "Ada", lastName },
    emails: ["ada@example.com"],
    addresses: [{ street: "1 Main St", city: "Berlin", postalCode: "10115", country: "DE" }],
    dateOfBirth: "1990-01-01",
    ...extra,
  };
  if (typeof clientIdOrClient === "string") {
    return t.database.db
      .transaction()
      .execute((tx) =>
        t.services.users.create(tx, { clientId: clientIdOrClient, id: userId, type: "PERSON", info }),
      );
  }
  const response = await clientIdOrClient.request("POST", "/v1/users", {
    id: userId,
    type: "PERSON",
    ...info,
  });
  if (response.statusCode !== 201) throw new Error(`create user: ${response.statusCode} ${response.body}`);
  return response.json();
}

/**
 * A webhook receiver as a client would run it: a real HTTP server on loopback that opens every
 * delivery with the exported receiver function. It can be taken down and brought back.
 */
export async function startWebhookReceiver(
  ferryUrl: string,
  options: {
    /** Answer 503 to this (opened) event instead of accepting it. */
    refuse?: (event: FerryWebhookEvent) => boolean;
  } = {},
) {
  const { publicKey, privateKey } = await generateKeyPair("RSA-OAEP-256", {
    modulusLength: 2048,
    extractable: true,
  });
  const encryptionJwk = await exportJWK(publicKey);
  const openWebhook = createWebhookReceiver({
    decryptionKey: await exportJWK(privateKey),
    ferryKeys: `${ferryUrl}/.well-known/jwks.json`,
  });
  const events: FerryWebhookEvent[] = [];
  const failures: string[] = [];
  const received: { id: string; timestamp: string }[] = [];
  let server: http.Server | undefined;
  let port = 0;
  const start = () =>
    new Promise<void>((resolve) => {
      const listening = http.createServer((request, response) => {
        let body = "";
        request.on("data", (chunk) => {
          body += String(chunk);
        });
        request.on("end", () => {
          received.push({
            id: String(request.headers["webhook-id"]),
            timestamp: String(request.headers["webhook-timestamp"]),
          });
          openWebhook(body, request.headers).then(
            (event) => {
              if (options.refuse?.(event)) {
                response.writeHead(503).end();
                return;
              }
              events.push(event);
              response.writeHead(204).end();
            },
            (error: Error) => {
              failures.push(error.message);
              response.writeHead(400).end();
            },
          );
        });
      });
      server = listening;
      listening.listen(port, "127.0.0.1", () => {
        port = (listening.address() as AddressInfo).port;
        resolve();
      });
    });
  await start();
  return {
    url: () => `http://127.0.0.1:${port}/hooks`,
    encryptionJwk,
    events,
    failures,
    received,
    async stop() {
      await new Promise<void>((resolve) => {
        server?.closeAllConnections();
        server?.close(() => resolve());
      });
    },
    start,
  };
}
