import { sql } from "kysely";
import { cachedRead } from "../../db/cache.ts";
import type { Db } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import { DomainError } from "../../lib/errors.ts";
import { KNOWN_SCALES } from "../../providers/rates/interface.ts";
import { digits, issuerFor } from "../catalog/service.ts";
import * as ledger from "../ledger/service.ts";
import { type Account, accountFigures, type Transfer } from "../ledger/types.ts";
import { requireActiveUser } from "../users/service.ts";

/**
 * A user's wallets: user-wallet accounts on the ledger, one currency each. A currency the client
 * has not used yet is added to its ledger with its usual scale on the first wallet. Only an ACTIVE
 * user of the client is given a new wallet (404 / 403 otherwise); existing ones stay readable.
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
    return inTransaction(this.db, (tx) => this.openIn(tx, clientId, userId, currency, label));
  }

  /**
   * Opens an account ("coin") under an issuer of its currency (the one named, or the currency's
   * first active one; none: no prefix), with its serial, in one transaction.
   */
  async openCoin(
    clientId: string,
    userId: string,
    currency: string,
    options: { name?: string | undefined; issuerId?: string | undefined },
  ): Promise<Coin> {
    if (!(await ledger.findCurrency(this.db, clientId, currency)))
      throw new DomainError("NOT_FOUND", "CURRENCY_NOT_FOUND", `no currency ${currency}`, "currencyCode");
    const issuer = await issuerFor(this.db, clientId, currency, options.issuerId);
    return inTransaction(this.db, async (tx) => {
      const account = await this.openIn(tx, clientId, userId, currency, options.name, issuer);
      const serial = await this.serialOf(tx, account);
      return { account, serial, issuerId: issuer?.id ?? null };
    });
  }

  private async openIn(
    db: Db,
    clientId: string,
    userId: string,
    currency: string,
    label?: string,
    issuer?: { id: string; snPrefix: string },
  ): Promise<Account> {
    // No wallet for a user who is not ACTIVE (403), whichever way it is asked for (issue 17.9).
    await requireActiveUser(db, clientId, userId);
    await this.ensureCurrency(clientId, currency, db);
    const account = await ledger.openAccount(db, {
      clientId,
      currency,
      kind: "USER_WALLET",
      ownerId: userId,
      label: label ?? null,
    });
    const chosen = issuer ?? (await issuerFor(db, clientId, currency));
    await db
      .insertInto("coins")
      .values({
        client_id: clientId,
        serial: newSerial(chosen?.snPrefix ?? ""),
        account_id: account.id,
        issuer_id: chosen?.id ?? null,
      })
      .execute();
    return account;
  }

  /**
   * A currency the client has not used yet joins its ledger with its usual scale (a first wallet,
   * a first purchase paid in it); an unknown one is a 400.
   */
  async ensureCurrency(clientId: string, currency: string, db: Db = this.db): Promise<void> {
    if (await ledger.findCurrency(db, clientId, currency)) return;
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

  /** The user's accounts with their serials, oldest first. */
  async coins(clientId: string, userId: string): Promise<Coin[]> {
    const accounts = await this.list(clientId, userId);
    if (accounts.length === 0) return [];
    const rows = await this.db
      .selectFrom("coins")
      .select(["account_id", "serial", "issuer_id"])
      .where("client_id", "=", clientId)
      .where(
        "account_id",
        "in",
        accounts.map((a) => a.id),
      )
      .execute();
    const byAccount = new Map(rows.map((r) => [r.account_id, r]));
    const coins: Coin[] = [];
    for (const account of accounts) {
      const row = byAccount.get(account.id);
      coins.push({
        account,
        serial: row?.serial ?? (await this.serialOf(this.db, account)),
        issuerId: row?.issuer_id ?? null,
      });
    }
    return coins;
  }

  /** The account behind a serial (any user's of the client), or undefined. */
  async bySerial(clientId: string, serial: string, db: Db = this.db): Promise<Coin | undefined> {
    if (!/^[0-9]{12,32}$/.test(serial)) return undefined;
    // One statement: the serial and its account.
    const row = await db
      .selectFrom("coins as c")
      .innerJoin("ledger_accounts as a", "a.id", "c.account_id")
      .selectAll("a")
      .select(["c.serial", "c.issuer_id"])
      .where("c.client_id", "=", clientId)
      .where("c.serial", "=", serial)
      .where("a.client_id", "=", clientId)
      .where("a.kind", "=", "USER_WALLET")
      .executeTakeFirst();
    if (!row) return undefined;
    const { serial: found, issuer_id, ...account } = row;
    return { account: ledger.accountOfRow(account), serial: found, issuerId: issuer_id };
  }

  /** The serial of an account; one is given to an account that has none yet. */
  private async serialOf(db: Db, account: Account): Promise<string> {
    await db
      .insertInto("coins")
      .values({ client_id: account.clientId, serial: newSerial(""), account_id: account.id })
      .onConflict((oc) => oc.column("account_id").doNothing())
      .execute();
    const row = await db
      .selectFrom("coins")
      .select("serial")
      .where("account_id", "=", account.id)
      .executeTakeFirstOrThrow();
    return row.serial;
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

/** An account as the Wallet API names it: its serial and issuer. */
export interface Coin {
  account: Account;
  serial: string;
  issuerId: string | null;
}

/** A serial: the issuer's prefix and 16 random digits (53 bits: not guessable, unique per client). */
export function newSerial(prefix: string): string {
  return `${prefix}${digits(16)}`;
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
