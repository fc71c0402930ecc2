-- Platform API, part 2: transactions (deposits, withdrawals, transfers, trades, payments), their
-- monitoring results, per-client fees, and the sandbox acquirer's and bank's own records.

CREATE TABLE transactions (
  client_id              text NOT NULL,
  request_id             text NOT NULL,
  type                   text NOT NULL CHECK (type IN ('DEPOSIT', 'WITHDRAWAL', 'TRANSFER', 'TRADE', 'PAYMENT')),
  user_id                text NOT NULL,
  counterparty_user_id   text,
  status                 text NOT NULL CHECK (status IN ('PENDING', 'MANUAL_REVIEW', 'REFUSED', 'AWAITING_PAYMENT', 'AUTHORIZED',
                                                         'CAPTURED', 'SETTLED', 'CANCELED', 'REFUNDED', 'CHARGED_BACK', 'ERROR')),
  amount                 numeric(38,0) NOT NULL CHECK (amount > 0),
  currency               text NOT NULL,
  fee                    numeric(38,0) NOT NULL DEFAULT 0 CHECK (fee >= 0),
  usd_value              numeric(38,0) NOT NULL DEFAULT 0,
  target_currency        text,
  target_amount          numeric(38,0),
  rate                   text,
  wallet_id              uuid,
  counterparty_wallet_id uuid,
  payment_method         jsonb,
  monitoring             jsonb,
  provider               text,
  provider_reference     text,
  provider_step          text CHECK (provider_step IN ('CHARGE', 'PAYOUT')),
  status_detail          jsonb,
  redirect_url           text,
  payment_instructions   jsonb,
  feedback               text,
  locked_until           timestamptz,
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, request_id),
  FOREIGN KEY (client_id, user_id) REFERENCES users (client_id, id)
);
CREATE INDEX transactions_user ON transactions (client_id, user_id, type, created_at);
-- Work a provider call left unfinished (a crash between the call and the recording of its outcome).
CREATE INDEX transactions_provider_step ON transactions (updated_at) WHERE provider_step IS NOT NULL;
CREATE UNIQUE INDEX transactions_provider_reference ON transactions (provider, provider_reference) WHERE provider_reference IS NOT NULL;

-- The sandbox acquirer's ledger of charges, by Ferry's idempotency key: one charge per key.
CREATE TABLE sandbox_acquirer_charges (
  idempotency_key  text PRIMARY KEY,
  reference        text NOT NULL UNIQUE,
  card_last4       text NOT NULL,
  amount           numeric(38,0) NOT NULL,
  currency         text NOT NULL,
  outcome          text NOT NULL CHECK (outcome IN ('TIMED_OUT', 'APPROVED', 'DECLINED', 'CHALLENGE', 'CHALLENGE_FAILED', 'REFUNDED')),
  decline_code     text,
  attempts         integer NOT NULL DEFAULT 1,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

-- The sandbox bank: payouts by idempotency key.
CREATE TABLE sandbox_bank_payouts (
  idempotency_key  text PRIMARY KEY,
  reference        text NOT NULL UNIQUE,
  account_last4    text NOT NULL,
  amount           numeric(38,0) NOT NULL,
  currency         text NOT NULL,
  outcome          text NOT NULL CHECK (outcome IN ('ACCEPTED', 'RETURNED')),
  settles_at       timestamptz NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now()
);

-- A business transaction's ledger legs, found by their operation id (reversals).
CREATE INDEX ledger_transfers_operation ON ledger_transfers (client_id, operation_id);
