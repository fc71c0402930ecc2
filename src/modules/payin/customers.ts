import type { Db } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import { toAlpha2 } from "../../lib/countries.ts";
import { DomainError } from "../../lib/errors.ts";
import type { HostedVerifications, Verification } from "../../providers/kyc/verification.ts";
import { getClientMode } from "../clients/service.ts";
import { hasField, missingFields } from "../kyc/rules.ts";
import { type Assessment, type Kyc, KycError } from "../kyc/service.ts";
import type { Logins } from "../logins/service.ts";
import type { UserInfo } from "../users/schemas.ts";
import type { Users } from "../users/service.ts";
import { KYC_0, KYC_1 } from "./purchases.ts";

/**
 * The Pay-in customer (`/v2/customer`) on the core's user and tiers: one user, one truth across
 * faces. Their profile (the residence address is the user's HOME address, kept whole), `KYC_0`
 * (tier ≥ 1) and `KYC_1` (tier ≥ 2: an ID document and liveness check on the KYC provider's hosted
 * page). The rules where the spec is silent are listed in faces/payin/customer.ts.
 */

export interface PayinProfile {
  firstName?: string | undefined;
  lastName?: string | undefined;
  primaryCurrency?: string | undefined;
  residenceCountry?: string | undefined;
  residenceCity?: string | undefined;
  residenceStreet?: string | undefined;
  residenceZipCode?: string | undefined;
  dateOfBirth?: string | undefined;
}

export type Kyc1Status = {
  status: "APPROVED" | "UNDEFINED" | "UNDER_REVIEW" | "DENIED";
  reason: string | null;
};

export interface PayinCustomerDependencies {
  db: Db;
  users: Users;
  kyc: Kyc;
  logins: Logins;
  verifications: HostedVerifications;
}

type Address = NonNullable<UserInfo["addresses"]>[number];

const error = (kind: "CONFLICT" | "INVALID" | "NOT_FOUND", code: string, message: string, more = {}) =>
  new DomainError(kind, code, message, undefined, more);

export class PayinCustomers {
  constructor(private readonly deps: PayinCustomerDependencies) {}

  /**
   * The profile as Vault answers it: a field not set is left out (never null). The country as ISO
   * 3166-1 alpha-2, the birth date as a date-time at midnight UTC (`1990-05-20T00:00:00.000Z`).
   * From the login: `email` (an e-mail login; confirmed by the registration code, so
   * `confirmedEmail: true`) or `phone` (a phone login, `+` and digits), `enabled2FA`. Ferry sends no
   * push notifications: `pushEnabled` is false. No Vero id: `veroId` is never set.
   */
  async profile(clientId: string, userId: string) {
    const [info, primaryCurrency, login] = await Promise.all([
      this.deps.users.info(this.deps.db, clientId, userId),
      this.deps.logins.primaryCurrency(clientId, userId),
      this.deps.logins.get(clientId, userId),
    ]);
    const address = info.addresses?.[residenceIndex(info.addresses)];
    const email = login.login.includes("@");
    const fields = {
      email: email ? login.login : undefined,
      confirmedEmail: email ? true : undefined,
      phone: email ? undefined : `+${login.login}`,
      firstName: info.name?.firstName,
      lastName: info.name?.lastName,
      primaryCurrency: primaryCurrency ?? undefined,
      residenceCountry: info.countryOfResidence ?? address?.country,
      residenceCity: address?.city,
      residenceStreet: address?.street,
      residenceZipCode: address?.postalCode,
      pushEnabled: false,
      enabled2FA: login.twoFactor,
      dateOfBirth: info.dateOfBirth ? `${info.dateOfBirth}T00:00:00.000Z` : undefined,
    };
    return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as Partial<
      typeof fields
    >;
  }

