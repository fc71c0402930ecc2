import { z } from "zod";
import { AmountError, parseAmount } from "../../lib/money.ts";

/**
 * Fees. A `FeeSchedule` answers the fee of one operation; today's implementation reads the
 * client's simple configuration (percent and/or fixed, per transaction type and currency). The
 * Wallet API's commission profiles will be another FeeSchedule, so callers do not change.
 */
export interface FeeQuery {
  transactionType: string;
  currency: string;
  /** Minor units. */
  amount: bigint;
  scale: number;
}

export interface FeeSchedule {
  /** The fee in minor units of the transaction's currency (never negative, never above the amount). */
  feeFor(query: FeeQuery): bigint;
}

export const feeRuleSchema = z
  .object({
    transactionType: z.enum(["DEPOSIT", "WITHDRAWAL", "TRANSFER", "TRADE", "PAYMENT"]),
    currency: z
      .string()
      .regex(/^[A-Z0-9]{2,12}$/)
      .optional()
      .describe("Absent: any currency"),
    percent: z
      .string()
      .regex(/^\d{1,3}(\.\d{1,4})?$/, 'a percentage such as "1.5"')
      .optional(),
    fixed: z
      .string()
      .regex(/^\d{1,20}(\.\d{1,18})?$/, "a decimal amount in the currency")
      .optional(),
  })
  .strict();
export const feesConfigSchema = z.array(feeRuleSchema).max(100);
export type FeeRule = z.infer<typeof feeRuleSchema>;

/** percent of amount, rounded half up to the minor unit. */
export function percentOf(amount: bigint, percent: string): bigint {
  const [whole = "0", fraction = ""] = percent.split(".");
  const numerator = BigInt(whole + fraction);
  const denominator = 100n * 10n ** BigInt(fraction.length);
  return (amount * numerator * 2n + denominator) / (2n * denominator);
}

export class ConfiguredFees implements FeeSchedule {
  constructor(private readonly rules: FeeRule[]) {}

  feeFor(query: FeeQuery): bigint {
    // A rule for the currency beats a rule for any currency.
    const rule =
      this.rules.find((r) => r.transactionType === query.transactionType && r.currency === query.currency) ??
      this.rules.find((r) => r.transactionType === query.transactionType && r.currency === undefined);
    if (!rule) return 0n;
    let fee = rule.percent ? percentOf(query.amount, rule.percent) : 0n;
    if (rule.fixed) {
      try {
        fee += parseAmount(rule.fixed, query.scale);
      } catch (error) {
        if (!(error instanceof AmountError)) throw error;
        // A fixed fee finer than the currency's scale cannot apply to it: ignored, as documented.
      }
    }
    return fee > query.amount ? query.amount : fee;
  }
}
