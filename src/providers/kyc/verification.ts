import type { Db } from "../../db/database.ts";

/**
 * A KYC provider's hosted ID document + liveness capture: a page Ferry sends the customer to (the
 * Pay-in API's `KYC_1` check). A verification is OPEN while documents are awaited, then SUBMITTED
 * or ABANDONED (the customer cancelled). Calls that take a `db` run in the caller's database
 * transaction (which holds the user's row locked, so that two starts do not open two pages).
 */

export type VerificationStatus = "OPEN" | "SUBMITTED" | "ABANDONED";

export interface Verification {
  id: string;
  clientId: string;
  userId: string;
  status: VerificationStatus;
  createdAt: Date;
}

export interface HostedVerifications {
  /** The page's address, for the API's answer. */
  url(id: string): string;
  /** The customer's open verification, or a new one. */
  open(db: Db, clientId: string, userId: string): Promise<Verification>;
  /** The customer's newest verification, if any. */
  latest(db: Db, clientId: string, userId: string): Promise<Verification | undefined>;
  /** A verification by its id (the page's capability). */
  find(id: string): Promise<Verification | undefined>;
  /** Decides an OPEN verification, once: true for the one call that did. */
  claim(id: string, status: Exclude<VerificationStatus, "OPEN">): Promise<boolean>;
  /** Opens a submitted verification again (nothing was started from it). */
  reopen(id: string): Promise<void>;
  /** The ID document the page captured, of the customer's residence country. */
  document(
    verification: Verification,
    country: string,
  ): { type: "PASSPORT"; number: string; country: string };
}
