import { randomUUID } from "node:crypto";
import type { FastifyReply } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Db } from "../../db/database.ts";
import { ApiError, errorResponses } from "../../http/errors.ts";
import { getClientMode } from "../../modules/clients/service.ts";
import { KycError } from "../../modules/kyc/service.ts";
import type { UserInfo } from "../../modules/users/schemas.ts";
import type { Services } from "../../services.ts";

/**
 * The sandbox KYC provider's hosted verification page: what a real provider's ID document and
 * liveness capture (a web SDK, a phone hand-off) is for the Pay-in API's `KYC_1` check
 * (`POST /v2/customer/kyc/start` hands out its address).
 *
 * - One row of `sandbox_kyc_verifications` per started check: `OPEN` (documents awaited),
 *   `SUBMITTED` or `ABANDONED` (the customer cancelled).
 * - The page is opened by the customer's browser without credentials: its id, a random UUID
 *   (v4, 122 random bits) handed only to the customer, is the capability, as for the 3-D Secure
 *   page. A live client's verification is answered as unknown (404): the sandbox serves sandbox
 *   clients only.
 * - "Submit documents" records a sandbox ID document in the user's information (a passport
 *   `SBX-…` of their residence country) and starts the core's KYC assessment (request id
 *   `kyc1-<verification id>`, so a second submit is the same check); the sandbox KYC provider then
 *   decides by last name after its delay (sandbox.md) and, accepting, grants the highest tier the
 *   information supports — with the ID document, tier 2 (`KYC_1`). "Cancel" abandons the page; the
 *   customer may start again.
 */

export type SandboxVerificationStatus = "OPEN" | "SUBMITTED" | "ABANDONED";

export interface SandboxVerification {
  id: string;
  clientId: string;
  userId: string;
  status: SandboxVerificationStatus;
  createdAt: Date;
}

type Row = { id: string; client_id: string; user_id: string; status: string; created_at: Date };

const toVerification = (row: Row): SandboxVerification => ({
  id: row.id,
  clientId: row.client_id,
  userId: row.user_id,
  status: row.status as SandboxVerificationStatus,
  createdAt: new Date(row.created_at),
});

/** The page's address, for the API's answer. */
export const verificationUrl = (publicUrl: string, id: string) =>
  `${publicUrl.replace(/\/+$/, "")}/sandbox/kyc/verification/${id}`;

/** The assessment a submitted verification starts (one per verification). */
export const verificationRequestId = (id: string) => `kyc1-${id}`;

/**
 * The customer's open verification, or a new one (in the caller's transaction, which should hold
 * the user's row locked so two starts do not open two pages).
 */
export async function openSandboxVerification(
  db: Db,
  clientId: string,
  userId: string,
): Promise<SandboxVerification> {
  const open = await db
    .selectFrom("sandbox_kyc_verifications")
    .select(["id", "client_id", "user_id", "status", "created_at"])
    .where("client_id", "=", clientId)
    .where("user_id", "=", userId)
    .where("status", "=", "OPEN")
    .orderBy("created_at", "desc")
    .executeTakeFirst();
  if (open) return toVerification(open);
  const row = await db
    .insertInto("sandbox_kyc_verifications")
    .values({ id: randomUUID(), client_id: clientId, user_id: userId })
    .returning(["id", "client_id", "user_id", "status", "created_at"])
    .executeTakeFirstOrThrow();
  return toVerification(row);
}

/** The customer's newest verification, if any. */
export async function latestSandboxVerification(
  db: Db,
  clientId: string,
  userId: string,
): Promise<SandboxVerification | undefined> {
  const row = await db
    .selectFrom("sandbox_kyc_verifications")
    .select(["id", "client_id", "user_id", "status", "created_at"])
    .where("client_id", "=", clientId)
    .where("user_id", "=", userId)
    .orderBy("created_at", "desc")
    .orderBy("id", "desc")
    .executeTakeFirst();
  return row && toVerification(row);
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, body: string) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}button{font-size:1rem;padding:.6rem 1.2rem;margin-right:.5rem}form{display:inline}</style>
</head><body>${body}</body></html>`;
}

const TITLE = "Sandbox identity verification";

function statePage(verification: SandboxVerification): string {
  const id = escapeHtml(verification.id);
  switch (verification.status) {
    case "OPEN":
      return page(
        TITLE,
        `<h1>${TITLE}</h1>
