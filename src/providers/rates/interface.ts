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

/** `minor` units of a currency at `scale`, priced at `usdPrice`, in US cents (rounded half up). */
export function toUsdCents(minor: bigint, scale: number, usdPrice: string): bigint {
  const [whole = "0", fraction = ""] = usdPrice.split(".");
  const numerator = BigInt(whole + fraction);
  const denominator = 10n ** BigInt(fraction.length) * 10n ** BigInt(scale);
  const scaled = minor * numerator * 100n;
  return (scaled * 2n + denominator) / (2n * denominator);
}
