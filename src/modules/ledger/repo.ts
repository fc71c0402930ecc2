// Over 400 lines on purpose: all of the ledger's SQL, and nothing else (the engine is engine.ts).

import { type Selectable, sql } from "kysely";
import { cachedRead } from "../../db/cache.ts";
import type { Db } from "../../db/database.ts";
import type { LedgerAccountsTable, LedgerTransfersTable } from "../../db/schema.ts";
import type {
  Account,
  AccountKind,
  Currency,
  LimitRule,
  Transfer,
  TransferStatus,
  TransferType,
} from "./types.ts";

type AccountRow = Selectable<LedgerAccountsTable>;
type TransferRow = Omit<Selectable<LedgerTransfersTable>, "seq">;

export function toAccount(row: AccountRow): Account {
  return {
    id: row.id,
    clientId: row.client_id,
    currency: row.currency,
    kind: row.kind as AccountKind,
    ownerId: row.owner_id,
    rail: row.rail,
    label: row.label,
    limitRule: row.limit_rule as LimitRule,
    creditLimit: BigInt(row.credit_limit),
    debitsPosted: BigInt(row.debits_posted),
    creditsPosted: BigInt(row.credits_posted),
    debitsPending: BigInt(row.debits_pending),
    creditsPending: BigInt(row.credits_pending),
    createdAt: new Date(row.created_at),
  };
}

export function toTransfer(row: TransferRow): Transfer {
  return {
    clientId: row.client_id,
    id: row.id,
    operationId: row.operation_id,
    type: row.type as TransferType,
    status: row.status as TransferStatus,
    debitAccountId: row.debit_account_id,
    creditAccountId: row.credit_account_id,
    currency: row.currency,
    amount: BigInt(row.amount),
    pendingId: row.pending_id,
    postedAmount: row.posted_amount === null ? null : BigInt(row.posted_amount),
    expiresAt: row.expires_at === null ? null : new Date(row.expires_at),
    resolvedAt: row.resolved_at === null ? null : new Date(row.resolved_at),
    metadata: row.metadata ?? null,
    createdAt: new Date(row.created_at),
  };
}

const transferColumns = [
  "client_id",
  "id",
  "operation_id",
  "type",
  "status",
  "debit_account_id",
  "credit_account_id",
  "currency",
  "amount",
  "pending_id",
  "posted_amount",
  "expires_at",
  "resolved_at",
  "metadata",
  "created_at",
] as const;

export interface TransferKey {
  clientId: string;
  id: string;
}

/** Pending transfers by key, locked for the rest of the transaction (always before accounts). */
export async function lockTransfers(tx: Db, keys: TransferKey[]): Promise<Transfer[]> {
  if (keys.length === 0) return [];
  const { rows } = await sql<TransferRow>`
    SELECT ${sql.join(transferColumns.map((c) => sql.ref(`t.${c}`)))}
    FROM ledger_transfers t
    JOIN unnest(${keys.map((k) => k.clientId)}::text[], ${keys.map((k) => k.id)}::text[]) AS k(client_id, id)
      ON t.client_id = k.client_id AND t.id = k.id
    ORDER BY t.client_id, t.id
    FOR UPDATE OF t`.execute(tx);
  return rows.map(toTransfer);
}

export async function findTransfers(tx: Db, keys: TransferKey[]): Promise<Transfer[]> {
  if (keys.length === 0) return [];
  const { rows } = await sql<TransferRow>`
    SELECT ${sql.join(transferColumns.map((c) => sql.ref(`t.${c}`)))}
    FROM ledger_transfers t
    JOIN unnest(${keys.map((k) => k.clientId)}::text[], ${keys.map((k) => k.id)}::text[]) AS k(client_id, id)
      ON t.client_id = k.client_id AND t.id = k.id`.execute(tx);
  return rows.map(toTransfer);
}

/** Accounts locked in id order: every writer locks in this order, so writers never deadlock. */
export async function lockAccounts(tx: Db, ids: string[]): Promise<Account[]> {
  if (ids.length === 0) return [];
  const { rows } = await sql<AccountRow>`
    SELECT * FROM ledger_accounts WHERE id = ANY(${ids}::uuid[]) ORDER BY id FOR UPDATE`.execute(tx);
  return rows.map(toAccount);
}