<p>This page plays the KYC provider's ID document and liveness capture. No document or picture is taken: "Submit documents" hands the sandbox a test passport, and the sandbox decides by your last name — <code>Refuse</code> is refused, <code>Review</code> waits for staff, <code>Moreinfo</code> asks for more, <code>Error</code> fails; any other name is approved.</p>
<form method="post" action="/sandbox/kyc/verification/${id}"><input type="hidden" name="decision" value="submit"><button id="submit">Submit documents</button></form>
<form method="post" action="/sandbox/kyc/verification/${id}"><input type="hidden" name="decision" value="cancel"><button id="cancel">Cancel</button></form>`,
      );
    case "SUBMITTED":
      return page(
        TITLE,
        `<h1 id="outcome">Documents submitted</h1><p>Your identity check is under way; the app shows its result. You may close this page.</p>`,
      );
    case "ABANDONED":
      return page(
        TITLE,
        `<h1 id="outcome">Verification cancelled</h1><p>Nothing was submitted. Start the check again from the app when you are ready. You may close this page.</p>`,
      );
  }
}

const params = z.object({ id: z.uuid().describe("The verification's id (from verificationUrl)") }).strict();

/** The sandbox KYC provider's hosted page; register under `/sandbox` (with the other sandbox routes). */
export const sandboxKycRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  const db = services.database.db;
  // The page's forms post application/x-www-form-urlencoded.
  app.addContentTypeParser(
    "application/x-www-form-urlencoded",
    { parseAs: "string", bodyLimit: 4096 },
    (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(String(body))));
    },
  );

  /** The verification behind a page: unknown, or a live client's → 404 (nothing revealed). */
  async function load(id: string): Promise<SandboxVerification> {
    const row = await db
      .selectFrom("sandbox_kyc_verifications")
      .select(["id", "client_id", "user_id", "status", "created_at"])
      .where("id", "=", id)
      .executeTakeFirst();
    if (!row || (await getClientMode(db, row.client_id)) !== "sandbox")
      throw ApiError.notFound("the verification");
    return toVerification(row);
  }

  const html = (reply: FastifyReply, body: string, status = 200) =>
    reply
      .code(status)
      .type("text/html; charset=utf-8")
      // The address is the capability: keep it out of caches and other sites' Referer headers.
      .header("Cache-Control", "no-store")
      .header("Referrer-Policy", "no-referrer")
      .send(body);

  app.get(
    "/kyc/verification/:id",
    {
      schema: {
        tags: ["sandbox"],
        summary: "The sandbox KYC provider's ID + liveness page (Pay-in KYC_1 check)",
        description:
          "Opened by the customer's browser from `verificationUrl`; the id is the capability. Buttons: Submit documents, Cancel. Sandbox clients only.",
        params,
        produces: ["text/html"],
        response: { ...errorResponses(400, 404) },
      },
    },
    async (request, reply) => html(reply, statePage(await load(request.params.id))),
  );

  app.post(
    "/kyc/verification/:id",
    {
      schema: {
        tags: ["sandbox"],
        summary: "Submit the sandbox ID + liveness capture (starts the KYC_1 assessment), or cancel",
        description:
          "`decision=submit` records a sandbox passport in the user's information and starts the KYC assessment (the sandbox decides by last name after its delay); `decision=cancel` abandons the page. The same decision again shows the same result; the other one, once decided, is a 409.",
        params,
        consumes: ["application/x-www-form-urlencoded", "application/json"],
        body: z.object({ decision: z.enum(["submit", "cancel"]) }).strict(),
        produces: ["text/html"],
        response: { ...errorResponses(400, 404, 409) },
      },
    },
    async (request, reply) => {
      const verification = await load(request.params.id);
      const wanted: SandboxVerificationStatus =
        request.body.decision === "submit" ? "SUBMITTED" : "ABANDONED";
      if (verification.status === "OPEN") {
        // Claim the page: of two concurrent posts, one decides.
        const claimed = await db
          .updateTable("sandbox_kyc_verifications")
          .set({ status: wanted, updated_at: new Date() })
          .where("id", "=", verification.id)
          .where("status", "=", "OPEN")
          .returning(["id"])
          .executeTakeFirst();
        if (claimed && wanted === "SUBMITTED") {
          try {
            await submitDocuments(services, verification);
          } catch (error) {
            // Nothing was started: the page may be submitted again.
            await db
              .updateTable("sandbox_kyc_verifications")
              .set({ status: "OPEN", updated_at: new Date() })
              .where("id", "=", verification.id)
              .execute();
            throw error;
          }
        }
      }
      const now = await load(verification.id);
      if (now.status !== wanted)
        return html(
          reply,
          page(
            TITLE,
            `<h1 id="outcome">Already ${now.status === "SUBMITTED" ? "submitted" : "cancelled"}</h1><p>This verification was ${now.status === "SUBMITTED" ? "submitted" : "cancelled"} already. You may close this page.</p>`,
          ),
          409,
        );
      return html(reply, statePage(now));
    },
  );
};

/** The sandbox's "capture": a test passport of the residence country, then the core's assessment. */
async function submitDocuments(services: Services, verification: SandboxVerification): Promise<void> {
  const { clientId, userId, id } = verification;
  const info = await services.users.info(services.database.db, clientId, userId);
  const country =
    info.countryOfResidence ??
    info.addresses?.find((a) => a.type === "HOME")?.country ??
    info.addresses?.[0]?.country;
  if (!country)
    throw new ApiError(
      "CONFLICT",
      "the customer's residence country is not known: complete the profile first",
    );
  const idDocument: NonNullable<UserInfo["idDocument"]> = {
    type: "PASSPORT",
    number: `SBX-${id.replaceAll("-", "").slice(0, 12).toUpperCase()}`,
    country,
  };
  try {
    await services.kyc.start({
      clientId,
      userId,
      requestId: verificationRequestId(id),
      info: { idDocument },
      solicited: true,
    });
  } catch (error) {
    // Already started for this page (a retry after a lost answer): the same check.
    if (error instanceof KycError && error.code === "ASSESSMENT_EXISTS") return;
    throw error;
  }
}
