import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import type { Db } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import type { Actor } from "../../lib/context.ts";
import { writeAudit } from "../audit/service.ts";
import { getClient } from "../clients/service.ts";
import { redirectOrigins, redirectUriProblem } from "./redirect-uris.ts";

/**
 * A client as an OAuth2 client of the 1-Click flow: its `oneClick` settings (registered redirect
 * URIs, the operator's callback URL and credentials) and its client secret. The OAuth `client_id`
 * is the Ferry client id. The secret is 256 random bits, shown once; only its SHA-256 is kept (a
 * slow hash adds nothing to a secret that cannot be guessed) and it is compared in constant time.
 */

const httpUrl = z
  .url()
  .max(2000)
  .refine((u) => /^https?:\/\//i.test(u), "an http or https address");

export const oneClickSettingsSchema = z
  .object({
    redirectUris: z
      .array(
        z
          .string()
          .max(2000)
          .superRefine((uri, ctx) => {
            const problem = redirectUriProblem(uri);
            if (problem) ctx.addIssue({ code: "custom", message: `redirect URI ${problem}` });
          }),
      )
      .min(1)
      .max(20)
      .describe(
        "The redirect_uri values the client may use, matched exactly: absolute http(s) URLs written as parsed (lower-case host, no default port), no fragment, no user@, no wildcard; https for a live client except loopback (127.0.0.1, localhost); no IPv6 literal",
      ),
    callbackUrl: httpUrl
      .refine(
        (u) => u.includes("{action}"),
        "must contain {action} (verifyuser, signin, authorize, transfer, cancel)",
      )
      .refine((u) => !u.includes("#"), "must not have a fragment (#…): it is never sent")
      .refine(
        (u) => !/^[a-z]+:\/\/[^/?#]*@/i.test(u),
        "must not carry credentials (user@): give them in callbackAuth, kept sealed and masked",
      )
      .describe("The operator's callback URL; {action} is replaced by the callback's name"),
    callbackAuth: z.discriminatedUnion("type", [
      z
        .object({
          type: z.literal("basic"),
          username: z.string().min(1).max(200),
          password: z.string().min(1).max(200),
        })
        .strict(),
      z.object({ type: z.literal("bearer"), token: z.string().min(1).max(2000) }).strict(),
    ]),
  })
  .strict();

export type OneClickSettings = z.infer<typeof oneClickSettingsSchema>;

/** The settings as an admin may read them back: the operator's credentials masked. */
export function maskOneClick(settings: Record<string, unknown>): Record<string, unknown> {
  const oneClick = settings.oneClick as OneClickSettings | undefined;
  if (!oneClick) return settings;
  const auth =
    oneClick.callbackAuth.type === "basic"
      ? { type: "basic", username: oneClick.callbackAuth.username, password: "***" }
      : { type: "bearer", token: "***" };
  return { ...settings, oneClick: { ...oneClick, callbackAuth: auth } };
}

export async function oneClickOf(db: Db, clientId: string): Promise<OneClickSettings | undefined> {
  const client = await getClient(db, clientId);
  return (client.settings as { oneClick?: OneClickSettings }).oneClick;
}

/**
 * The exact origins a client's 1-Click pages may be framed by and send the browser to: those of
 * its redirect URIs usable in its mode (none when it has no 1-Click set-up).
 */
export async function oneClickOrigins(db: Db, clientId: string): Promise<string[]> {
  const client = await getClient(db, clientId);
  const oneClick = (client.settings as { oneClick?: OneClickSettings }).oneClick;
  return redirectOrigins(oneClick?.redirectUris ?? [], client.mode);
}

const hashOf = (secret: string) => createHash("sha256").update(secret).digest("hex");
const DUMMY = hashOf(randomBytes(32).toString("base64url"));

/** A new secret for the client (the old one stops working), audited; returned this once. */
export async function rotateOAuthSecret(db: Db, clientId: string, actor: Actor): Promise<string> {
  await getClient(db, clientId);
  const secret = `fcs_${randomBytes(32).toString("base64url")}`;
  await inTransaction(db, async (tx) => {
    await tx
      .insertInto("oauth_client_secrets")
      .values({ client_id: clientId, secret_hash: hashOf(secret) })
      .onConflict((oc) => oc.column("client_id").doUpdateSet({ secret_hash: hashOf(secret) }))
      .execute();
    await writeAudit(
      tx,
      { clientId, actor },
      { action: "client.oauth_secret_rotated", entityType: "client", entityId: clientId },
    );
  });
  return secret;
}

/** Whether the client has an OAuth secret (it can exchange codes). */
export async function hasOAuthSecret(db: Db, clientId: string): Promise<boolean> {
  const row = await db
    .selectFrom("oauth_client_secrets")
    .select("client_id")
    .where("client_id", "=", clientId)
    .executeTakeFirst();
  return row !== undefined;
}

/** Whether `secret` is the client's OAuth secret (constant time; an unknown client costs the same). */
export async function verifyOAuthClient(db: Db, clientId: string, secret: string): Promise<boolean> {
  const row = /^[A-Za-z0-9_-]{3,255}$/.test(clientId)
    ? await db
        .selectFrom("oauth_client_secrets")
        .select("secret_hash")
        .where("client_id", "=", clientId)
        .executeTakeFirst()
    : undefined;
  const expected = Buffer.from(row?.secret_hash ?? DUMMY, "hex");
  const given = Buffer.from(hashOf(secret), "hex");
  return timingSafeEqual(expected, given) && row !== undefined;
}
