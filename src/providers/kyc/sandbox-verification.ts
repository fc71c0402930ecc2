import { randomUUID } from "node:crypto";
import type { Db } from "../../db/database.ts";
import type { HostedVerifications, Verification, VerificationStatus } from "./verification.ts";

/**
 * The sandbox KYC provider's hosted verification page: what a real provider's ID document and
 * liveness capture (a web SDK, a phone hand-off) is. One row of `sandbox_kyc_verifications` per
 * started check. The page is opened by the customer's browser without credentials: its id, a
 * random UUID (v4, 122 random bits) handed only to the customer, is the capability, as for the
 * 3-D Secure page. "Submit documents" hands the sandbox a test passport (the Pay-in module starts
 * the KYC assessment, which the sandbox decides by last name); "Cancel" abandons the page.
 */
export class SandboxKycVerifications implements HostedVerifications {
  constructor(
    private readonly db: Db,
    private readonly publicUrl: string,
  ) {}

  url(id: string): string {
    return `${this.publicUrl.replace(/\/+$/, "")}/sandbox/kyc/verification/${id}`;
  }

  async open(db: Db, clientId: string, userId: string): Promise<Verification> {
    const open = await db
      .selectFrom("sandbox_kyc_verifications")
      .select(COLUMNS)
      .where("client_id", "=", clientId)
      .where("user_id", "=", userId)
      .where("status", "=", "OPEN")
      .orderBy("created_at", "desc")
      .executeTakeFirst();
    if (open) return toVerification(open);
    const row = await db
      .insertInto("sandbox_kyc_verifications")
      .values({ id: randomUUID(), client_id: clientId, user_id: userId })
      .returning(COLUMNS)
      .executeTakeFirstOrThrow();
    return toVerification(row);
  }

  async latest(db: Db, clientId: string, userId: string): Promise<Verification | undefined> {
    const row = await db
      .selectFrom("sandbox_kyc_verifications")
      .select(COLUMNS)
      .where("client_id", "=", clientId)
      .where("user_id", "=", userId)
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .executeTakeFirst();
    return row && toVerification(row);
  }

  async find(id: string): Promise<Verification | undefined> {
    const row = await this.db
      .selectFrom("sandbox_kyc_verifications")
      .select(COLUMNS)
      .where("id", "=", id)
      .executeTakeFirst();
    return row && toVerification(row);
  }

  async claim(id: string, status: Exclude<VerificationStatus, "OPEN">): Promise<boolean> {
    // Of two concurrent posts, one decides.
    const claimed = await this.db
      .updateTable("sandbox_kyc_verifications")
      .set({ status, updated_at: new Date() })
      .where("id", "=", id)
      .where("status", "=", "OPEN")
      .returning(["id"])
      .executeTakeFirst();
    return claimed !== undefined;
  }

  async reopen(id: string): Promise<void> {
    await this.db
      .updateTable("sandbox_kyc_verifications")
      .set({ status: "OPEN", updated_at: new Date() })
      .where("id", "=", id)
      .execute();
  }

  /** The sandbox's test passport: `SBX-…` from the verification's id, of the residence country. */
  document(verification: Verification, country: string) {
    return {
      type: "PASSPORT" as const,
      number: `SBX-${verification.id.replaceAll("-", "").slice(0, 12).toUpperCase()}`,
      country,
    };
  }
}

const COLUMNS = ["id", "client_id", "user_id", "status", "created_at"] as const;

type Row = { id: string; client_id: string; user_id: string; status: string; created_at: Date };

const toVerification = (row: Row): Verification => ({
  id: row.id,
  clientId: row.client_id,
  userId: row.user_id,
  status: row.status as VerificationStatus,
  createdAt: new Date(row.created_at),
});

// ——— the page ———

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const TITLE = "Sandbox identity verification";

/** The page's one inline style block (its Content-Security-Policy allows it by hash). */
export const VERIFICATION_PAGE_STYLE =
  "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}button{font-size:1rem;padding:.6rem 1.2rem;margin-right:.5rem}form{display:inline}";

function page(body: string) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(TITLE)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${VERIFICATION_PAGE_STYLE}</style>
</head><body>${body}</body></html>`;
}

/**
 * The page of a verification in its status. `formField`: the HTML of the hidden anti-CSRF field
 * each decision form carries (the face's; the page is served with a strict policy, framed by nobody).
 */
export function verificationPage(verification: Verification, formField = ""): string {
  const id = escapeHtml(verification.id);
  switch (verification.status) {
    case "OPEN":
      return page(
        `<h1>${TITLE}</h1>
<p>This page plays the KYC provider's ID document and liveness capture. No document or picture is taken: "Submit documents" hands the sandbox a test passport, and the sandbox decides by your last name — <code>Refuse</code> is refused, <code>Review</code> waits for staff, <code>Moreinfo</code> asks for more, <code>Error</code> fails; any other name is approved.</p>
<form method="post" action="/sandbox/kyc/verification/${id}"><input type="hidden" name="decision" value="submit">${formField}<button id="submit">Submit documents</button></form>
<form method="post" action="/sandbox/kyc/verification/${id}"><input type="hidden" name="decision" value="cancel">${formField}<button id="cancel">Cancel</button></form>`,
      );
    case "SUBMITTED":
      return page(
        `<h1 id="outcome">Documents submitted</h1><p>Your identity check is under way; the app shows its result. You may close this page.</p>`,
      );
    case "ABANDONED":
      return page(
        `<h1 id="outcome">Verification cancelled</h1><p>Nothing was submitted. Start the check again from the app when you are ready. You may close this page.</p>`,
      );
  }
}

/** The page when the other decision was made already. */
export function alreadyDecidedPage(status: VerificationStatus): string {
  const what = status === "SUBMITTED" ? "submitted" : "cancelled";
  return page(
    `<h1 id="outcome">Already ${what}</h1><p>This verification was ${what} already. You may close this page.</p>`,
  );
}