export async function insertTransfers(tx: Db, transfers: Transfer[]): Promise<void> {
  if (transfers.length === 0) return;
  const col = <T>(pick: (t: Transfer) => T) => transfers.map(pick);
  await sql`
    INSERT INTO ledger_transfers (${sql.join(transferColumns.map((c) => sql.ref(c)))})
    SELECT client_id, id, operation_id, type, status, debit_account_id, credit_account_id, currency, amount,
           pending_id, posted_amount, expires_at, resolved_at, metadata::jsonb, created_at
    FROM unnest(
      ${col((t) => t.clientId)}::text[], ${col((t) => t.id)}::text[], ${col((t) => t.operationId)}::text[],
      ${col((t) => t.type)}::text[], ${col((t) => t.status)}::text[], ${col((t) => t.debitAccountId)}::uuid[],
      ${col((t) => t.creditAccountId)}::uuid[], ${col((t) => t.currency)}::text[],
      ${col((t) => t.amount.toString())}::numeric[], ${col((t) => t.pendingId)}::text[],
      ${col((t) => t.postedAmount?.toString() ?? null)}::numeric[],
      ${col((t) => t.expiresAt?.toISOString() ?? null)}::timestamptz[],
      ${col((t) => t.resolvedAt?.toISOString() ?? null)}::timestamptz[],
      ${col((t) => (t.metadata === null || t.metadata === undefined ? null : JSON.stringify(t.metadata)))}::text[],
      ${col((t) => t.createdAt.toISOString())}::timestamptz[]
    ) AS v(client_id, id, operation_id, type, status, debit_account_id, credit_account_id, currency, amount,
           pending_id, posted_amount, expires_at, resolved_at, metadata, created_at)`.execute(tx);
}

/** Records how pending transfers were resolved (posted, voided, expired). */
export async function updatePendingTransfers(tx: Db, transfers: Transfer[]): Promise<void> {
  if (transfers.length === 0) return;
  await sql`
    UPDATE ledger_transfers t
    SET status = v.status, posted_amount = v.posted_amount, resolved_at = v.resolved_at
    FROM unnest(
      ${transfers.map((t) => t.clientId)}::text[], ${transfers.map((t) => t.id)}::text[],
      ${transfers.map((t) => t.status)}::text[],
      ${transfers.map((t) => t.postedAmount?.toString() ?? null)}::numeric[],
      ${transfers.map((t) => t.resolvedAt?.toISOString() ?? null)}::timestamptz[]
    ) AS v(client_id, id, status, posted_amount, resolved_at)
    WHERE t.client_id = v.client_id AND t.id = v.id`.execute(tx);
}

/** Writes the new balances of accounts this transaction holds locked. */
export async function updateBalances(tx: Db, accounts: Account[]): Promise<void> {
  if (accounts.length === 0) return;
  await sql`
    UPDATE ledger_accounts a
    SET debits_posted = v.dp, credits_posted = v.cp, debits_pending = v.dpe, credits_pending = v.cpe
    FROM unnest(
      ${accounts.map((a) => a.id)}::uuid[],
      ${accounts.map((a) => a.debitsPosted.toString())}::numeric[],
      ${accounts.map((a) => a.creditsPosted.toString())}::numeric[],
      ${accounts.map((a) => a.debitsPending.toString())}::numeric[],
      ${accounts.map((a) => a.creditsPending.toString())}::numeric[]
    ) AS v(id, dp, cp, dpe, cpe)
    WHERE a.id = v.id`.execute(tx);
}

/** Pending transfers past their expiry, locked; rows another process holds are skipped, not waited for. */
export async function lockExpiredPending(tx: Db, now: Date, limit: number): Promise<Transfer[]> {
  const { rows } = await sql<TransferRow>`
    SELECT ${sql.join(transferColumns.map((c) => sql.ref(c)))} FROM ledger_transfers
    WHERE status = 'PENDING' AND expires_at IS NOT NULL AND expires_at <= ${now.toISOString()}::timestamptz
    ORDER BY client_id, id
    LIMIT ${limit}
    FOR UPDATE SKIP LOCKED`.execute(tx);
  return rows.map(toTransfer);
}

export async function insertCurrency(db: Db, currency: Currency): Promise<Currency> {
  await db
    .insertInto("ledger_currencies")
    .values({ client_id: currency.clientId, code: currency.code, scale: currency.scale })
    .onConflict((oc) => oc.columns(["client_id", "code"]).doNothing())
    .execute();
  const row = await db
    .selectFrom("ledger_currencies")
    .selectAll()
    .where("client_id", "=", currency.clientId)
    .where("code", "=", currency.code)
    .executeTakeFirstOrThrow();
  return { clientId: row.client_id, code: row.code, scale: Number(row.scale) };
}