  /**
   * Merges a PATCH into the user's information. Once at KYC_1 the names are locked (the same value
   * is accepted): the check and the write are one transaction with the user's row locked, so a
   * KYC_1 decision cannot slip between them. New information starts a KYC refresh in the background.
   */
  async updateProfile(clientId: string, userId: string, patch: PayinProfile): Promise<void> {
    const { users, logins } = this.deps;
    const changed = await inTransaction(this.deps.db, async (tx) => {
      const user = await users.get(tx, clientId, userId, { forUpdate: true });
      const info = await users.info(tx, clientId, userId);
      if (user.tier >= KYC_1) {
        for (const field of ["firstName", "lastName"] as const) {
          const given = patch[field];
          if (given !== undefined && given !== info.name?.[field])
            throw invalid(
              field,
              "cannot be changed once the identity is verified (KYC_1); the same value is accepted",
            );
        }
      }
      const written = await users.writeInfo(tx, clientId, userId, infoPatch(info, patch), "merge");
      if (patch.primaryCurrency !== undefined)
        await logins.setPrimaryCurrency(tx, clientId, userId, patch.primaryCurrency);
      return written.changed;
    });
    // As PATCH /api/v1/profile: new information, a KYC refresh in the background.
    if (changed) this.deps.kyc.refreshAfterChange(clientId, userId);
  }

  /** The KYC level and the status of the KYC_1 check (kyc1Status). */
  async kycData(clientId: string, userId: string) {
    const { db, users } = this.deps;
    const [user, info, verification, latest] = await Promise.all([
      users.get(db, clientId, userId),
      users.info(db, clientId, userId),
      this.deps.verifications.latest(db, clientId, userId),
      this.deps.kyc.latest(clientId, userId),
    ]);
    const kycLevel: "KYC_0" | "KYC_1" | null =
      user.tier >= KYC_1 ? "KYC_1" : user.tier >= KYC_0 ? "KYC_0" : null;
    const kyc1 = kyc1Status(user.tier, info, verification, latest);
    // Ferry has no KYC_2 or KYC_3 on this face: their checks are never started.
    const notStarted = { status: "UNDEFINED" as const, reason: null, rejectFormattedMessage: null };
    return {
      kycLevel,
      kyc1ClientData: { ...kyc1, rejectFormattedMessage: rejectMessage(kyc1) },
      kyc2ClientData: notStarted,
      kyc3ClientData: notStarted,
    };
  }

  /**
   * Starts the KYC_1 check: the provider's page (the open one again while it is open). Needs KYC_0
   * (422 saying what is missing); already KYC_1, a check under way, or a live client (no hosted
   * provider configured) → 409.
   */
  async startKyc1(clientId: string, userId: string): Promise<{ id: string; verificationUrl: string }> {
    const { db, users, kyc, verifications } = this.deps;
    // Read before the transaction (PGlite has one connection: nothing outside the transaction
    // may run inside it); the user's tier and information are read under its lock.
    const [rules, latest, mode] = await Promise.all([
      kyc.rulesFor(clientId),
      kyc.latest(clientId, userId),
      getClientMode(db, clientId),
    ]);
    const verification = await inTransaction(db, async (tx) => {
      const user = await users.get(tx, clientId, userId, { forUpdate: true });
      const info = await users.info(tx, clientId, userId);
      if (user.tier >= KYC_1)
        throw error("CONFLICT", "KYC_1_REACHED", "the customer is at KYC_1 already: nothing to verify");
      if (user.tier < KYC_0) {
        const fields = missingFields(rules, info, KYC_0);
        if (fields.length > 0)
          throw error(
            "INVALID",
            "MIN_INFO_MISSING",
            `KYC_0 comes first: the profile lacks ${fields.join(", ")}`,
            {
              fields,
            },
          );
        throw error(
          "INVALID",
          "MIN_ASSESSMENT_MISSING",
          "KYC_0 comes first: the profile is complete but not accepted (yet)",
          { assessment: { requiredTier: KYC_0, currentTier: user.tier } },
        );
      }
      const newest = await verifications.latest(tx, clientId, userId);
      if (
        newest?.status !== "OPEN" &&
        hasField(info, "ID_DOCUMENT") &&
        (latest?.status === "PENDING" || latest?.status === "UNDER_REVIEW")
      )
        throw error(
          "CONFLICT",
          "KYC_1_UNDER_WAY",
          "the KYC_1 check is under way: see GET /v2/customer/kyc/data",
          {
            retryable: true,
          },
        );
      if (mode !== "sandbox")
        throw error(
          "CONFLICT",
          "PROVIDER_NOT_CONFIGURED",
          "no KYC provider with a hosted ID + liveness check is configured for live clients; the sandbox's serves sandbox clients only",
        );
      return verifications.open(tx, clientId, userId);
    });
    return { id: verification.id, verificationUrl: verifications.url(verification.id) };
  }

