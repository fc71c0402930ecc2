// Over 400 lines on purpose: the database's types, one interface per table, in one file (Kysely's
// Database type), kept beside the numbered migrations they describe.
import type { ColumnType, Generated } from "kysely";

/** NUMERIC(38,0): read as a decimal string (pg and PGlite both do), written as a string. */
export type Numeric = ColumnType<string, string | undefined, string>;
type CreatedAt = ColumnType<Date, Date | undefined, never>;
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Json = ColumnType<unknown, string | undefined, string>;

type JsonColumn = ColumnType<unknown, string | undefined, string>;
type NullableJson = ColumnType<unknown, string | null | undefined, string | null>;

export interface ClientsTable {
  id: string;
  name: string;
  status: ColumnType<string, string | undefined, string>;
  mode: ColumnType<string, string | undefined, string>;
  webhook_url: string | null;
  webhook_encryption_key: NullableJson;
  allowed_origins: ColumnType<string[], string[] | undefined, string[]>;
  settings: JsonColumn;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface ClientSigningKeysTable {
  client_id: string;
  kid: string;
  jwk: JsonColumn;
  status: ColumnType<string, string | undefined, string>;
  expires_at: Timestamp | null;
  created_at: CreatedAt;
  revoked_at: Timestamp | null;
}

export interface FerrySigningKeysTable {
  kid: string;
  public_jwk: JsonColumn;
  encrypted_private_jwk: string;
  status: string;
  created_at: CreatedAt;
  retired_at: Timestamp | null;
}

export interface RequestSignaturesTable {
  client_id: string;
  signature_hash: string;
  expires_at: Timestamp;
}

export interface UsersTable {
  client_id: string;
  id: string;
  type: string;
  status: ColumnType<string, string | undefined, string>;
  status_reason: string | null;
  tier: ColumnType<number, number | undefined, number>;
  pii_version: ColumnType<number, number | undefined, number>;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface UserPiiTable {
  client_id: string;
  user_id: string;
  ciphertext: string;
  updated_at: Timestamp;
}

export interface UserAssessmentsTable {
  client_id: string;
  request_id: string;
  user_id: string;
  status: string;
  tier: ColumnType<number, number | undefined, number>;
  refusal_reason: string | null;
  intended_usd_value: ColumnType<string | null, string | null | undefined, string | null>;
  provider: string;
  provider_reference: string | null;
  result_due_at: Timestamp | null;
  locked_until: Timestamp | null;
  solicited: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: CreatedAt;
  updated_at: Timestamp;
  completed_at: Timestamp | null;
  poll_failures: ColumnType<number, number | undefined, number>;
}

export interface UserTokensTable {
  jti: string;
  client_id: string;
  user_id: string | null;
  method: string;
  path: string;
  expires_at: Timestamp;
  used_at: Timestamp | null;
  created_at: CreatedAt;
}

export interface OutboxEventsTable {
  id: string;
  client_id: string;
  user_id: string | null;
  sequence: ColumnType<string | null, string | null | undefined, string | null>;
  type: string;
  data: JsonColumn;
  created_at: Timestamp;
}

export interface WebhookDeliveriesTable {
  id: string;
  event_id: string;
  client_id: string;
  user_id: string | null;
  sequence: ColumnType<string | null, string | null | undefined, string | null>;
  status: string;
  attempts: ColumnType<number, number | undefined, number>;
  next_attempt_at: Timestamp;
  locked_until: Timestamp | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: CreatedAt;
  delivered_at: Timestamp | null;
}

export interface WebhookAttemptsTable {
  delivery_id: string;
  attempt: number;
  started_at: Timestamp;
  duration_ms: number;
  status_code: number | null;
  error: string | null;
}

export interface AdminAuthFailuresTable {
  source: string;
  failures: number;
  window_until: Date;
  locked_until: Date | null;
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
  id: Generated<string>;
  digital_code: string | null;
  symbol: string | null;
  name: string | null;
  description: string | null;
  created_at: CreatedAt;
}

/** A currency's USD rate, one row per version (migration 0015). */
export interface CurrencyUsdRatesTable {
  client_id: string;
  currency: string;
  version: number;
  id: string;
  /** NUMERIC(27,12), read as text. */
  usd_rate: string;
  effective_from: Timestamp;
  set_by_kind: string;
  set_by_id: string | null;
  set_by_role: string | null;
  request_id: string | null;
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

export interface PaymentMethodsTable {
  client_id: string;
  id: string;
  user_id: string;
  type: string;
  fingerprint: string;
  /** One of the acquirer's test cards: saved once per user, never unique to one (migration 0016). */
  test_card: Generated<boolean>;
  sealed_details: string;
  last4: string | null;
  bin: string | null;
  brand: string | null;
  exp_month: number | null;
  exp_year: number | null;
  bank_code: string | null;
  currency: string | null;
  created_at: CreatedAt;
}

export interface TransactionsTable {
  client_id: string;
  request_id: string;
  type: string;
  user_id: string;
  counterparty_user_id: string | null;
  status: string;
  amount: string;
  currency: string;
  fee: ColumnType<string, string | undefined, string>;
  usd_value: ColumnType<string, string | undefined, string>;
  target_currency: string | null;
  target_amount: string | null;
  rate: string | null;
  wallet_id: string | null;
  counterparty_wallet_id: string | null;
  payment_method: NullableJson;
  monitoring: NullableJson;
  provider: string | null;
  provider_reference: string | null;
  status_detail: NullableJson;
  redirect_url: string | null;
  payment_instructions: NullableJson;
  feedback: string | null;
  created_at: CreatedAt;
  updated_at: Timestamp;
  number: Generated<string>;
  process: NullableJson;
  decision: NullableJson;
  destination_address: ColumnType<string | null, string | null | undefined, string | null>;
  chain_tx_hash: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface SandboxAcquirerChargesTable {
  idempotency_key: string;
  reference: string;
  card_last4: string;
  amount: string;
  currency: string;
  outcome: string;
  decline_code: string | null;
  attempts: ColumnType<number, number | undefined, number>;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface SandboxBankPayoutsTable {
  idempotency_key: string;
  reference: string;
  account_last4: string;
  amount: string;
  currency: string;
  outcome: string;
  settles_at: Timestamp;
  created_at: CreatedAt;
}

export interface StepsTable {
  id: string;
  client_id: string;
  kind: string;
  process_type: string;
  process_id: string;
  idempotency_key: string;
  status: ColumnType<string, string | undefined, string>;
  input: JsonColumn;
  result: NullableJson;
  attempts: ColumnType<number, number | undefined, number>;
  max_attempts: number;
  next_attempt_at: Timestamp;
  locked_until: Timestamp | null;
  last_error: string | null;
  created_at: CreatedAt;
  updated_at: Timestamp;
  finished_at: Timestamp | null;
}

export interface AuditLogTable {
  id: string;
  client_id: string | null;
  actor_kind: string;
  actor_id: string | null;
  actor_role: ColumnType<string | null, string | null | undefined, string | null>;
  action: string;
  entity_type: string;
  entity_id: string;
  before: NullableJson;
  after: NullableJson;
  request_id: string | null;
  created_at: CreatedAt;
}

export interface SandboxAcquirerPayoutsTable {
  idempotency_key: string;
  reference: string;
  card_last4: string;
  amount: string;
  currency: string;
  outcome: string;
  decline_code: string | null;
  settles_at: Timestamp;
  created_at: CreatedAt;
}

export interface SandboxBankIncomingTable {
  transfer_id: string;
  payment_reference: string;
  amount: string;
  currency: string;
  received_at: CreatedAt;
  return_key: string | null;
  returned_at: Timestamp | null;
}

export interface UserUsageTable {
  client_id: string;
  user_id: string;
  period: "minute" | "hour" | "all";
  bucket: Timestamp;
  type: string;
  usd_cents: ColumnType<string, string, string>;
  count: ColumnType<string, string | number, string | number>;
}

export interface EventSequencesTable {
  client_id: string;
  user_id: string;
  last_sequence: ColumnType<string, string | number, string | number>;
}

export interface OrganizationsTable {
  client_id: string;
  id: string;
  name: string;
  type: string;
  created_at: CreatedAt;
}

export interface LoginsTable {
  client_id: string;
  id: string;
  login: string;
  role: string;
  organization_id: string;
  legal_type: string | null;
  name: string | null;
  password_hash: string | null;
  two_factor: ColumnType<boolean, boolean | undefined, boolean>;
  active: ColumnType<boolean, boolean | undefined, boolean>;
  failed_attempts: ColumnType<number, number | undefined, number>;
  locked_until: Timestamp | null;
  attempts_in_flight: ColumnType<number, number | undefined, number>;
  in_flight_until: Timestamp | null;
  primary_currency: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface LoginSessionsTable {
  token_hash: string;
  client_id: string;
  user_id: string;
  expires_at: Timestamp;
  revoked_at: Timestamp | null;
  created_at: CreatedAt;
}

export interface LoginCodesTable {
  client_id: string;
  login: string;
  purpose: string;
  code_hash: string;
  details: JsonColumn;
  attempts: ColumnType<number, number | undefined, number>;
  sends: ColumnType<number, number | undefined, number>;
  locked: ColumnType<boolean, boolean | undefined, boolean>;
  expires_at: Timestamp;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface SandboxNotifierMessagesTable {
  id: string;
  client_id: string;
  recipient: string;
  kind: string;
  otp: string | null;
  text: string;
  created_at: CreatedAt;
}

export interface IssuersTable {
  client_id: string;
  id: string;
  sn: string;
  currency: string;
  name: string;
  description: string | null;
  sn_prefix: ColumnType<string, string | undefined, string>;
  active: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: CreatedAt;
}

export interface BankCatalogTable {
  client_id: string;
  id: string;
  name: string;
  bic: string;
  swift: string;
  address: string | null;
  city: string | null;
  zip_code: string | null;
  created_at: CreatedAt;
}

export interface CommissionProfilesTable {
  client_id: string;
  id: string;
  operation: string;
  currency: string;
  fee_direction: string;
  rules: JsonColumn;
  begin_date: Timestamp | null;
  end_date: Timestamp | null;
  created_at: CreatedAt;
}

export interface CoinsTable {
  client_id: string;
  serial: string;
  account_id: string;
  issuer_id: string | null;
  created_at: CreatedAt;
}

export interface SmartCardsTable {
  client_id: string;
  id: string;
  user_id: string;
  account_id: string;
  name: string;
  fingerprint: string;
  sealed_number: string;
  last4: string;
  bin: string;
  expiration_date: ColumnType<string, string, string>;
  active: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: CreatedAt;
}

export interface TransferTemplatesTable {
  client_id: string;
  id: string;
  user_id: string;
  name: string;
  description: string | null;
  tool_type: string;
  src_value: string;
  dest_value: string;
  currency: string;
  amount: ColumnType<string | null, string | null | undefined, string | null>;
  source_request: string;
  created_at: CreatedAt;
}

export interface PayinOffersTable {
  client_id: string;
  id: string;
  user_id: string;
  card_id: string;
  from_currency: string;
  to_currency: string;
  amount: string;
  fee: string;
  rate: string;
  to_amount: string;
  usd_value: string;
  monitoring: JsonColumn;
  address: string | null;
  success_url: string | null;
  fail_url: string | null;
  status: ColumnType<string, string | undefined, string>;
  request_id: string | null;
  expires_at: Timestamp;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface SandboxChainTransfersTable {
  idempotency_key: string;
  tx_hash: string;
  currency: string;
  address: string;
  amount: string;
  confirms_at: Timestamp;
  created_at: CreatedAt;
}

export interface SandboxKycVerificationsTable {
  id: string;
  client_id: string;
  user_id: string;
  status: ColumnType<string, string | undefined, string>;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface OAuthClientSecretsTable {
  client_id: string;
  secret_hash: string;
  created_at: CreatedAt;
}

export interface OneClickTransactionsTable {
  tx_id: ColumnType<string, string | undefined, never>;
  client_id: string;
  session_id: string;
  identity_provider: string;
  redirect_uri: string;
  redirect_uri_given: ColumnType<boolean, boolean | undefined, boolean>;
  state: string | null;
  scope: string;
  locale: string | null;
  iframe: boolean;
  code_challenge: string | null;
  /** The end user's address at authorize, sealed (migration 0021). */
  end_user_ip: ColumnType<string | null, string | null | undefined, string | null>;
  /** The authorize request's `attributes[key]` (PaymentIQ's), for the signin callback. */
  attributes: NullableJson;
  amount: string | null;
  currency: string | null;
  fee: Numeric;
  status_code: number;
  status_name: string;
  identity_sealed: string | null;
  person_fingerprint: string | null;
  user_id: string | null;
  operator_session_id: string | null;
  merchant_tx_id: string | null;
  auth_code: string | null;
  err_code: string | null;
  err_msg: string | null;
  code_hash: string | null;
  code_sealed: string | null;
  code_expires_at: Timestamp | null;
  code_used_at: Timestamp | null;
  token_jti: string | null;
  token_revoked_at: Timestamp | null;
  resolution: NullableJson;
  /** The deposit's USD value in cents, fixed by the quote stage. */
  usd_value: string | null;
  /** Monitoring's result on the deposit (what staff see when it waits for review). */
  monitoring: NullableJson;
  expires_at: Timestamp;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface SandboxIdpPaymentsTable {
  idempotency_key: string;
  reference: string;
  provider: string;
  amount: string;
  currency: string;
  status: string;
  created_at: CreatedAt;
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
  admin_auth_failures: AdminAuthFailuresTable;
  ledger_currencies: LedgerCurrenciesTable;
  currency_usd_rates: CurrencyUsdRatesTable;
  ledger_accounts: LedgerAccountsTable;
  ledger_transfers: LedgerTransfersTable;
  idempotency_keys: IdempotencyKeysTable;
  ferry_schema_migrations: SchemaMigrationsTable;
  client_signing_keys: ClientSigningKeysTable;
  ferry_signing_keys: FerrySigningKeysTable;
  request_signatures: RequestSignaturesTable;
  users: UsersTable;
  user_pii: UserPiiTable;
  user_assessments: UserAssessmentsTable;
  user_tokens: UserTokensTable;
  outbox_events: OutboxEventsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
  payment_methods: PaymentMethodsTable;
  transactions: TransactionsTable;
  sandbox_acquirer_charges: SandboxAcquirerChargesTable;
  sandbox_bank_payouts: SandboxBankPayoutsTable;
  sandbox_bank_incoming: SandboxBankIncomingTable;
  steps: StepsTable;
  audit_log: AuditLogTable;
  event_sequences: EventSequencesTable;
  user_usage: UserUsageTable;
  organizations: OrganizationsTable;
  logins: LoginsTable;
  login_sessions: LoginSessionsTable;
  login_codes: LoginCodesTable;
  sandbox_notifier_messages: SandboxNotifierMessagesTable;
  issuers: IssuersTable;
  bank_catalog: BankCatalogTable;
  commission_profiles: CommissionProfilesTable;
  coins: CoinsTable;
  smart_cards: SmartCardsTable;
  transfer_templates: TransferTemplatesTable;
  sandbox_acquirer_payouts: SandboxAcquirerPayoutsTable;
  payin_offers: PayinOffersTable;
  sandbox_chain_transfers: SandboxChainTransfersTable;
  sandbox_kyc_verifications: SandboxKycVerificationsTable;
  oauth_client_secrets: OAuthClientSecretsTable;
  oneclick_transactions: OneClickTransactionsTable;
  sandbox_idp_payments: SandboxIdpPaymentsTable;
}

export type { Json };