/** Currencies never change once created: read through the process cache. */
export async function findCurrency(db: Db, clientId: string, code: string): Promise<Currency | undefined> {
  return cachedRead(db, "currency", `${clientId}\u0000${code}`, async () => {
    const row = await db
      .selectFrom("ledger_currencies")
      .selectAll()
      .where("client_id", "=", clientId)
      .where("code", "=", code)
      .executeTakeFirst();
    return row && { clientId: row.client_id, code: row.code, scale: Number(row.scale) };
  });
}

export interface NewAccountRow {
  id: string;
  clientId: string;
  currency: string;
  kind: AccountKind;
  ownerId: string | null;
  rail: string | null;
  label: string | null;
  limitRule: LimitRule;
  creditLimit: bigint;
}

/** Inserts an account; for system accounts an existing one of the same kind wins (returns undefined). */
export async function insertAccount(db: Db, account: NewAccountRow): Promise<Account | undefined> {
  const query = db.insertInto("ledger_accounts").values({
    id: account.id,
    client_id: account.clientId,
    currency: account.currency,
    kind: account.kind,
    owner_id: account.ownerId,
    rail: account.rail,
    label: account.label,
    limit_rule: account.limitRule,
    credit_limit: account.creditLimit.toString(),
  });
  const row = await (account.kind === "USER_WALLET" ? query : query.onConflict((oc) => oc.doNothing()))
    .returningAll()
    .executeTakeFirst();
  return row && toAccount(row);
}

export async function findSystemAccount(
  db: Db,
  key: { clientId: string; currency: string; kind: AccountKind; rail: string | null; ownerId: string | null },
): Promise<Account | undefined> {
  let query = db
    .selectFrom("ledger_accounts")
    .selectAll()
    .where("client_id", "=", key.clientId)
    .where("currency", "=", key.currency)
    .where("kind", "=", key.kind);
  query = key.rail === null ? query.where("rail", "is", null) : query.where("rail", "=", key.rail);
  query =
    key.ownerId === null ? query.where("owner_id", "is", null) : query.where("owner_id", "=", key.ownerId);
  const row = await query.executeTakeFirst();
  return row && toAccount(row);
}

export async function findAccount(db: Db, id: string): Promise<Account | undefined> {
  const row = await db.selectFrom("ledger_accounts").selectAll().where("id", "=", id).executeTakeFirst();
  return row && toAccount(row);
}

export async function listAccounts(
  db: Db,
  filter: { clientId?: string | undefined; ownerId?: string | undefined },
  page: { offset: number; limit: number },
): Promise<{ accounts: Account[]; total: number }> {
  let query = db.selectFrom("ledger_accounts");
  if (filter.clientId !== undefined) query = query.where("client_id", "=", filter.clientId);
  if (filter.ownerId !== undefined) query = query.where("owner_id", "=", filter.ownerId);
  const [rows, count] = await Promise.all([
    query.selectAll().orderBy("id").offset(page.offset).limit(page.limit).execute(),
    query.select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow(),
  ]);
  return { accounts: rows.map(toAccount), total: Number(count.n) };
}

/** The transfers that touch an account, newest first. */
export async function listAccountTransfers(
  db: Db,
  accountId: string,
  page: { offset: number; limit: number },
): Promise<{ transfers: Transfer[]; total: number }> {
  const [{ rows }, count] = await Promise.all([
    sql<TransferRow>`
      SELECT * FROM (
        SELECT * FROM ledger_transfers WHERE debit_account_id = ${accountId}::uuid
        UNION ALL
        SELECT * FROM ledger_transfers WHERE credit_account_id = ${accountId}::uuid
      ) t ORDER BY seq DESC OFFSET ${page.offset} LIMIT ${page.limit}`.execute(db),
    sql<{ n: string }>`
      SELECT (SELECT count(*) FROM ledger_transfers WHERE debit_account_id = ${accountId}::uuid)
           + (SELECT count(*) FROM ledger_transfers WHERE credit_account_id = ${accountId}::uuid) AS n`.execute(
      db,
    ),
  ]);
  return { transfers: rows.map(toTransfer), total: Number(count.rows[0]?.n ?? 0) };
}

export interface BalanceSumViolation {
  clientId: string;
  currency: string;
  postedSum: string;
  pendingSum: string;
}