  /** The verification behind a hosted page: unknown, or a live client's → 404 (nothing revealed). */
  async verification(id: string): Promise<Verification> {
    const found = await this.deps.verifications.find(id);
    if (!found || (await getClientMode(this.deps.db, found.clientId)) !== "sandbox")
      throw error("NOT_FOUND", "VERIFICATION_NOT_FOUND", "the verification was not found");
    return found;
  }

  /**
   * The customer's decision on the hosted page: `submit` records the captured ID document and
   * starts the KYC assessment (request id `kyc1-<verification id>`, so a second submit is the same
   * check); `cancel` abandons the page. Answers the verification as it is now.
   */
  async decideVerification(id: string, decision: "submit" | "cancel") {
    const verification = await this.verification(id);
    const wanted = decision === "submit" ? "SUBMITTED" : "ABANDONED";
    if (verification.status === "OPEN") {
      const claimed = await this.deps.verifications.claim(verification.id, wanted);
      if (claimed && wanted === "SUBMITTED") {
        try {
          await this.submitDocuments(verification);
        } catch (failure) {
          // Nothing was started: the page may be submitted again.
          await this.deps.verifications.reopen(verification.id);
          throw failure;
        }
      }
    }
    const now = await this.verification(verification.id);
    return { verification: now, decided: now.status === wanted };
  }

  /** The captured document (of the residence country) joins the user; then the core's assessment. */
  private async submitDocuments(verification: Verification): Promise<void> {
    const { clientId, userId, id } = verification;
    const info = await this.deps.users.info(this.deps.db, clientId, userId);
    const country =
      info.countryOfResidence ??
      info.addresses?.find((a) => a.type === "HOME")?.country ??
      info.addresses?.[0]?.country;
    if (!country)
      throw error(
        "CONFLICT",
        "COUNTRY_UNKNOWN",
        "the customer's residence country is not known: complete the profile first",
      );
    try {
      await this.deps.kyc.start({
        clientId,
        userId,
        requestId: `kyc1-${id}`,
        info: { idDocument: this.deps.verifications.document(verification, country) },
        solicited: true,
      });
    } catch (failure) {
      // Already started for this page (a retry after a lost answer): the same check.
      if (failure instanceof KycError && failure.code === "ASSESSMENT_EXISTS") return;
      throw failure;
    }
  }
}

const invalid = (field: string, message: string) =>
  new DomainError("INVALID", "INVALID_REQUEST", `${field}: ${message}`, undefined, {
    errors: [{ field, message }],
  });

/** The residence address: the HOME one, else the first without a type; -1 if none. */
function residenceIndex(addresses: Address[]): number {
  const home = addresses.findIndex((a) => a.type === "HOME");
  return home >= 0 ? home : addresses.findIndex((a) => a.type === undefined);
}

