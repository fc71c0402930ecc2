-- Ferry foundation: tenants, the platform admin, the double-entry ledger, idempotency keys.
-- The same file runs on PostgreSQL and on the embedded PGlite.

CREATE TABLE clients (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  status      text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'SUSPENDED')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE platform_admins (
  username             text PRIMARY KEY,
  password_hash        text NOT NULL,
  password_changed_at  timestamptz NOT NULL DEFAULT now(),
  created_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ledger_currencies (
  client_id   text NOT NULL REFERENCES clients (id),
  code        text NOT NULL CHECK (code ~ '^[A-Z0-9]{2,12}$'),
  scale       smallint NOT NULL CHECK (scale BETWEEN 0 AND 18),
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, code)
);

-- Balances are kept as four running sums (TigerBeetle's model): posted and pending, debits and credits.
-- Every change to them is made with the row locked (SELECT … FOR UPDATE, in id order).
CREATE TABLE ledger_accounts (
  id               uuid PRIMARY KEY,
  client_id        text NOT NULL,
  currency         text NOT NULL,
  kind             text NOT NULL CHECK (kind IN ('USER_WALLET', 'ISSUING', 'TRANSIT', 'FEES', 'FX', 'SETTLEMENT')),
  owner_id         text,
  rail             text,
  label            text,
  limit_rule       text NOT NULL CHECK (limit_rule IN ('NON_NEGATIVE', 'CREDIT_LIMIT', 'UNBOUNDED')),
  credit_limit     numeric(38,0) NOT NULL DEFAULT 0 CHECK (credit_limit >= 0),
  debits_posted    numeric(38,0) NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
  credits_posted   numeric(38,0) NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
  debits_pending   numeric(38,0) NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
  credits_pending  numeric(38,0) NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
  created_at       timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (client_id, currency) REFERENCES ledger_currencies (client_id, code),
  CHECK ((kind = 'TRANSIT') = (rail IS NOT NULL)),
  CHECK ((kind = 'USER_WALLET') = (owner_id IS NOT NULL) OR kind = 'SETTLEMENT')
);
CREATE INDEX ledger_accounts_owner ON ledger_accounts (client_id, owner_id);
-- One system account of each kind (and rail) per client and currency.
CREATE UNIQUE INDEX ledger_accounts_system ON ledger_accounts (client_id, currency, kind, coalesce(rail, ''), coalesce(owner_id, ''))
  WHERE kind <> 'USER_WALLET';

-- A transfer debits one account and credits another by the same amount in the same currency.
--   SINGLE   posted at once
--   PENDING  a hold: status PENDING until POSTED (in full or in part), VOIDED or EXPIRED
--   POST     posts a PENDING transfer (pending_id), amount = what was posted
--   VOID     voids a PENDING transfer, amount = what was released
CREATE TABLE ledger_transfers (
  client_id          text NOT NULL REFERENCES clients (id),
  id                 text NOT NULL CHECK (length(id) BETWEEN 1 AND 255),
  seq                bigint GENERATED ALWAYS AS IDENTITY,
  operation_id       text NOT NULL,
  type               text NOT NULL CHECK (type IN ('SINGLE', 'PENDING', 'POST', 'VOID')),
  status             text NOT NULL CHECK (status IN ('POSTED', 'PENDING', 'VOIDED', 'EXPIRED')),
  debit_account_id   uuid NOT NULL REFERENCES ledger_accounts (id),
  credit_account_id  uuid NOT NULL REFERENCES ledger_accounts (id),
  currency           text NOT NULL,
  amount             numeric(38,0) NOT NULL CHECK (amount > 0),
  pending_id         text,
  posted_amount      numeric(38,0),
  expires_at         timestamptz,
  resolved_at        timestamptz,
  metadata           jsonb,
  created_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, id),
  CHECK (debit_account_id <> credit_account_id),
  CHECK ((type IN ('POST', 'VOID')) = (pending_id IS NOT NULL))
);
CREATE INDEX ledger_transfers_debit ON ledger_transfers (debit_account_id, seq);
CREATE INDEX ledger_transfers_credit ON ledger_transfers (credit_account_id, seq);
CREATE INDEX ledger_transfers_expiry ON ledger_transfers (expires_at) WHERE status = 'PENDING' AND expires_at IS NOT NULL;

-- Idempotency of HTTP requests: the request id, a hash of the request, and the stored response.
CREATE TABLE idempotency_keys (
  scope             text NOT NULL,
  key               text NOT NULL,
  request_hash      text NOT NULL,
  state             text NOT NULL CHECK (state IN ('IN_PROGRESS', 'COMPLETED')),
  locked_until      timestamptz,
  response_status   integer,
  response_headers  jsonb,
  response_body     text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  expires_at        timestamptz NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
