import {
  type CryptoKey,
  createLocalJWKSet,
  createRemoteJWKSet,
  type FlattenedJWE,
  type FlattenedJWS,
  flattenedDecrypt,
  flattenedVerify,
  importJWK,
  type JSONWebKeySet,
  type JWK,
} from "jose";

/**
 * Opens a Ferry webhook: decrypts the JWE with the client's private key, verifies the JWS inside
 * with Ferry's public keys, and returns the event. Only the algorithms Ferry uses are accepted
 * (RSA-OAEP-256 + A256CBC-HS512 for the JWE, RS512 for the JWS): anything else is refused.
 */
export interface WebhookReceiverOptions {
  /** The client's private RSA JWK (its public half is registered as `webhookEncryptionKey`). */
  decryptionKey: JWK | CryptoKey;
  /** Ferry's published keys: the JWKS itself, or the URL of `/.well-known/jwks.json`. */
  ferryKeys: JSONWebKeySet | string | URL;
  /** Refuse events whose Webhook-Timestamp is older than this many seconds (default 0: no check). */
  maxAgeSeconds?: number;
}

export interface FerryWebhookEvent {
  id: string;
  type: string;
  createdAt: string;
  clientId: string;
  sequence?: number;
  data: Record<string, unknown>;
}

export class WebhookVerificationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WebhookVerificationError";
  }
}

export function createWebhookReceiver(options: WebhookReceiverOptions) {
  const keySet =
    typeof options.ferryKeys === "string" || options.ferryKeys instanceof URL
      ? createRemoteJWKSet(new URL(options.ferryKeys))
      : createLocalJWKSet(options.ferryKeys);
  let decryptionKey: Promise<CryptoKey | Uint8Array> | undefined;
  const key = () => {
    decryptionKey ??= isJwk(options.decryptionKey)
      ? importJWK(options.decryptionKey, "RSA-OAEP-256")
      : Promise.resolve(options.decryptionKey);
    return decryptionKey;
  };

  /** `body`: the raw request body (string or parsed JSON); `headers`: the request's headers, for Webhook-Id and Webhook-Timestamp. */
  return async function openWebhook(
    body: string | object,
    headers: Record<string, string | string[] | undefined> = {},
  ): Promise<FerryWebhookEvent> {
    let jwe: FlattenedJWE;
    try {
      jwe = (typeof body === "string" ? JSON.parse(body) : body) as FlattenedJWE;
    } catch (error) {
      throw new WebhookVerificationError("the body is not JSON", { cause: error });
    }
    let jws: FlattenedJWS;
    try {
      const { plaintext } = await flattenedDecrypt(jwe, await key(), {
        keyManagementAlgorithms: ["RSA-OAEP-256"],
        contentEncryptionAlgorithms: ["A256CBC-HS512"],
      });
      jws = JSON.parse(new TextDecoder().decode(plaintext)) as FlattenedJWS;
    } catch (error) {
      throw new WebhookVerificationError("the webhook could not be decrypted with this key", {
        cause: error,
      });
    }
    let event: FerryWebhookEvent;
    try {
      const { payload } = await flattenedVerify(jws, keySet, { algorithms: ["RS512"] });
      event = JSON.parse(new TextDecoder().decode(payload)) as FerryWebhookEvent;
    } catch (error) {
      throw new WebhookVerificationError("the webhook's signature is not Ferry's", { cause: error });
    }
    const id = first(headers["webhook-id"]);
    if (id !== undefined && id !== event.id)
      throw new WebhookVerificationError("Webhook-Id does not match the event");
    const timestamp = Number(first(headers["webhook-timestamp"]));
    if (
      options.maxAgeSeconds &&
      Number.isFinite(timestamp) &&
      Date.now() / 1000 - timestamp > options.maxAgeSeconds
    ) {
      throw new WebhookVerificationError("the webhook is too old");
    }
    return event;
  };
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function isJwk(value: JWK | CryptoKey): value is JWK {
  return typeof value === "object" && value !== null && "kty" in value;
}
