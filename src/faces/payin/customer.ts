import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { guard, sessionOf, walletSecurity } from "../../http/wallet-session.ts";
import { isCountryCode } from "../../lib/countries.ts";
import type { Services } from "../../services.ts";
import { errorResponses } from "./errors.ts";
import type { PayinApp } from "./schemas.ts";

/**
 * The customer's profile and KYC levels (`/v2/customer`), on the core's user and tiers: one user,
 * one truth across faces. `KYC_0` is tier ≥ 1 (name, e-mail, address, birth date assessed), `KYC_1`
 * tier ≥ 2 (plus an ID document and liveness check). The same access tokens as the Wallet API,
 * customers only (`own`: staff roles get a 403).
 *
 * Decisions where the spec is silent:
 * - `residenceCountry` is ISO 3166-1 alpha-2 or alpha-3 in any letter case; it is stored (and read
 *   back) as alpha-2, as `countryOfResidence` and as the HOME address's country. An unassigned code
 *   is a 400.
 * - The residence address is the user's HOME address in the core (or, if they have none, their first
 *   address without a type). The core keeps an address only whole (street, city, country): a PATCH
 *   that touches the street, city or zip code must leave a whole address (what it does not give is
 *   taken from the stored one, the country from `countryOfResidence`); otherwise a 400 names the
 *   missing fields. `residenceCountry` alone sets the country of residence (and the HOME address's
 *   country, if there is one).
 * - Names: letters of any script (with their combining marks), spaces, apostrophes (' and ’) and
 *   hyphens, at least one letter, 1–100 characters after trimming (stored trimmed, NFC). City and
 *   street: `[A-Za-z0-9\- /.,#]`, at least one letter or digit, at most 100 / 200 characters (the
 *   core's limits). Zip: 1–20 of `[A-Za-z0-9 -]` with a letter or digit.
 *   (These rules are the module's: src/modules/payin/customers.ts.)
 * - `dateOfBirth`: an ISO date (YYYY-MM-DD); the customer must be 18 or older today (UTC; a 29 February
 *   birthday comes of age on 1 March in common years) and at most 120 years old.
 * - `primaryCurrency` (`[A-Z]{3,5}`) is the login's preference (logins.primary_currency), not KYC
 *   information: changing it starts no KYC check.
 * - A PATCH that changes the user's information starts a KYC refresh, as `PATCH /api/v1/profile`
 *   does; the sandbox decides it by last name, so a complete profile gives `KYC_0` after its delay.
 * - Once at `KYC_1` the first and last name are locked: a different value → 400 naming the field;
 *   the same value again (after trimming) is accepted. The check and the write are one transaction
 *   with the user's row locked, so a KYC_1 decision cannot slip between them.
 */

