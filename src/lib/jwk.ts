import { calculateJwkThumbprint, importJWK, type JWK } from "jose";
import { DomainError } from "./errors.ts";

/** Signature algorithms a client may sign requests with, and the key type each needs. */
export const CLIENT_SIGNATURE_ALGORITHMS = ["RS512", "PS256", "ES256", "EdDSA"] as const;
export type ClientSignatureAlgorithm = (typeof CLIENT_SIGNATURE_ALGORITHMS)[number];

const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "k", "oth"];

function invalid(field: string, message: string): never {
  throw new DomainError("INVALID", "INVALID_KEY", `${field}: ${message}`, field);
}

/**
 * Checks that a JWK is a public key Ferry can verify client signatures with (RSA ≥ 2048 bits,
 * EC P-256, or Ed25519), and returns it reduced to its public members with its RFC 7638 thumbprint.
 */
export async function normalizeSigningJwk(
  jwk: unknown,
  field = "signingKeys",
): Promise<{ kid: string; jwk: JWK }> {
  const key = publicMembers(jwk, field);
  if (key.kty === "RSA") requireRsa(key, field);
  else if (key.kty === "EC") {
    if (key.crv !== "P-256" || typeof key.x !== "string" || typeof key.y !== "string")
      invalid(field, "EC keys must be P-256");
  } else if (key.kty === "OKP") {
    if (key.crv !== "Ed25519" || typeof key.x !== "string") invalid(field, "OKP keys must be Ed25519");
  } else invalid(field, "kty must be RSA, EC or OKP");
  await importable(key, key.kty === "RSA" ? "PS256" : key.kty === "EC" ? "ES256" : "EdDSA", field);
  return { kid: await calculateJwkThumbprint(key, "sha256"), jwk: key };
}

/** A client's webhook encryption key: RSA ≥ 2048 bits (RSA-OAEP-256). */
export async function normalizeEncryptionJwk(
  jwk: unknown,
  field = "webhookEncryptionKey",
): Promise<{ kid: string; jwk: JWK }> {
  const key = publicMembers(jwk, field);
  if (key.kty !== "RSA") invalid(field, "the webhook encryption key must be an RSA key (RSA-OAEP-256)");
  requireRsa(key, field);
  await importable(key, "RSA-OAEP-256", field);
  return { kid: await calculateJwkThumbprint(key, "sha256"), jwk: key };
}

/** Which algorithms a key can verify: RSA keys serve RS512 and PS256. */
export function algorithmsFor(jwk: JWK): ClientSignatureAlgorithm[] {
  if (jwk.kty === "RSA") return ["RS512", "PS256"];
  if (jwk.kty === "EC") return ["ES256"];
  return ["EdDSA"];
}

function publicMembers(jwk: unknown, field: string): JWK {
  if (typeof jwk !== "object" || jwk === null || Array.isArray(jwk)) invalid(field, "must be a JWK object");
  const source = jwk as Record<string, unknown>;
  if (PRIVATE_MEMBERS.some((m) => m in source))
    invalid(field, "must be a public key: it contains private key material");
  const keep = ["kty", "crv", "x", "y", "n", "e"];
  const key: Record<string, string> = {};
  for (const member of keep) {
    const value = source[member];
    if (value === undefined) continue;
    if (typeof value !== "string" || value.length > 2048)
      invalid(field, `${member} must be a base64url string`);
    key[member] = value;
  }
  return key as JWK;
}

function requireRsa(key: JWK, field: string) {
  if (typeof key.n !== "string" || typeof key.e !== "string") invalid(field, "RSA keys need n and e");
  if (Buffer.from(key.n, "base64url").length * 8 < 2048)
    invalid(field, "RSA keys must be at least 2048 bits");
}

async function importable(key: JWK, alg: string, field: string) {
  try {
    await importJWK(key, alg);
  } catch {
    invalid(field, "is not a valid key");
  }
}
