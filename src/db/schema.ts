import type { ColumnType, Generated } from "kysely";

/** NUMERIC(38,0): read as a decimal string (pg and PGlite both do), written as a string. */
export type Numeric = ColumnType<string, string | undefined, string>;
type CreatedAt = ColumnType<Date, Date | undefined, never>;
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Json = ColumnType<unknown, string | undefined, string>;

export interface ClientsTable {
  id: string;
  name: string;
  status: ColumnType<string, string | undefined, string>;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface PlatformAdminsTable {
  username: string;
  password_hash: string;
  password_changed_at: Timestamp;
  created_at: CreatedAt;
}

export interface LedgerCurrenciesTable {
  client_id: string;
  code: string;
  scale: number;
  created_at: CreatedAt;
}

export interface LedgerAccountsTable {
  id: string;
  client_id: string;
  currency: string;
  kind: string;
  owner_id: string | null;
  rail: string | null;
  label: string | null;
  limit_rule: string;
  credit_limit: Numeric;
  debits_posted: Numeric;
  credits_posted: Numeric;
  debits_pending: Numeric;
  credits_pending: Numeric;
  created_at: CreatedAt;
}

export interface LedgerTransfersTable {
  client_id: string;
  id: string;
  seq: Generated<string>;
  operation_id: string;
  type: string;
  status: string;
  debit_account_id: string;
  credit_account_id: string;
  currency: string;
  amount: Numeric;
  pending_id: string | null;
  posted_amount: ColumnType<string | null, string | null | undefined, string | null>;
  expires_at: Timestamp | null;
  resolved_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  metadata: ColumnType<unknown, string | null | undefined, string | null>;
  created_at: Timestamp;
}

export interface IdempotencyKeysTable {
  scope: string;
  key: string;
  request_hash: string;
  state: string;
  locked_until: Timestamp | null;
  response_status: number | null;
  response_headers: ColumnType<unknown, string | null | undefined, string | null>;
  response_body: string | null;
  created_at: CreatedAt;
  expires_at: Timestamp;
}

export interface SchemaMigrationsTable {
  version: number;
  name: string;
  checksum: string;
  applied_at: CreatedAt;
}

export interface Database {
  clients: ClientsTable;
  platform_admins: PlatformAdminsTable;
  ledger_currencies: LedgerCurrenciesTable;
  ledger_accounts: LedgerAccountsTable;
  ledger_transfers: LedgerTransfersTable;
  idempotency_keys: IdempotencyKeysTable;
  ferry_schema_migrations: SchemaMigrationsTable;
}

export type { Json };
