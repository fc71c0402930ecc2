// Over 400 lines on purpose: a client's set-up (settings and their validation, signing keys, webhook,
// origins, mode) in one place, so that what a live client may configure is checked in one module.
import { randomBytes } from "node:crypto";
import type { JWK } from "jose";
import { sql } from "kysely";
import { announceChange, cachedRead } from "../../db/cache.ts";
import type { Db } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import type { Actor } from "../../lib/context.ts";
import { DomainError } from "../../lib/errors.ts";
import { CLIENT_CHOSEN_ID, newId } from "../../lib/ids.ts";
import { normalizeEncryptionJwk, normalizeSigningJwk } from "../../lib/jwk.ts";
import { writeAudit } from "../audit/service.ts";
import { privateDestinationRefusal } from "../webhooks/destinations.ts";

/** Per-client settings; absent members take the installation's defaults. */
export interface ClientSettings {
  rateLimitPerMinute?: number;
  userTokenTtlSeconds?: number;
  /** KYC tiers and scenarios (validated by the kyc module). */
  kyc?: unknown;
  /** Monitoring thresholds and country lists (validated by the monitoring module). */
  monitoring?: unknown;
  /** Fee rules (validated by the fees module). */
  fees?: unknown;
  /** Wallet API operations the client has switched off (TOP_UP_BANK, TRANSFER, …): a 403. */
  disabledWalletOperations?: string[];
}

export interface SigningKey {
  kid: string;
  jwk: JWK;
  status: "ACTIVE" | "REVOKED";
  expiresAt: Date | null;
  createdAt: Date;
  revokedAt: Date | null;
}

/**
 * A client is `sandbox` (test mode: the sandbox providers and /sandbox controls serve it, its
 * webhook may point at private addresses) or `live`. New clients start in the sandbox.
 */
export const CLIENT_MODES = ["sandbox", "live"] as const;
export type ClientMode = (typeof CLIENT_MODES)[number];

export interface Client {
  id: string;
  name: string;
  status: string;
  mode: ClientMode;
  webhookUrl: string | null;
  webhookEncryptionKey: (JWK & { kid: string }) | null;
  allowedOrigins: string[];
  settings: ClientSettings;
  createdAt: Date;
  updatedAt: Date;
}

const kinds = {
  CLIENT_EXISTS: "CONFLICT",
  INVALID_CLIENT: "INVALID",
  CLIENT_NOT_FOUND: "NOT_FOUND",
  KEY_NOT_FOUND: "NOT_FOUND",
  KEY_EXISTS: "CONFLICT",
} as const;

export class ClientError extends DomainError {
  constructor(code: keyof typeof kinds, message: string, field?: string) {
    super(kinds[code], code, message, field);
  }
}

const ORIGIN = /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/;

/** Checks a webhook URL's form, and for a live client that it names no private destination. */
export function validateWebhookUrl(url: string, mode: ClientMode = "sandbox"): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ClientError("INVALID_CLIENT", "webhookUrl must be an absolute http(s) URL", "webhookUrl");
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    throw new ClientError("INVALID_CLIENT", "webhookUrl must be an http(s) URL", "webhookUrl");
  }
  if (parsed.username || parsed.password) {
    throw new ClientError("INVALID_CLIENT", "webhookUrl must not carry credentials", "webhookUrl");
  }
  const refusal = privateDestinationRefusal(parsed, mode);
  if (refusal) throw new ClientError("INVALID_CLIENT", `webhookUrl ${refusal}`, "webhookUrl");
  return parsed.toString();
}

function validateOrigins(origins: string[]): string[] {
  for (const origin of origins) {
    if (!ORIGIN.test(origin)) {
      throw new ClientError(
        "INVALID_CLIENT",
        `allowedOrigins: ${origin} is not an origin such as https://app.example.com`,
        "allowedOrigins",
      );
    }
  }
  return [...new Set(origins)];
}

