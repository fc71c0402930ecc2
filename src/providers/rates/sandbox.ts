import type { RatesProvider } from "./interface.ts";

export { KNOWN_SCALES, type RatesProvider, toUsdCents } from "./interface.ts";

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

export class SandboxRatesProvider implements RatesProvider {
  private readonly prices: Record<string, string>;

  constructor(prices: Record<string, string> = SANDBOX_USD_PRICES) {
    this.prices = { ...prices };
  }

  /** Moves the market (tests, the sandbox): the USD price of `currency` from now on. */
  setPrice(currency: string, usdPrice: string) {
    if (!/^\d{1,15}(\.\d{1,12})?$/.test(usdPrice)) throw new Error(`not a price: ${usdPrice}`);
    this.prices[currency] = usdPrice;
  }

  async usdPrice(currency: string) {
    return this.prices[currency];
  }
}
