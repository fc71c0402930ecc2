-- Wallet API (/api/v1): organizations, logins with roles and passwords, access tokens, one-time
-- codes, the sandbox notifier's outbox, set-up (currency details, issuers, bank catalog,
-- commission profiles), account serials ("coins"), smart cards, transfer templates, and the
-- business-process view of transactions.

-- A client's organizations: one `system` organization (its staff), one per customer.
CREATE TABLE organizations (
  client_id   text NOT NULL REFERENCES clients (id),
  id          uuid NOT NULL,
  name        text NOT NULL,
  type        text NOT NULL CHECK (type IN ('system', 'merchant', 'individual', 'support', 'cash_desk')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, id)
);
CREATE UNIQUE INDEX organizations_one_system ON organizations (client_id) WHERE type = 'system';
CREATE INDEX organizations_type ON organizations (client_id, type, created_at);
INSERT INTO organizations (client_id, id, name, type)
  SELECT id, gen_random_uuid(), name, 'system' FROM clients;

-- Who can log in, with which role, in which organization. A customer's id is its core user's id
-- (users.id); staff have no core user. Logins are lower-cased e-mails or phone digits, unique per client.
CREATE TABLE logins (
  client_id        text NOT NULL REFERENCES clients (id),
  id               text NOT NULL,
  login            text NOT NULL CHECK (length(login) BETWEEN 3 AND 254),
  role             text NOT NULL CHECK (role IN ('administrator', 'accountant', 'compliance_officer', 'support', 'individual', 'merchant')),
  organization_id  uuid NOT NULL,
  legal_type       text CHECK (legal_type IN ('individual', 'corporation')),
  name             text,
  password_hash    text,
  two_factor       boolean NOT NULL DEFAULT false,
  active           boolean NOT NULL DEFAULT true,
  failed_attempts  integer NOT NULL DEFAULT 0,
  locked_until     timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, id),
  FOREIGN KEY (client_id, organization_id) REFERENCES organizations (client_id, id)
);
CREATE UNIQUE INDEX logins_login ON logins (client_id, login);
CREATE INDEX logins_organization ON logins (client_id, organization_id);

-- Access tokens: only their SHA-256 is kept.
CREATE TABLE login_sessions (
  token_hash  text PRIMARY KEY,
  client_id   text NOT NULL,
  user_id     text NOT NULL,
  expires_at  timestamptz NOT NULL,
  revoked_at  timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (client_id, user_id) REFERENCES logins (client_id, id)
);
CREATE INDEX login_sessions_expiry ON login_sessions (expires_at);
CREATE INDEX login_sessions_user ON login_sessions (client_id, user_id);

-- One-time codes (registration, two-factor login, password reset): one live code per login and
-- purpose; only a keyed hash of the code is kept.
CREATE TABLE login_codes (
  client_id   text NOT NULL REFERENCES clients (id),
  login       text NOT NULL,
  purpose     text NOT NULL CHECK (purpose IN ('REGISTRATION', 'LOGIN', 'PASSWORD_RESET')),
  code_hash   text NOT NULL,
  details     jsonb NOT NULL DEFAULT '{}',
  attempts    integer NOT NULL DEFAULT 0,
  sends       integer NOT NULL DEFAULT 1,
  locked      boolean NOT NULL DEFAULT false,
  expires_at  timestamptz NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, login, purpose)
);
CREATE INDEX login_codes_expiry ON login_codes (expires_at);

-- What the sandbox notifier "sent" (a real installation e-mails or texts them).
CREATE TABLE sandbox_notifier_messages (
  id          uuid PRIMARY KEY,
  client_id   text NOT NULL,
  recipient   text NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('REGISTRATION', 'LOGIN', 'CREDENTIALS', 'PASSWORD_RESET')),
  otp         text,
  text        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sandbox_notifier_recipient ON sandbox_notifier_messages (client_id, recipient, created_at DESC);
CREATE INDEX sandbox_notifier_created ON sandbox_notifier_messages (created_at);

-- Currency details the Wallet API shows (the ledger needs only code and scale).
ALTER TABLE ledger_currencies
  ADD COLUMN id uuid,
  ADD COLUMN digital_code text,
  ADD COLUMN symbol text,
  ADD COLUMN name text,
  ADD COLUMN description text;
UPDATE ledger_currencies SET id = gen_random_uuid() WHERE id IS NULL;
ALTER TABLE ledger_currencies ALTER COLUMN id SET DEFAULT gen_random_uuid();
ALTER TABLE ledger_currencies ALTER COLUMN id SET NOT NULL;

