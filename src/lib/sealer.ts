import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

/**
 * Encryption at rest (AES-256-GCM) for what Ferry must keep but never show: end users' PII, card
 * numbers, its own private keys. `v1.<iv>.<tag>.<ciphertext>` in base64url; `aad` binds a value
 * to its place (a user's PII cannot be pasted onto another user).
 */
export class Sealer {
  readonly #key: Buffer;
  readonly #fingerprintKey: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error("the master key must be 32 bytes");
    this.#key = key;
    this.#fingerprintKey = Buffer.from(hkdfSync("sha256", key, Buffer.alloc(0), "ferry fingerprints v1", 32));
  }

  /**
   * A keyed fingerprint (HMAC-SHA256 under a key derived from the master key): finds the same card
   * or account again without storing it in the clear, and cannot be reversed by hashing guesses.
   */
  fingerprint(value: string): string {
    return createHmac("sha256", this.#fingerprintKey).update(value).digest("base64url");
  }

  seal(plaintext: string, aad = ""): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv);
    cipher.setAAD(Buffer.from(aad));
    const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return [
      "v1",
      iv.toString("base64url"),
      cipher.getAuthTag().toString("base64url"),
      body.toString("base64url"),
    ].join(".");
  }

  open(sealed: string, aad = ""): string {
    const [version, iv, tag, body] = sealed.split(".");
    if (version !== "v1" || !iv || !tag || body === undefined) throw new Error("not a sealed value");
    const decipher = createDecipheriv("aes-256-gcm", this.#key, Buffer.from(iv, "base64url"));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(Buffer.from(tag, "base64url"));
    return Buffer.concat([decipher.update(Buffer.from(body, "base64url")), decipher.final()]).toString(
      "utf8",
    );
  }
}

/**
 * The master key: FERRY_MASTER_KEY (base64 of 32 bytes) when configured; otherwise a key file in
 * the data directory, created on first start with mode 0600. Losing it loses the encrypted data.
 */
export function loadMasterKey(configured: string | undefined, dataDir: string): Buffer {
  if (configured) return Buffer.from(configured, "base64");
  const file = path.join(dataDir, "master.key");
  fs.mkdirSync(dataDir, { recursive: true });
  try {
    fs.writeFileSync(file, randomBytes(32).toString("base64"), { flag: "wx", mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  const key = Buffer.from(fs.readFileSync(file, "utf8").trim(), "base64");
  if (key.length !== 32) throw new Error(`${file} does not hold a base64 32-byte key`);
  return key;
}