function generateClientId(name: string): string {
  const slug = name
    .normalize("NFKD")
    .replace(/[^A-Za-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .toLowerCase()
    .slice(0, 40);
  return `${slug || "client"}-${randomBytes(4).toString("hex")}`;
}

type ClientRow = {
  id: string;
  name: string;
  status: string;
  mode: string;
  webhook_url: string | null;
  webhook_encryption_key: unknown;
  allowed_origins: string[];
  settings: unknown;
  created_at: Date;
  updated_at: Date;
};

const json = <T>(value: unknown): T => (typeof value === "string" ? JSON.parse(value) : value) as T;

function toClient(row: ClientRow): Client {
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    mode: row.mode === "live" ? "live" : "sandbox",
    webhookUrl: row.webhook_url,
    webhookEncryptionKey: row.webhook_encryption_key
      ? json<JWK & { kid: string }>(row.webhook_encryption_key)
      : null,
    allowedOrigins: row.allowed_origins ?? [],
    settings: json<ClientSettings>(row.settings ?? {}),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

export interface CreateClientInput {
  id?: string | undefined;
  name: string;
  /** Default `sandbox`. */
  mode?: ClientMode | undefined;
  signingKeys?: unknown[] | undefined;
  webhookUrl?: string | undefined;
  webhookEncryptionKey?: unknown;
  allowedOrigins?: string[] | undefined;
  settings?: ClientSettings | undefined;
}

/** Registers a tenant with its signing keys, webhook and browser origins, in one transaction. */
const installation: Actor = { kind: "system", id: "ferry" };

export async function createClient(
  db: Db,
  input: CreateClientInput,
  actor: Actor = installation,
): Promise<Client> {
  const id = input.id ?? generateClientId(input.name);
  if (!CLIENT_CHOSEN_ID.test(id))
    throw new ClientError("INVALID_CLIENT", "a client id is 3–255 of A–Z a–z 0–9 _ -", "id");
  const keys = await Promise.all(
    (input.signingKeys ?? []).map((k, i) => normalizeSigningJwk(k, `signingKeys.${i}`)),
  );
  const encryption =
    input.webhookEncryptionKey === undefined
      ? undefined
      : await normalizeEncryptionJwk(input.webhookEncryptionKey);
  const mode = input.mode ?? "sandbox";
  const webhookUrl = input.webhookUrl === undefined ? null : validateWebhookUrl(input.webhookUrl, mode);
  const origins = validateOrigins(input.allowedOrigins ?? []);
  return inTransaction(db, async (tx) => {
    const row = await tx
      .insertInto("clients")
      .values({
        id,
        name: input.name,
        mode,
        webhook_url: webhookUrl,
        webhook_encryption_key: encryption
          ? JSON.stringify({ ...encryption.jwk, kid: encryption.kid })
          : null,
        allowed_origins: origins,
        settings: JSON.stringify(input.settings ?? {}),
      })
      .onConflict((oc) => oc.column("id").doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!row) throw new ClientError("CLIENT_EXISTS", `client ${id} already exists`, "id");
    const unique = new Map(keys.map((k) => [k.kid, k]));
    if (unique.size > 0) {
      await tx
        .insertInto("client_signing_keys")
        .values([...unique.values()].map((k) => ({ client_id: id, kid: k.kid, jwk: JSON.stringify(k.jwk) })))
        .execute();
    }
    // Its staff's organization (the Wallet API's `system` organization) is made with it.
    await tx
      .insertInto("organizations")
      .values({ client_id: id, id: newId(), name: input.name, type: "system" })
      .execute();
    const client = toClient(row as ClientRow);
    await writeAudit(
      tx,
      { clientId: id, actor },
      {
        action: "client.created",
        entityType: "client",
        entityId: id,
        after: { mode: client.mode, status: client.status, signingKeys: [...unique.keys()] },
      },
    );
    return client;
  });
}

/** A client, through the process cache (updateClient announces its changes to every process). */
/** Whether some client lets `origin` call it from a browser (the answer to a CORS preflight). */
export async function anyClientAllowsOrigin(db: Db, origin: string): Promise<boolean> {
  const { rows } = await sql<{ ok: number }>`
    SELECT 1 AS ok FROM clients WHERE ${origin} = ANY(allowed_origins) LIMIT 1`.execute(db);
  return rows.length > 0;
}

export async function findClient(db: Db, id: string): Promise<Client | undefined> {
  return cachedRead(db, "client", id, async () => {
    const row = await db.selectFrom("clients").selectAll().where("id", "=", id).executeTakeFirst();
    return row && toClient(row as ClientRow);
  });
}

export async function getClient(db: Db, id: string): Promise<Client> {
  const client = await findClient(db, id);
  if (!client) throw new ClientError("CLIENT_NOT_FOUND", `no client ${id}`);
  return client;
}

/** A client's mode (what the transaction flows ask before using a sandbox provider). */
export async function getClientMode(db: Db, clientId: string): Promise<ClientMode> {
  return (await getClient(db, clientId)).mode;
}

export interface UpdateClientInput {
  name?: string | undefined;
  status?: "ACTIVE" | "SUSPENDED" | undefined;
  mode?: ClientMode | undefined;
  webhookUrl?: string | null | undefined;
  webhookEncryptionKey?: unknown;
  allowedOrigins?: string[] | undefined;
  settings?: ClientSettings | undefined;
}

/**
 * Changes what is given; `null` clears the webhook URL or key. Settings are merged. The webhook URL
 * that results must suit the mode that results (a client going live keeps no private webhook).
 */
export async function updateClient(
  db: Db,
  id: string,
  input: UpdateClientInput,
  actor: Actor = installation,
): Promise<Client> {
  const current = await getClient(db, id);
  const mode = input.mode ?? current.mode;
  const webhookUrl = input.webhookUrl === undefined ? current.webhookUrl : input.webhookUrl;
  const checkedWebhookUrl = webhookUrl === null ? null : validateWebhookUrl(webhookUrl, mode);
  const encryption =
    input.webhookEncryptionKey === undefined || input.webhookEncryptionKey === null
      ? input.webhookEncryptionKey
      : await normalizeEncryptionJwk(input.webhookEncryptionKey);
  const row = await inTransaction(db, async (tx) => {
    const updated = await tx
      .updateTable("clients")
      .set({
        ...(input.name !== undefined ? { name: input.name } : {}),
        ...(input.status !== undefined ? { status: input.status } : {}),
        ...(input.mode !== undefined ? { mode: input.mode } : {}),
        ...(input.webhookUrl !== undefined ? { webhook_url: checkedWebhookUrl } : {}),
        ...(encryption !== undefined
          ? {
              webhook_encryption_key:
                encryption === null ? null : JSON.stringify({ ...encryption.jwk, kid: encryption.kid }),
            }
          : {}),
        ...(input.allowedOrigins !== undefined
          ? { allowed_origins: validateOrigins(input.allowedOrigins) }
          : {}),
        ...(input.settings !== undefined
          ? { settings: JSON.stringify({ ...current.settings, ...input.settings }) }
          : {}),
        updated_at: new Date(),
      })
      .where("id", "=", id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await announceChange(tx, "client", id);
    // What changed, by name (a webhook key or setting's value is not the trail's business).
    await writeAudit(
      tx,
      { clientId: id, actor },
      {
        action: "client.updated",
        entityType: "client",
        entityId: id,
        before: { mode: current.mode, status: current.status },
        after: { mode: updated.mode, status: updated.status, changed: Object.keys(input).sort() },
      },
    );
    return updated;
  });
  return toClient(row as ClientRow);
}

export async function listSigningKeys(db: Db, clientId: string): Promise<SigningKey[]> {
  const rows = await db
    .selectFrom("client_signing_keys")
    .selectAll()
    .where("client_id", "=", clientId)
    .orderBy("created_at")
    .execute();
  return rows.map((r) => ({
    kid: r.kid,
    jwk: json<JWK>(r.jwk),
    status: r.status as SigningKey["status"],
    expiresAt: r.expires_at ? new Date(r.expires_at) : null,
    createdAt: new Date(r.created_at),
    revokedAt: r.revoked_at ? new Date(r.revoked_at) : null,
  }));
}

/** Adds a public key (rotation: several may be active at once). */
export async function addSigningKey(
  db: Db,
  clientId: string,
  jwk: unknown,
  expiresAt?: Date,
  actor: Actor = installation,
): Promise<SigningKey> {
  await getClient(db, clientId);
  const key = await normalizeSigningJwk(jwk, "jwk");
  if (expiresAt && expiresAt.getTime() <= Date.now())
    throw new ClientError("INVALID_CLIENT", "expiresAt must be in the future", "expiresAt");
  const row = await inTransaction(db, async (tx) => {
    const inserted = await tx
      .insertInto("client_signing_keys")
      .values({
        client_id: clientId,
        kid: key.kid,
        jwk: JSON.stringify(key.jwk),
        expires_at: expiresAt ?? null,
      })
      .onConflict((oc) => oc.columns(["client_id", "kid"]).doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!inserted) throw new ClientError("KEY_EXISTS", `key ${key.kid} is already registered`, "jwk");
    await writeAudit(
      tx,
      { clientId, actor },
      {
        action: "client.signing_key_added",
        entityType: "client",
        entityId: clientId,
        after: { kid: key.kid, expiresAt: expiresAt?.toISOString() ?? null },
      },
    );
    return inserted;
  });
  return {
    kid: row.kid,
    jwk: key.jwk,
    status: "ACTIVE",
    expiresAt: expiresAt ?? null,
    createdAt: new Date(row.created_at),
    revokedAt: null,
  };
}

/** Revokes a key: requests signed with it are refused from now on. */
export async function revokeSigningKey(
  db: Db,
  clientId: string,
  kid: string,
  actor: Actor = installation,
): Promise<void> {
  await inTransaction(db, async (tx) => {
    const result = await tx
      .updateTable("client_signing_keys")
      .set({ status: "REVOKED", revoked_at: new Date() })
      .where("client_id", "=", clientId)
      .where("kid", "=", kid)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0)
      throw new ClientError("KEY_NOT_FOUND", `no key ${kid} for client ${clientId}`);
    await announceChange(tx, "signing-key", `${clientId}\u0000${kid}`);
    await writeAudit(
      tx,
      { clientId, actor },
      {
        action: "client.signing_key_revoked",
        entityType: "client",
        entityId: clientId,
        after: { kid },
      },
    );
  });
}

/** The key a signature names, if it is active and unexpired. */
export async function findActiveSigningKey(db: Db, clientId: string, kid: string): Promise<JWK | undefined> {
  // Through the process cache: revokeSigningKey announces the change to every process.
  const row = await cachedRead(db, "signing-key", `${clientId}\u0000${kid}`, () =>
    db
      .selectFrom("client_signing_keys")
      .select(["jwk", "expires_at"])
      .where("client_id", "=", clientId)
      .where("kid", "=", kid)
      .where("status", "=", "ACTIVE")
      .executeTakeFirst(),
  );
  if (!row || (row.expires_at && new Date(row.expires_at).getTime() <= Date.now())) return undefined;
  return json<JWK>(row.jwk);
}
