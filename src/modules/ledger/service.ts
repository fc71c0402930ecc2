import { cacheOf } from "../../db/cache.ts";
import type { Db } from "../../db/database.ts";
import { PgErrorCode, pgErrorCode } from "../../db/errors.ts";
import { inTransaction } from "../../db/transaction.ts";
import { newId, UUID } from "../../lib/ids.ts";
import { AmountError, parsePositiveAmount } from "../../lib/money.ts";
import { type BatcherOptions, executeBatch, LedgerBatcher } from "./batcher.ts";
import { applyOperations } from "./engine.ts";
import { LedgerError } from "./errors.ts";
import * as repo from "./repo.ts";
import type {
  Account,
  AccountKind,
  Currency,
  LimitRule,
  Operation,
  OperationResult,
  Transfer,
} from "./types.ts";

export type { Account, Currency, Operation, OperationResult, Transfer };

const CURRENCY_CODE = /^[A-Z0-9]{2,12}$/;

/** Adds a currency to a client's ledger. The same code again with the same scale is a no-op. */
export async function createCurrency(db: Db, input: Currency): Promise<Currency> {
  if (!CURRENCY_CODE.test(input.code)) {
    throw new LedgerError("INVALID_CURRENCY", "a currency code is 2–12 upper-case letters or digits");
  }
  if (!Number.isInteger(input.scale) || input.scale < 0 || input.scale > 18) {
    throw new LedgerError("INVALID_CURRENCY", "a currency's scale is an integer from 0 to 18");
  }
  let currency: Currency;
  try {
    currency = await repo.insertCurrency(db, input);
  } catch (error) {
    if (pgErrorCode(error) === PgErrorCode.foreignKeyViolation) {
      throw new LedgerError("CLIENT_NOT_FOUND", `no client ${input.clientId}`);
    }
    throw error;
  }
  if (currency.scale !== input.scale) {
    throw new LedgerError("CURRENCY_EXISTS", `${input.code} already exists with scale ${currency.scale}`);
  }
  return currency;
}

export function findCurrency(db: Db, clientId: string, code: string): Promise<Currency | undefined> {
  return repo.findCurrency(db, clientId, code);
}

export async function getCurrency(db: Db, clientId: string, code: string): Promise<Currency> {
  const currency = await repo.findCurrency(db, clientId, code);
  if (!currency) throw new LedgerError("CURRENCY_NOT_FOUND", `no currency ${code}`);
  return currency;
}

/** Parses a wire amount ("10.50") in a client's currency into minor units, checking its scale. */
export async function parseCurrencyAmount(
  db: Db,
  clientId: string,
  currencyCode: string,
  amount: string | number,
): Promise<{ currency: Currency; minor: bigint }> {
  const currency = await getCurrency(db, clientId, currencyCode);
  try {
    return { currency, minor: parsePositiveAmount(amount, currency.scale) };
  } catch (error) {
    if (error instanceof AmountError)
      throw new LedgerError("INVALID_AMOUNT", `amount ${error.message}`, "amount");
    throw error;
  }
}

export interface OpenAccountInput {
  clientId: string;
  currency: string;
  kind: AccountKind;
  ownerId?: string | null;
  rail?: string | null;
  label?: string | null;
  limitRule?: LimitRule;
  creditLimit?: bigint;
}

const defaultLimitRule: Record<AccountKind, LimitRule> = {
  USER_WALLET: "NON_NEGATIVE",
  SETTLEMENT: "UNBOUNDED",
  ISSUING: "UNBOUNDED",
  TRANSIT: "UNBOUNDED",
  FEES: "UNBOUNDED",
  FX: "UNBOUNDED",
};

/**
 * Opens an account. A user wallet is always new; a system account (issuing, transit per rail,
 * fees, fx, settlement per owner) exists once per client and currency, so opening it again returns it.
 */
