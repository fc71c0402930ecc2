import {
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
} from "jose";
import type { Db } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import type { Actor } from "../../lib/context.ts";
import type { Sealer } from "../../lib/sealer.ts";
import { writeAudit } from "../audit/service.ts";

export const FERRY_SIGNING_ALG = "RS512";

export interface FerrySigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function newKeyRow(sealer: Sealer) {
  const { publicKey, privateKey } = await generateKeyPair(FERRY_SIGNING_ALG, {
    modulusLength: 3072,
    extractable: true,
  });
  const publicJwk = { ...(await exportJWK(publicKey)), alg: FERRY_SIGNING_ALG, use: "sig" };
  const kid = await calculateJwkThumbprint(publicJwk, "sha256");
  const privateJwk = await exportJWK(privateKey);
  return {
    kid,
    public_jwk: JSON.stringify({ ...publicJwk, kid }),
    encrypted_private_jwk: sealer.seal(JSON.stringify(privateJwk), `ferry-signing-key:${kid}`),
  };
}

/** Makes sure Ferry has a current signing key (created at first start; concurrent starts agree). */
export async function ensureSigningKey(db: Db, sealer: Sealer): Promise<void> {
  const current = await db
    .selectFrom("ferry_signing_keys")
    .select("kid")
    .where("status", "=", "CURRENT")
    .executeTakeFirst();
  if (current) return;
  const row = await newKeyRow(sealer);
  await db
    .insertInto("ferry_signing_keys")
    .values({ ...row, status: "CURRENT" })
    .onConflict((oc) => oc.column("status").where("status", "=", "CURRENT").doNothing())
    .execute();
}

/**
 * A new current key; the current one becomes the previous (still published, so receivers verify
 * events signed just before the rotation); the previous one is retired.
 */
export async function rotateSigningKey(
  db: Db,
  sealer: Sealer,
  actor: Actor = { kind: "system", id: "ferry" },
): Promise<{ kid: string; previousKid: string | null }> {
  const row = await newKeyRow(sealer);
  return inTransaction(db, async (tx) => {
    const current = await tx
      .selectFrom("ferry_signing_keys")
      .select("kid")
      .where("status", "=", "CURRENT")
      .forUpdate()
      .executeTakeFirst();
    await tx
      .updateTable("ferry_signing_keys")
      .set({ status: "RETIRED", retired_at: new Date() })
      .where("status", "=", "PREVIOUS")
      .execute();
    if (current)
      await tx
        .updateTable("ferry_signing_keys")
        .set({ status: "PREVIOUS" })
        .where("kid", "=", current.kid)
        .execute();
    await tx
      .insertInto("ferry_signing_keys")
      .values({ ...row, status: "CURRENT" })
      .execute();
    await writeAudit(
      tx,
      { clientId: null, actor },
      {
        action: "ferry.signing_key_rotated",
        entityType: "ferry_signing_key",
        entityId: row.kid,
        before: { kid: current?.kid ?? null },
        after: { kid: row.kid },
      },
    );
    return { kid: row.kid, previousKid: current?.kid ?? null };
  });
}

/** The published key set: the current key and the previous one. */
export async function publishedJwks(db: Db): Promise<{ keys: JWK[] }> {
  const rows = await db
    .selectFrom("ferry_signing_keys")
    .select(["public_jwk", "status"])
    .where("status", "in", ["CURRENT", "PREVIOUS"])
    .orderBy("created_at", "desc")
    .execute();
  return {
    keys: rows.map(
      (r) => (typeof r.public_jwk === "string" ? JSON.parse(r.public_jwk) : r.public_jwk) as JWK,
    ),
  };
}

/** The current private key, cached per kid (a rotation by another process is picked up within 30 s). */
export class SigningKeys {
  #cached: { key: FerrySigningKey; checkedAt: number } | undefined;

  constructor(
    private readonly db: Db,
    private readonly sealer: Sealer,
  ) {}

  async current(): Promise<FerrySigningKey> {
    if (this.#cached && Date.now() - this.#cached.checkedAt < 30_000) return this.#cached.key;
    const row = await this.db
      .selectFrom("ferry_signing_keys")
      .selectAll()
      .where("status", "=", "CURRENT")
      .executeTakeFirstOrThrow();
    if (this.#cached?.key.kid === row.kid) {
      this.#cached.checkedAt = Date.now();
      return this.#cached.key;
    }
    const privateJwk = JSON.parse(
      this.sealer.open(row.encrypted_private_jwk, `ferry-signing-key:${row.kid}`),
    ) as JWK;
    const privateKey = (await importJWK(privateJwk, FERRY_SIGNING_ALG)) as CryptoKey;
    const publicJwk = (
      typeof row.public_jwk === "string" ? JSON.parse(row.public_jwk) : row.public_jwk
    ) as JWK;
    const key = { kid: row.kid, privateKey, publicJwk };
    this.#cached = { key, checkedAt: Date.now() };
    return key;
  }
}