/** What a PATCH merges into the core's information (a 400 if it would leave a partial address). */
function infoPatch(info: UserInfo, body: PayinProfile): UserInfo {
  const patch: UserInfo = {};
  if (body.firstName !== undefined || body.lastName !== undefined)
    patch.name = {
      ...(body.firstName !== undefined ? { firstName: body.firstName } : {}),
      ...(body.lastName !== undefined ? { lastName: body.lastName } : {}),
    };
  if (body.dateOfBirth !== undefined) patch.dateOfBirth = body.dateOfBirth;
  const country = body.residenceCountry === undefined ? undefined : toAlpha2(body.residenceCountry);
  if (country !== undefined) patch.countryOfResidence = country;

  const addresses = info.addresses ?? [];
  const index = residenceIndex(addresses);
  const current = index >= 0 ? addresses[index] : undefined;
  const touchesAddress =
    body.residenceStreet !== undefined ||
    body.residenceCity !== undefined ||
    body.residenceZipCode !== undefined ||
    (country !== undefined && current !== undefined);
  if (!touchesAddress) return patch;

  const stored = (code: string | undefined) => (code === undefined ? undefined : (toAlpha2(code) ?? code));
  const street = body.residenceStreet ?? current?.street;
  const city = body.residenceCity ?? current?.city;
  const postalCode = body.residenceZipCode ?? current?.postalCode;
  const addressCountry = country ?? stored(current?.country) ?? stored(info.countryOfResidence);
  const missing = [
    ...(street ? [] : ["residenceStreet"]),
    ...(city ? [] : ["residenceCity"]),
    ...(addressCountry ? [] : ["residenceCountry"]),
  ];
  if (missing.length > 0 || !street || !city || !addressCountry) {
    const message = "needed for the residence address (street, city and country; the zip code is optional)";
    throw error(
      "INVALID",
      "INVALID_REQUEST",
      `the residence address is incomplete: give ${missing.join(", ")}`,
      {
        errors: missing.map((field) => ({ field, message })),
      },
    );
  }
  const home: Address = {
    type: "HOME",
    street,
    city,
    ...(postalCode !== undefined ? { postalCode } : {}),
    ...(current?.state !== undefined ? { state: current.state } : {}),
    country: addressCountry,
  };
  const next = [...addresses];
  if (index >= 0) next[index] = home;
  else next.unshift(home);
  patch.addresses = next;
  return patch;
}

/**
 * The `KYC_1` check's status, from the user's tier, their newest verification page and their
 * latest assessment (any assessment once the information holds an ID document is a KYC_1 check:
 * the provider is shown the document, and an acceptance grants tier 2):
 * - tier ≥ 2 → APPROVED (however it was reached: this face, the Platform API, staff).
 * - the newest verification page is OPEN (documents awaited) → UNDER_REVIEW, as `kyc/start` answered.
 * - no ID document in the information (never started, or the page was cancelled) → UNDEFINED.
 * - otherwise by the latest assessment: PENDING / UNDER_REVIEW → UNDER_REVIEW; REFUSED → DENIED with
 *   the refusal reason; REQUESTED_MORE_INFORMATION → DENIED, reason MORE_INFORMATION_REQUESTED;
 *   ACCEPTED below tier 2 (the client's tiers ask for more than the document) → DENIED, reason
 *   INSUFFICIENT_INFORMATION; ERROR → UNDEFINED, reason PROVIDER_ERROR (no decision: start again);
 *   none → UNDEFINED. Each of DENIED and UNDEFINED lets the customer start the check again.
 */
/** The words a front end shows for a DENIED or failed check (`rejectFormattedMessage`), else null. */
function rejectMessage({ status, reason }: Kyc1Status): string | null {
  if (reason === null) return status === "DENIED" ? "The identity check was refused." : null;
  switch (reason) {
    case "MORE_INFORMATION_REQUESTED":
      return "More information is needed: start the identity check again.";
    case "INSUFFICIENT_INFORMATION":
      return "The documents were not enough to verify the identity: start the identity check again.";
    case "PROVIDER_ERROR":
      return "The identity check could not be completed: start it again.";
    default:
      return `The identity check was refused (${reason}).`;
  }
}

function kyc1Status(
  tier: number,
  info: UserInfo,
  verification: Verification | undefined,
  latest: Assessment | undefined,
): Kyc1Status {
  if (tier >= KYC_1) return { status: "APPROVED", reason: null };
  if (verification?.status === "OPEN") return { status: "UNDER_REVIEW", reason: null };
  if (!hasField(info, "ID_DOCUMENT") || !latest) return { status: "UNDEFINED", reason: null };
  switch (latest.status) {
    case "PENDING":
    case "UNDER_REVIEW":
      return { status: "UNDER_REVIEW", reason: null };
    case "REFUSED":
      return { status: "DENIED", reason: latest.refusalReason ?? "REFUSED" };
    case "REQUESTED_MORE_INFORMATION":
      return { status: "DENIED", reason: "MORE_INFORMATION_REQUESTED" };
    case "ACCEPTED":
      return { status: "DENIED", reason: "INSUFFICIENT_INFORMATION" };
    case "ERROR":
      return { status: "UNDEFINED", reason: "PROVIDER_ERROR" };
  }
}