export async function openAccount(db: Db, input: OpenAccountInput): Promise<Account> {
  const row: repo.NewAccountRow = {
    id: newId(),
    clientId: input.clientId,
    currency: input.currency,
    kind: input.kind,
    ownerId: input.ownerId ?? null,
    rail: input.rail ?? null,
    label: input.label ?? null,
    limitRule: input.limitRule ?? defaultLimitRule[input.kind],
    creditLimit: input.creditLimit ?? 0n,
  };
  if (row.kind === "USER_WALLET" && !row.ownerId) {
    throw new LedgerError("INVALID_ACCOUNT", "a user wallet needs an owner");
  }
  if ((row.kind === "TRANSIT") !== (row.rail !== null)) {
    throw new LedgerError("INVALID_ACCOUNT", "a transit account, and only a transit account, has a rail");
  }
  if (row.creditLimit < 0n || (row.creditLimit > 0n && row.limitRule !== "CREDIT_LIMIT")) {
    throw new LedgerError("INVALID_ACCOUNT", "a credit limit is a positive amount on a CREDIT_LIMIT account");
  }
  let account: Account | undefined;
  try {
    account = await repo.insertAccount(db, row);
  } catch (error) {
    if (pgErrorCode(error) === PgErrorCode.foreignKeyViolation) {
      throw new LedgerError("CURRENCY_NOT_FOUND", `no currency ${input.currency} for this client`);
    }
    throw error;
  }
  if (account) return account;
  const existing = await repo.findSystemAccount(db, row);
  if (!existing) throw new Error(`system account ${row.kind} vanished after a conflicting insert`);
  return existing;
}

/**
 * A system account's id (transit per rail, fees, FX, settlement, …), opened on first use. Ids never
 * change, so they are kept in the process cache — but only once known to be committed: read or
 * opened with the pool. Inside a transaction a cached id is used; else the account is found or
 * opened in that transaction and not cached (it may roll back).
 */
export async function systemAccountId(db: Db, input: OpenAccountInput): Promise<string> {
  const key = [input.clientId, input.currency, input.kind, input.rail ?? "", input.ownerId ?? ""].join(
    "\u0000",
  );
  const cache = cacheOf(db);
  const cached = cache.peek<string>("system-account", key);
  if (cached) return cached;
  const id = (await openAccount(db, input)).id;
  if (!db.isTransaction) cache.put("system-account", key, id);
  return id;
}

/** An account of this client, or LedgerError ACCOUNT_NOT_FOUND (also for another client's account). */
export async function getAccount(db: Db, accountId: string, clientId?: string): Promise<Account> {
  const account = UUID.test(accountId) ? await repo.findAccount(db, accountId.toLowerCase()) : undefined;
  if (!account || (clientId !== undefined && account.clientId !== clientId)) {
    throw new LedgerError("ACCOUNT_NOT_FOUND", `no account ${accountId}`);
  }
  return account;
}

export function listAccounts(
  db: Db,
  filter: { clientId?: string | undefined; ownerId?: string | undefined },
  page: { offset: number; limit: number },
) {
  return repo.listAccounts(db, filter, page);
}

/** An account's entries (the transfers that debit or credit it), newest first. */
export function listEntries(db: Db, accountId: string, page: { offset: number; limit: number }) {
  return repo.listAccountTransfers(db, accountId, page);
}

/** The transfers of one operation (its legs), in the order they were written. */
export async function listEntriesOfOperation(
  db: Db,
  clientId: string,
  operationId: string,
): Promise<{ transfers: Transfer[] }> {
  return { transfers: await repo.findTransfersOfOperation(db, clientId, operationId) };
}

/** The legs of a group of operations (`txn:R` and `txn:R:…`), in the order they were written. */
export function listEntriesOfGroup(db: Db, clientId: string, group: string): Promise<Transfer[]> {
  return repo.findTransfersOfGroup(db, clientId, group);
}

/** An account from a row the caller selected (all of `ledger_accounts`' columns). */
export const accountOfRow = repo.toAccount;

export async function getTransfer(db: Db, clientId: string, id: string): Promise<Transfer | undefined> {
  const [transfer] = await repo.findTransfers(db, [{ clientId, id }]);
  return transfer;
}

/**
 * Applies one operation inside the caller's transaction, with whatever else that transaction
 * writes (the business row, its outbox events). Not batched with other callers.
 */
