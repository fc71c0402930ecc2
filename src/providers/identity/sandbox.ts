import { createHash } from "node:crypto";
import type { Db } from "../../db/database.ts";
import type { SandboxGate } from "../sandbox-gate.ts";
import type {
  IdentityPaymentRecord,
  IdentityPaymentRequest,
  IdentityPaymentResult,
  IdentityProvider,
  ProvenIdentity,
} from "./interface.ts";

/**
 * The sandbox identity providers `sandbox-bankid` and `sandbox-trustly` (sandbox.md). Deterministic:
 *
 * - `199001011234` is "Test Testsson" (born 1990-01-01, Testgatan 1, 111 22 Stockholm, SE);
 *   `198507079876` is "Ivan Sanctionov" (on the shipped sanctions list: screening refuses him);
 *   any other 12-digit personal id YYYYMMDDNNNN with a valid date is "Test Person<NNNN>", born
 *   that day. Anything else is unknown (the page says so).
 * - The bank payment succeeds, except for the amount `504.00`, refused with 504 NO_FUNDS.
 * - Payments are kept by Ferry's key: a retried payment is the same payment.
 */
const KNOWN: Record<string, Omit<ProvenIdentity, "personid">> = {
  "199001011234": {
    firstName: "Test",
    lastName: "Testsson",
    dob: "1990-01-01",
    street: "Testgatan 1",
    city: "Stockholm",
    zip: "111 22",
    country: "SE",
  },
  "198507079876": {
    firstName: "Ivan",
    lastName: "Sanctionov",
    dob: "1985-07-07",
    street: "Testgatan 2",
    city: "Stockholm",
    zip: "111 22",
    country: "SE",
  },
};

export const SANDBOX_TEST_PERSONID = "199001011234";

export function sandboxIdentity(personid: string): ProvenIdentity | undefined {
  const known = KNOWN[personid];
  if (known) return { personid, ...known };
  const m = /^(\d{4})(\d{2})(\d{2})(\d{4})$/.exec(personid);
  if (!m) return undefined;
  const dob = `${m[1]}-${m[2]}-${m[3]}`;
  const date = new Date(`${dob}T00:00:00Z`);
  if (Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== dob) return undefined;
  if (date.getTime() > Date.now()) return undefined;
  return {
    personid,
    firstName: "Test",
    lastName: `Person${m[4]}`,
    dob,
    street: `Testgatan ${Number(m[4]) % 100 || 1}`,
    city: "Stockholm",
    zip: "111 22",
    country: "SE",
  };
}

export class SandboxIdentityProvider implements IdentityProvider {
  constructor(
    readonly name: "sandbox-bankid" | "sandbox-trustly",
    private readonly db: Db,
    private readonly gate?: SandboxGate,
  ) {}

  get displayName(): string {
    return this.name === "sandbox-bankid" ? "Sandbox BankID" : "Sandbox Trustly";
  }

  /** A bank-ID is an electronic ID document (tier 2); an open-banking login proves the account holder's data (tier 1). */
  get tier(): number {
    return this.name === "sandbox-bankid" ? 2 : 1;
  }

  get signinRequired(): boolean {
    return this.name === "sandbox-trustly";
  }

  identify(personid: string): ProvenIdentity | undefined {
    return sandboxIdentity(personid);
  }

  async pay(request: IdentityPaymentRequest): Promise<IdentityPaymentResult> {
    this.gate?.before("identity.pay");
    const reference = `idp_${createHash("sha256").update(`${this.name}\u0000${request.idempotencyKey}`).digest("hex").slice(0, 24)}`;
    const status = request.amountText === "504.00" ? "NO_FUNDS" : "PAID";
    await this.db
      .insertInto("sandbox_idp_payments")
      .values({
        idempotency_key: request.idempotencyKey,
        reference,
        provider: this.name,
        amount: request.amount.toString(),
        currency: request.currency,
        status,
      })
      .onConflict((oc) => oc.column("idempotency_key").doNothing())
      .execute();
    // A retry answers what the first call did.
    const row = await this.db
      .selectFrom("sandbox_idp_payments")
      .select(["reference", "status"])
      .where("idempotency_key", "=", request.idempotencyKey)
      .executeTakeFirstOrThrow();
    await this.gate?.after("identity.pay");
    return row.status === "PAID"
      ? { status: "PAID", reference: row.reference }
      : { status: "DECLINED", reference: row.reference, statusCode: 504, reason: "NO_FUNDS" };
  }
}

/** The sandbox providers' payments (both share one table), for reconciliation. */
export async function sandboxIdentityPayments(db: Db, keyPrefix?: string): Promise<IdentityPaymentRecord[]> {
  let query = db.selectFrom("sandbox_idp_payments").selectAll();
  if (keyPrefix) query = query.where("idempotency_key", "like", `${keyPrefix.replace(/[\\%_]/g, "\\$&")}%`);
  const rows = await query.execute();
  return rows.map((r) => ({
    idempotencyKey: r.idempotency_key,
    reference: r.reference,
    provider: r.provider,
    amount: BigInt(r.amount),
    currency: r.currency,
    status: r.status as "PAID" | "NO_FUNDS",
  }));
}
