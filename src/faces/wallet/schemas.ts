import { z } from "zod";
import type { Login } from "../../modules/logins/service.ts";

/** Shapes the Wallet API routes share. */

export const moneyInput = z
  .union([z.string().max(60), z.number()])
  .meta({ example: "100.00", description: "Major units, as a decimal string (a JSON number is accepted)" });
export const money = z.string().meta({ example: "100.00" });

export const loginInput = z.string().min(3).max(254).meta({ example: "anna@example.com" });
export const otpInput = z
  .string()
  .regex(/^[0-9]{6}$/, "6 digits")
  .meta({ example: "123456" });
export const passwordInput = z.string().min(1).max(128).meta({ example: "Str0ng#Pass" });

export const serialInput = z
  .string()
  .regex(/^[0-9]{12,32}$/, "an account serial (digits)")
  .meta({ example: "4410293384756102" });
export const uuidParam = z.uuid();

/** Pages: `{pageNumber (from 0), pageSize, filter, sort}` in the body. */
export function pageBody<F extends z.ZodType>(filter: F) {
  return z
    .object({
      pageNumber: z.number().int().min(0).max(1_000_000).default(0),
      pageSize: z.number().int().min(1).max(100).default(20),
      filter: filter.optional(),
      sort: z.record(z.string().max(64), z.enum(["asc", "desc"])).optional(),
    })
    .strict();
}

export function pageAnswer<T extends z.ZodType>(record: T) {
  return z.object({
    pageNumber: z.number().int(),
    pageSize: z.number().int(),
    totalRecords: z.number().int(),
    totalPages: z.number().int(),
    records: z.array(record),
  });
}

export function toPageAnswer<T>(records: T[], total: number, page: { pageNumber: number; pageSize: number }) {
  return {
    pageNumber: page.pageNumber,
    pageSize: page.pageSize,
    totalRecords: total,
    totalPages: Math.ceil(total / page.pageSize),
    records,
  };
}

export const pageWindow = (page: { pageNumber: number; pageSize: number }) => ({
  offset: page.pageNumber * page.pageSize,
  limit: page.pageSize,
});

export const organizationSchema = z
  .object({ id: z.string(), name: z.string(), type: z.string() })
  .meta({ id: "WalletOrganization" });

export const memberSchema = z
  .object({
    role: z.string(),
    organization: organizationSchema,
    permissions: z.array(z.string()),
    user: z.object({ id: z.string(), name: z.string(), profileOrganizationId: z.string() }),
  })
  .meta({ id: "WalletMember" });

export function memberOf(login: Login) {
  return {
    role: login.role,
    organization: { id: login.organization.id, name: login.organization.name, type: login.organization.type },
    permissions: [] as string[],
    user: { id: login.id, name: login.name ?? login.login, profileOrganizationId: login.organization.id },
  };
}

export const tokenAnswer = z
  .object({
    action: z.literal("TOKEN_CREATED"),
    authorizationToken: z.object({ token: z.string(), expiresAt: z.string() }),
    members: z.array(memberSchema),
  })
  .meta({ id: "WalletTokenCreated" });

/** The calculation object: what the sender pays, the recipient gets, and the commission. */
export const commissionAnswer = z
  .object({
    transactionAmount: money,
    senderAmountPush: money,
    recipientAmountPush: money,
    commissionAmountPush: money,
    currency: z.object({ code: z.string(), fraction: z.number().int() }),
  })
  .meta({ id: "WalletCalculation" });

export const okAnswer = z.object({ status: z.literal("ok") });

/** The optional `Idempotency-Key` of a money-moving call. */
export const idempotencyHeaders = z.object({
  "idempotency-key": z
    .string()
    .regex(/^[A-Za-z0-9_-]{3,255}$/)
    .optional()
    .describe("The same key with the same body returns the first answer again"),
});

/** Pages of a GET list: `pageNumber` (from 0) and `pageSize` as query parameters. */
export const pageQueryString = z.object({
  pageNumber: z.coerce.number().int().min(0).max(1_000_000).default(0),
  pageSize: z.coerce.number().int().min(1).max(100).default(20),
});