export async function applyInTransaction(tx: Db, operation: Operation): Promise<OperationResult> {
  const [result] = await applyOperations(tx, [operation], new Date());
  if (!result) throw new Error("ledger returned no result");
  return result;
}

/** Applies operations in order as one batch in one transaction of its own (not queued with other callers). */
export function submitBatch(db: Db, operations: Operation[]): Promise<OperationResult[]> {
  return executeBatch(db, operations);
}

/** Releases holds whose expiry has passed; returns how many. Safe to run in several processes at once. */
export async function expirePendingTransfers(db: Db, options: { now?: Date; limit?: number } = {}) {
  const now = options.now ?? new Date();
  return inTransaction(db, async (tx) => {
    const due = await repo.lockExpiredPending(tx, now, options.limit ?? 500);
    if (due.length > 0) await applyOperations(tx, [], now, due);
    return due.length;
  });
}

export interface InvariantReport {
  ok: boolean;
  checkedAt: string;
  accounts: number;
  transfers: number;
  unbalancedCurrencies: repo.BalanceSumViolation[];
  accountsNotMatchingEntries: repo.EntrySumViolation[];
  accountsOverLimit: { accountId: string; clientId: string }[];
  transfersWithMismatchedAccounts: { transferId: string; clientId: string }[];
}

/**
 * The ledger's invariants: per client and currency the balances sum to zero; every account's
 * balances equal the sums of its entries; no account is beyond its limit; every transfer's accounts
 * are of its client and currency. Read in one repeatable-read snapshot so that concurrent writers
 * cannot make a consistent ledger look broken.
 */
export async function checkInvariants(db: Db, clientId?: string): Promise<InvariantReport> {
  return db
    .transaction()
    .setIsolationLevel("repeatable read")
    .setAccessMode("read only")
    .execute(async (tx) => {
      const counts = await repo.countLedger(tx, clientId);
      const unbalancedCurrencies = await repo.findUnbalancedCurrencies(tx, clientId);
      const accountsNotMatchingEntries = await repo.findAccountsNotMatchingEntries(tx, clientId);
      const accountsOverLimit = await repo.findAccountsOverLimit(tx, clientId);
      const transfersWithMismatchedAccounts = await repo.findMismatchedTransfers(tx, clientId);
      return {
        ok:
          unbalancedCurrencies.length === 0 &&
          accountsNotMatchingEntries.length === 0 &&
          accountsOverLimit.length === 0 &&
          transfersWithMismatchedAccounts.length === 0,
        checkedAt: new Date().toISOString(),
        ...counts,
        unbalancedCurrencies,
        accountsNotMatchingEntries,
        accountsOverLimit,
        transfersWithMismatchedAccounts,
      };
    });
}

/**
 * The ledger as a service: operations submitted here are grouped with those of concurrent callers
 * into shared transactions (see LedgerBatcher). Use `applyInTransaction` instead when the
 * operation must commit together with other writes.
 */
export class Ledger {
  readonly #batcher: LedgerBatcher;

  constructor(
    readonly db: Db,
    options: BatcherOptions & { onResult?: (result: OperationResult) => void },
  ) {
    const { onResult } = options;
    this.#batcher = new LedgerBatcher(db, options);
    this.submit = onResult
      ? async (operation) => {
          const result = await this.#batcher.submit(operation);
          onResult(result);
          return result;
        }
      : (operation) => this.#batcher.submit(operation);
  }

  /** Applies an operation (batched with concurrent callers). Resolves with its result; rejects only on database failure. */
  readonly submit: (operation: Operation) => Promise<OperationResult>;

  /** Applies operations as one batch, in order, in one transaction (not queued). */
  submitBatch(operations: Operation[]): Promise<OperationResult[]> {
    return submitBatch(this.db, operations);
  }

  drained(): Promise<void> {
    return this.#batcher.drained();
  }
}

/** Per client, transaction (operation group) and rail: the net of its legs on the rail's transit account. */
export function transitNetByGroup(
  db: Db,
  options: { clientId?: string | undefined; operationPrefix: string; rails: string[] },
) {
  return repo.transitNetByGroup(db, options);
}
