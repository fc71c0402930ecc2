/**
 * The sandbox rates provider (sandbox.md): a shipped table of prices in USD, as exact decimal
 * strings. Conversions are done in integers (minor units × rate numerator / denominator).
 */
export const SANDBOX_USD_PRICES: Record<string, string> = {
  USD: "1",
  EUR: "1.08",
  GBP: "1.27",
  CHF: "1.13",
  SEK: "0.095",
  JPY: "0.0067",
  USDC: "1.00",
  USDT: "1.00",
  BTC: "64800",
  ETH: "3500",
};

/** Decimal places of well-known currencies (the ledger keeps each client's own). */
export const KNOWN_SCALES: Record<string, number> = {
  USD: 2,
  EUR: 2,
  GBP: 2,
  CHF: 2,
  SEK: 2,
  JPY: 0,
  USDC: 6,
  USDT: 6,
  BTC: 8,
  ETH: 18,
};

export interface RatesProvider {
  /** The price of one unit of `currency` in USD, as a decimal string; undefined if unknown. */
  usdPrice(currency: string): Promise<string | undefined>;
}

export class SandboxRatesProvider implements RatesProvider {
  constructor(private readonly prices: Record<string, string> = SANDBOX_USD_PRICES) {}

  async usdPrice(currency: string) {
    return this.prices[currency];
  }
}

/** `minor` units of a currency at `scale`, priced at `usdPrice`, in US cents (rounded half up). */
export function toUsdCents(minor: bigint, scale: number, usdPrice: string): bigint {
  const [whole = "0", fraction = ""] = usdPrice.split(".");
  const numerator = BigInt(whole + fraction);
  const denominator = 10n ** BigInt(fraction.length) * 10n ** BigInt(scale);
  const scaled = minor * numerator * 100n;
  return (scaled * 2n + denominator) / (2n * denominator);
}
