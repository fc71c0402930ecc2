import { createHash } from "node:crypto";
import { calculateJwkThumbprint, FlattenedSign, importJWK, type JWK } from "jose";

/**
 * Ferry's request signatures (Platform API): the string to sign — six lines, seven when the request
 * carries `X-Request-Id` — and a signer for integrators. The server verifies with the same
 * `stringToSign`.
 */
export interface SignedParts {
  method: string;
  /** The request target exactly as sent: path and query, e.g. `/v1/users?page=0`. */
  target: string;
  /** The raw body bytes, if there is a body. */
  body?: Uint8Array | string | undefined;
  contentType?: string | undefined;
  /** The Date header exactly as sent (RFC 7231 form). */
  date: string;
  clientId: string;
  /**
   * The X-Request-Id header exactly as sent, if it is sent. Signed so that a signature is good for
   * one request id only: a captured one cannot be sent again under another id.
   */
  requestId?: string | undefined;
}

export function stringToSign(parts: SignedParts): string {
  const body = typeof parts.body === "string" ? Buffer.from(parts.body, "utf8") : parts.body;
  const hasBody = body !== undefined && body.length > 0;
  return [
    parts.method.toUpperCase(),
    hasBody ? createHash("sha256").update(body).digest("hex").toUpperCase() : "",
    hasBody ? `content-type:${parts.contentType ?? ""}` : "",
    `date:${parts.date}`,
    `x-client-id:${parts.clientId}`,
    ...(parts.requestId === undefined ? [] : [`x-request-id:${parts.requestId}`]),
    parts.target,
  ].join("\n");
}

export type SigningAlgorithm = "RS512" | "PS256" | "ES256" | "EdDSA";

const PRIVATE_MEMBERS = new Set(["d", "p", "q", "dp", "dq", "qi", "k", "oth"]);

/** The RFC 7638 thumbprint of a key's public half: the `kid` Ferry looks keys up by. */
export function keyId(jwk: JWK): Promise<string> {
  const publicJwk = Object.fromEntries(Object.entries(jwk).filter(([k]) => !PRIVATE_MEMBERS.has(k))) as JWK;
  return calculateJwkThumbprint(publicJwk, "sha256");
}

function defaultAlgorithm(jwk: JWK): SigningAlgorithm {
  if (jwk.kty === "RSA") return "RS512";
  if (jwk.kty === "EC") return "ES256";
  return "EdDSA";
}

export interface SignRequestInput {
  clientId: string;
  /** The client's private JWK (RSA, EC P-256 or Ed25519). */
  privateJwk: JWK;
  method: string;
  target: string;
  body?: string | Uint8Array | undefined;
  contentType?: string | undefined;
  alg?: SigningAlgorithm | undefined;
  /** Defaults to now. */
  date?: Date | undefined;
  /**
   * The request's X-Request-Id: signed (the seventh line) and returned among the headers. A request
   * sent again with the same id and body gets the first one's answer; give each distinct request its
   * own id.
   */
  requestId?: string | undefined;
}

/**
 * Signs a Platform API request. Returns the headers to send with it: `X-Client-Id`, `Date`,
 * `X-Signature` (a JWS with a detached payload, `header..signature`), `X-Request-Id` when one is
 * given and `Content-Type` when there is a body. Send the body bytes and these headers exactly as
 * signed.
 */
export async function signRequest(input: SignRequestInput): Promise<Record<string, string>> {
  const alg = input.alg ?? defaultAlgorithm(input.privateJwk);
  const date = (input.date ?? new Date()).toUTCString();
  const hasBody = input.body !== undefined && input.body.length > 0;
  const contentType = hasBody ? (input.contentType ?? "application/json") : undefined;
  const payload = stringToSign({
    method: input.method,
    target: input.target,
    body: input.body,
    contentType,
    date,
    clientId: input.clientId,
    requestId: input.requestId,
  });
  const key = await importJWK(input.privateJwk, alg);
  const jws = await new FlattenedSign(new TextEncoder().encode(payload))
    .setProtectedHeader({ alg, kid: await keyId(input.privateJwk) })
    .sign(key);
  return {
    "X-Client-Id": input.clientId,
    Date: date,
    "X-Signature": `${jws.protected}..${jws.signature}`,
    ...(input.requestId === undefined ? {} : { "X-Request-Id": input.requestId }),
    ...(contentType ? { "Content-Type": contentType } : {}),
  };
}
