import { createHash } from "node:crypto";
import type { Db } from "../../db/database.ts";
import type { SandboxGate } from "../sandbox-gate.ts";
import { addressFormatOk, type Chain, type ChainStatus, type ChainTransferRequest } from "./interface.ts";

/**
 * The sandbox chain: a transfer gets its transaction hash at once and is confirmed after
 * `confirmDelayMs` (FERRY_SANDBOX_CHAIN_CONFIRM_MS). It keeps its transfers by Ferry's key, so a
 * retried send is the same transfer with the same hash.
 */
export class SandboxChain implements Chain {
  readonly name = "sandbox-chain";

  constructor(
    private readonly db: Db,
    private readonly confirmDelayMs = 3000,
    readonly gate?: SandboxGate,
  ) {}

  validAddress(currency: string, address: string): boolean {
    return addressFormatOk(currency, address);
  }

  async send(request: ChainTransferRequest): Promise<{ txHash: string }> {
    this.gate?.before("chain.send");
    const txHash = `0x${createHash("sha256").update(`sandbox-chain\u0000${request.idempotencyKey}`).digest("hex")}`;
    await this.db
      .insertInto("sandbox_chain_transfers")
      .values({
        idempotency_key: request.idempotencyKey,
        tx_hash: txHash,
        currency: request.currency,
        address: request.address,
        amount: request.amount.toString(),
        confirms_at: new Date(Date.now() + this.confirmDelayMs),
      })
      .onConflict((oc) => oc.column("idempotency_key").doNothing())
      .execute();
    await this.gate?.after("chain.send");
    return { txHash };
  }

  async status(txHash: string): Promise<ChainStatus> {
    const row = await this.db
      .selectFrom("sandbox_chain_transfers")
      .select("confirms_at")
      .where("tx_hash", "=", txHash)
      .executeTakeFirst();
    if (!row) throw new Error(`no sandbox chain transfer ${txHash}`);
    const confirmsAt = new Date(row.confirms_at);
    return confirmsAt.getTime() > Date.now() ? { state: "PENDING", confirmsAt } : { state: "CONFIRMED" };
  }
}