-- Issuers: each issues one currency; a currency may have several. Their prefix starts the serials
-- of the accounts opened under them.
CREATE TABLE issuers (
  client_id    text NOT NULL,
  id           uuid NOT NULL,
  sn           text NOT NULL,
  currency     text NOT NULL,
  name         text NOT NULL,
  description  text,
  sn_prefix    text NOT NULL DEFAULT '' CHECK (sn_prefix ~ '^[0-9]{0,8}$'),
  active       boolean NOT NULL DEFAULT true,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, id),
  FOREIGN KEY (client_id, currency) REFERENCES ledger_currencies (client_id, code)
);
CREATE UNIQUE INDEX issuers_sn ON issuers (client_id, sn);
CREATE INDEX issuers_currency ON issuers (client_id, currency, created_at);

CREATE TABLE bank_catalog (
  client_id   text NOT NULL REFERENCES clients (id),
  id          uuid NOT NULL,
  name        text NOT NULL,
  bic         text NOT NULL,
  swift       text NOT NULL,
  address     text,
  city        text,
  zip_code    text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, id)
);
CREATE UNIQUE INDEX bank_catalog_bic ON bank_catalog (client_id, bic);
CREATE UNIQUE INDEX bank_catalog_swift ON bank_catalog (client_id, swift);

-- Commission profiles: per operation and currency, a direction and amount-ranged rules (amounts in
-- minor units as decimal strings inside `rules`), valid between two optional dates.
CREATE TABLE commission_profiles (
  client_id      text NOT NULL REFERENCES clients (id),
  id             uuid NOT NULL,
  operation      text NOT NULL,
  currency       text NOT NULL,
  fee_direction  text NOT NULL CHECK (fee_direction IN ('IN', 'OUT', 'SHARED')),
  rules          jsonb NOT NULL,
  begin_date     timestamptz,
  end_date       timestamptz,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, id)
);
CREATE INDEX commission_profiles_lookup ON commission_profiles (client_id, operation, currency, created_at DESC);

-- Account serials: every user wallet has one, unique per client, unguessable (random digits after
-- its issuer's prefix).
CREATE TABLE coins (
  client_id   text NOT NULL,
  serial      text NOT NULL CHECK (serial ~ '^[0-9]{12,32}$'),
  account_id  uuid NOT NULL UNIQUE REFERENCES ledger_accounts (id),
  issuer_id   uuid,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, serial)
);
INSERT INTO coins (client_id, serial, account_id, created_at)
  SELECT client_id,
         lpad(((('x' || substr(md5(gen_random_uuid()::text), 1, 15))::bit(60)::bigint) % 10000000000000000)::text, 16, '0'),
         id, created_at
    FROM ledger_accounts WHERE kind = 'USER_WALLET';

-- Smart cards: a card number linked to one of its holder's accounts. The number is sealed; a keyed
-- fingerprint finds the card when it is a transfer's destination.
CREATE TABLE smart_cards (
  client_id        text NOT NULL,
  id               uuid NOT NULL,
  user_id          text NOT NULL,
  account_id       uuid NOT NULL REFERENCES ledger_accounts (id),
  name             text NOT NULL,
  fingerprint      text NOT NULL,
  sealed_number    text NOT NULL,
  last4            text NOT NULL,
  bin              text NOT NULL,
  expiration_date  date NOT NULL,
  active           boolean NOT NULL DEFAULT true,
  created_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, id),
  FOREIGN KEY (client_id, user_id) REFERENCES users (client_id, id)
);
CREATE UNIQUE INDEX smart_cards_fingerprint ON smart_cards (client_id, fingerprint);
CREATE INDEX smart_cards_user ON smart_cards (client_id, user_id, created_at);

CREATE TABLE transfer_templates (
  client_id       text NOT NULL,
  id              uuid NOT NULL,
  user_id         text NOT NULL,
  name            text NOT NULL,
  description     text,
  tool_type       text NOT NULL CHECK (tool_type IN ('COIN', 'SMART_CARD')),
  src_value       text NOT NULL,
  dest_value      text NOT NULL,
  currency        text NOT NULL,
  amount          numeric(38,0),
  source_request  text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, id),
  FOREIGN KEY (client_id, user_id) REFERENCES users (client_id, id)
);
CREATE INDEX transfer_templates_user ON transfer_templates (client_id, user_id, created_at);

-- Transactions as business processes: a number people can read out (the Wallet API's
-- requestIdentifier), the face's view of the operation (its name, commission direction, what the
-- sender paid and the recipient got), and a person's decision on it (accept/decline, AML clearance).
CREATE SEQUENCE transaction_numbers;
ALTER TABLE transactions ADD COLUMN number bigint NOT NULL DEFAULT nextval('transaction_numbers');
ALTER TABLE transactions ADD COLUMN process jsonb;
ALTER TABLE transactions ADD COLUMN decision jsonb;
CREATE UNIQUE INDEX transactions_number ON transactions (client_id, number);
CREATE INDEX transactions_client_created ON transactions (client_id, created_at, request_id);
CREATE INDEX transactions_user_created ON transactions (client_id, user_id, created_at);
CREATE INDEX transactions_counterparty ON transactions (client_id, counterparty_user_id, created_at)
  WHERE counterparty_user_id IS NOT NULL;
