import fc from "fast-check";
import { expect, it } from "vitest";
import {
  applyDirection,
  type Commission,
  CommissionError,
  type CommissionRule,
  FEE_DIRECTIONS,
  RULE_TYPES,
  ruleFee,
} from "./arithmetic.ts";

const RUNS = Number(process.env.FERRY_PROPERTY_RUNS ?? 500);

/** 1 .. 10^30, often small so that fees exceed amounts (and refusals happen). */
const amountArb = fc.oneof(fc.bigInt({ min: 1n, max: 10_000n }), fc.bigInt({ min: 1n, max: 10n ** 30n }));

/** 0 to 100 with up to 4 decimals, as the wire allows ("0", "1.5", "99.0001", "100"). */
const percentArb = fc.bigInt({ min: 0n, max: 100_0000n }).chain((tenThousandths) =>
  fc.constantFrom(0, 1, 2, 3, 4).map((decimals) => {
    const unit = 10n ** BigInt(4 - decimals);
    const value = (tenThousandths / unit) * unit; // drop the decimals this text does not show
    const whole = (value / 10_000n).toString();
    const fraction = (value % 10_000n).toString().padStart(4, "0").slice(0, decimals);
    return decimals === 0 ? whole : `${whole}.${fraction}`;
  }),
);

const ruleArb: fc.Arbitrary<CommissionRule> = fc.record({
  beginAmount: fc.constant(0n),
  endAmount: fc.constant(null),
  type: fc.constantFrom(...RULE_TYPES),
  valueFixed: fc.bigInt({ min: 0n, max: 10n ** 12n }),
  valuePercent: percentArb,
});

it("commission arithmetic keeps its invariants for every rule type and direction", () => {
  fc.assert(
    fc.property(amountArb, ruleArb, fc.constantFrom(...FEE_DIRECTIONS), (amount, rule, direction) => {
      const fee = ruleFee(rule, amount);
      expect(typeof fee).toBe("bigint");
      expect(fee >= 0n).toBe(true);
      let commission: Commission;
      try {
        commission = applyDirection(amount, fee, direction);
      } catch (error) {
        expect(error).toBeInstanceOf(CommissionError);
        expect((error as CommissionError).code).toBe("AMOUNT_BELOW_COMMISSION");
        // Refused only when the recipient really would get nothing.
        const recipientShare = direction === "OUT" ? 0n : direction === "IN" ? fee : fee / 2n;
        expect(amount - recipientShare <= 0n).toBe(true);
        return;
      }
      const { senderAmount, recipientAmount, transactionAmount } = commission;
      for (const value of [senderAmount, recipientAmount, transactionAmount, commission.fee]) {
        expect(typeof value).toBe("bigint");
      }
      expect(commission.fee).toBe(fee);
      expect(transactionAmount).toBe(amount);
      expect(commission.direction).toBe(direction);
      expect(senderAmount).toBe(recipientAmount + fee);
      expect(recipientAmount > 0n).toBe(true);
      expect(senderAmount >= amount && amount >= recipientAmount).toBe(true);
      if (direction === "SHARED") {
        const difference = senderAmount - amount - (amount - recipientAmount);
        expect(difference === 0n || difference === 1n).toBe(true);
      }
    }),
    { numRuns: RUNS },
  );
});

it("percent fees round half up: |fee − exact| ≤ ½ minor unit, ties upward", () => {
  fc.assert(
    fc.property(amountArb, percentArb, (amount, percent) => {
      const fee = ruleFee(
        { beginAmount: 0n, endAmount: null, type: "percent", valueFixed: 0n, valuePercent: percent },
        amount,
      );
      const [whole = "0", fraction = ""] = percent.split(".");
      const numerator = amount * BigInt(whole + fraction);
      const denominator = 100n * 10n ** BigInt(fraction.length);
      // fee − ½ ≤ exact < fee + ½, in integers: 2·fee·d − d ≤ 2·n < 2·fee·d + d
      expect(2n * fee * denominator - denominator <= 2n * numerator).toBe(true);
      expect(2n * numerator < 2n * fee * denominator + denominator).toBe(true);
    }),
    { numRuns: RUNS },
  );
});
