import type { Db } from "../../db/database.ts";
import { DomainError } from "../../lib/errors.ts";
import { KNOWN_SCALES } from "../../providers/rates/interface.ts";
import * as ledger from "../ledger/service.ts";
import { type Account, accountFigures, type Transfer } from "../ledger/types.ts";

/**
 * A user's wallets: user-wallet accounts on the ledger, one currency each. A currency the client
 * has not used yet is added to its ledger with its usual scale on the first wallet.
 */
export class Wallets {
  constructor(private readonly db: Db) {}

  async open(clientId: string, userId: string, currency: string, label?: string): Promise<Account> {
    const known = await ledger.findCurrency(this.db, clientId, currency);
    if (!known) {
      const scale = KNOWN_SCALES[currency];
      if (scale === undefined)
        throw new DomainError(
          "INVALID",
          "UNKNOWN_CURRENCY",
          `currency ${currency} is not supported`,
          "currency",
        );
      await ledger.createCurrency(this.db, { clientId, code: currency, scale });
    }
    return ledger.openAccount(this.db, {
      clientId,
      currency,
      kind: "USER_WALLET",
      ownerId: userId,
      label: label ?? null,
    });
  }

  async list(clientId: string, userId: string): Promise<Account[]> {
    const { accounts } = await ledger.listAccounts(
      this.db,
      { clientId, ownerId: userId },
      { offset: 0, limit: 100 },
    );
    return accounts.filter((a) => a.kind === "USER_WALLET");
  }

  /** A wallet of this user (404 for anyone else's). */
  async get(clientId: string, userId: string, walletId: string): Promise<Account> {
    const account = await ledger.getAccount(this.db, walletId, clientId).catch(() => undefined);
    if (!account || account.ownerId !== userId || account.kind !== "USER_WALLET") {
      throw new DomainError("NOT_FOUND", "WALLET_NOT_FOUND", `no wallet ${walletId}`);
    }
    return account;
  }

  async history(clientId: string, userId: string, walletId: string, page: { offset: number; limit: number }) {
    const wallet = await this.get(clientId, userId, walletId);
    const { transfers, total } = await ledger.listEntries(this.db, wallet.id, page);
    return { wallet, transfers, total };
  }

  async scaleOf(account: Account): Promise<number> {
    return (await ledger.getCurrency(this.db, account.clientId, account.currency)).scale;
  }
}

export interface WalletFigures {
  availableBalance: bigint;
  pendingBalance: bigint;
  totalBalance: bigint;
}

/** total = posted balance; available = total minus holds; pending = incoming not yet posted. */
export function walletFigures(account: Account): WalletFigures {
  const f = accountFigures(account);
  return { totalBalance: f.balance, availableBalance: f.available, pendingBalance: f.incoming };
}

export function entryDirection(walletId: string, transfer: Transfer): "DEBIT" | "CREDIT" {
  return transfer.debitAccountId === walletId ? "DEBIT" : "CREDIT";
}
