import { z } from "zod";
import type { RateInForce, UsdRateVersion } from "./service.ts";

/** The wire shapes of a currency's USD rates, shared by the Wallet API and the admin API (Ferry's own shapes). */

export const rateVersionSchema = z
  .object({
    id: z.string(),
    version: z.number().int(),
    rate: z.string().meta({ example: "0.01" }),
    effectiveFrom: z.string(),
    setBy: z
      .object({ kind: z.string(), id: z.string().nullable(), role: z.string().nullable() })
      .meta({ description: "staff (the client's user id and role) or admin (the platform admin)" }),
    createdAt: z.string(),
  })
  .meta({ id: "CurrencyRateVersion" });

export const inForceSchema = z
  .object({
    rate: z.string(),
    source: z.enum(["PROVIDER", "CLIENT"]),
    version: z.number().int().nullable(),
    effectiveFrom: z.string().nullable(),
  })
  .nullable()
  .meta({ id: "CurrencyRateInForce" });

export const showVersion = (v: UsdRateVersion) => ({
  id: v.id,
  version: v.version,
  rate: v.rate,
  effectiveFrom: v.effectiveFrom.toISOString(),
  setBy: v.setBy,
  createdAt: v.createdAt.toISOString(),
});

export const showInForce = (r: RateInForce | null) =>
  r && {
    rate: r.rate,
    source: r.source,
    version: r.version,
    effectiveFrom: r.effectiveFrom?.toISOString() ?? null,
  };