const nameSchema = (field: string) =>
  z
    .string()
    .trim()
    .normalize("NFC")
    .min(1, `${field} must not be empty`)
    .max(100, `${field} must be at most 100 characters`)
    .regex(/^[\p{L}\p{M}' ’-]+$/u, "letters, spaces, apostrophes and hyphens only")
    .regex(/\p{L}/u, "must contain a letter");

const addressText = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .regex(/^[A-Za-z0-9\- /.,#]+$/, "letters A–Z, digits, spaces and - / . , # only")
    .regex(/[A-Za-z0-9]/, "must contain a letter or a digit");

/** Age in whole years on `today` (UTC) of someone born on `date` (YYYY-MM-DD). */
function ageOn(date: string, today: Date): number {
  const [year, month, day] = date.split("-").map(Number) as [number, number, number];
  let age = today.getUTCFullYear() - year;
  const beforeBirthday =
    today.getUTCMonth() + 1 < month || (today.getUTCMonth() + 1 === month && today.getUTCDate() < day);
  if (beforeBirthday) age--;
  return age;
}

export const MIN_AGE = 18;
export const MAX_AGE = 120;

const profileFields = {
  firstName: nameSchema("firstName").meta({ example: "Marie" }),
  lastName: nameSchema("lastName").meta({ example: "Curie" }),
  primaryCurrency: z
    .string()
    .regex(/^[A-Z]{3,5}$/, "3 to 5 capital letters, such as EUR")
    .meta({ example: "EUR" }),
  residenceCountry: z
    .string()
    .regex(/^[A-Za-z]{2,3}$/, "an ISO 3166-1 alpha-2 or alpha-3 code, letters only")
    .refine(isCountryCode, "not an ISO 3166-1 country code")
    .meta({ example: "FRA" }),
  residenceCity: addressText(100).meta({ example: "Paris" }),
  residenceStreet: addressText(200).meta({ example: "12 Rue de Rivoli" }),
  residenceZipCode: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9 -]{1,20}$/, "1 to 20 letters, digits, spaces or hyphens")
    .regex(/[A-Za-z0-9]/, "must contain a letter or a digit")
    .meta({ example: "75001" }),
  dateOfBirth: z
    .preprocess(
      // Vault sends a date-time (1990-05-20T00:00:00.000Z): the date as written is the birth date.
      (value) => (typeof value === "string" && isDateTime(value) ? value.slice(0, 10) : value),
      z.iso.date("an ISO date (YYYY-MM-DD) or date-time (YYYY-MM-DDThh:mm:ss.sssZ)"),
    )
    .refine((date) => {
      const age = ageOn(date, new Date());
      return age >= MIN_AGE && age <= MAX_AGE;
    }, `must be a date in the past: the customer must be at least ${MIN_AGE} (and at most ${MAX_AGE}) years old`)
    .meta({ example: "1990-05-20T00:00:00.000Z" }),
};

const dateTime = z.iso.datetime({ offset: true, local: true });
const isDateTime = (value: string) => /^\d{4}-\d{2}-\d{2}T/.test(value) && dateTime.safeParse(value).success;

const profilePatchSchema = z
  .object({
    firstName: profileFields.firstName.optional(),
    lastName: profileFields.lastName.optional(),
    primaryCurrency: profileFields.primaryCurrency.optional(),
    residenceCountry: profileFields.residenceCountry.optional(),
    residenceCity: profileFields.residenceCity.optional(),
    residenceStreet: profileFields.residenceStreet.optional(),
    residenceZipCode: profileFields.residenceZipCode.optional(),
    dateOfBirth: profileFields.dateOfBirth.optional(),
  })
  .strict();

/** Vault's profile (Profile.json): a field not set is left out, never null. */
const profileSchema = z.object({
  email: z.string().optional(),
  confirmedEmail: z.boolean().optional(),
  phone: z.string().optional().describe("+ and digits"),
  firstName: z.string().optional(),
  lastName: z.string().optional(),
  primaryCurrency: z.string().optional(),
  residenceCountry: z.string().optional().describe("ISO 3166-1 alpha-2, as stored"),
  residenceCity: z.string().optional(),
  residenceStreet: z.string().optional(),
  residenceZipCode: z.string().optional(),
  pushEnabled: z.boolean().optional().describe("Always false: Ferry sends no push notifications"),
  enabled2FA: z.boolean().optional(),
  dateOfBirth: z.string().optional().meta({ example: "1990-05-20T00:00:00.000Z" }),
  veroId: z.string().optional().describe("Never set: Ferry has no Vero id"),
});

const kycStatus = z.enum(["APPROVED", "UNDEFINED", "UNDER_REVIEW", "DENIED"]);
const kycLevelData = z.object({
  status: kycStatus,
  reason: z.string().nullable(),
  rejectFormattedMessage: z.string().nullable().describe("Words to show for DENIED (or a failed check)"),
});
const kycDataSchema = z.object({
  kycLevel: z.enum(["KYC_0", "KYC_1"]).nullable(),
  kyc1ClientData: kycLevelData,
  kyc2ClientData: kycLevelData.describe("Always UNDEFINED: no KYC_2 on this face"),
  kyc3ClientData: kycLevelData.describe("Always UNDEFINED: no KYC_3 on this face"),
});
const tags = ["payin: customer"];

export const customerRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  profile(app, services);
  changeProfile(app, services);
  kycData(app, services);
  kycStart(app, services);
};

function profile(app: PayinApp, services: Services) {
  app.get(
    "/profile",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags,
        summary: "The customer's profile",
        description:
          "The fields `PATCH /v2/customer/profile` sets, as stored (the country as ISO 3166-1 alpha-2, the birth date as a date-time at midnight UTC), and the login's `email` (with `confirmedEmail`) or `phone`, `enabled2FA`, `pushEnabled` (false). A field not set is left out (Vault's rule), never null.",
        security: walletSecurity,
        response: { 200: profileSchema, ...errorResponses(401, 403) },
      },
    },
    async (request) => {
      const { clientId, userId } = sessionOf(request);
      return services.payinCustomers.profile(clientId, userId);
    },
  );
}