/** Per client and currency, credits minus debits over all accounts must be zero. */
export async function findUnbalancedCurrencies(db: Db, clientId?: string): Promise<BalanceSumViolation[]> {
  const { rows } = await sql<{ client_id: string; currency: string; posted: string; pending: string }>`
    SELECT client_id, currency,
           sum(credits_posted - debits_posted) AS posted, sum(credits_pending - debits_pending) AS pending
    FROM ledger_accounts
    ${clientId === undefined ? sql`` : sql`WHERE client_id = ${clientId}`}
    GROUP BY client_id, currency
    HAVING sum(credits_posted - debits_posted) <> 0 OR sum(credits_pending - debits_pending) <> 0`.execute(
    db,
  );
  return rows.map((r) => ({
    clientId: r.client_id,
    currency: r.currency,
    postedSum: r.posted,
    pendingSum: r.pending,
  }));
}

export interface EntrySumViolation {
  accountId: string;
  clientId: string;
  stored: Record<string, string>;
  fromEntries: Record<string, string>;
}

/** Every account's four balances must equal the sums of the transfers that touch it. */
export async function findAccountsNotMatchingEntries(
  db: Db,
  clientId?: string,
): Promise<EntrySumViolation[]> {
  const where = clientId === undefined ? sql`` : sql`WHERE client_id = ${clientId}`;
  const { rows } = await sql<{
    id: string;
    client_id: string;
    debits_posted: string;
    credits_posted: string;
    debits_pending: string;
    credits_pending: string;
    e_dp: string;
    e_cp: string;
    e_dpe: string;
    e_cpe: string;
  }>`
    WITH legs AS (
      SELECT debit_account_id AS account_id,
             CASE WHEN type IN ('SINGLE', 'POST') THEN amount ELSE 0 END AS dp, 0::numeric AS cp,
             CASE WHEN type = 'PENDING' AND status = 'PENDING' THEN amount ELSE 0 END AS dpe, 0::numeric AS cpe
      FROM ledger_transfers ${where}
      UNION ALL
      SELECT credit_account_id, 0, CASE WHEN type IN ('SINGLE', 'POST') THEN amount ELSE 0 END,
             0, CASE WHEN type = 'PENDING' AND status = 'PENDING' THEN amount ELSE 0 END
      FROM ledger_transfers ${where}
    ), sums AS (
      SELECT account_id, sum(dp) AS dp, sum(cp) AS cp, sum(dpe) AS dpe, sum(cpe) AS cpe FROM legs GROUP BY account_id
    )
    SELECT a.id, a.client_id, a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending,
           coalesce(s.dp, 0) AS e_dp, coalesce(s.cp, 0) AS e_cp, coalesce(s.dpe, 0) AS e_dpe, coalesce(s.cpe, 0) AS e_cpe
    FROM ledger_accounts a LEFT JOIN sums s ON s.account_id = a.id
    ${clientId === undefined ? sql`WHERE` : sql`WHERE a.client_id = ${clientId} AND`}
      (a.debits_posted <> coalesce(s.dp, 0) OR a.credits_posted <> coalesce(s.cp, 0)
       OR a.debits_pending <> coalesce(s.dpe, 0) OR a.credits_pending <> coalesce(s.cpe, 0))`.execute(db);
  return rows.map((r) => ({
    accountId: r.id,
    clientId: r.client_id,
    stored: {
      debitsPosted: r.debits_posted,
      creditsPosted: r.credits_posted,
      debitsPending: r.debits_pending,
      creditsPending: r.credits_pending,
    },
    fromEntries: {
      debitsPosted: r.e_dp,
      creditsPosted: r.e_cp,
      debitsPending: r.e_dpe,
      creditsPending: r.e_cpe,
    },
  }));
}

/** Accounts whose debits exceed what their limit rule allows. */
export async function findAccountsOverLimit(
  db: Db,
  clientId?: string,
): Promise<{ accountId: string; clientId: string }[]> {
  const { rows } = await sql<{ id: string; client_id: string }>`
    SELECT id, client_id FROM ledger_accounts
    WHERE ${clientId === undefined ? sql`` : sql`client_id = ${clientId} AND`}
      ((limit_rule = 'NON_NEGATIVE' AND debits_posted + debits_pending > credits_posted)
       OR (limit_rule = 'CREDIT_LIMIT' AND debits_posted + debits_pending > credits_posted + credit_limit))`.execute(
    db,
  );
  return rows.map((r) => ({ accountId: r.id, clientId: r.client_id }));
}

