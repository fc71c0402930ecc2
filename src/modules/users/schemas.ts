import { z } from "zod";

/** The information a client keeps about a user. All of it is PII: stored encrypted, never logged or sent in a webhook. */
const text = (max: number) => z.string().trim().min(1).max(max);
const country = z
  .string()
  .regex(/^[A-Z]{2,3}$/, "an ISO 3166 alpha-2 or alpha-3 country code")
  .meta({ example: "DE" });

export const addressSchema = z
  .object({
    type: z.enum(["HOME", "BUSINESS", "BILLING", "OTHER"]).optional(),
    street: text(200),
    city: text(100),
    postalCode: text(20).optional(),
    state: text(100).optional(),
    country,
  })
  .strict();

export const userInfoSchema = z
  .object({
    name: z
      .object({
        firstName: text(100).optional(),
        lastName: text(100).optional(),
        middleName: text(100).optional(),
      })
      .strict()
      .optional(),
    emails: z.array(z.email().max(254)).max(10).optional(),
    phones: z
      .array(z.string().regex(/^\+?[0-9 ()-]{6,20}$/, "a phone number such as +491701234567"))
      .max(10)
      .optional(),
    addresses: z.array(addressSchema).max(10).optional(),
    dateOfBirth: z.iso.date().optional().meta({ example: "1990-01-01" }),
    countryOfCitizenship: country.optional(),
    countryOfResidence: country.optional(),
    piis: z
      .array(z.object({ type: z.enum(["SSN", "ITIN", "NATIONAL_ID"]), value: text(64) }).strict())
      .max(10)
      .optional(),
    idDocument: z
      .object({
        type: z.enum(["PASSPORT", "ID_CARD", "DRIVING_LICENSE"]),
        number: text(64),
        country,
        expiryDate: z.iso.date().optional(),
      })
      .strict()
      .optional()
      .describe("The photo ID the KYC provider checks (with a liveness check) for tier 2"),
    tokenAddresses: z
      .array(z.object({ currency: z.string().regex(/^[A-Z0-9]{2,12}$/), address: text(128) }).strict())
      .max(10)
      .optional()
      .describe("Crypto addresses of the user (tier 3)"),
    sourceOfFunds: text(500).optional().describe("Declared source of funds (tier 5)"),
    businessName: text(200).optional(),
    registrationNumber: text(64).optional(),
  })
  .strict();

export type UserInfo = z.infer<typeof userInfoSchema>;

export const userTypeSchema = z.enum(["PERSON", "BUSINESS"]);
export type UserType = z.infer<typeof userTypeSchema>;
export const userStatusSchema = z.enum(["ACTIVE", "INACTIVE", "BLOCKED"]);
export type UserStatus = z.infer<typeof userStatusSchema>;