function changeProfile(app: PayinApp, services: Services) {
  app.patch(
    "/profile",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags,
        summary: "Set the customer's profile (merged); a complete profile gives KYC_0",
        description:
          "Every field optional; what is given is merged into the user's information (the same the Platform and Wallet APIs see), and a change starts a KYC check: a complete profile (with the login's e-mail) gives `KYC_0` once the provider accepts it. `residenceCountry`: ISO 3166-1 alpha-2 or alpha-3, stored as alpha-2. The customer must be 18 or older. Once `KYC_1` is reached, first and last name cannot change (400; the same value is accepted). A street, city or zip code must leave a whole address (street, city, country). Any bad field → 400 naming it, nothing changed.",
        security: walletSecurity,
        body: profilePatchSchema,
        response: { 204: z.null().describe("Saved"), ...errorResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const { clientId, userId } = sessionOf(request);
      await services.payinCustomers.updateProfile(clientId, userId, request.body);
      return reply.code(204).send(null);
    },
  );
}

function kycData(app: PayinApp, services: Services) {
  app.get(
    "/kyc/data",
    {
      preValidation: guard(services, "own"),
      schema: {
        tags,
        summary: "The customer's KYC level and the status of their KYC_1 (ID + liveness) check",
        description:
          "`kycLevel`: `KYC_0` at tier 1, `KYC_1` at tier 2 or above, null below. `kyc1ClientData.status`: APPROVED (tier ≥ 2), UNDER_REVIEW (documents awaited on the verification page, or the check under way or with staff), DENIED (refused, with the provider's reason; or more information requested), UNDEFINED (no check yet, cancelled, or the provider failed: `reason` PROVIDER_ERROR). After DENIED or UNDEFINED the check may be started again.",
        security: walletSecurity,
        response: { 200: kycDataSchema, ...errorResponses(401, 403) },
      },
    },
    async (request) => {
      const { clientId, userId } = sessionOf(request);
      return services.payinCustomers.kycData(clientId, userId);
    },
  );
}

/** Vault's KYC start (`POST /v4/kyc/start?platform=COMMON`): the same check, the verification's `id`. */
export const kycV4Routes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  kycStart(app, services, "/start");
};

function kycStart(app: PayinApp, services: Services, path = "/kyc/start") {
  app.post(
    path,
    {
      preValidation: guard(services, "own"),
      schema: {
        tags,
        summary:
          "Start the KYC_1 check (ID document + liveness): the provider's page to send the customer to",
        description:
          "Needs `KYC_0`: without it a 422 — MIN_INFO_MISSING with the missing `fields` when the profile is incomplete, MIN_ASSESSMENT_MISSING (`assessment: {requiredTier: 1, currentTier}`) when it is complete but not yet accepted. Answers `UNDER_REVIEW` and `verificationUrl`, the sandbox provider's hosted page (Submit documents / Cancel); while that page is open, starting again answers the same page. Already `KYC_1`, or a check under way → 409. A live client has no hosted KYC provider configured → 409 PROVIDER_NOT_CONFIGURED.",
        security: walletSecurity,
        querystring: z
          .object({
            platform: z
              .enum(["COMMON", "WALLETTO"])
              .optional()
              .describe("Vault's platform: accepted, one check for both"),
          })
          .strict(),
        response: {
          200: z.object({
            id: z.string().describe("The verification's id (Vault's answer)"),
            status: z.literal("UNDER_REVIEW"),
            verificationUrl: z.string().meta({
              example: "http://localhost:3000/sandbox/kyc/verification/1b4e28ba-2fa1-4d3b-9c1e-1a2b3c4d5e6f",
            }),
          }),
          ...errorResponses(401, 403, 409, 422),
        },
      },
    },
    async (request) => {
      const { clientId, userId } = sessionOf(request);
      const { id, verificationUrl } = await services.payinCustomers.startKyc1(clientId, userId);
      return { id, status: "UNDER_REVIEW" as const, verificationUrl };
    },
  );
}
