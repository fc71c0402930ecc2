import { sql } from "kysely";
import { cachedRead } from "../../db/cache.ts";
import type { Db } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
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

  /**
   * The user's wallet in a currency — the first one opened — or a new one. Two first credits at
   * once (two payments to a new merchant) must not open two: the find and the open run under a
   * lock on (client, user, currency).
   */
  async defaultFor(clientId: string, userId: string, currency: string): Promise<{ id: string }> {
    const existing = await this.defaultId(clientId, userId, currency);
    if (existing) return { id: existing };
    return inTransaction(this.db, async (tx) => {
      await sql`SELECT pg_advisory_xact_lock(hashtextextended(${`wallet:${clientId}:${userId}:${currency}`}, 0))`.execute(
        tx,
      );
      const { accounts } = await ledger.listAccounts(
        tx,
        { clientId, ownerId: userId },
        { offset: 0, limit: 100 },
      );
      const found = accounts.find((a) => a.kind === "USER_WALLET" && a.currency === currency);
      return found ?? this.openIn(tx, clientId, userId, currency);
    });
  }

  /**
   * The id of the user's first wallet in a currency, if any. Wallets are never deleted and the first
   * stays the first: the answer is kept in the process cache once found.
   */
  defaultId(clientId: string, userId: string, currency: string): Promise<string | undefined> {
    return cachedRead(this.db, "default-wallet", [clientId, userId, currency].join("\u0000"), async () => {
      const row = await this.db
        .selectFrom("ledger_accounts")
        .select("id")
        .where("client_id", "=", clientId)
        .where("owner_id", "=", userId)
        .where("kind", "=", "USER_WALLET")
        .where("currency", "=", currency)
        .orderBy("id")
        .limit(1)
        .executeTakeFirst();
      return row?.id;
    });
  }

  open(clientId: string, userId: string, currency: string, label?: string): Promise<Account> {
    return this.openIn(this.db, clientId, userId, currency, label);
  }

  private async openIn(
    db: Db,
    clientId: string,
    userId: string,
    currency: string,
    label?: string,
  ): Promise<Account> {
    const known = await ledger.findCurrency(db, clientId, currency);
    if (!known) {
      const scale = KNOWN_SCALES[currency];
      if (scale === undefined)
        throw new DomainError(
          "INVALID",
          "UNKNOWN_CURRENCY",
          `currency ${currency} is not supported`,
          "currency",
        );
      await ledger.createCurrency(db, { clientId, code: currency, scale });
    }
    return ledger.openAccount(db, {
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
