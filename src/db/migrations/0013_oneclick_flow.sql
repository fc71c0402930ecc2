-- 1-Click (/oauth): a sign-up-and-deposit flow. One row per authorize request; its numeric status
-- code is the operator-facing state (0 success … 6xx cancelled). `tx_id` is the flow's number, the
-- `txId` the operator sees (`txRefId` = <clientId>A<txId>). The identity the provider proved is kept
-- sealed (AES-256-GCM, the row's id as associated data) until the core user exists.
CREATE SEQUENCE oneclick_tx_seq START 100001;

CREATE TABLE oneclick_transactions (
  tx_id               bigint PRIMARY KEY DEFAULT nextval('oneclick_tx_seq'),
  client_id           text NOT NULL REFERENCES clients (id),
  session_id          text NOT NULL UNIQUE,
  identity_provider   text NOT NULL,
  redirect_uri        text NOT NULL,
  redirect_uri_given  boolean NOT NULL DEFAULT true,
  state               text,
  scope               text NOT NULL,
  locale              text,
  iframe              boolean NOT NULL,
  code_challenge      text,
  amount              numeric(38,0) CHECK (amount > 0),
  currency            text,
  fee                 numeric(38,0) NOT NULL DEFAULT 0 CHECK (fee >= 0),
  status_code         integer NOT NULL,
  status_name         text NOT NULL,
  identity_sealed     text,
  -- A keyed fingerprint of the proven personal id: a returning person is recognised (their
  -- operator user id) without keeping the id in the clear.
  person_fingerprint  text,
  user_id             text,
  operator_session_id text,
  merchant_tx_id      text,
  auth_code           text,
  err_code            text,
  err_msg             text,
  code_hash           text UNIQUE,
  code_sealed         text,
  code_expires_at     timestamptz,
  code_used_at        timestamptz,
  token_jti           text,
  token_revoked_at    timestamptz,
  resolution          jsonb,
  expires_at          timestamptz NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX oneclick_transactions_status ON oneclick_transactions (client_id, status_code, tx_id);
CREATE INDEX oneclick_transactions_person ON oneclick_transactions (client_id, person_fingerprint, tx_id)
  WHERE person_fingerprint IS NOT NULL AND user_id IS NOT NULL;
CREATE INDEX oneclick_transactions_waiting ON oneclick_transactions (expires_at) WHERE status_code = 301;

-- The identity providers' sandbox bank payments, by Ferry's idempotency key (reconciled with the
-- ledger on the bank rail).
CREATE TABLE sandbox_idp_payments (
  idempotency_key  text PRIMARY KEY,
  reference        text NOT NULL UNIQUE,
  provider         text NOT NULL,
  amount           numeric(38,0) NOT NULL,
  currency         text NOT NULL,
  status           text NOT NULL CHECK (status IN ('PAID', 'NO_FUNDS')),
  created_at       timestamptz NOT NULL DEFAULT now()
);
