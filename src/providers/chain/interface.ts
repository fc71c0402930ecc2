/**
 * A crypto chain: sends an amount of a currency to an address and says when the transfer is
 * confirmed. Ferry's key makes a retried send the same transfer (never two).
 */
export interface ChainTransferRequest {
  idempotencyKey: string;
  currency: string;
  address: string;
  /** Minor units of `currency` (satoshi, wei, …). */
  amount: bigint;
}

export type ChainStatus = { state: "PENDING"; confirmsAt: Date } | { state: "CONFIRMED" };

export interface Chain {
  readonly name: string;
  /** Whether `address` is a well-formed address for `currency` on this chain. */
  validAddress(currency: string, address: string): boolean;
  send(request: ChainTransferRequest): Promise<{ txHash: string }>;
  status(txHash: string): Promise<ChainStatus>;
}

/** Address formats per currency: Bitcoin (base58 or bech32), Ethereum and its tokens (0x + 40 hex). */
export function addressFormatOk(currency: string, address: string): boolean {
  switch (currency) {
    case "BTC":
      return /^(bc1[02-9ac-hj-np-z]{11,71}|[13][1-9A-HJ-NP-Za-km-z]{25,34}|tb1[02-9ac-hj-np-z]{11,71}|[mn2][1-9A-HJ-NP-Za-km-z]{25,34})$/.test(
        address,
      );
    case "ETH":
    case "USDC":
    case "USDT":
      return /^0x[0-9a-fA-F]{40}$/.test(address);
    default:
      return false;
  }
}
