import { FlattenedEncrypt, FlattenedSign, importJWK, type JWK } from "jose";
import type { FerryWebhookEvent } from "../../sdk/webhook-receiver.ts";
import type { FerrySigningKey } from "../keys/service.ts";

/** The event as the receiver sees it once opened (one type for both sides). */
export type WebhookEvent = FerryWebhookEvent;

/**
 * Sign-then-encrypt (webhooks.md): the event JSON is signed by Ferry (RS512 JWS, JSON flattened),
 * and the serialized JWS is encrypted for the client (RSA-OAEP-256 / A256CBC-HS512 JWE, JSON
 * flattened). Returns the body to POST.
 */
export async function sealEvent(
  event: WebhookEvent,
  signingKey: FerrySigningKey,
  jwksUrl: string,
  clientEncryptionKey: JWK & { kid: string },
): Promise<string> {
  const jws = await new FlattenedSign(new TextEncoder().encode(JSON.stringify(event)))
    .setProtectedHeader({ alg: "RS512", kid: signingKey.kid, jku: jwksUrl })
    .sign(signingKey.privateKey);
  const key = await encryptionKeyOf(clientEncryptionKey);
  const jwe = await new FlattenedEncrypt(new TextEncoder().encode(JSON.stringify(jws)))
    .setProtectedHeader({ alg: "RSA-OAEP-256", enc: "A256CBC-HS512", kid: clientEncryptionKey.kid })
    .encrypt(key);
  return JSON.stringify(jwe);
}

/** Imported client keys, by their JWK (a changed key is a new entry). */
const imported = new Map<string, Awaited<ReturnType<typeof importJWK>>>();

async function encryptionKeyOf(jwk: JWK): Promise<Awaited<ReturnType<typeof importJWK>>> {
  const id = JSON.stringify(jwk);
  let key = imported.get(id);
  if (!key) {
    key = await importJWK(jwk, "RSA-OAEP-256");
    if (imported.size > 1000) imported.clear();
    imported.set(id, key);
  }
  return key;
}