/** Transfers whose accounts are of another client or currency than the transfer: never written, so never found. */
export async function findMismatchedTransfers(
  db: Db,
  clientId?: string,
): Promise<{ transferId: string; clientId: string }[]> {
  const { rows } = await sql<{ id: string; client_id: string }>`
    SELECT t.id, t.client_id FROM ledger_transfers t
    JOIN ledger_accounts d ON d.id = t.debit_account_id
    JOIN ledger_accounts c ON c.id = t.credit_account_id
    WHERE ${clientId === undefined ? sql`` : sql`t.client_id = ${clientId} AND`}
      (d.client_id <> t.client_id OR c.client_id <> t.client_id OR d.currency <> t.currency OR c.currency <> t.currency)
    LIMIT 100`.execute(db);
  return rows.map((r) => ({ transferId: r.id, clientId: r.client_id }));
}

export async function countLedger(db: Db, clientId?: string) {
  const accounts = db.selectFrom("ledger_accounts").select((eb) => eb.fn.countAll<string>().as("n"));
  const transfers = db.selectFrom("ledger_transfers").select((eb) => eb.fn.countAll<string>().as("n"));
  const [a, t] = await Promise.all([
    (clientId === undefined
      ? accounts
      : accounts.where("client_id", "=", clientId)
    ).executeTakeFirstOrThrow(),
    (clientId === undefined
      ? transfers
      : transfers.where("client_id", "=", clientId)
    ).executeTakeFirstOrThrow(),
  ]);
  return { accounts: Number(a.n), transfers: Number(t.n) };
}

export async function findTransfersOfOperation(
  db: Db,
  clientId: string,
  operationId: string,
): Promise<Transfer[]> {
  const rows = await db
    .selectFrom("ledger_transfers")
    .selectAll()
    .where("client_id", "=", clientId)
    .where("operation_id", "=", operationId)
    .orderBy("seq")
    .execute();
  return rows.map((r) => toTransfer(r as TransferRow));
}

/**
 * What each operation group moved through the transit accounts of the given rails: per client,
 * group (the operation id's second `:` part: `txn:<requestId>[:…]` → requestId), rail and currency,
 * the debits minus the credits — of posted legs, and of holds still pending, apart. Reconciliation
 * compares them with what the providers did.
 */
export async function transitNetByGroup(
  db: Db,
  options: { clientId?: string | undefined; operationPrefix: string; rails: string[] },
): Promise<
  { clientId: string; group: string; rail: string; currency: string; posted: bigint; pending: bigint }[]
> {
  const { rows } = await sql<{
    client_id: string;
    grp: string;
    rail: string;
    currency: string;
    posted: string;
    pending: string;
  }>`
    SELECT t.client_id, split_part(t.operation_id, ':', 2) AS grp, a.rail, a.currency,
           coalesce(sum(CASE WHEN t.status = 'POSTED' THEN CASE WHEN t.debit_account_id = a.id THEN t.amount ELSE -t.amount END END), 0)::text AS posted,
           coalesce(sum(CASE WHEN t.status = 'PENDING' THEN CASE WHEN t.debit_account_id = a.id THEN t.amount ELSE -t.amount END END), 0)::text AS pending
    FROM ledger_transfers t
    JOIN ledger_accounts a ON a.id IN (t.debit_account_id, t.credit_account_id)
    WHERE a.kind = 'TRANSIT' AND a.rail = ANY(${options.rails})
      AND t.operation_id LIKE ${`${options.operationPrefix}%`}
      AND ((t.type IN ('SINGLE', 'POST') AND t.status = 'POSTED') OR (t.type = 'PENDING' AND t.status = 'PENDING'))
      AND (${options.clientId ?? null}::text IS NULL OR t.client_id = ${options.clientId ?? null})
    GROUP BY 1, 2, 3, 4`.execute(db);
  return rows.map((r) => ({
    clientId: r.client_id,
    group: r.grp,
    rail: r.rail,
    currency: r.currency,
    posted: BigInt(r.posted),
    pending: BigInt(r.pending),
  }));
}

/** The legs of every operation of a group: `txn:R` and `txn:R:…` (a business transaction's). */
export async function findTransfersOfGroup(db: Db, clientId: string, group: string): Promise<Transfer[]> {
  const escaped = group.replace(/[\\%_]/g, (c) => `\\${c}`);
  const rows = await db
    .selectFrom("ledger_transfers")
    .selectAll()
    .where("client_id", "=", clientId)
    .where((eb) => eb.or([eb("operation_id", "=", group), eb("operation_id", "like", `${escaped}:%`)]))
    .orderBy("seq")
    .execute();
  return rows.map((r) => toTransfer(r as TransferRow));
}
